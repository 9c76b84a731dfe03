# cython: language_level=3
"""The interface between a reader in ``net/`` and whatever consumes its messages.

A reader (WebSocket, TCP, UDP) calls ``Consumer.on_message`` once per complete message,
without the GIL, with a pointer into its receive buffer (valid only during the call: copy
what must outlive it) and the timestamps taken when the bytes arrived. The exchange layers
subclass ``Consumer`` in Cython (a Binance depth applier, an ITCH book) so nothing on the
way allocates or touches a Python object; ``PyConsumer`` wraps a Python callable for
scripts and tests (the slow path: it takes the GIL and copies each message).
"""

from libc.stdint cimport int64_t, uint8_t

from hftcore._core.clock cimport monotonic_ns, realtime_ns


cdef struct RecvStamp:
    int64_t realtime_ns   # CLOCK_REALTIME when the receive call returned
    int64_t monotonic_ns  # CLOCK_MONOTONIC at the same moment (for local stage deltas)
    int64_t kernel_ns     # the kernel's receive time (CLOCK_REALTIME), 0 when unavailable


# What a message is; a WebSocket message keeps its opcode's meaning.
cpdef enum MessageKind:
    KIND_TEXT = 1      # WebSocket text message (UTF-8 checked by the reader)
    KIND_BINARY = 2    # WebSocket binary message
    KIND_STREAM = 16   # a chunk of a TCP byte stream (the consumer frames it)
    KIND_DATAGRAM = 17  # one UDP datagram


# What on_message returns.
cpdef enum ConsumeResult:
    CONSUME_OK = 0     # go on
    CONSUME_STOP = 1   # stop the reader's loop after this message (not an error)
    CONSUME_ERROR = -1  # an error is stored in the consumer: the reader calls check()


cdef inline void stamp_now(RecvStamp* stamp) noexcept nogil:
    stamp.realtime_ns = realtime_ns()
    stamp.monotonic_ns = monotonic_ns()
    stamp.kernel_ns = 0


cdef class Consumer:
    # Called by the reader's loop without the GIL, once per complete message.
    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil
    # Called by the reader with the GIL after on_message returned CONSUME_ERROR: raises
    # the stored exception (and clears it).
    cpdef check(self)


cdef class PyConsumer(Consumer):
    cdef object callback
    cdef object error
