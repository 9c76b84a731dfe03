"""Timing and memory helpers shared by the peer comparison."""

from __future__ import annotations

import gc
import statistics
import time


def measure(fn, runs: int = 5, warmup: int = 1, budget_s: float = 40.0, first_s=None):
    """Time ``fn()`` ``runs`` times after ``warmup`` calls, GC off.

    Returns (median s, min s, runs done). When one call takes so long that ``runs`` calls
    would exceed ``budget_s``, fewer runs are done (at least 2) and the caller says so.
    ``first_s``: the duration of a call already made (counts as the warm-up).
    """
    for _ in range(warmup):
        t0 = time.perf_counter_ns()
        fn()
        first_s = (time.perf_counter_ns() - t0) / 1e9
    if first_s and first_s * runs > budget_s:
        runs = max(2, int(budget_s / first_s))
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            fn()
            times.append(time.perf_counter_ns() - t0)
    finally:
        if enabled:
            gc.enable()
    return statistics.median(times) / 1e9, min(times) / 1e9, runs


def proc_status_kb(field: str) -> int:
    """A ``kB`` field of /proc/self/status (``VmHWM`` peak RSS, ``VmRSS``); 0 if absent."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def frame_offsets(buf: bytes, limit: int | None = None) -> tuple[int, dict[str, int]]:
    """Walk BinaryFILE framing: (byte offset after ``limit`` messages, count per type)."""
    pos, n, end = 0, 0, len(buf)
    counts: dict[str, int] = {}
    mv = memoryview(buf)
    while pos + 2 <= end and (limit is None or n < limit):
        length = (mv[pos] << 8) | mv[pos + 1]
        t = chr(mv[pos + 2])
        counts[t] = counts.get(t, 0) + 1
        pos += 2 + length
        n += 1
    return pos, counts
