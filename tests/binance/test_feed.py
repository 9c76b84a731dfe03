"""binance.Feed over real loopback sockets against the local exchange (no mocks).

Every book is compared with the exchange's own book at the same update id
(``BinanceExchange.book_at``), after the feed is stopped.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hftcore import binance
from hftcore.binance.feed import Feed, replay
from hftcore.sim.binance_exchange import BinanceExchange

SYMS = ["BTCUSDT", "ETHUSDT"]


@pytest.fixture
def exchange(request):
    # request.param: BinanceExchange keyword arguments (market, rate, ping_interval...)
    kw = getattr(request, "param", {})
    ex = BinanceExchange(SYMS, market=kw.pop("market", "spot"), rate=kw.pop("rate", 2000),
                         seed=7, **kw)  # fmt: skip
    ex.start()
    try:
        yield ex
    finally:
        ex.stop()


def _feed(ex, **kw):
    kw.setdefault("streams", ("depth", "trade", "bookTicker"))
    return Feed(SYMS, market=ex.market, url=ex.ws_url, rest_url=ex.rest_url,
                snapshot_limit=kw.pop("snapshot_limit", 1000 if ex.market == "usdm" else 5000),
                **kw)  # fmt: skip


def _until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def _assert_books_match(feed, ex):
    for sym in SYMS:
        st = feed.consumer.symbol_stats(sym)
        assert st["state"] == "live", (sym, st)
        lid, bids, asks = ex.book_at(sym, st["last_update_id"])
        assert lid == st["last_update_id"]
        got_b, got_a = feed.books[sym].depth()
        np.testing.assert_array_equal(got_b, np.array(bids, dtype=np.int64).reshape(-1, 2))
        np.testing.assert_array_equal(got_a, np.array(asks, dtype=np.int64).reshape(-1, 2))


def _run(feed, seconds):
    time.sleep(seconds)


def test_books_in_sync_trades_and_tops_flow(exchange):
    feed = _feed(exchange)
    with feed:
        assert feed.wait_synced(20)
        _run(feed, 0.5)
        trades = feed.trades.take()
        tops = feed.tops.take()
    _assert_books_match(feed, exchange)
    st = feed.stats()
    assert st["connections"]["opened"] == 1 and st["connections"]["reconnects"] == 0
    for sym in SYMS:
        assert st["symbols"][sym]["gaps"] == 0 and st["symbols"][sym]["resyncs"] == 1
    assert len(trades) > 0 and (np.diff(trades["recv_time"]) >= 0).all()
    assert set(np.unique(trades["symbol"])) <= {s.encode() for s in SYMS}
    assert len(tops) > 0
    lat = st["latency_ns"]
    for stage in ("event_to_recv", "recv_to_applied", "event_to_applied", "kernel_to_recv"):
        assert lat[stage]["count"] > 0, stage
        assert 0 <= lat[stage]["p50"] <= lat[stage]["max"]
    assert feed.thread.stats()["cpu"] is not None
    for sym in SYMS:
        lv = st["symbols"][sym]["levels"]
        assert lv["bids"] == len(feed.books[sym].depth()[0]) > 0
    assert st["connections"]["pings_answered"] >= 0


def test_a_dropped_diff_is_a_counted_gap_then_resynced(exchange):
    feed = _feed(exchange)
    with feed:
        assert feed.wait_synced(20)
        exchange.drop_next_diff("BTCUSDT")
        assert _until(lambda: feed.consumer.symbol_stats("BTCUSDT")["gaps"] == 1)
        assert feed.wait_synced(20)
        _run(feed, 0.2)
    _assert_books_match(feed, exchange)
    st = feed.consumer.symbol_stats("BTCUSDT")
    assert st["resyncs"] == 2 and st["last_gap"] is not None
    assert feed.consumer.symbol_stats("ETHUSDT")["gaps"] == 0


def test_a_disconnect_reconnects_and_books_stay_exact(exchange):
    feed = _feed(exchange, reconnect_delay=(0.05, 0.5))
    with feed:
        assert feed.wait_synced(20)
        exchange.disconnect()
        assert _until(lambda: feed.counters["reconnects"] >= 1)
        assert _until(lambda: feed.wait_synced(0.1), 20)
        _run(feed, 0.3)
    _assert_books_match(feed, exchange)
    assert feed.counters["drops"] >= 1


def test_server_shutdown_rotates_make_before_break_without_a_gap(exchange):
    feed = _feed(exchange)
    with feed:
        assert feed.wait_synced(20)
        exchange.server_shutdown(grace=1.0)
        assert _until(lambda: feed.counters["rotations"] >= 1)
        assert _until(lambda: len(feed.connections()) == 1)
        _run(feed, 1.2)  # past the grace period: the old connection is gone
    _assert_books_match(feed, exchange)
    for sym in SYMS:
        st = feed.consumer.symbol_stats(sym)
        assert st["gaps"] == 0 and st["resyncs"] == 1, st
    assert feed.counters["shutdowns"] >= 1 and feed.counters["drops"] == 0


def test_forced_rotation_every_second_loses_nothing(exchange):
    feed = _feed(exchange, max_connection_age=0.7)
    with feed:
        assert feed.wait_synced(20)
        assert _until(lambda: feed.counters["rotations"] >= 3, 15)
    _assert_books_match(feed, exchange)
    for sym in SYMS:
        st = feed.consumer.symbol_stats(sym)
        assert st["gaps"] == 0 and st["resyncs"] == 1, st
        assert st["stale"] > 0  # the overlaps delivered diffs twice; applied once
    trades = feed.trades.take()
    for sym in SYMS:
        ids = trades["trade_id"][trades["symbol"] == sym.encode()]
        assert (np.diff(ids) > 0).all()  # no trade twice across the overlaps


@pytest.mark.parametrize("exchange", [{"snapshot_delay": 0.5}], indirect=True)
def test_slow_and_stale_snapshots(exchange):
    exchange.stale_snapshot(count=1)
    feed = _feed(exchange)
    with feed:
        assert feed.wait_synced(30)
        _run(feed, 0.2)
    _assert_books_match(feed, exchange)
    stale = sum(feed.consumer.symbol_stats(s)["stale_snapshots"] for s in SYMS)
    assert stale == 1
    assert all(feed.consumer.symbol_stats(s)["held"] == 0 for s in SYMS)


def test_429_is_honoured_with_retry_after(exchange):
    exchange.rest_429(1, retry_after=0.3)
    feed = _feed(exchange)
    with feed:
        assert feed.wait_synced(20)
    assert feed.counters["rest_429"] == 1
    assert feed.weight_used > 0
    _assert_books_match(feed, exchange)


@pytest.mark.parametrize("exchange", [{"market": "usdm"}], indirect=True)
def test_usdm_routed_connections_and_pu_chains(exchange):
    feed = _feed(exchange, streams=("depth", "aggTrade", "bookTicker"))
    with feed:
        assert feed.wait_synced(20)
        exchange.drop_next_diff("ETHUSDT")
        assert _until(lambda: feed.consumer.symbol_stats("ETHUSDT")["gaps"] == 1)
        assert feed.wait_synced(20)
        _run(feed, 0.3)
        assert len(feed.connections()) == 2  # /public and /market
        agg = feed.agg_trades.take()
    _assert_books_match(feed, exchange)
    assert len(agg) > 0


def test_capture_replays_to_the_same_books(exchange, tmp_path):
    path = tmp_path / "feed.cap"
    feed = _feed(exchange, record=path, max_connection_age=0.8)
    with feed:
        assert feed.wait_synced(20)
        exchange.drop_next_diff("BTCUSDT")
        assert _until(lambda: feed.counters["rotations"] >= 1)
        assert feed.wait_synced(20)
        _run(feed, 0.3)
    again = replay(path)
    for sym in SYMS:
        np.testing.assert_array_equal(again.books[sym].depth()[0], feed.books[sym].depth()[0])
        np.testing.assert_array_equal(again.books[sym].depth()[1], feed.books[sym].depth()[1])
        a, b = again.consumer.symbol_stats(sym), feed.consumer.symbol_stats(sym)
        for key in ("last_update_id", "applied", "gaps", "snapshots"):
            assert a[key] == b[key], (sym, key)
    ndjson = tmp_path / "feed.ndjson"
    from hftcore.feed.capture import capture_to_ndjson

    capture_to_ndjson(str(path), str(ndjson))
    tables = binance.read_file(str(ndjson), time_unit="us")
    assert tables.n_messages > 0


def test_a_reader_thread_never_sees_a_crossed_or_torn_book(exchange):
    feed = _feed(exchange, streams=("depth",))
    bad = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            for sym in SYMS:
                bids, asks = feed.books[sym].depth(50)
                if len(bids) and len(asks) and bids[0, 0] >= asks[0, 0]:
                    bad.append((sym, bids[0], asks[0]))

    with feed:
        assert feed.wait_synced(20)
        t = threading.Thread(target=reader)
        t.start()
        try:
            _run(feed, 1.0)
        finally:
            done.set()
            t.join(5)
    assert not bad, bad[:3]


def test_stop_is_prompt_with_a_silent_exchange(exchange):
    feed = _feed(exchange)
    feed.start()
    try:
        assert feed.wait_synced(20)
        for conn in exchange.connections():
            exchange.silence(conn.id, 30)
    finally:
        t0 = time.monotonic()
        feed.stop(timeout=5)
        assert time.monotonic() - t0 < 5
    assert not feed.thread.is_alive


def test_sbe_streams_keep_the_books_and_need_a_key(exchange):
    from hftcore.binance.feed import FeedError

    with pytest.raises(FeedError, match="API key"):
        Feed(SYMS, encoding="sbe", url=exchange.sbe_url, rest_url=exchange.rest_url)
    feed = Feed(SYMS, encoding="sbe", api_key="test-key", url=exchange.sbe_url,
                rest_url=exchange.rest_url, streams=("depth", "trade", "bookTicker"))  # fmt: skip
    with feed:
        assert feed.wait_synced(20)
        exchange.drop_next_diff("ETHUSDT")
        assert _until(lambda: feed.consumer.symbol_stats("ETHUSDT")["gaps"] == 1)
        assert feed.wait_synced(20)
        _run(feed, 0.3)
        trades = feed.trades.take()
    _assert_books_match(feed, exchange)
    assert len(trades) > 0 and feed.consumer.decode_errors == 0
    assert feed.latency_report().as_dict()["event_to_applied"]["count"] > 0


@pytest.mark.parametrize("exchange", [{"ping_interval": 0.3, "pong_timeout": 1.0}], indirect=True)
def test_server_pings_are_answered_within_the_deadline(exchange):
    feed = _feed(exchange, streams=("depth",))
    with feed:
        assert feed.wait_synced(20)
        _run(feed, 2.0)  # the exchange closes a connection without a pong in 1 s
        answered = feed.stats()["connections"]["pings_answered"]
    assert answered >= 3
    assert feed.counters["drops"] == 0 and feed.counters["reconnects"] == 0
    _assert_books_match(feed, exchange)
