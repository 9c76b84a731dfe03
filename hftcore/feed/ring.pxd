# cython: language_level=3
"""Declared interface of the bounded ring tables: one writer (the feed thread, without
the GIL), one taker (any other thread, through ``Ring.take``).

The writer fills the slot ``ring_claim`` returns with one record of the ring's dtype,
then calls ``ring_publish``. It never waits: when the taker falls more than
``capacity`` records behind, the oldest records are overwritten and ``take`` counts them
in ``overruns`` (never silent). A writer that keeps many rings (one per symbol) holds
``&ring.r`` pointers, taken with the GIL while it holds the rings.
"""

from libc.stdint cimport uint64_t

from hftcore._core.atomic cimport fence_release, store_release


cdef struct RingData:
    char *data             # capacity * itemsize bytes
    Py_ssize_t itemsize
    uint64_t capacity      # a power of two
    uint64_t mask          # capacity - 1
    uint64_t head          # records published (writer; read with acquire)
    uint64_t claimed       # head + 1 while a record is being written, else head


cdef inline char *ring_claim(RingData *r) noexcept nogil:
    """The slot of the next record (not visible to the taker until ``ring_publish``)."""
    # Announce the overwrite before writing, so a take copying the old record in this
    # slot knows to leave it out.
    r.claimed = r.head + 1
    fence_release()
    return r.data + (r.head & r.mask) * r.itemsize


cdef inline void ring_publish(RingData *r) noexcept nogil:
    """Make the record written into ``ring_claim``'s slot visible."""
    store_release(&r.head, r.head + 1)


cdef class Ring:
    cdef RingData r
    cdef uint64_t tail               # records taken or counted lost (taker only)
    cdef readonly uint64_t overruns  # records overwritten before they were taken
    cdef readonly object dtype
    cdef object lock                 # one take at a time

    cdef void _copy(self, object out, uint64_t start, uint64_t n)
