# cython: language_level=3, boundscheck=False, wraparound=False
"""The Cython consumer of ``hftcore feed bench``: per frame, the sender's time parsed from
the payload and the three stage latencies recorded into latency histograms (nogil, no
allocation per frame)."""

from libc.stdint cimport int64_t, uint8_t

import numpy as np

from hftcore._core.clock cimport monotonic_ns, realtime_ns
from hftcore.latency.histogram cimport Histogram
from hftcore.latency.stages cimport Jitter
from hftcore.net.consumer cimport CONSUME_OK, CONSUME_STOP, Consumer, RecvStamp


cdef enum:
    STAMP_DIGITS = 19  # the send time: CLOCK_REALTIME ns as 19 ASCII digits


cdef class StampConsumer(Consumer):
    """Measures each of the first ``capacity`` frames, then returns ``CONSUME_STOP``.

    The payload's first 19 ASCII digits are the sender's CLOCK_REALTIME (ns). Recorded:
    ``send_to_recv`` (sender -> the receive call returned, CLOCK_REALTIME),
    ``recv_to_frame`` (receive call -> this consumer, CLOCK_MONOTONIC), ``send_to_frame``
    (sender -> this consumer, CLOCK_REALTIME), each into a :class:`Histogram`, and the
    RFC 3550 :class:`Jitter` of sender vs arrival. A frame without 19 leading digits is
    counted in ``bad`` and not recorded.

    Parameters
    ----------
    capacity : int
        Frames to measure.
    samples : bool, default False
        Also keep every frame's four times in int64 arrays ``send``, ``recv``, ``frame``
        and ``recv_to_frame`` (``capacity`` values each, for checking).
    """

    cdef readonly Py_ssize_t capacity, frames, bad, first_batch
    cdef readonly int64_t first_ns, last_ns
    cdef readonly Histogram send_to_recv, recv_to_frame, send_to_frame
    cdef readonly Jitter jitter
    cdef readonly object send, recv, frame, recv_to_frame_samples
    cdef bint keep
    cdef int64_t[::1] _send, _recv, _frame, _r2f

    def __init__(self, Py_ssize_t capacity, bint samples=False):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.send_to_recv = Histogram()
        self.recv_to_frame = Histogram()
        self.send_to_frame = Histogram()
        self.jitter = Jitter()
        self.keep = samples
        if samples:
            self.send = np.zeros(capacity, dtype=np.int64)
            self.recv = np.zeros(capacity, dtype=np.int64)
            self.frame = np.zeros(capacity, dtype=np.int64)
            self.recv_to_frame_samples = np.zeros(capacity, dtype=np.int64)
            self._send = self.send
            self._recv = self.recv
            self._frame = self.frame
            self._r2f = self.recv_to_frame_samples

    @property
    def done(self):
        """Whether ``capacity`` frames were measured."""
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
        self.send_to_recv.record(stamp.realtime_ns - sent)
        self.recv_to_frame.record(mono - stamp.monotonic_ns)
        self.send_to_frame.record(now - sent)
        self.jitter.update(sent, now)
        if self.keep:
            self._send[n] = sent
            self._recv[n] = stamp.realtime_ns
            self._frame[n] = now
            self._r2f[n] = mono - stamp.monotonic_ns
        if n == 0:
            self.first_ns = stamp.monotonic_ns
        if stamp.monotonic_ns == self.first_ns:
            self.first_batch += 1
        self.last_ns = stamp.monotonic_ns
        self.frames = n + 1
        return CONSUME_STOP if n + 1 >= self.capacity else CONSUME_OK
