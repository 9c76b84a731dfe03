"""Stages (missing stamps, negative deltas, intervals), inter-arrival, RFC 3550 jitter."""

from __future__ import annotations

import numpy as np
import pytest

from hftcore.latency import Histogram, Jitter, Stages


def rfc3550(sent, recv):
    """The estimate written out straight from RFC 3550 section 6.4.1."""
    j = 0.0
    for i in range(1, len(sent)):
        d = (recv[i] - recv[i - 1]) - (sent[i] - sent[i - 1])
        j = j + (abs(d) - j) / 16
    return j


def test_jitter_matches_the_rfc_formula():
    rng = np.random.default_rng(4)
    n = 5000
    sent = np.cumsum(rng.integers(50_000, 150_000, n)).astype(np.int64) + 10**18
    recv = sent + 3_000_000 + rng.lognormal(9, 1, n).astype(np.int64)  # offset + delay
    j = Jitter()
    for s, r in zip(sent[:100], recv[:100], strict=True):
        j.update(int(s), int(r))
    assert j.value == pytest.approx(
        rfc3550([int(v) for v in sent[:100]], [int(v) for v in recv[:100]]), rel=1e-12
    )
    j2 = Jitter()
    j2.update_many(sent, recv)
    assert j2.transits == n
    assert j2.value == pytest.approx(rfc3550(sent.tolist(), recv.tolist()), rel=1e-12)
    j2.reset()
    assert j2.value == 0.0 and j2.transits == 0
    with pytest.raises(ValueError):
        j2.update_many(sent, recv[:-1])


def test_default_pairs_and_names():
    s = Stages(["event", "kernel", "recv", "decoded", "applied"])
    assert s.stage_names == (
        "event_to_kernel",
        "kernel_to_recv",
        "recv_to_decoded",
        "decoded_to_applied",
        "event_to_applied",
    )
    assert s.arrival == "recv" and s.sender == "event"
    assert s.stamp_index("decoded") == 3 and s.stage_index("recv_to_decoded") == 2
    s2 = Stages(["a", "b"], pairs=[("b", "a")])
    assert s2.stage_names == ("b_to_a",) and s2.arrival is None and s2.sender is None
    for bad in (
        dict(stamps=[]),
        dict(stamps=["a", "a"]),
        dict(stamps=["a"], pairs=[("a", "x")]),
        dict(stamps=["a", "b"], arrival="x"),
        dict(stamps=[str(i) for i in range(17)]),
    ):
        with pytest.raises(ValueError):
            Stages(**bad)
    with pytest.raises(KeyError):
        s.stage_index("nope")


def test_record_against_a_direct_computation():
    rng = np.random.default_rng(9)
    n = 20_000
    names = ["event", "kernel", "recv", "decoded", "applied"]
    t0 = np.cumsum(rng.integers(10_000, 200_000, n)) + 1_700_000_000 * 10**9
    st = np.zeros((n, 5), np.int64)
    st[:, 0] = t0
    st[:, 1] = t0 + rng.integers(20_000, 90_000, n)
    st[:, 2] = st[:, 1] + rng.integers(1_000, 30_000, n)
    st[:, 3] = st[:, 2] + rng.integers(100, 3_000, n)
    st[:, 4] = st[:, 3] + rng.integers(50, 900, n)
    st[::7, 1] = 0  # no kernel stamp for every 7th message
    st[5::50, 0] = st[5::50, 2] + 1_000  # sender clock ahead: negative event_to_*
    s = Stages(names)
    s.record_many(st[: n // 2])
    for row in st[n // 2 :]:
        s.record([int(v) for v in row])
    assert s.messages == n
    for (a, b), name in zip(s.pairs, s.stage_names, strict=True):
        i, j = names.index(a), names.index(b)
        have = (st[:, i] != 0) & (st[:, j] != 0)
        d = st[have, j] - st[have, i]
        expect = Histogram()
        expect.record_many(d[d >= 0])
        assert s.histogram(name) == expect, name
        assert s.missing[name] == int((~have).sum()), name
        assert s.negative[name] == int((d < 0).sum()), name
        assert s.most_negative[name] == (int(d.min()) if (d < 0).any() else None), name
    assert s.negative["event_to_applied"] > 0
    arr = Histogram()
    arr.record_many(np.diff(st[:, 2]))
    assert s.inter_arrival == arr
    assert s.jitter == pytest.approx(rfc3550(st[:, 0].tolist(), st[:, 2].tolist()), rel=1e-12)


def test_missing_stamps_dict_and_add():
    s = Stages(["recv", "decoded", "applied"])
    s.record({"recv": 100, "applied": 400})  # no decoded stamp
    s.record({"recv": 100, "decoded": None, "applied": 0})
    assert s.missing == {"recv_to_decoded": 2, "decoded_to_applied": 2, "recv_to_applied": 1}
    assert s.histogram("recv_to_applied").max == 300
    with pytest.raises(KeyError):
        s.record({"nope": 1})
    with pytest.raises(ValueError):
        s.record([1, 2])
    s.add("recv_to_decoded", 10, 5)
    s.add(0, 10, 25)
    assert s.negative["recv_to_decoded"] == 1 and s.most_negative["recv_to_decoded"] == -5
    assert s.histogram(0).count == 1 and s.histogram(0).max == 15
    with pytest.raises(IndexError):
        s.add(9, 1, 2)


def test_take_interval_swaps_and_resets():
    s = Stages(["recv", "decoded"])
    s.record([1000, 1100])
    s.record([2000, 2300])
    iv = s.take_interval()
    assert iv["messages"] == 2
    assert iv["stages"]["recv_to_decoded"].count == 2
    assert iv["inter_arrival"].count == 1 and iv["inter_arrival"].max == 1000
    s.record([3000, 3050])
    iv2 = s.take_interval()
    assert iv2["messages"] == 1 and iv2["stages"]["recv_to_decoded"].max == 50
    assert iv["stages"]["recv_to_decoded"].count == 2  # a copy, untouched
    assert s.histogram("recv_to_decoded").count == 3  # totals go on
    s.reset()
    assert s.messages == 0 and s.histogram(0).count == 0 and s.jitter is None
