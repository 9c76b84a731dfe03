"""Latency and jitter measurement; knows no network.

:class:`Histogram` (log-linear buckets, relative error 1/256 from 1 ns to one hour,
recorded without the GIL), :class:`Stages` (one histogram per pair of per-message stamps,
inter-arrival times, the RFC 3550 jitter :class:`Jitter`), :class:`Report` (text table,
dict/JSON, PNG plot) and :class:`PeriodicLogger` (a line through :mod:`logging` per
interval). Nogil code cimports ``hftcore/latency/histogram.pxd`` and ``stages.pxd``.
"""

from hftcore.latency.histogram import Histogram
from hftcore.latency.report import PeriodicLogger, Report, format_ns
from hftcore.latency.stages import Jitter, Stages

__all__ = ["Histogram", "Stages", "Jitter", "Report", "PeriodicLogger", "format_ns"]
