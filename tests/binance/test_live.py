"""The live consumer: Binance's local-book procedure, message by message, as the feed
thread runs it (here fed from Python; the socket path is tested in test_feed.py).

The reference for every book is independent of the consumer: the generated diffs of one
symbol applied in order to a fresh L2Book with ``apply_depth_json`` (no continuity rule,
no buffering), from an empty book.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hftcore import DecodeError, binance
from hftcore.binance import _live
from hftcore.book import L2Book
from hftcore.sim.binance import generate_events, render_json

SYM = "BTCUSDT"


def _stream(n, market="spot", seed=3, symbols=(SYM,)):
    events = generate_events(n, seed=seed, symbols=symbols, market=market)
    return events, [render_json(e, market) for e in events]


def _fx(v: int) -> str:
    whole, frac = divmod(int(v), 10**8)
    return f"{whole}.{frac:08d}"


def _snapshot_after(events, msgs, upto, symbol=SYM):
    """REST snapshot body of ``symbol``'s book after the depth events of msgs[:upto]."""
    book = L2Book(5000)
    # Before the symbol's first diff: the id just before it (the stream continues it).
    last = next(e.first_update_id for e in events if e.kind == "depth" and e.symbol == symbol) - 1
    for e, m in zip(events[:upto], msgs[:upto], strict=True):
        if e.kind == "depth" and e.symbol == symbol:
            binance.apply_depth_json(book, m)
            last = e.final_update_id
    bids, asks = book.depth()
    body = {
        "lastUpdateId": last,
        "bids": [[_fx(p), _fx(q)] for p, q in bids],
        "asks": [[_fx(p), _fx(q)] for p, q in asks],
    }
    return json.dumps(body).encode(), last


def _reference(events, msgs, symbol=SYM):
    book = L2Book(5000)
    for e, m in zip(events, msgs, strict=True):
        if e.kind == "depth" and e.symbol == symbol:
            binance.apply_depth_json(book, m)
    return book


def _same_book(a, b):
    ab, aa = a.depth()
    bb, ba = b.depth()
    np.testing.assert_array_equal(ab, bb)
    np.testing.assert_array_equal(aa, ba)


def _depth_indices(events, symbol=SYM):
    return [i for i, e in enumerate(events) if e.kind == "depth" and e.symbol == symbol]


def test_buffers_until_the_snapshot_then_replays_and_goes_live():
    events, msgs = _stream(3000)
    live = _live.LiveConsumer([SYM])
    # Binance's order: the stream first; a snapshot only once a diff is held.
    assert live.wanted_snapshots() == []
    depth = _depth_indices(events)
    cut = depth[40]  # 40 diffs arrive before the snapshot
    for m in msgs[: depth[0] + 1]:
        live.feed(m)
    assert live.wanted_snapshots() == [SYM]
    for m in msgs[depth[0] + 1 : cut]:
        live.feed(m)
    st = live.symbol_stats(SYM)
    assert st["state"] == "syncing" and st["held"] == 40 and st["applied"] == 0
    # The snapshot was taken after the 25th diff: 15 held diffs continue it.
    body, last = _snapshot_after(events, msgs, depth[24] + 1)
    assert live.install_snapshot(SYM, body) == "live"
    st = live.symbol_stats(SYM)
    assert st["state"] == "live" and st["last_update_id"] == events[depth[39]].final_update_id
    assert st["applied"] == 15 and st["stale"] == 25 and st["held"] == 0
    for m in msgs[cut:]:
        live.feed(m)
    _same_book(live.books[SYM], _reference(events, msgs))
    assert live.symbol_stats(SYM)["gaps"] == 0
    assert live.wanted_snapshots() == []


def test_a_snapshot_older_than_the_held_diffs_is_refused_then_a_newer_one_taken():
    events, msgs = _stream(2000)
    depth = _depth_indices(events)
    live = _live.LiveConsumer([SYM])
    # The stream is joined late: the held diffs start at the 30th.
    for m in msgs[depth[30] : depth[50]]:
        live.feed(m)
    old, _ = _snapshot_after(events, msgs, depth[10] + 1)
    assert live.install_snapshot(SYM, old) == "stale"
    st = live.symbol_stats(SYM)
    assert st["state"] == "syncing" and st["stale_snapshots"] == 1 and st["held"] == 20
    assert live.wanted_snapshots() == [SYM]
    new, _ = _snapshot_after(events, msgs, depth[35] + 1)
    assert live.install_snapshot(SYM, new) == "live"
    for m in msgs[depth[50] :]:
        live.feed(m)
    _same_book(live.books[SYM], _reference(events, msgs))


def test_a_gap_is_counted_with_its_range_and_resynced_without_dropping_diffs():
    events, msgs = _stream(3000)
    depth = _depth_indices(events)
    live = _live.LiveConsumer([SYM])
    body, _ = _snapshot_after(events, msgs, 0)
    live.install_snapshot(SYM, body)
    lost = depth[100]
    for i, m in enumerate(msgs[: depth[150]]):
        if i != lost:
            live.feed(m)
    st = live.symbol_stats(SYM)
    lost_ev = events[lost]
    assert st["gaps"] == 1 and st["resyncs"] == 2 and st["state"] == "syncing"
    assert st["last_gap"] == (lost_ev.first_update_id, lost_ev.final_update_id)
    assert st["held"] == 49  # the diff after the gap (101st) up to the 149th
    assert live.wanted_snapshots() == [SYM]
    # A snapshot taken after the 120th diff: the held ones from there on continue it.
    body, _ = _snapshot_after(events, msgs, depth[120] + 1)
    assert live.install_snapshot(SYM, body) == "live"
    for m in msgs[depth[150] :]:
        live.feed(m)
    _same_book(live.books[SYM], _reference(events, msgs))


def test_usdm_chains_pu_and_checks_the_first_diff_against_the_snapshot():
    events, msgs = _stream(3000, market="usdm")
    depth = _depth_indices(events)
    live = _live.LiveConsumer([SYM], market="usdm")
    for m in msgs[: depth[30]]:
        live.feed(m)
    body, _ = _snapshot_after(events, msgs, depth[12] + 1)
    assert live.install_snapshot(SYM, body) == "live"
    lost = depth[200]
    for i, m in enumerate(msgs[depth[30] : depth[300]], start=depth[30]):
        if i != lost:
            live.feed(m)
    st = live.symbol_stats(SYM)
    assert st["gaps"] == 1 and st["state"] == "syncing"
    # USD-M: the missing events end at the pu the next diff carried.
    assert st["last_gap"] == (events[depth[199]].final_update_id + 1, events[lost].final_update_id)
    body, _ = _snapshot_after(events, msgs, depth[250] + 1)
    assert live.install_snapshot(SYM, body) == "live"
    for m in msgs[depth[300] :]:
        live.feed(m)
    _same_book(live.books[SYM], _reference(events, msgs))


def test_usdm_snapshot_older_than_the_stream_is_fetched_again():
    events, msgs = _stream(1500, market="usdm")
    depth = _depth_indices(events)
    live = _live.LiveConsumer([SYM], market="usdm")
    for m in msgs[depth[20] : depth[40]]:
        live.feed(m)
    old, _ = _snapshot_after(events, msgs, depth[5] + 1)
    assert live.install_snapshot(SYM, old) == "stale"
    assert live.symbol_stats(SYM)["stale_snapshots"] == 1
    new, _ = _snapshot_after(events, msgs, depth[25] + 1)
    assert live.install_snapshot(SYM, new) == "live"
    for m in msgs[depth[40] :]:
        live.feed(m)
    _same_book(live.books[SYM], _reference(events, msgs))


def test_two_connections_overlap_without_gaps_or_double_applies():
    """Make-before-break: a second connection opens mid-stream and stays ahead of the
    first; its diffs wait until the first catches up, none is applied twice, none is
    taken for a gap, and after the switch the book goes on from the second alone."""
    events, msgs = _stream(4000, symbols=(SYM, "ETHUSDT"))
    live = _live.LiveConsumer([SYM, "ETHUSDT"])
    for sym in (SYM, "ETHUSDT"):
        body, _ = _snapshot_after(events, msgs, 0, symbol=sym)
        live.install_snapshot(sym, body)
    half = len(msgs) // 2
    for m in msgs[:half]:
        live.feed(m, conn=0)
    live.set_link(0, True)  # connection 1 opens
    lead = 200  # connection 1 is 200 messages ahead of connection 0, all along
    j = half + lead
    for m in msgs[j : j + 20]:
        live.feed(m, conn=1)
    j += 20
    assert not live.joined(1)
    switched = False
    for i in range(half, len(msgs)):
        if not switched:
            live.feed(msgs[i], conn=0)
        if j < len(msgs):
            live.feed(msgs[j], conn=1)
            j += 1
        if not switched and i >= half + lead + 30:
            assert live.joined(1)
            live.set_link(1, False)  # connection 0 closes
            switched = True
    for sym in (SYM, "ETHUSDT"):
        st = live.symbol_stats(sym)
        assert st["gaps"] == 0 and st["resyncs"] == 1, st
        assert st["ahead"] > 0 and st["stale"] > 0
        _same_book(live.books[sym], _reference(events, msgs, sym))
        assert st["last_update_id"] == max(
            e.final_update_id for e in events if e.kind == "depth" and e.symbol == sym
        )


def test_a_switch_before_the_first_connection_caught_up_is_a_counted_gap():
    events, msgs = _stream(2000)
    depth = _depth_indices(events)
    live = _live.LiveConsumer([SYM])
    body, _ = _snapshot_after(events, msgs, 0)
    live.install_snapshot(SYM, body)
    for m in msgs[: depth[100]]:
        live.feed(m, conn=0)
    live.set_link(0, True)
    for m in msgs[depth[110] : depth[120]]:
        live.feed(m, conn=1)  # ahead: held
    live.set_link(1, False)  # connection 0 gone before it delivered depth[100..109]
    st = live.symbol_stats(SYM)
    assert st["gaps"] == 1 and st["state"] == "syncing" and st["held"] == 10
    assert st["last_gap"] == (
        events[depth[100]].first_update_id,
        events[depth[110]].first_update_id - 1,
    )


def test_trades_and_tickers_go_to_ring_tables_like_decode_many():
    events, msgs = _stream(2000, symbols=(SYM, "ETHUSDT"))
    live = _live.LiveConsumer([SYM, "ETHUSDT"])
    for m in msgs:
        live.feed(m, stamp=(123, 456, 0))
    table = binance.decode_many(msgs)
    for sym in (SYM, "ETHUSDT"):
        got = live.trade_rings[sym].take()
        want = table["trades"][table["trades"]["symbol"] == sym.encode()]
        assert len(got) == len(want) > 0
        for col in ("event_time", "trade_time", "trade_id", "price", "qty", "buyer_is_maker"):
            np.testing.assert_array_equal(got[col], want[col])
        assert (got["recv_time"] == 123).all()
        tops = live.top_rings[sym].take()
        tick = tops[tops["source"] == 1]
        want_bt = table["book_ticker"][table["book_ticker"]["symbol"] == sym.encode()]
        np.testing.assert_array_equal(tick["bid_price"], want_bt["bid_price"])
        np.testing.assert_array_equal(tick["ask_qty"], want_bt["ask_qty"])
    assert _live.RING_DTYPES["trades"].itemsize >= table["trades"].dtype.itemsize


def test_top_of_book_changes_follow_the_local_book():
    events, msgs = _stream(1500)
    live = _live.LiveConsumer([SYM])
    body, _ = _snapshot_after(events, msgs, 0)
    live.install_snapshot(SYM, body)
    ref = L2Book(5000)
    want = []
    for e, m in zip(events, msgs, strict=True):
        live.feed(m)
        if e.kind == "depth":
            binance.apply_depth_json(ref, m)
            top = ref.bbo()
            if not want or want[-1] != top:
                want.append(top)
    tops = live.top_rings[SYM].take()
    book_tops = tops[tops["source"] == 0]
    got = [
        tuple(int(r[c]) for c in ("bid_price", "bid_qty", "ask_price", "ask_qty"))
        for r in book_tops
    ]
    assert got == want


def test_bad_messages_are_counted_and_kept_never_fatal():
    live = _live.LiveConsumer([SYM])
    live.feed(b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0"')
    live.feed(b"not json")
    live.feed(b'{"e":"trade","E":1,"s":"XRPUSDT","t":1,"p":"1.0","q":"1.0","T":1,"m":true}')
    live.feed(b'{"result":null,"id":1}')
    live.feed(b'{"e":"serverShutdown","E":1}', conn=1)
    assert live.decode_errors == 2 and live.unknown_symbols == 1
    errors = live.take_errors()
    assert len(errors) == 2 and "byte" in errors[0]
    notes = live.take_notes()
    assert [(k, c) for k, c, _ in notes] == [("control", 0), ("shutdown", 1)]
    assert live.shutdown_conns == 2
    with pytest.raises(DecodeError):
        live.install_snapshot(SYM, b'{"lastUpdateId":5,"bids":[["x","1"]],"asks":[]}')
    with pytest.raises(ValueError):
        live.install_snapshot(
            SYM, b'{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":true}'
        )
    with pytest.raises(KeyError):
        live.install_snapshot("ETHUSDT", b"{}")


def test_capture_replays_to_the_same_books(tmp_path):
    from hftcore.feed.capture import CaptureWriter, replay_into

    events, msgs = _stream(3000, symbols=(SYM, "ETHUSDT"))
    path = tmp_path / "live.cap"
    writer = CaptureWriter(str(path))
    live = _live.LiveConsumer([SYM, "ETHUSDT"], capture=writer)
    depth = _depth_indices(events)
    for m in msgs[: depth[20]]:
        live.feed(m)
    for sym in (SYM, "ETHUSDT"):
        body, _ = _snapshot_after(events, msgs, depth[5] + 1, symbol=sym)
        live.install_snapshot(sym, body)
    for i, m in enumerate(msgs[depth[20] :], start=depth[20]):
        if i != depth[500]:  # a gap: resync with a later snapshot
            live.feed(m, conn=0)
        if i == depth[600]:
            body, _ = _snapshot_after(events, msgs, depth[550] + 1)
            live.install_snapshot(SYM, body)
    writer.close()
    again = _live.LiveConsumer([SYM, "ETHUSDT"])
    replay_into(str(path), again)
    for sym in (SYM, "ETHUSDT"):
        _same_book(again.books[sym], live.books[sym])
        a, b = again.symbol_stats(sym), live.symbol_stats(sym)
        for key in ("applied", "stale", "gaps", "snapshots", "last_update_id"):
            assert a[key] == b[key], (sym, key)
    _same_book(live.books[SYM], _reference(events, msgs))


def test_sbe_frames_keep_the_same_books_and_rings():
    """Spot SBE market data (templates 10000, 10001, 10003) through the same procedure:
    the book equals the SBE appliers' reference; held SBE diffs replay after a snapshot."""
    from hftcore.sim.binance import render_sbe

    events = generate_events(3000, seed=5, symbols=(SYM, "ETHUSDT"))
    sbe = [render_sbe(e) for e in events]
    depth = _depth_indices(events)
    live = _live.LiveConsumer([SYM, "ETHUSDT"], time_unit="us")
    for m in sbe[: depth[30]]:
        live.feed(m, kind=2)
    assert SYM in live.wanted_snapshots()
    body, _ = _snapshot_after(events, [render_json(e) for e in events], depth[10] + 1)
    assert live.install_snapshot(SYM, body) == "live"
    for m in sbe[depth[30] :]:
        live.feed(m, kind=2)
    ref = L2Book(5000)
    for e, m in zip(events, sbe, strict=True):
        if e.kind == "depth" and e.symbol == SYM:
            binance.apply_depth_sbe(ref, m)
    _same_book(live.books[SYM], ref)
    assert live.decode_errors == 0
    trades = live.trade_rings[SYM].take()
    want = [e for e in events if e.kind == "trade" and e.symbol == SYM]
    assert trades["trade_id"].tolist() == [e.first_update_id for e in want]
    assert trades["price"].tolist() == [e.price for e in want]
    tops = live.top_rings[SYM].take()
    assert (tops["source"] == 1).sum() > 0
    live.feed(b"\x00\x01garbage", kind=2)
    assert live.decode_errors == 1
