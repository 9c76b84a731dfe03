"""A small dependency-free progress bar for long work (decoding day files, generating data).

Writes to stderr only when it is a terminal (or when forced), at most ~10 times a second.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["Progress"]


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Progress over a known total (bytes or items).

    Parameters
    ----------
    total : int
        Work to do, in ``unit``.
    desc : str
        Shown before the bar.
    unit : {"bytes", "items"}
        How to print amounts.
    enabled : bool, optional
        Force on or off; default: on when stderr is a terminal and ``HFTCORE_NO_PROGRESS``
        is unset.
    stream : file, optional
        Where to write (default ``sys.stderr``).
    """

    def __init__(self, total, desc="", unit="bytes", enabled=None, stream=None):
        self.total = max(int(total), 0)
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = self.stream.isatty() and not os.environ.get("HFTCORE_NO_PROGRESS")
        self.enabled = enabled
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def _amount(self, n):
        return _fmt_bytes(n) if self.unit == "bytes" else f"{int(n):,}"

    def update(self, done):
        """Set the amount done so far (absolute, not an increment)."""
        self.done = done
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        elapsed = max(now - self.start, 1e-9)
        frac = done / self.total if self.total else 1.0
        width = 30
        fill = int(width * min(frac, 1.0))
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else 0.0
        rate_s = f"{_fmt_bytes(rate)}/s" if self.unit == "bytes" else f"{rate:,.0f}/s"
        self.stream.write(
            f"\r{self.desc} [{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}% "
            f"{self._amount(done)}/{self._amount(self.total)} {rate_s} ETA {eta:5.1f}s "
        )
        self.stream.flush()

    def close(self):
        """Finish the line."""
        if self.enabled:
            self.update(self.total if self.done < self.total else self.done)
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
