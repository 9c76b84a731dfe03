"""Fuzz targets of hftcore.latency: ``Histogram.from_bytes``. Each is ``fn(data: bytes)``;
see :mod:`_oracle` for the rule.

The serialisation ends in a CRC-32, which a mutated input almost never matches: the
``_crc`` target rewrites the last 4 bytes with the right CRC first, so mutations reach
the header, varint and consistency checks behind it.
"""

from __future__ import annotations

import struct
import zlib

from hftcore.latency import Histogram

try:
    from . import _oracle as o
except ImportError:  # run as a script from fuzz/
    import _oracle as o


def _check(h: Histogram, data: bytes) -> None:
    """What an accepted input must satisfy."""
    if type(h) is not Histogram:
        raise o.Finding(f"from_bytes returned {type(h).__name__}")
    again = h.to_bytes()
    if again != bytes(data):
        raise o.Finding("from_bytes accepted bytes that do not serialise back the same")
    s = h.summary()
    for k in ("count", "underflow", "overflow"):
        if type(s[k]) is not int or s[k] < 0:
            raise o.Finding(f"summary()[{k!r}] = {s[k]!r}")
    if s["count"]:
        lo, hi = s["min"], s["max"]
        for k in ("p50", "p90", "p99", "p999"):
            if type(s[k]) is not int or not lo <= s[k] <= hi:
                raise o.Finding(f"summary()[{k!r}] = {s[k]!r} outside [{lo}, {hi}]")
        if s["underflow"] + s["overflow"] > s["count"]:
            raise o.Finding("more under/overflow than values")
        if not lo - 1 <= s["mean"] <= hi + 1 and s["underflow"] == s["overflow"] == 0:
            raise o.Finding(f"mean {s['mean']} outside [{lo}, {hi}]")
    elif any(s[k] is not None for k in ("min", "p50", "max", "mean")):
        raise o.Finding("an empty histogram with statistics")


@o.target()
def latency_histogram_from_bytes(data: bytes) -> None:
    """``Histogram.from_bytes`` on the raw input."""
    _check(Histogram.from_bytes(data, source="fuzz"), data)


@o.target()
def latency_histogram_from_bytes_crc(data: bytes) -> None:
    """``Histogram.from_bytes`` after fixing the trailing CRC-32 (inputs >= 4 bytes)."""
    if len(data) >= 4:
        data = data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))
    _check(Histogram.from_bytes(data, source="fuzz"), data)


TARGETS = {
    "latency_histogram_from_bytes": latency_histogram_from_bytes,
    "latency_histogram_from_bytes_crc": latency_histogram_from_bytes_crc,
}


def seeds(small: bool = False) -> list[bytes]:
    """Serialised histograms: empty, one value, skewed samples, out-of-range values."""
    import numpy as np

    rng = np.random.default_rng(7)
    out = [Histogram().to_bytes()]
    h = Histogram()
    h.record(1234)
    out.append(h.to_bytes())
    for n in (10, 1000) if small else (10, 1000, 100_000):
        h = Histogram()
        h.record_many(np.maximum(rng.lognormal(9, 1.5, n), 0).astype(np.int64))
        out.append(h.to_bytes())
    h = Histogram()
    for v in (-5, 0, 1, 127, 128, 3_600_000_000_000, 3_600_000_000_001, 2**62):
        h.record(v)
    out.append(h.to_bytes())
    return out
