# cython: language_level=3
"""Bounded single-writer ring tables of fixed-size records (see ring.pxd)."""

from libc.stdint cimport uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy

import threading

import numpy as np

from hftcore._core.atomic cimport fence_acquire, load_acquire

# (ring_claim / ring_publish and the RingData layout are in ring.pxd.)


cdef class Ring:
    """A bounded table of records written by one thread and taken by others.

    The feed thread writes records (trades, top-of-book changes) without the GIL and
    never waits; other threads call :meth:`take` for everything written since their last
    take, as a numpy structured array. When takes fall more than ``capacity`` records
    behind, the oldest are overwritten: :meth:`take` leaves them out and counts them in
    ``overruns``.

    Parameters
    ----------
    dtype : numpy.dtype
        The record layout (the writer's C struct must match it byte for byte).
    capacity : int
        Records held; rounded up to a power of two.

    Attributes
    ----------
    overruns : int
        Records overwritten before they were taken.
    written : int
        Records published so far.
    """

    def __cinit__(self, dtype, Py_ssize_t capacity=65536):
        self.dtype = np.dtype(dtype)
        if self.dtype.itemsize == 0:
            raise ValueError("ring dtype has no fields")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        cap = 1
        while cap < capacity:
            cap <<= 1
        self.r.capacity = cap
        self.r.mask = cap - 1
        self.r.itemsize = self.dtype.itemsize
        self.r.data = <char *>calloc(cap, self.r.itemsize)
        if self.r.data == NULL:
            raise MemoryError(f"cannot allocate a ring of {cap} x {self.r.itemsize} bytes")
        self.r.head = 0
        self.r.claimed = 0
        self.tail = 0
        self.overruns = 0
        self.lock = threading.Lock()

    def __dealloc__(self):
        free(self.r.data)

    @property
    def capacity(self):
        """Records held (a power of two)."""
        return self.r.capacity

    @property
    def itemsize(self):
        """Bytes per record."""
        return self.r.itemsize

    @property
    def written(self):
        """Records published so far."""
        return load_acquire(&self.r.head)

    @property
    def pending(self):
        """Records published and not yet taken (at most ``capacity`` can be taken)."""
        return load_acquire(&self.r.head) - self.tail

    def take(self, Py_ssize_t limit=-1):
        """Every record written since the last take, oldest first.

        Parameters
        ----------
        limit : int, optional
            At most this many records (the oldest); the rest stay for the next take.

        Returns
        -------
        numpy.ndarray
            Records of the ring's dtype (a copy: the writer goes on).
        """
        cdef uint64_t h, h2, start, first_ok, n
        with self.lock:
            h = load_acquire(&self.r.head)
            start = self.tail
            if h - start > self.r.capacity:
                self.overruns += h - start - self.r.capacity
                start = h - self.r.capacity
            if limit >= 0 and h - start > <uint64_t>limit:
                h = start + limit
            n = h - start
            out = np.empty(n, dtype=self.dtype)
            if n:
                self._copy(out, start, n)
            # Records the writer overwrote (or is overwriting) while they were copied.
            fence_acquire()
            h2 = load_acquire(&self.r.claimed)
            first_ok = h2 - self.r.capacity if h2 > self.r.capacity else 0
            if first_ok > start:
                lost = min(first_ok, h) - start
                self.overruns += lost
                out = out[lost:]
            self.tail = h
            return out

    cdef void _copy(self, object out, uint64_t start, uint64_t n):
        cdef unsigned char[::1] view = out.view(np.uint8).reshape(-1)
        cdef char *dst
        cdef uint64_t i0 = start & self.r.mask
        cdef uint64_t first = min(n, self.r.capacity - i0)
        cdef Py_ssize_t size = self.r.itemsize
        dst = <char *>&view[0]
        with nogil:
            memcpy(dst, self.r.data + i0 * size, first * size)
            if n > first:
                memcpy(dst + first * size, self.r.data, (n - first) * size)

    def push(self, record):
        """Write one record from Python (tests and Python producers; one writer only)."""
        row = np.asarray(record, dtype=self.dtype).reshape(-1)
        if row.shape[0] != 1:
            raise ValueError("push takes exactly one record")
        cdef const unsigned char[::1] view = row.view(np.uint8)
        memcpy(ring_claim(&self.r), &view[0], self.r.itemsize)
        ring_publish(&self.r)

    def __repr__(self):
        return (f"<Ring {self.dtype} capacity={self.capacity} written={self.written} "
                f"pending={self.pending} overruns={self.overruns}>")
