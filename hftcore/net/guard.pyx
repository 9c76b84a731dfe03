# cython: language_level=3
"""A consumer that holds a lock while its inner consumer works, so other threads can read
the state it updates (an order book) between messages, never in the middle of one.
"""

from cpython.pythread cimport (
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)
from libc.stdint cimport uint8_t

from hftcore.net.consumer cimport Consumer, RecvStamp

__all__ = ["GuardedConsumer"]


cdef class GuardedConsumer(Consumer):
    """Calls ``inner.on_message`` with a lock held; readers take the same lock.

    Wrap the consumer whose calls should be atomic for readers: around a
    :class:`~hftcore.net.moldudp64.MoldUDP64Sequencer` it makes each datagram (every
    message in it) one step; around a book consumer, each message. The lock is taken and
    released without the GIL; a reader waiting for it releases the GIL meanwhile, so
    neither side can deadlock on the other.

    Parameters
    ----------
    inner : Consumer

    Examples
    --------
    >>> with guard:              # doctest: +SKIP
    ...     best = book.bbo("AAPL")
    """

    cdef readonly Consumer inner
    cdef PyThread_type_lock lock
    cdef readonly unsigned long long calls

    def __cinit__(self, Consumer inner not None):
        self.inner = inner
        self.lock = PyThread_allocate_lock()
        if self.lock == NULL:
            raise MemoryError("cannot allocate a lock")

    def __dealloc__(self):
        if self.lock != NULL:
            PyThread_free_lock(self.lock)

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        cdef int rc
        PyThread_acquire_lock(self.lock, WAIT_LOCK)
        rc = self.inner.on_message(data, size, kind, stamp)
        PyThread_release_lock(self.lock)
        self.calls += 1
        return rc

    cpdef check(self):
        """The inner consumer's stored error, if any."""
        self.inner.check()

    def acquire(self):
        """Take the lock (waiting without the GIL)."""
        with nogil:
            PyThread_acquire_lock(self.lock, WAIT_LOCK)

    def release(self):
        """Release the lock taken by :meth:`acquire`."""
        PyThread_release_lock(self.lock)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()
