"""Latency reports: a text table, a dict/JSON form, a periodic log line and a PNG plot.

:class:`Report` turns histograms (usually a :class:`~hftcore.latency.Stages`) into the
forms a person or a program reads. The dict form, :meth:`Report.as_dict`, is
``{stage: {"count", "p50", "p90", "p99", "p999", "max"}}`` in integer nanoseconds: the
``stages`` shape of ``hftcore feed bench --json`` and ``hftcore binance watch --json``.

:class:`PeriodicLogger` writes one line per interval through :mod:`logging`: the message
rate and each stage's p50/p99/max over that interval only.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

from hftcore.latency.histogram import Histogram

__all__ = ["Report", "PeriodicLogger", "format_ns", "STATS"]

#: The statistics of :meth:`Report.as_dict`, per stage, in this order.
STATS = ("count", "p50", "p90", "p99", "p999", "max")
_PERCENTS = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
_PLOT_HINT = 'Report.plot needs matplotlib: pip install "hftcore[plot]"'


def format_ns(ns: float | int | None) -> str:
    """A nanosecond figure in human units: ``"850 ns"``, ``"12.3 µs"``, ``"4.56 ms"``.

    Three significant digits; ``None`` gives ``"-"``; negative values keep their sign.
    """
    if ns is None:
        return "-"
    sign = "-" if ns < 0 else ""
    v = abs(float(ns))
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if v >= scale:
            x = v / scale
            digits = 0 if x >= 100 else 1 if x >= 10 else 2
            return f"{sign}{x:.{digits}f} {unit}"
    return f"{sign}{v:.0f} ns"


def _stats(h: Histogram) -> dict:
    """The :data:`STATS` of ``h`` (ints; ``None`` but ``count`` when empty)."""
    if not h.count:
        return dict.fromkeys(STATS, None) | {"count": 0}
    out = {"count": h.count}
    for key, p in _PERCENTS.items():
        out[key] = h.percentile(p)
    out["max"] = h.max
    return out


class Report:
    """Per-stage latency figures, ready to print, serialise or plot.

    Parameters
    ----------
    histograms : mapping of str to Histogram
        One histogram per stage, in the order to show them.
    inter_arrival : Histogram, optional
        Gaps between successive messages.
    jitter_ns : float, optional
        RFC 3550 interarrival jitter estimate.
    missing, negative, most_negative : mapping of str to int, optional
        Per stage: messages without one of the stamps, messages whose delta was negative
        and the most negative delta (see :class:`~hftcore.latency.Stages`).
    counters : mapping of str to number, optional
        Anything else to report beside the stages (messages, bytes, reconnects...).
    elapsed_s : float, optional
        Wall time the figures cover (gives a message rate with ``counters["messages"]``).
    title : str, optional
        First line of :meth:`text` and the plot's title.

    Examples
    --------
    >>> from hftcore.latency import Stages
    >>> s = Stages(["recv", "decoded"])
    >>> s.record([1_000, 1_800])
    >>> Report.from_stages(s).as_dict()["recv_to_decoded"]["p50"]
    800
    """

    def __init__(
        self,
        histograms: Mapping[str, Histogram],
        *,
        inter_arrival: Histogram | None = None,
        jitter_ns: float | None = None,
        missing: Mapping[str, int] | None = None,
        negative: Mapping[str, int] | None = None,
        most_negative: Mapping[str, int | None] | None = None,
        counters: Mapping[str, float] | None = None,
        elapsed_s: float | None = None,
        title: str | None = None,
    ):
        for name, h in histograms.items():
            if not isinstance(h, Histogram):
                raise TypeError(f"stage {name!r}: expected a Histogram, got {type(h).__name__}")
        self.histograms = dict(histograms)
        self.inter_arrival = inter_arrival
        self.jitter_ns = jitter_ns
        self.missing = dict(missing or {})
        self.negative = dict(negative or {})
        self.most_negative = dict(most_negative or {})
        self.counters = dict(counters or {})
        self.elapsed_s = elapsed_s
        self.title = title

    @classmethod
    def from_stages(cls, stages, *, counters=None, elapsed_s=None, title=None) -> Report:
        """The report of a :class:`~hftcore.latency.Stages` (copies: it may go on
        recording). ``counters`` gets ``messages`` from the stages unless given."""
        counters = {"messages": stages.messages, **(counters or {})}
        return cls(
            {n: h.copy() for n, h in stages.histograms().items()},
            inter_arrival=stages.inter_arrival.copy() if stages.arrival else None,
            jitter_ns=stages.jitter,
            missing=stages.missing,
            negative=stages.negative,
            most_negative=stages.most_negative,
            counters=counters,
            elapsed_s=elapsed_s,
            title=title,
        )

    # -- dict / JSON ------------------------------------------------------------------

    def as_dict(self) -> dict:
        """``{stage: {"count", "p50", "p90", "p99", "p999", "max"}}``, integer ns
        (``None`` for the percentiles of an empty stage)."""
        return {name: _stats(h) for name, h in self.histograms.items()}

    @property
    def messages_per_s(self) -> float | None:
        """``counters["messages"] / elapsed_s`` when both are known."""
        n = self.counters.get("messages")
        if n is None or not self.elapsed_s:
            return None
        return n / self.elapsed_s

    def details(self) -> dict:
        """Everything: ``{"stages": as_dict(), "inter_arrival", "jitter_ns", "missing",
        "negative", "most_negative", "underflow", "overflow", "counters", "elapsed_s",
        "messages_per_s"}``."""
        return {
            "stages": self.as_dict(),
            "inter_arrival": _stats(self.inter_arrival) if self.inter_arrival else None,
            "jitter_ns": self.jitter_ns,
            "missing": self.missing,
            "negative": self.negative,
            "most_negative": self.most_negative,
            "underflow": {n: h.underflow for n, h in self.histograms.items()},
            "overflow": {n: h.overflow for n, h in self.histograms.items()},
            "counters": self.counters,
            "elapsed_s": self.elapsed_s,
            "messages_per_s": self.messages_per_s,
        }

    def to_json(self, path=None, *, full: bool = False, indent: int | None = 2) -> str:
        """JSON of :meth:`as_dict` (``full=True``: of :meth:`details`); written to
        ``path`` too when given. Returns the text."""
        text = json.dumps(self.details() if full else self.as_dict(), indent=indent)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        return text

    # -- text -------------------------------------------------------------------------

    def text(self) -> str:
        """A fixed-width table: count, p50, p90, p99, p99.9 and max per stage (human
        units), then inter-arrival, jitter, skipped stamps and counters."""
        rows = list(self.histograms.items())
        if self.inter_arrival is not None:
            rows.append(("inter_arrival", self.inter_arrival))
        width = max([len("stage")] + [len(n) for n, _ in rows])
        head = f"{'stage':<{width}} {'count':>12} " + " ".join(
            f"{c:>9}" for c in ("p50", "p90", "p99", "p99.9", "max")
        )
        lines = [self.title] if self.title else []
        lines += [head, "-" * len(head)]
        for name, h in rows:
            s = _stats(h)
            cells = " ".join(f"{format_ns(s[k]):>9}" for k in ("p50", "p90", "p99", "p999", "max"))
            lines.append(f"{name:<{width}} {s['count']:>12,} {cells}")
        notes = []
        if self.jitter_ns is not None:
            notes.append(f"jitter (RFC 3550): {format_ns(self.jitter_ns)}")
        for name, n in self.negative.items():
            if n:
                most = format_ns(self.most_negative.get(name))
                notes.append(
                    f"{name}: {n:,} negative deltas (most negative {most}), not in the histogram"
                )
        for name, n in self.missing.items():
            if n:
                notes.append(f"{name}: {n:,} messages without both stamps")
        for name, h in self.histograms.items():
            if h.underflow or h.overflow:
                notes.append(f"{name}: {h.underflow:,} below 0, {h.overflow:,} above 1 h (clamped)")
        if self.counters:
            notes.append(", ".join(f"{k} {_fmt_counter(v)}" for k, v in self.counters.items()))
        rate = self.messages_per_s
        if rate is not None:
            notes.append(f"{rate:,.0f} messages/s over {self.elapsed_s:.3g} s")
        return "\n".join(lines + notes)

    __str__ = text

    def __repr__(self):
        return f"Report(stages={list(self.histograms)}, title={self.title!r})"

    # -- plot -------------------------------------------------------------------------

    def plot(self, path, *, title: str | None = None, dpi: int = 110):
        """Draw the histograms to a PNG at ``path``; returns ``path``.

        Left: each stage's distribution (share of messages per logarithmic bin of
        latency). Right: latency against percentile on a "nines" axis (50, 90, 99,
        99.9, ...), the tail made visible. Needs matplotlib (``pip install
        "hftcore[plot]"``); uses the Agg backend, no display.

        Raises
        ------
        ImportError
            matplotlib is not installed (the message names the extra).
        """
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as e:
            raise ImportError(_PLOT_HINT) from e
        import numpy as np

        del plt  # Figure + Agg canvas: no pyplot state, safe from any thread
        series = [(n, h) for n, h in self.histograms.items() if h.count]
        if self.inter_arrival is not None and self.inter_arrival.count:
            series.append(("inter_arrival", self.inter_arrival))
        fig = Figure(figsize=(12, 5), dpi=dpi)
        FigureCanvasAgg(fig)
        ax_d, ax_p = fig.subplots(1, 2)
        if not series:
            ax_d.text(0.5, 0.5, "no samples", ha="center", va="center")
        else:
            lo = max(1, min(h.min for _, h in series if h.min is not None and h.min > 0) or 1)
            hi = max(max(h.max for _, h in series), lo * 10)
            edges = np.geomspace(lo * 0.9, hi * 1.1, 80)
            nines = np.array([0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999])
            for name, h in series:
                lowest, width, counts = h.buckets()
                mid = np.maximum(lowest + (width - 1) // 2, 1)
                share, _ = np.histogram(mid, bins=edges, weights=counts / h.count)
                ax_d.stairs(share, edges, label=f"{name} (n={h.count:,})")
                qs = nines[nines * h.count <= h.count - 1] if h.count > 1 else nines[:1]
                ps = [max(h.percentile(100 * q), 1) for q in qs] + [max(h.max, 1)]
                xs = list(-np.log10(1 - qs)) + [max(-math.log10(1 / h.count), 0.1)]
                ax_p.plot(xs, ps, marker="o", ms=3, label=name)
            ax_d.set_xscale("log")
            ax_d.set_xlabel("latency (ns)")
            ax_d.set_ylabel("share of messages")
            ax_d.legend(fontsize=8)
            ax_p.set_yscale("log")
            ticks = [0, math.log10(2), 1, 2, 3, 4]
            ax_p.set_xticks(ticks, ["p0", "p50", "p90", "p99", "p99.9", "p99.99"])
            ax_p.set_xlabel("percentile (last point: max)")
            ax_p.set_ylabel("latency (ns, values below 1 drawn at 1)")
            ax_p.grid(True, which="both", alpha=0.3)
            ax_p.legend(fontsize=8)
        fig.suptitle(title or self.title or "latency by stage")
        fig.tight_layout()
        fig.savefig(path, format="png")
        return path


def _fmt_counter(v) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


class PeriodicLogger:
    """One log line per interval: message rate and per-stage p50/p99/max over the interval.

    The owner of the :class:`~hftcore.latency.Stages` (the thread that records into it)
    calls :meth:`tick` from its loop, e.g. after each receive call; ``tick`` reads a
    clock and, once per ``interval``, takes the interval's histograms
    (:meth:`Stages.take_interval`, which swaps them for empty ones) and logs::

        latency: 10,012 msg/s (10,012 in 1.00 s); recv_to_decoded p50 1.21 µs p99 3.40 µs
        max 9.10 µs; ...; jitter 2.10 µs

    Alternatively :meth:`start` runs ``tick`` on a background thread until :meth:`stop`
    (also a context manager). Use that only when the recording holds the GIL (Python
    ``Stages.record``): a nogil recorder on another thread must call :meth:`tick`
    itself, because taking the interval races with recording.

    Parameters
    ----------
    stages : Stages
        What to report.
    interval : float, optional
        Seconds between lines (default 1.0, > 0).
    logger : logging.Logger, optional
        Default ``logging.getLogger("hftcore.latency")``.
    level : int, optional
        Logging level (default INFO).
    counters : callable, optional
        Called at each line; returns a mapping of extra counters to append.
    name : str, optional
        Prefix of each line (default ``"latency"``).
    clock : callable, optional
        Seconds, monotonic (default :func:`time.monotonic`); for tests.
    """

    def __init__(
        self,
        stages,
        interval: float = 1.0,
        *,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
        counters: Callable[[], Mapping] | None = None,
        name: str = "latency",
        clock: Callable[[], float] = time.monotonic,
    ):
        if not interval > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval!r}")
        self.stages = stages
        self.interval = float(interval)
        self.logger = logger or logging.getLogger("hftcore.latency")
        self.level = level
        self.counters = counters
        self.name = name
        self.clock = clock
        self.lines = 0
        self._last = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        stages.take_interval()  # the first interval starts now

    def tick(self, now: float | None = None) -> str | None:
        """Log a line when an interval has passed since the last; returns it (or None)."""
        now = self.clock() if now is None else now
        if now - self._last < self.interval:
            return None
        return self.emit(now)

    def emit(self, now: float | None = None) -> str:
        """Log the line of the interval that ends now (whatever its length); returns it."""
        now = self.clock() if now is None else now
        elapsed = max(now - self._last, 1e-9)
        self._last = now
        snap = self.stages.take_interval()
        n = snap["messages"]
        parts = [f"{self.name}: {n / elapsed:,.0f} msg/s ({n:,} in {elapsed:.2f} s)"]
        for stage, h in snap["stages"].items():
            if h.count:
                parts.append(
                    f"{stage} p50 {format_ns(h.percentile(50))} p99 "
                    f"{format_ns(h.percentile(99))} max {format_ns(h.max)}"
                )
            else:
                parts.append(f"{stage} -")
        jitter = self.stages.jitter
        if jitter is not None:
            parts.append(f"jitter {format_ns(jitter)}")
        negative = sum(self.stages.negative.values())
        if negative:
            parts.append(f"{negative:,} negative deltas")
        if self.counters is not None:
            extra = self.counters()
            if extra:
                parts.append(", ".join(f"{k} {_fmt_counter(v)}" for k, v in extra.items()))
        line = "; ".join(parts)
        self.logger.log(self.level, line)
        self.lines += 1
        return line

    # -- background thread ------------------------------------------------------------

    def start(self) -> PeriodicLogger:
        """Call :meth:`tick` every ``interval`` on a daemon thread until :meth:`stop`
        (see the class notes on when that is safe)."""
        if self._thread is not None:
            raise RuntimeError("PeriodicLogger already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hftcore-latency-log", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        try:
            while not self._stop.wait(self.interval / 4):
                self.tick()
        except BaseException as e:  # reported by stop()
            self._error = e

    def stop(self, timeout: float = 5.0, *, final: bool = False) -> None:
        """Stop the background thread (returns within ``timeout`` + one tick).

        ``final=True`` logs the last, partial interval. An exception raised in the
        thread is raised here.
        """
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)
            if thread.is_alive():
                raise TimeoutError(f"latency logger thread did not stop within {timeout} s")
        if final:
            self.emit()
        err, self._error = self._error, None
        if err is not None:
            raise err

    def __enter__(self) -> PeriodicLogger:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
