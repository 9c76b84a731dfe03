# cython: language_level=3
"""Declared interface of the bounded ring tables: one writer (the feed thread, without
the GIL), one taker (any other thread, through ``Ring.take``).

The writer fills the slot ``claim()`` returns with one record of the ring's dtype, then
calls ``publish()``. It never waits: when the taker falls more than ``capacity`` records
behind, the oldest records are overwritten and ``take`` counts them in ``overruns``
(never silent).
"""

from libc.stdint cimport uint64_t

from hftcore._core.atomic cimport fence_release, store_release


cdef class Ring:
    cdef char *data              # capacity * itemsize bytes
    cdef readonly Py_ssize_t itemsize
    cdef readonly Py_ssize_t capacity  # a power of two
    cdef uint64_t mask           # capacity - 1
    cdef uint64_t head           # records published (writer; read with acquire)
    cdef uint64_t claimed        # head + 1 while a record is being written, else head
    cdef uint64_t tail           # records taken or counted lost (taker only)
    cdef readonly uint64_t overruns  # records overwritten before they were taken
    cdef readonly object dtype
    cdef object lock             # one take at a time

    cdef void _copy(self, object out, uint64_t start, uint64_t n)

    cdef inline char *claim(self) noexcept nogil:
        """The slot of the next record (not visible to the taker until ``publish``)."""
        # Announce the overwrite before writing, so a take copying the old record in
        # this slot knows to leave it out.
        self.claimed = self.head + 1
        fence_release()
        return self.data + (self.head & self.mask) * self.itemsize

    cdef inline void publish(self) noexcept nogil:
        """Make the record written into ``claim()``'s slot visible."""
        store_release(&self.head, self.head + 1)
