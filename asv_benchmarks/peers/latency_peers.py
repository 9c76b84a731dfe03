"""The latency section of peers.py: recording values into a latency histogram.

hftcore ``Histogram.record_many`` (the nogil loop a Cython caller runs: ``record`` inlined
per value), hftcore ``Histogram.record`` called from Python once per value, and the
``hdrhistogram`` package (``hdrh.histogram.HdrHistogram.record_value``, a Python method
per value, 1 ns .. 1 h at 2 significant digits: the same range and a comparable
resolution to hftcore's 1/128 bucket width).
"""

from __future__ import annotations

import numpy as np

HOUR_NS = 3_600_000_000_000


def latency_values(n: int, seed: int = 1) -> np.ndarray:
    """Skewed latencies (lognormal, median ~8 µs, tail into ms) as int64 ns."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.lognormal(9.0, 1.2, n), 1).astype(np.int64)


def hftcore_record_many(values: np.ndarray):
    from hftcore.latency import Histogram

    h = Histogram()
    h.record_many(values[:10])

    def run():
        h.reset()
        h.record_many(values)

    return run


def hftcore_record_python(values: np.ndarray):
    from hftcore.latency import Histogram

    h = Histogram()
    items = values.tolist()
    record = h.record

    def run():
        h.reset()
        for v in items:
            record(v)

    return run


def hdrh_record_value(values: np.ndarray):
    from hdrh.histogram import HdrHistogram

    items = values.tolist()

    def run():
        h = HdrHistogram(1, HOUR_NS, 2)
        record = h.record_value
        for v in items:
            record(v)

    return run


def python_loop_floor(values: np.ndarray):
    """A Python ``for`` loop calling a no-op Python function: the least a pure-Python
    recorder pays per value."""
    items = values.tolist()

    def nothing(v):
        return None

    def run():
        for v in items:
            nothing(v)

    return run
