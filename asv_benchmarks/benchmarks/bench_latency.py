"""Latency histograms: recording cost per value, percentiles, serialisation, stages.

``track_*`` figures are ns per value, median of 7 runs, timed on the thread's CPU clock
(``time.thread_time_ns``) as well as the wall clock: on a shared machine the wall clock
also counts the time other processes held the core.
"""

import statistics
import time

import numpy as np

N = 1_000_000


def _values(n=N, seed=1):
    rng = np.random.default_rng(seed)
    return np.maximum(rng.lognormal(9.0, 1.2, n), 1).astype(np.int64)


def _per_value(fn, n, clock, runs=7):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times) / n


class RecordMany:
    """``Histogram.record_many``: the nogil loop a Cython caller runs (``record`` inline)."""

    def setup(self):
        from hftcore.latency import Histogram

        self.h = Histogram()
        self.values = _values()

    def time_record_many_1m(self):
        self.h.record_many(self.values)

    def track_ns_per_value_cpu(self):
        return _per_value(lambda: self.h.record_many(self.values), N, time.thread_time_ns)

    def track_ns_per_value_wall(self):
        return _per_value(lambda: self.h.record_many(self.values), N, time.perf_counter_ns)

    track_ns_per_value_cpu.unit = "ns"
    track_ns_per_value_wall.unit = "ns"


class RecordPython:
    """``Histogram.record(v)`` called from Python once per value."""

    def setup(self):
        from hftcore.latency import Histogram

        self.h = Histogram()
        self.items = _values(100_000).tolist()

    def _loop(self):
        record = self.h.record
        for v in self.items:
            record(v)

    def time_record_python_100k(self):
        self._loop()

    def track_ns_per_value_cpu(self):
        return _per_value(self._loop, len(self.items), time.thread_time_ns)

    track_ns_per_value_cpu.unit = "ns"


class Stats:
    """Reading a full histogram: percentiles, summary, serialisation round trip."""

    def setup(self):
        from hftcore.latency import Histogram

        self.h = Histogram()
        self.h.record_many(_values())
        self.data = self.h.to_bytes()

    def time_percentile_p99(self):
        self.h.percentile(99)

    def time_summary(self):
        self.h.summary()

    def time_to_bytes(self):
        self.h.to_bytes()

    def time_from_bytes(self):
        from hftcore.latency import Histogram

        Histogram.from_bytes(self.data)

    def track_serialised_bytes(self):
        return len(self.data)

    track_serialised_bytes.unit = "bytes"


class StagesRecord:
    """``Stages.record_many``: 5 stamps, 5 stages, inter-arrival and jitter per message."""

    def setup(self):
        from hftcore.latency import Stages

        n = 200_000
        rng = np.random.default_rng(2)
        t = np.cumsum(rng.integers(10_000, 200_000, n)) + 1_700_000_000 * 10**9
        st = np.empty((n, 5), np.int64)
        st[:, 0] = t
        for i in range(1, 5):
            st[:, i] = st[:, i - 1] + rng.integers(100, 50_000, n)
        self.stamps = st
        self.stages = Stages(["event", "kernel", "recv", "decoded", "applied"])

    def time_record_many_200k(self):
        self.stages.record_many(self.stamps)

    def track_ns_per_message_cpu(self):
        fn = lambda: self.stages.record_many(self.stamps)  # noqa: E731
        return _per_value(fn, len(self.stamps), time.thread_time_ns)

    track_ns_per_message_cpu.unit = "ns"
