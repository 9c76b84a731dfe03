"""Histogram: percentiles against numpy's exact ones, exact statistics, merge,
serialisation, range limits."""

from __future__ import annotations

import math
import pickle
import struct
import zlib

import numpy as np
import pytest

from hftcore.errors import DecodeError
from hftcore.latency import Histogram
from hftcore.latency import histogram as hmod

PS = [0, 0.1, 1, 5, 10, 25, 33.3, 50, 66.7, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100]


def samples(kind: str, n: int = 200_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":  # skewed: median ~8 µs, a tail into milliseconds
        x = rng.lognormal(mean=9.0, sigma=1.2, size=n)
    elif kind == "bimodal":  # fast path ~2 µs, slow path ~150 µs, 10 % of the time
        fast = rng.normal(2_000, 150, size=n)
        slow = rng.normal(150_000, 20_000, size=n)
        x = np.where(rng.random(n) < 0.9, fast, slow)
    elif kind == "uniform":  # spans the exact region and many octaves
        x = rng.uniform(0, 5_000_000, size=n)
    elif kind == "small":  # the exact region below 128 ns and just above
        x = rng.integers(0, 400, size=n)
    else:
        raise ValueError(kind)
    return np.maximum(x, 0).astype(np.int64)


@pytest.mark.parametrize("kind", ["lognormal", "bimodal", "uniform", "small"])
def test_percentiles_against_numpy(kind):
    x = samples(kind)
    h = Histogram()
    h.record_many(x)
    for p in PS:
        exact = float(np.percentile(x, p, method="inverted_cdf"))
        got = h.percentile(p)
        assert isinstance(got, int)
        assert abs(got - exact) <= exact * hmod.RELATIVE_ERROR + 1e-9, (kind, p, got, exact)
        if exact < 128:
            assert got == exact
    assert h.percentiles([50, 99]) == [h.percentile(50), h.percentile(99)]


def test_bucket_middle_within_stated_error_over_the_range():
    # The reported middle of a value's bucket, unclamped, is within RELATIVE_ERROR of it.
    for v in np.unique(np.geomspace(1, hmod.MAX_VALUE, 5000).astype(np.int64)):
        for w in (int(v) - 1, int(v), int(v) + 1):
            if 1 <= w <= hmod.MAX_VALUE:
                lo, width = hmod.bucket_bounds(hmod.bucket_index(w))
                middle = lo + (width - 1) // 2
                assert abs(middle - w) <= w * hmod.RELATIVE_ERROR, w


def test_relative_error_within_one_percent_over_the_range():
    # Values around bucket edges from 1 ns to one hour, each alone in a histogram.
    values = np.unique(np.geomspace(1, hmod.MAX_VALUE, 3000).astype(np.int64))
    for v in values[::7]:
        for w in (v, v + 1, v - 1):
            if 1 <= w <= hmod.MAX_VALUE:
                h = Histogram()
                h.record(w)
                h.record(w)
                h.record(w)
                # three equal values: p50 is rank 2, reported as its bucket's middle
                # clamped to [min, max] (= w), so this checks the bucket holds w
                assert abs(h.percentile(50) - w) <= w * hmod.RELATIVE_ERROR
    assert hmod.RELATIVE_ERROR <= 0.01


def test_bucket_layout_is_monotonic_and_contiguous():
    prev_end = 0
    for i in range(hmod.BUCKETS):
        lo, width = hmod.bucket_bounds(i)
        assert lo == prev_end
        assert width == 1 or width <= lo / 128
        prev_end = lo + width
    assert hmod.bucket_index(hmod.MAX_VALUE) == hmod.BUCKETS - 1
    for v in [0, 1, 127, 128, 129, 255, 256, 1000, 123_456_789, hmod.MAX_VALUE]:
        lo, width = hmod.bucket_bounds(hmod.bucket_index(v))
        assert lo <= v < lo + width


@pytest.mark.parametrize("kind", ["lognormal", "bimodal", "uniform"])
def test_exact_statistics(kind):
    x = samples(kind, n=50_001, seed=3)
    h = Histogram()
    h.record_many(x)
    assert h.count == len(h) == len(x)
    assert h.min == int(x.min()) and h.max == int(x.max())
    total = sum(int(v) for v in x)
    assert h.total == total
    assert h.mean == total / len(x)
    # population stddev from exact integers (numpy's float sum would round)
    n = len(x)
    sq = sum(int(v) * int(v) for v in x)
    assert h.stddev == math.sqrt((n * sq - total * total) / (n * n))
    assert h.stddev == pytest.approx(float(np.std(x)), rel=1e-9)
    s = h.summary()
    assert s["count"] == n and s["min"] == h.min and s["max"] == h.max
    assert s["p50"] == h.percentile(50) and s["p999"] == h.percentile(99.9)
    assert s["mean"] == h.mean


def test_python_record_equals_record_many_and_strided():
    x = samples("lognormal", n=2000, seed=5)
    a, b, c = Histogram(), Histogram(), Histogram()
    for v in x:
        a.record(int(v))
    b.record_many(x)
    both = np.stack([x, x], 1)
    c.record_many(both[:, 1])  # non-contiguous view
    assert a == b == c


def test_empty():
    h = Histogram()
    assert h.count == 0 and h.min is None and h.max is None
    assert h.mean is None and h.stddev is None
    with pytest.raises(ValueError, match="empty"):
        h.percentile(50)
    assert h.summary()["p50"] is None
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        Histogram().percentile(101)


def test_merge_equals_recording_both():
    x, y = samples("lognormal", 30_000, 1), samples("bimodal", 20_000, 2)
    a, b, both = Histogram(), Histogram(), Histogram()
    a.record_many(x)
    b.record_many(y)
    both.record_many(np.concatenate([x, y]))
    b.record(-5)
    both.record(-5)
    a.merge(b)
    assert a == both
    assert a.summary() == both.summary()


def test_reset_and_copy():
    h = Histogram()
    h.record_many(samples("uniform", 1000))
    c = h.copy()
    h.reset()
    assert h.count == 0 and h == Histogram()
    assert c.count == 1000
    c.record(5)
    assert c.count == 1001 and h.count == 0


def test_under_and_overflow():
    h = Histogram()
    for v in (-10, -1, 0, 5, hmod.MAX_VALUE, hmod.MAX_VALUE + 1, 2**62):
        h.record(v)
    assert h.underflow == 2 and h.overflow == 2
    assert h.min == -10 and h.max == 2**62
    # counted at the bounds in the sums
    assert h.total == 0 + 0 + 0 + 5 + 3 * hmod.MAX_VALUE
    s = h.summary()
    assert s["underflow"] == 2 and s["overflow"] == 2
    assert h.percentile(0) == -10 and h.percentile(100) == 2**62
    assert h.percentile(30) == 0  # clamped into the first bucket


def test_serialisation_round_trip():
    empty = Histogram()
    full = Histogram()
    full.record_many(samples("bimodal", 10_000))
    full.record(-3)
    full.record(2**50)
    for h in (empty, full):
        data = h.to_bytes()
        back = Histogram.from_bytes(data)
        assert back == h and back.summary() == h.summary()
        assert Histogram.from_bytes(memoryview(bytearray(data))) == h
        assert pickle.loads(pickle.dumps(h)) == h
    assert len(empty.to_bytes()) == hmod.HEADER_SIZE + 4
    assert len(full.to_bytes()) < 4 * 500 + hmod.HEADER_SIZE  # sparse


def _fix_crc(b: bytes) -> bytes:
    return b[:-4] + struct.pack("<I", zlib.crc32(b[:-4]))


def test_from_bytes_rejects_corrupt_input():
    h = Histogram()
    h.record_many(np.array([1, 500, 500, 70_000], np.int64))
    good = h.to_bytes()
    cases = {
        "truncated": good[:10],
        "magic": b"XXXX" + good[4:],
        "version": _fix_crc(good[:4] + b"\x02" + good[5:]),
        "layout": _fix_crc(good[:5] + b"\x06" + good[6:]),
        "checksum": good[:-1] + bytes([good[-1] ^ 1]),
        "count": _fix_crc(good[:16] + struct.pack("<q", 5) + good[24:]),
        "min": _fix_crc(good[:40] + struct.pack("<q", 2) + good[48:]),
        "sums": _fix_crc(good[:56] + struct.pack("<Q", 1) + good[64:]),
        "trailing": _fix_crc(good[:-4] + b"\x00\x00" + good[-4:]),
        "cut bucket list": _fix_crc(good[: hmod.HEADER_SIZE + 1] + good[-4:]),
        "nonempty": _fix_crc(good[:12] + struct.pack("<I", 9999) + good[16:]),
        "bad varint": _fix_crc(good[: hmod.HEADER_SIZE] + b"\xff" * 11 + good[-4:]),
    }
    for name, data in cases.items():
        with pytest.raises(DecodeError) as e:
            Histogram.from_bytes(data, source="test.hist")
        assert e.value.offset >= 0, name
        assert "test.hist" in str(e.value), name
    with pytest.raises(TypeError):
        Histogram.from_bytes(12)


def test_from_bytes_random_mutations_never_crash():
    rng = np.random.default_rng(11)
    h = Histogram()
    h.record_many(samples("lognormal", 5000))
    good = h.to_bytes()
    accepted = 0
    for _ in range(3000):
        b = bytearray(good)
        for _ in range(rng.integers(1, 4)):
            b[rng.integers(len(b))] = rng.integers(256)
        if rng.random() < 0.3:
            b = b[: rng.integers(len(b))]
        data = _fix_crc(bytes(b)) if rng.random() < 0.7 and len(b) >= 4 else bytes(b)
        try:
            back = Histogram.from_bytes(data)
        except DecodeError:
            continue
        accepted += 1
        assert Histogram.from_bytes(back.to_bytes()) == back
    assert accepted < 3000
