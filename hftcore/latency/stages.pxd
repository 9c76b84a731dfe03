# cython: language_level=3
"""Declared interface of the per-message stage recorder and the RFC 3550 jitter estimate.

A message passes stamps (nanosecond timestamps) as it goes: e.g. ``event`` (the sender's
time, carried in the message), ``kernel`` (the kernel's receive stamp), ``recv`` (the
receive call returned), ``decoded``, ``applied``. :class:`Stages` keeps one
:class:`~hftcore.latency.histogram.Histogram` per stage, a stage being a pair of stamps
(``recv_to_decoded`` = decoded - recv), plus the inter-arrival histogram of one stamp and
the RFC 3550 interarrival jitter of (sender, arrival) stamps.

Hot path (cimport these; no GIL, no allocation, never fail):

- ``record_stamps(stamps)``: one message; ``stamps`` points at ``n_stamps`` int64 in
  the order of the names given to the constructor (``stamp_index(name)``), 0 for a stamp
  the message does not have.
- ``record_pair(idx, start, end)``: one stage alone (``idx`` = ``stage_index(name)``).

A stamp of 0 is "missing": the stage is not recorded, it is counted in ``missing``. A
negative delta (``end < start``: clocks of two machines, or a clock that stepped) is not
recorded into the histogram but counted in ``negative`` with the most negative delta
kept: a sender clock ahead of the receiver's is a fact to report, not a latency.
Both stamps of a stage must come from the same clock (CLOCK_REALTIME for a sender or
kernel stamp, CLOCK_MONOTONIC between local stages).

Thread safety: one thread records (the feed thread). ``take_interval`` and ``reset``
must be called by that thread too (the feed calls ``PeriodicLogger.tick`` from its loop),
or while it does not record.
"""

cimport cython
from libc.stdint cimport int64_t

from hftcore.latency.histogram cimport HistData, hist_record


cdef enum:
    STAGES_MAX_STAMPS = 16   # stamps per message, at most
    STAGES_MAX_PAIRS = 32    # stages (stamp pairs), at most


ctypedef struct JitterState:
    double value            # J, the running estimate, ns
    int64_t last_sent       # sender stamp of the previous transit
    int64_t last_recv       # receive stamp of the previous transit
    int64_t transits        # (sent, recv) pairs seen; J has transits - 1 updates


cdef inline void jitter_update(JitterState *j, int64_t sent, int64_t recv) noexcept nogil:
    """RFC 3550 section 6.4.1: ``D = (R_i - R_j) - (S_i - S_j)``, ``J += (|D| - J) / 16``
    (floating point, in ns; the first transit only sets the reference)."""
    cdef int64_t d
    if j.transits:
        d = (recv - j.last_recv) - (sent - j.last_sent)
        if d < 0:
            d = -d
        j.value += (<double>d - j.value) / 16.0
    j.last_sent = sent
    j.last_recv = recv
    j.transits += 1


@cython.final
cdef class Jitter:
    """RFC 3550 interarrival jitter of (sender, receive) timestamp pairs."""
    cdef JitterState s

    cpdef inline void update(self, int64_t sent, int64_t recv) noexcept nogil:
        """One message: its sender timestamp and its receive timestamp (ns)."""
        jitter_update(&self.s, sent, recv)


@cython.final
cdef class Stages:
    # Invariants: 0 <= pair_start[i], pair_end[i] < n_stamps for i < n_pairs;
    # total[i] / interval[i] point into Histogram objects kept alive by _total /
    # _interval (their memory never moves); arrival_idx / sender_idx are -1 or < n_stamps.
    cdef readonly int n_stamps                    # stamps per message
    cdef readonly int n_pairs                     # stages
    cdef int pair_start[STAGES_MAX_PAIRS]         # stamp index of each stage's start
    cdef int pair_end[STAGES_MAX_PAIRS]           # stamp index of each stage's end
    cdef HistData *total[STAGES_MAX_PAIRS]        # since construction / reset
    cdef HistData *interval[STAGES_MAX_PAIRS]     # since the last take_interval
    cdef int64_t missing_[STAGES_MAX_PAIRS]       # stage skipped: a stamp was 0
    cdef int64_t negative_[STAGES_MAX_PAIRS]      # stage skipped: end < start
    cdef int64_t most_negative_[STAGES_MAX_PAIRS]  # smallest negative delta (0: none)
    cdef int arrival_idx                          # stamp of the inter-arrival times, or -1
    cdef int sender_idx                           # sender stamp for the jitter, or -1
    cdef int64_t last_arrival                     # previous arrival stamp (0: none yet)
    cdef HistData *arrival_total                  # inter-arrival times since reset
    cdef HistData *arrival_interval               # ... since the last take_interval
    cdef JitterState jitter_                      # RFC 3550 estimate (sender vs arrival)
    cdef readonly int64_t messages                # record_stamps calls since reset
    cdef int64_t interval_messages                # ... since the last take_interval
    cdef list _total                              # Histogram objects behind total[]
    cdef list _interval                           # Histogram objects behind interval[]
    cdef object _arrival_total                    # Histogram behind arrival_total
    cdef object _arrival_interval                 # Histogram behind arrival_interval
    cdef tuple _stamp_names
    cdef tuple _stage_names

    cdef inline void record_pair(self, int idx, int64_t start, int64_t end) noexcept nogil:
        """Record stage ``idx`` (``0 <= idx < n_pairs``, unchecked): ``end - start``."""
        cdef int64_t d
        if start == 0 or end == 0:
            self.missing_[idx] += 1
            return
        d = end - start
        if d < 0:
            self.negative_[idx] += 1
            if d < self.most_negative_[idx]:
                self.most_negative_[idx] = d
            return
        hist_record(self.total[idx], d)
        hist_record(self.interval[idx], d)

    cdef inline void record_arrival(self, int64_t t) noexcept nogil:
        """Record an arrival at ``t`` (ns): the gap since the previous arrival."""
        if self.last_arrival != 0:
            hist_record(self.arrival_total, t - self.last_arrival)
            hist_record(self.arrival_interval, t - self.last_arrival)
        self.last_arrival = t

    cdef inline void record_stamps(self, const int64_t *stamps) noexcept nogil:
        """Record one message: every stage, the arrival and the jitter from ``stamps``
        (``n_stamps`` values in constructor order, 0 = missing)."""
        cdef int i
        cdef int64_t t
        for i in range(self.n_pairs):
            self.record_pair(i, stamps[self.pair_start[i]], stamps[self.pair_end[i]])
        if self.arrival_idx >= 0:
            t = stamps[self.arrival_idx]
            if t != 0:
                self.record_arrival(t)
                if self.sender_idx >= 0 and stamps[self.sender_idx] != 0:
                    jitter_update(&self.jitter_, stamps[self.sender_idx], t)
        self.messages += 1
        self.interval_messages += 1
