"""Ring tables: everything written is taken once, in order, or counted as overrun."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hftcore.feed.ring import Ring

DT = np.dtype([("seq", "<i8"), ("value", "<i8")])


def test_take_returns_records_in_order_then_nothing():
    ring = Ring(DT, capacity=8)
    assert ring.capacity == 8
    for i in range(5):
        ring.push((i, i * 10))
    out = ring.take()
    assert out["seq"].tolist() == [0, 1, 2, 3, 4]
    assert out["value"].tolist() == [0, 10, 20, 30, 40]
    assert len(ring.take()) == 0
    assert ring.overruns == 0 and ring.written == 5


def test_capacity_rounds_up_and_wraps():
    ring = Ring(DT, capacity=5)
    assert ring.capacity == 8
    for i in range(6):
        ring.push((i, 0))
    assert ring.take()["seq"].tolist() == list(range(6))
    for i in range(6, 13):  # wraps around the end of the buffer
        ring.push((i, 0))
    assert ring.take()["seq"].tolist() == list(range(6, 13))


def test_overrun_is_counted_and_the_newest_kept():
    ring = Ring(DT, capacity=4)
    for i in range(11):
        ring.push((i, 0))
    out = ring.take()
    assert out["seq"].tolist() == [7, 8, 9, 10]
    assert ring.overruns == 7


def test_limit_leaves_the_rest():
    ring = Ring(DT, capacity=16)
    for i in range(10):
        ring.push((i, 0))
    assert ring.take(limit=3)["seq"].tolist() == [0, 1, 2]
    assert ring.pending == 7
    assert ring.take()["seq"].tolist() == list(range(3, 10))


def test_concurrent_writer_and_taker_lose_nothing_silently():
    ring = Ring(DT, capacity=64)
    n = 20000
    taken = []
    done = threading.Event()

    def taker():
        while not done.is_set() or ring.pending:
            taken.append(ring.take())

    t = threading.Thread(target=taker)
    t.start()
    try:
        for i in range(n):
            ring.push((i, i))
    finally:
        done.set()
        t.join(10)
    assert not t.is_alive()
    seq = np.concatenate(taken)["seq"]
    assert (np.diff(seq) > 0).all()  # in order, no duplicate
    assert len(seq) + ring.overruns == n
    assert (np.concatenate(taken)["value"] == seq).all()


def test_bad_arguments():
    with pytest.raises(ValueError):
        Ring(DT, capacity=0)
    with pytest.raises(ValueError):
        Ring(np.dtype([]), capacity=4)
