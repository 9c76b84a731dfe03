# cython: language_level=3
"""Consumers of a reader's messages (see consumer.pxd for the contract)."""

from libc.stdint cimport uint8_t


cdef class Consumer:
    """Base class of message consumers: subclass in Cython and override ``on_message``.

    The base consumer accepts and ignores every message (a reader with it measures the
    receive path alone).
    """

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        return CONSUME_OK

    cpdef check(self):
        """Raise the error stored by ``on_message``, if any (the base class stores none)."""
        return None


cdef class PyConsumer(Consumer):
    """Calls ``callback(message, kind, stamp)`` for every message: the slow path.

    Parameters
    ----------
    callback : callable
        Called with the GIL as ``callback(message: bytes, kind: int, stamp: tuple)``,
        ``stamp`` being ``(realtime_ns, monotonic_ns, kernel_ns)``. Return a true value to
        stop the reader's loop; an exception stops it and is raised by the reader.
    """

    def __init__(self, callback):
        self.callback = callback
        self.error = None

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        with gil:
            try:
                stop = self.callback(
                    data[:size], kind,
                    (stamp.realtime_ns, stamp.monotonic_ns, stamp.kernel_ns),
                )
            except BaseException as exc:
                self.error = exc
                return CONSUME_ERROR
            return CONSUME_STOP if stop else CONSUME_OK

    cpdef check(self):
        """Raise (and clear) the exception the callback raised."""
        error, self.error = self.error, None
        if error is not None:
            raise error


# The enum members as module names too (``consumer.KIND_TEXT``), as Python sees them; the
# C names are taken by the enum itself, hence the update rather than assignments.
globals().update(MessageKind.__members__)
globals().update(ConsumeResult.__members__)
