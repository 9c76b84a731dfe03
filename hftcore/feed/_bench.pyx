# cython: language_level=3, boundscheck=False, wraparound=False
"""The Cython consumer of ``hftcore feed bench``: per frame, the sender's time parsed from
the payload and the three stage times, into preallocated arrays (nogil, no allocation)."""

from libc.stdint cimport int64_t, uint8_t

import numpy as np

from hftcore._core.clock cimport monotonic_ns, realtime_ns
from hftcore.net.consumer cimport CONSUME_OK, CONSUME_STOP, Consumer, RecvStamp

cdef enum:
    STAMP_DIGITS = 19  # the send time: CLOCK_REALTIME ns as 19 ASCII digits


cdef class StampConsumer(Consumer):
    """Records, for each of the first ``capacity`` frames: the sender's CLOCK_REALTIME (the
    payload's first 19 ASCII digits), the receive call's CLOCK_REALTIME, the CLOCK_REALTIME
    when the frame reached this consumer, and receive -> consumer in CLOCK_MONOTONIC ns.
    Returns ``CONSUME_STOP`` once full. A frame without 19 leading digits is counted in
    ``bad`` and not recorded.

    Parameters
    ----------
    capacity : int
        Frames to record.
    """

    cdef readonly Py_ssize_t capacity, frames, bad, first_batch
    cdef readonly int64_t first_ns, last_ns
    cdef int64_t first_recv_mono
    cdef int64_t[::1] _send, _recv, _frame, _r2f
    cdef readonly object send, recv, frame, recv_to_frame

    def __init__(self, Py_ssize_t capacity):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.send = np.zeros(capacity, dtype=np.int64)
        self.recv = np.zeros(capacity, dtype=np.int64)
        self.frame = np.zeros(capacity, dtype=np.int64)
        self.recv_to_frame = np.zeros(capacity, dtype=np.int64)
        self._send = self.send
        self._recv = self.recv
        self._frame = self.frame
        self._r2f = self.recv_to_frame

    @property
    def done(self):
        """Whether ``capacity`` frames were recorded."""
        return self.frames >= self.capacity

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        cdef int64_t mono = monotonic_ns()
        cdef int64_t now = realtime_ns()
        cdef int64_t sent = 0
        cdef Py_ssize_t i
        cdef Py_ssize_t n = self.frames
        if n >= self.capacity:
            return CONSUME_STOP
        if size < STAMP_DIGITS:
            self.bad += 1
            return CONSUME_OK
        for i in range(STAMP_DIGITS):
            if data[i] < 48 or data[i] > 57:
                self.bad += 1
                return CONSUME_OK
            sent = sent * 10 + (data[i] - 48)
        self._send[n] = sent
        self._recv[n] = stamp.realtime_ns
        self._frame[n] = now
        self._r2f[n] = mono - stamp.monotonic_ns
        if n == 0:
            self.first_ns = stamp.monotonic_ns
            self.first_recv_mono = stamp.monotonic_ns
        if stamp.monotonic_ns == self.first_recv_mono:
            self.first_batch += 1
        self.last_ns = stamp.monotonic_ns
        self.frames = n + 1
        return CONSUME_STOP if n + 1 >= self.capacity else CONSUME_OK
