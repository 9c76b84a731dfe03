# cython: language_level=3
"""Interface of the ITCH 5.0 batch decoder's nogil kernels (see ``_decode.pyx``), and the
one walker of the BinaryFILE framing, :func:`itch_frame`, which the order book cimports."""

from libc.stdint cimport uint8_t, uint16_t, uint64_t

from hftcore._core.bytes cimport load_be16
from hftcore._core.status cimport ST_BAD_LENGTH, Status, status_set
from hftcore.itch._wire cimport ITCH_FRAME_PREFIX, ITCH_SPEC_LENGTH


cdef enum:
    N_TYPE_BYTES = 256      # tables indexed by a message's type byte


cdef struct ItchWalk:
    Py_ssize_t consumed     # bytes of whole messages walked (incl. an end-of-session marker)
    Py_ssize_t messages     # messages walked, unknown types included
    Py_ssize_t unknown      # messages whose type byte is not an ITCH 5.0 type
    bint end_of_session     # a zero length prefix ended the walk
    uint64_t counts[N_TYPE_BYTES]  # messages walked per type byte


# What itch_frame found at a position of the stream.
cdef enum Frame:
    FRAME_BAD = -1          # a known type with a length other than the spec's: ``st`` set
    FRAME_MESSAGE = 0       # a whole message of an ITCH 5.0 type, of the spec's length
    FRAME_UNKNOWN           # a whole message of a type the spec does not define (skip it)
    FRAME_END               # a zero length prefix: the session's end marker
    FRAME_PARTIAL           # the buffer ends inside the length prefix or the message


cdef inline int itch_frame(const uint8_t *buf, Py_ssize_t n, Py_ssize_t pos,
                           Py_ssize_t *length, Status *st) noexcept nogil:
    """Read the BinaryFILE frame at ``buf[pos]`` (``buf[:n]`` readable): a :c:type:`Frame`.

    For ``FRAME_MESSAGE`` and ``FRAME_UNKNOWN``, ``length`` receives the message's length
    (without the prefix: the next frame starts at ``pos + ITCH_FRAME_PREFIX + length``).
    ``FRAME_BAD`` sets ``st`` (``ST_BAD_LENGTH`` at ``pos``). The only code that reads
    untrusted lengths: every byte of a whole frame is inside ``buf[:n]``.
    """
    cdef Py_ssize_t mlen
    cdef uint16_t expected
    if n - pos < ITCH_FRAME_PREFIX:
        return FRAME_PARTIAL
    mlen = load_be16(buf + pos)
    if mlen == 0:
        return FRAME_END
    if n - pos - ITCH_FRAME_PREFIX < mlen:
        return FRAME_PARTIAL
    length[0] = mlen
    expected = ITCH_SPEC_LENGTH[buf[pos + ITCH_FRAME_PREFIX]]
    # Unknown types have expected == 0 and mlen >= 1: one branch covers both.
    if mlen == expected:
        return FRAME_MESSAGE
    if expected == 0:
        return FRAME_UNKNOWN
    return status_set(st, ST_BAD_LENGTH, pos, mlen, expected)


cdef int itch_walk(const uint8_t *buf, Py_ssize_t n, ItchWalk *w,
                   Status *st) noexcept nogil
cdef Py_ssize_t itch_fill(const uint8_t *buf, Py_ssize_t messages, const uint8_t *dispatch,
                          uint8_t **rows, uint64_t seq_start,
                          uint64_t *index) noexcept nogil
