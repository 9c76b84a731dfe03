# cython: language_level=3
"""Interface of the ITCH 5.0 batch decoder's nogil kernels (see ``_decode.pyx``)."""

from libc.stdint cimport uint8_t, uint64_t

from hftcore._core.status cimport Status


cdef struct ItchWalk:
    Py_ssize_t consumed     # bytes of whole messages walked (incl. an end-of-session marker)
    Py_ssize_t messages     # messages walked, unknown types included
    Py_ssize_t unknown      # messages whose type byte is not an ITCH 5.0 type
    bint end_of_session     # a zero length prefix ended the walk
    uint64_t counts[256]    # messages walked per type byte


cdef int itch_walk(const uint8_t *buf, Py_ssize_t n, ItchWalk *w,
                   Status *st) noexcept nogil
cdef Py_ssize_t itch_fill(const uint8_t *buf, Py_ssize_t messages, const uint8_t *dispatch,
                          uint8_t **rows, uint64_t seq_start,
                          uint64_t *index) noexcept nogil
