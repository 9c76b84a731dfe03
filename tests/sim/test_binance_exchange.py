"""The local Binance exchange over real loopback sockets, with plain clients.

websocket-client (``create_connection``) for the streams, ``urllib`` for REST; every
exchange is stopped by its fixture and every blocking call has a short timeout.
Expectations come from Binance's documentation (message shapes, update-id rules, weight
table, serverShutdown shape) and from the exchange's own book computed independently of
the client (``ex.book_at``), never from the client's view of itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from websocket import (
    ABNF,
    WebSocketBadStatusException,
    WebSocketConnectionClosedException,
    WebSocketTimeoutException,
    create_connection,
)

from hftcore import binance
from hftcore.binance import BookSync
from hftcore.binance.records import DepthUpdate, ServerShutdown
from hftcore.sim.binance_exchange import BinanceExchange, rest_weight

TIMEOUT = 3.0


@contextlib.contextmanager
def exchange(**kw):
    kw.setdefault("symbols", ("BTCUSDT", "ETHUSDT"))
    kw.setdefault("rate", 1000)
    kw.setdefault("seed", 7)
    kw.setdefault("warmup", 500)
    ex = BinanceExchange(**kw)
    ex.start()
    try:
        yield ex
    finally:
        ex.stop(timeout=5)


@pytest.fixture
def ex():
    with exchange() as e:
        yield e


@contextlib.contextmanager
def connect(url, **kw):
    ws = create_connection(url, timeout=TIMEOUT, skip_utf8_validation=True, **kw)
    try:
        yield ws
    finally:
        with contextlib.suppress(Exception):
            ws.close(timeout=0.5)


def recv_json(ws):
    return json.loads(ws.recv())


def until(ws, pred, limit=5000):
    """Messages until ``pred(message)``; returns that message."""
    for _ in range(limit):
        m = recv_json(ws)
        if pred(m):
            return m
    raise AssertionError(f"no matching message in {limit}")


def diffs(ws, n, combined=True):
    """The next ``n`` depth diffs (payloads) from ``ws``."""
    out = []
    while len(out) < n:
        m = recv_json(ws)
        data = m["data"] if combined else m
        if data.get("e") == "depthUpdate":
            out.append(data)
    return out


def close_code(ws, timeout=TIMEOUT):
    """Read frames without answering pings until the server closes: its close code, or
    None for a connection dropped without a close frame."""
    ws.settimeout(timeout)
    try:
        while True:
            frame = ws.recv_frame()
            if frame is None:
                return None
            if frame.opcode == ABNF.OPCODE_CLOSE:
                return int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else 1005
    except (WebSocketConnectionClosedException, ConnectionError, OSError):
        return None


def get(url, timeout=TIMEOUT):
    """(status, headers, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def snapshot_fn(ex, symbol, limit=1000):
    # 1000 levels: more than the simulated books hold (about 50-100 a side), so the
    # synced book is the whole book and compares equal to the exchange's.
    path = "/api/v3/depth" if ex.market == "spot" else "/fapi/v1/depth"
    url = f"{ex.rest_url}{path}?symbol={symbol}" + (f"&limit={limit}" if limit else "")

    def fetch():
        status, _, body = get(url)
        assert status == 200, body
        return body

    return fetch


def feed(ws, sync, n, combined=True):
    """Feed ``n`` diffs to ``sync`` as they arrive, then more until it is live."""
    for i in range(n + 2000):
        if i >= n and sync.state == "live":
            return
        m = recv_json(ws)
        data = m["data"] if combined else m
        if data.get("e") == "depthUpdate":
            sync.feed(json.dumps(data))
    raise AssertionError(f"not live: {sync!r}")


def pairs(seq):
    """Consecutive pairs of ``seq``."""
    return zip(seq[:-1], seq[1:], strict=True)


def levels(rows):
    return [[int(p), int(q)] for p, q in rows]


def book_equals_exchange(sync: BookSync, ex, symbol):
    lid, bids, asks = ex.book_at(symbol, sync.last_update_id)
    assert lid == sync.last_update_id
    b, a = sync.book.depth()
    assert b.tolist() == levels(bids)
    assert a.tolist() == levels(asks)
    assert bids and asks  # a real book, not two empty ones


def conn_of(ex, ws):
    port = ws.sock.getsockname()[1]
    for c in ex.wait_connections(1):
        if c.remote[1] == port:
            return c
    raise AssertionError("connection not found")


# -- streams ---------------------------------------------------------------------------


def test_combined_and_raw_streams(ex):
    with connect(ex.stream_url(["btcusdt@depth@100ms", "ethusdt@trade"])) as ws:
        seen = set()
        for _ in range(200):
            m = recv_json(ws)
            assert set(m) == {"stream", "data"}
            rec = binance.decode(json.dumps(m["data"]), time_unit="us")
            if m["stream"] == "btcusdt@depth@100ms":
                assert isinstance(rec, DepthUpdate) and rec.symbol == "BTCUSDT"
            else:
                assert m["stream"] == "ethusdt@trade"
                assert m["data"]["e"] == "trade" and m["data"]["s"] == "ETHUSDT"
            seen.add(m["stream"])
            if len(seen) == 2:
                break
        assert seen == {"btcusdt@depth@100ms", "ethusdt@trade"}
    with connect(ex.stream_url(["btcusdt@bookTicker", "btcusdt@aggTrade"], combined=False)) as ws:
        kinds = set()
        for _ in range(200):
            m = recv_json(ws)
            assert "stream" not in m
            kinds.add(m.get("e", "bookTicker"))
            assert m["s"] == "BTCUSDT"
            if kinds == {"aggTrade", "bookTicker"}:
                break
        assert kinds == {"aggTrade", "bookTicker"}


def test_subscribe_unsubscribe_list_and_properties(ex):
    with connect(ex.ws_url + "/ws") as ws:
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 1}))
        assert until(ws, lambda m: "id" in m) == {"result": None, "id": 1}
        assert until(ws, lambda m: True)["e"] == "depthUpdate"  # raw: not wrapped
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": "abc"}))
        assert until(ws, lambda m: "id" in m) == {"result": ["btcusdt@depth@100ms"], "id": "abc"}
        ws.send(json.dumps({"method": "SET_PROPERTY", "params": ["combined", True], "id": 2}))
        assert until(ws, lambda m: "id" in m) == {"result": None, "id": 2}
        m = until(ws, lambda m: "stream" in m)
        assert m["stream"] == "btcusdt@depth@100ms"
        time.sleep(1.0)  # at most 5 messages a second
        ws.send(json.dumps({"method": "GET_PROPERTY", "params": ["combined"], "id": 3}))
        assert until(ws, lambda m: "id" in m) == {"result": True, "id": 3}
        ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@depth@100ms"], "id": 4}))
        assert until(ws, lambda m: "id" in m) == {"result": None, "id": 4}
        ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 5}))
        assert until(ws, lambda m: "id" in m) == {"result": [], "id": 5}
        ws.send(json.dumps({"method": "FOO", "id": 6}))
        err = until(ws, lambda m: "id" in m)
        assert err["code"] == 2 and "unknown variant FOO" in err["msg"] and err["id"] == 6
        assert isinstance(binance.decode(json.dumps(err)), binance.ErrorReply)
        time.sleep(1.0)  # at most 5 messages a second
        ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["xrpusdt@trade"], "id": 7}))
        err = until(ws, lambda m: "id" in m)
        assert err["code"] == 2 and err["id"] == 7
        ws.send("{not json")
        assert until(ws, lambda m: "code" in m)["code"] == 3
        ws.send("[" * 50_000)  # deeper than json's recursion limit: still an answer
        assert until(ws, lambda m: "code" in m)["code"] == 3


def test_stream_limit_per_connection():
    with exchange(max_streams=2) as ex:
        status = None
        try:
            create_connection(ex.stream_url(["btcusdt@trade", "ethusdt@trade", "btcusdt@aggTrade"]),
                              timeout=TIMEOUT)  # fmt: skip
        except WebSocketBadStatusException as e:
            status = e.status_code
        assert status == 400
        with connect(ex.stream_url(["btcusdt@trade", "ethusdt@trade"])) as ws:
            ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 1}))
            err = until(ws, lambda m: "id" in m)
            assert err["code"] == 2 and "at most 2 streams" in err["msg"]


def test_same_sequence_on_every_connection(ex):
    url = ex.stream_url(["btcusdt@depth@100ms", "btcusdt@trade", "ethusdt@depth@100ms"])
    with connect(url) as a, connect(url) as b:
        ma = [a.recv() for _ in range(300)]
        mb = [b.recv() for _ in range(300)]
    # b opened a moment later: from its first message on, both saw the same bytes.
    start = ma.index(mb[0])
    n = len(ma) - start
    assert n > 100
    assert ma[start:] == mb[:n]


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_update_ids_chain_per_symbol(market):
    with exchange(market=market) as ex:
        stream = "btcusdt@depth@100ms" if market == "spot" else "btcusdt@depth@0ms"
        with connect(ex.stream_url([stream])) as ws:
            ds = diffs(ws, 200)
    for prev, d in pairs(ds):
        assert d["U"] == prev["u"] + 1
        assert d["U"] <= d["u"]
        if market == "usdm":
            assert d["pu"] == prev["u"]
        else:
            assert "pu" not in d


def test_time_units(ex):
    with connect(ex.stream_url(["btcusdt@trade"], micro=True)) as ws:
        t_us = time.time_ns() // 1000
        e_us = recv_json(ws)["data"]["E"]
    with connect(ex.stream_url(["btcusdt@trade"], micro=False)) as ws:
        t_ms = time.time_ns() // 1_000_000
        e_ms = recv_json(ws)["data"]["E"]
    # Event time = send time: within a few seconds of the clock, in the asked unit.
    assert abs(e_us - t_us) < 5_000_000
    assert abs(e_ms - t_ms) < 5_000


# -- the book ---------------------------------------------------------------------------


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_snapshot_plus_diffs_equals_exchange_book(market):
    with exchange(market=market, rate=2000) as ex:
        stream = "btcusdt@depth@100ms" if market == "spot" else "btcusdt@depth@0ms"
        sync = BookSync("BTCUSDT", market, snapshot=snapshot_fn(ex, "BTCUSDT", 1000))
        with connect(ex.stream_url([stream], micro=False)) as ws:
            n = 0
            while n < 300:
                m = ws.recv()
                if "depthUpdate" in m:
                    sync.feed(m)
                    n += 1
        assert sync.state == "live" and sync.gaps == 0 and sync.applied > 0
        book_equals_exchange(sync, ex, "BTCUSDT")


def test_rest_snapshot_matches_book(ex):
    status, headers, body = get(ex.rest_url + "/api/v3/depth?symbol=ETHUSDT&limit=7")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    snap = json.loads(body)
    assert set(snap) == {"lastUpdateId", "bids", "asks"}
    assert len(snap["bids"]) == 7 and len(snap["asks"]) == 7
    lid, bids, asks = ex.book_at("ETHUSDT", snap["lastUpdateId"])
    assert lid == snap["lastUpdateId"]
    rec = binance.rest.parse_snapshot(body)
    assert [list(x) for x in rec.bids.tolist()] == levels(bids[:7])
    assert [list(x) for x in rec.asks.tolist()] == levels(asks[:7])
    # decimal strings with 8 decimals, best first
    assert all(len(p.split(".")[1]) == 8 for p, _ in snap["bids"])
    assert float(snap["bids"][0][0]) > float(snap["bids"][1][0])
    assert float(snap["asks"][0][0]) < float(snap["asks"][1][0])


# -- faults -----------------------------------------------------------------------------


def test_drop_next_diff_is_a_gap_on_that_connection_only(ex):
    url = ex.stream_url(["btcusdt@depth@100ms"], micro=False)
    with connect(url) as a, connect(url) as b:
        before_a = diffs(a, 2)
        before_b = diffs(b, 2)
        ca = conn_of(ex, a)
        sync = BookSync("BTCUSDT", snapshot=snapshot_fn(ex, "BTCUSDT"))
        ex.drop_next_diff("BTCUSDT", connection=ca.id)
        # From the last diff read before the drop: the withheld one may be the very next.
        da = before_a[-1:] + diffs(a, 150)
        db = before_b[-1:] + diffs(b, 150)
        # a: exactly one break in the chain, exactly one diff missing; b: none.
        breaks = [(p["u"], d["U"]) for p, d in pairs(da) if d["U"] != p["u"] + 1]
        assert len(breaks) == 1, (breaks, da[0]["U"], db[0]["U"], ex.connections())
        assert all(d["U"] == p["u"] + 1 for p, d in pairs(db))
        last_before, first_after = breaks[0]
        dropped = [d for d in db if d["U"] == last_before + 1]
        assert len(dropped) == 1 and dropped[0]["u"] == first_after - 1, (breaks, dropped)
        assert [c.diffs_dropped for c in ex.connections() if c.id == ca.id] == [1]
        # BookSync on a fresh drop: the gap is seen, counted and resynced from REST.
        feed(a, sync, 20)
        ex.drop_next_diff("BTCUSDT", connection=ca.id)
        feed(a, sync, 100)
        assert sync.gaps == 1 and sync.resyncs == 1 and sync.state == "live", sync.stats()
        book_equals_exchange(sync, ex, "BTCUSDT")


def test_gap_every():
    with exchange(gap_every=5, symbols=("BTCUSDT",)) as ex:
        with connect(ex.stream_url(["btcusdt@depth@100ms"])) as ws:
            ds = diffs(ws, 60)
        breaks = [d["U"] - p["u"] - 1 for p, d in pairs(ds) if d["U"] != p["u"] + 1]
        assert len(breaks) >= 10  # every 5th diff withheld
        assert ex.stats()["gaps"] >= 10


def test_disconnect_abrupt_and_with_code(ex):
    with (
        connect(ex.stream_url(["btcusdt@trade"])) as a,
        connect(ex.stream_url(["btcusdt@trade"])) as b,
    ):
        ca, cb = conn_of(ex, a), conn_of(ex, b)
        ex.disconnect(ca.id)
        assert close_code(a) is None  # no close frame: the TCP connection just ends
        recv_json(b)  # the other one is untouched
        ex.disconnect(cb, code=1013, reason="try again")
        assert close_code(b) == 1013
    deadline = time.monotonic() + TIMEOUT
    while ex.connections() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ex.connections() == []


@pytest.mark.parametrize("combined", [True, False])
def test_server_shutdown_event_then_close(ex, combined):
    with connect(ex.stream_url(["btcusdt@trade"], combined=combined, micro=False)) as ws:
        recv_json(ws)
        t0 = time.monotonic()
        ex.server_shutdown(grace=0.4)
        m = until(ws, lambda m: "serverShutdown" in json.dumps(m))
        if combined:
            assert m["stream"] == "!serverShutdown"
            data = m["data"]
        else:
            data = m
        assert set(data) == {"e", "E"} and data["e"] == "serverShutdown"
        assert abs(data["E"] - time.time() * 1000) < 5000  # ms
        assert isinstance(binance.decode(json.dumps(m)), ServerShutdown)
        assert close_code(ws) == 1001
        assert time.monotonic() - t0 >= 0.35
    # New connections are served after it.
    with connect(ex.stream_url(["btcusdt@trade"])) as ws:
        assert recv_json(ws)["data"]["e"] == "trade"


def test_stale_snapshot_then_book_sync_refetches(ex):
    url = ex.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000"
    with connect(ex.stream_url(["btcusdt@depth@100ms"], micro=False)) as ws:
        diffs(ws, 3)
        ex.stale_snapshot(count=1)
        stale = json.loads(get(url)[2])
        first = diffs(ws, 1)[0]
        assert stale["lastUpdateId"] < first["U"] - 1
        lid, bids, _ = ex.book_at("BTCUSDT", stale["lastUpdateId"])
        assert lid == stale["lastUpdateId"]
        assert binance.rest.parse_snapshot(json.dumps(stale)).bids.tolist() == levels(bids)
        # BookSync: a stale snapshot is refetched and the book still ends right.
        ex.stale_snapshot(count=1, lag=200)
        sync = BookSync("BTCUSDT", snapshot=snapshot_fn(ex, "BTCUSDT", 1000))
        feed(ws, sync, 150)
        assert sync.stale_snapshots == 1 and sync.snapshots == 2 and sync.state == "live"
        book_equals_exchange(sync, ex, "BTCUSDT")


def test_slow_snapshot():
    with exchange(snapshot_delay=0.5) as ex:
        with connect(ex.stream_url(["btcusdt@depth@100ms"], micro=False)) as ws:
            sync = BookSync("BTCUSDT", snapshot=snapshot_fn(ex, "BTCUSDT"))
            t0 = time.monotonic()
            first = ws.recv()
            sync.feed(first)  # fetches the snapshot: held back 0.5 s
            assert time.monotonic() - t0 >= 0.45
            lid_at_snapshot = sync.last_update_id
            assert lid_at_snapshot is not None and ex.update_id("BTCUSDT") > lid_at_snapshot
            for m in diffs(ws, 100):
                sync.feed(json.dumps(m))
            assert sync.state == "live" and sync.gaps == 0
            book_equals_exchange(sync, ex, "BTCUSDT")


def test_rest_weights_429_and_ban():
    with exchange(weight_limit=400, ban_after=2, ban_seconds=30, weight_window=3600) as ex:
        base = ex.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit="
        used = 0
        for limit, weight in ((100, 5), (101, 25), (500, 25), (1000, 50), (5000, 250)):
            assert rest_weight("spot", limit) == weight
            status, headers, _ = get(base + str(limit))
            used += weight
            assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) == used
        assert used == 355
        status, headers, body = get(base + "1000")  # 355 + 50 > 400
        assert status == 429 and json.loads(body)["code"] == -1003
        assert 0 < int(headers["Retry-After"]) <= 3600
        assert int(headers["X-MBX-USED-WEIGHT-1M"]) == used
        assert get(base + "5")[0] == 429  # asked again too soon: one violation
        status, headers, _ = get(base + "5")  # a second: banned
        assert status == 418 and int(headers["Retry-After"]) == 30
        assert get(base + "5")[0] == 418


def test_rest_429_on_demand(ex):
    url = ex.rest_url + "/api/v3/depth?symbol=BTCUSDT"
    ex.rest_429(1, retry_after=0.3)
    status, headers, body = get(url)
    assert status == 429 and headers["Retry-After"] == "1"
    assert "X-MBX-USED-WEIGHT-1M" in headers
    time.sleep(0.35)
    status, headers, _ = get(url)
    assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) >= 5


def test_rest_usdm_shape_and_weights():
    with exchange(market="usdm", weight_window=3600) as ex:
        base = ex.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit="
        used = 0
        for limit, weight in ((5, 2), (10, 2), (20, 2), (50, 2), (100, 5), (500, 10), (1000, 20)):
            status, headers, body = get(base + str(limit))
            used += weight
            assert status == 200 and int(headers["X-MBX-USED-WEIGHT-1M"]) == used
            snap = json.loads(body)
            assert set(snap) == {"lastUpdateId", "E", "T", "bids", "asks"}
            assert len(snap["bids"]) <= limit
        assert get(base + "7")[0] == 400
        assert get(ex.rest_url + "/api/v3/depth?symbol=BTCUSDT")[0] == 404
        assert get(base.replace("BTCUSDT", "NOPE") + "5")[0] == 400


def test_usdm_routes():
    with exchange(market="usdm") as ex:
        with connect(ex.ws_url + "/public/ws/btcusdt@depth@0ms") as ws:
            assert "pu" in until(ws, lambda m: m.get("e") == "depthUpdate")
        with connect(ex.ws_url + "/market/stream?streams=btcusdt@aggTrade") as ws:
            assert recv_json(ws)["data"]["e"] == "aggTrade"
        for path in (
            "/public/ws/btcusdt@aggTrade",
            "/ws/btcusdt@depth",
            "/market/ws/btcusdt@depth",
        ):
            with pytest.raises(WebSocketBadStatusException) as info:
                create_connection(ex.ws_url + path, timeout=TIMEOUT)
            assert info.value.status_code in (400, 404)


def test_ping_then_close_without_pong():
    with exchange(ping_interval=0.3, pong_timeout=0.5, rate=50) as ex:
        with connect(ex.stream_url(["btcusdt@trade"])) as ws:
            ws.settimeout(TIMEOUT)
            # Read raw frames: websocket-client answers no ping on this path.
            ping = None
            while ping is None:
                f = ws.recv_frame()
                if f.opcode == ABNF.OPCODE_PING:
                    ping = f
            assert len(ping.data) > 0  # a payload to echo
            assert close_code(ws) == 1011
        # A client that answers pings stays connected past several deadlines.
        with connect(ex.stream_url(["btcusdt@trade"])) as ws:
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.5:
                ws.recv()  # answers pings with their payload
            c = conn_of(ex, ws)
            assert c.pings_sent >= 3 and c.pongs_received >= 3


def test_message_limit_closes_connection(ex):
    with connect(ex.ws_url + "/ws") as ws:
        for i in range(5):
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        for i in range(5):
            assert until(ws, lambda m: "id" in m)["id"] == i
        time.sleep(1.05)
        for i in range(6):
            ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10 + i}))
        assert close_code(ws) == 1008


def test_message_limit_usdm_is_ten():
    with exchange(market="usdm") as ex:
        with connect(ex.ws_url + "/public/ws") as ws:
            for i in range(10):
                ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            assert [until(ws, lambda m: "id" in m)["id"] for _ in range(10)] == list(range(10))
            time.sleep(1.05)
            for _ in range(11):
                ws.ping()  # pings count too
            assert close_code(ws) == 1008


def test_silence(ex):
    with connect(ex.stream_url(["btcusdt@depth@100ms"])) as ws:
        before = diffs(ws, 2)[-1]
        c = conn_of(ex, ws)
        t0 = time.monotonic()
        ex.silence(c.id, 2.0)
        # what was already in flight may arrive; then nothing for a while
        ws.settimeout(0.3)
        with contextlib.suppress(WebSocketTimeoutException):
            while True:
                ws.recv()
        assert time.monotonic() - t0 < 1.5
        ws.settimeout(0.4)
        with pytest.raises(WebSocketTimeoutException):
            ws.recv()
        ws.settimeout(TIMEOUT)
        after = diffs(ws, 1)[0]
        assert after["U"] > before["u"] + 1  # diffs withheld meanwhile: a gap
        assert [x.diffs_dropped > 0 for x in ex.connections() if x.id == c.id] == [True]


def test_max_connection_age():
    with exchange(max_connection_age=0.5) as ex:
        with connect(ex.stream_url(["btcusdt@trade"])) as ws:
            t0 = time.monotonic()
            assert close_code(ws) == 1000
            assert time.monotonic() - t0 < TIMEOUT


def test_periodic_disconnect():
    with exchange(disconnect_every=0.4) as ex:
        with connect(ex.stream_url(["btcusdt@trade"])) as ws:
            assert close_code(ws) is None


# -- SBE --------------------------------------------------------------------------------


def test_sbe_needs_api_key_and_decodes(ex):
    url = ex.stream_url(["btcusdt@depth", "btcusdt@trade", "btcusdt@bestBidAsk",
                         "btcusdt@depth20"], sbe=True)  # fmt: skip
    with pytest.raises(WebSocketBadStatusException) as info:
        create_connection(url, timeout=TIMEOUT)
    assert info.value.status_code == 401
    with connect(url, header=["X-MBX-APIKEY: test-key"]) as ws:
        templates, prev = set(), None
        t_us = time.time_ns() // 1000
        for _ in range(3000):
            op, data = ws.recv_data()
            assert op == ABNF.OPCODE_BINARY
            templates.add(int.from_bytes(data[2:4], "little"))
            rec = binance.decode_sbe(data)
            if isinstance(rec, DepthUpdate):
                assert abs(rec.event_time // 1000 - t_us) < 5_000_000  # µs on the wire
                if prev is not None:
                    assert rec.first_update_id == prev.final_update_id + 1
                prev = rec
            if templates == {10000, 10001, 10002, 10003} and prev is not None:
                break
        assert templates == {10000, 10001, 10002, 10003}


def test_sbe_book_sync_equals_exchange(ex):
    url = ex.stream_url(["btcusdt@depth"], sbe=True)
    with connect(url, header=["X-MBX-APIKEY: k"]) as ws:
        sync = BookSync("BTCUSDT", snapshot=snapshot_fn(ex, "BTCUSDT", 1000))
        for _ in range(150):
            sync.feed(binance.decode_sbe(ws.recv_data()[1]))
        assert sync.state == "live" and sync.gaps == 0
        book_equals_exchange(sync, ex, "BTCUSDT")


def test_sbe_api_keys_list():
    with exchange(api_keys={"good"}) as ex:
        url = ex.stream_url(["btcusdt@trade"], sbe=True)
        with pytest.raises(WebSocketBadStatusException):
            create_connection(url, timeout=TIMEOUT, header=["X-MBX-APIKEY: bad"])
        with connect(url, header=["X-MBX-APIKEY: good"]) as ws:
            assert ws.recv_data()[0] == ABNF.OPCODE_BINARY


# -- lifecycle and CLI ------------------------------------------------------------------


def test_stop_leaves_nothing_running():
    before = {t.ident for t in threading.enumerate()}
    ex = BinanceExchange(["BTCUSDT"], rate=500, warmup=10).start()
    port = ex.port
    ws = create_connection(ex.stream_url(["btcusdt@trade"]), timeout=TIMEOUT)
    try:
        ws.recv()
        ex.stop(timeout=5)
        assert close_code(ws) == 1001  # the close handshake, not a dropped socket
    finally:
        ws.close()
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_cli_serve_answers():
    env = dict(os.environ)  # the installed hftcore (conftest: PYTHONSAFEPATH)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hftcore", "binance", "serve", "--rate", "300",
         "--symbols", "BTCUSDT", "--duration", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        urls = {}
        while "rest" not in urls:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            key, _, rest = line.partition(" ")
            urls[key] = rest.strip().split()[0] if rest.strip() else ""
        with connect(urls["streams"]) as ws:
            assert recv_json(ws)["stream"].startswith("btcusdt@")
        status, _, body = get(urls["rest"])
        assert status == 200 and "lastUpdateId" in json.loads(body)
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    assert proc.returncode == 0
    assert "stopped:" in out


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_render_matches_recorded_shapes(market):
    # The exchange's renderer against hftcore.sim.binance.render_json (the recorded-stream
    # renderer), for the shapes both make: the same bytes, and decodable.
    from hftcore.sim.binance import generate_events, render_json
    from hftcore.sim.binance_exchange import render

    kinds = {"depth": "depth", "book_ticker": "bookTicker"}
    kinds["trade"] = "trade" if market == "spot" else "aggTrade"
    for e in generate_events(2000, seed=4, market=market):
        got = render(e, kinds[e.kind], market, micro=False)
        ref = render_json(e, market)
        if market == "usdm" and e.kind == "trade":  # first/last trade ids differ
            g, r = json.loads(got), json.loads(ref)
            assert g["f"] == g["l"] == g["a"]
            g.pop("f"), g.pop("l"), r.pop("f"), r.pop("l")
            assert g == r
        else:
            assert got == ref
    # µs: the same message with the times in microseconds
    e = generate_events(1, seed=4, market=market)[0]
    assert json.loads(render(e, "depth", market, micro=True))["E"] == e.event_time


def _strip_times(m: dict) -> dict:
    data = dict(m["data"])
    data.pop("E", None)
    data.pop("T", None)
    return data


def test_seeded_sequence_with_and_without_pregenerate():
    # rate=0 pauses the generator; step(n) sends exactly n events: the same seed gives
    # the same events (times aside, which are the send times), pregenerated or not.
    got = []
    for pre in (0, 300):
        with exchange(rate=0, seed=11, pregenerate=pre, warmup=100) as ex:
            url = ex.stream_url([f"{s}@{k}" for s in ("btcusdt", "ethusdt")
                                 for k in ("depth@100ms", "trade", "bookTicker")])  # fmt: skip
            with connect(url) as ws:
                ex.wait_connections(1)
                ex.step(200)
                got.append([_strip_times(recv_json(ws)) for _ in range(200)])
                ws.settimeout(0.2)
                with pytest.raises(WebSocketTimeoutException):
                    ws.recv()  # exactly 200: nothing else was sent
            st = ex.stats()
            assert st["events"] == 200 and st["depth"] + st["trade"] + st["book_ticker"] == 200
    assert got[0] == got[1]


def test_book_at_history_bounds():
    with exchange(rate=0, history=50, warmup=100, symbols=("BTCUSDT",)) as ex:
        lid0 = ex.update_id("BTCUSDT")
        ex.step(400)  # about 200 diffs: more than the 50 kept
        lid = ex.update_id("BTCUSDT")
        assert lid > lid0
        assert ex.book_at("BTCUSDT", lid) == ex.book("BTCUSDT")
        with pytest.raises(ValueError, match="older than the history"):
            ex.book_at("BTCUSDT", lid0)
        with pytest.raises(ValueError, match="not served"):
            ex.book("XRPUSDT")


def test_slow_consumer_is_dropped():
    with exchange(
        symbols=("BTCUSDT",), rate=5000, pregenerate=8000, write_buffer_limit=1 << 16
    ) as ex:
        streams = ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@bookTicker"]
        opts = ((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),)
        with connect(ex.stream_url(streams), sockopt=opts):  # never read
            deadline = time.monotonic() + 10
            while ex.stats()["slow_consumers"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ex.stats()["slow_consumers"] == 1
            while ex.connections() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ex.connections() == []


def test_rate_change_at_run_time(ex):
    ex.rate = 0
    time.sleep(0.1)
    n0 = ex.stats()["events"]
    time.sleep(0.3)
    assert ex.stats()["events"] == n0  # paused
    ex.rate = 2000
    time.sleep(0.5)
    assert ex.stats()["events"] > n0 + 200
