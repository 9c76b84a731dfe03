"""BookSync against Binance's documented local-book procedure.

Expectations are built by hand here: which events apply follows the rules as written in
Binance's "How to manage a local order book correctly" (spot and USD-M), and the
expected book is a plain dict with those events applied.
"""

import json
import logging
import random

import numpy as np
import pytest

from hftcore.binance.records import DepthSnapshot, DepthUpdate
from hftcore.binance.sync import BookSync, SnapshotError, parse_snapshot, snapshot_url
from hftcore.errors import SequenceGap

E8 = 100_000_000
SYM = "BTCUSDT"


def rows(levels):
    return np.array([[p, q] for p, q in levels], dtype=np.int64).reshape(-1, 2)


def ev(first, final, bids=(), asks=(), pu=-1, symbol=SYM):
    return DepthUpdate(1, 0, symbol, first, final, pu, rows(bids), rows(asks))


def dec(v):
    """Integer with 8 implied decimals -> Binance decimal string."""
    return f"{v // E8}.{v % E8:08d}"


def snap_body(last_update_id, bids, asks):
    """A REST /depth body as Binance sends it: decimal strings, best first."""
    body = {
        "lastUpdateId": last_update_id,
        "bids": [[dec(p), dec(q)] for p, q in sorted(bids.items(), reverse=True)],
        "asks": [[dec(p), dec(q)] for p, q in sorted(asks.items())],
    }
    return json.dumps(body).encode()


class Snapshots:
    """A snapshot callable returning queued bodies and counting calls."""

    def __init__(self, *bodies):
        self.bodies = list(bodies)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        item = self.bodies.pop(0) if len(self.bodies) > 1 else self.bodies[0]
        if isinstance(item, Exception):
            raise item
        return item


def apply_ref(ref, event):
    bids, asks = ref
    for side, levels in ((bids, event.bids), (asks, event.asks)):
        for p, q in levels.tolist():
            if q == 0:
                side.pop(p, None)
            else:
                side[p] = q


def book_dicts(book):
    b, a = book.depth()
    return {p: q for p, q in b.tolist()}, {p: q for p, q in a.tolist()}


SNAP_BIDS = {100 * E8: 1 * E8, 99 * E8: 2 * E8, 98 * E8: 3 * E8}
SNAP_ASKS = {101 * E8: 4 * E8, 102 * E8: 5 * E8}


def fresh_ref():
    return dict(SNAP_BIDS), dict(SNAP_ASKS)


# -- spot --------------------------------------------------------------------------


def test_spot_straddle_and_continue():
    snaps = Snapshots(snap_body(97, SNAP_BIDS, SNAP_ASKS))
    sync = BookSync(SYM, "spot", snapshot=snaps)
    e1 = ev(90, 95, bids=[(97 * E8, 1)])  # u <= 97: in the snapshot already, dropped
    e2 = ev(96, 100, bids=[(100 * E8, 0)], asks=[(101 * E8, 7)])  # 96 <= 98 <= 100
    e3 = ev(101, 105, bids=[(99 * E8, 9)])  # U == 100 + 1
    assert sync.state == "syncing"
    assert sync.feed(e1) == 0
    assert sync.state == "syncing" and sync.stale_dropped == 1
    assert sync.feed(e2) == 1
    assert sync.state == "live"
    assert sync.feed(e3) == 1
    ref = fresh_ref()
    apply_ref(ref, e2)
    apply_ref(ref, e3)
    assert book_dicts(sync.book) == ref
    assert (sync.applied, sync.snapshots, sync.gaps, sync.resyncs) == (2, 1, 0, 0)
    assert sync.last_update_id == 105
    assert snaps.calls == 1


def test_spot_first_event_must_cover_last_update_id_plus_one():
    # u == lastUpdateId is already in the snapshot on spot: dropped, not applied.
    sync = BookSync(SYM, "spot", snapshot=Snapshots(snap_body(100, SNAP_BIDS, SNAP_ASKS)))
    sync.feed(ev(95, 100, bids=[(50 * E8, 1)]))
    assert sync.state == "syncing" and sync.applied == 0 and sync.stale_dropped == 1
    sync.feed(ev(101, 101, bids=[(51 * E8, 1)]))  # U == lastUpdateId + 1
    assert sync.state == "live"
    assert 50 * E8 not in book_dicts(sync.book)[0]
    assert book_dicts(sync.book)[0][51 * E8] == 1


def test_stale_snapshot_is_fetched_again():
    # First snapshot (lastUpdateId 90) is older than the first buffered event (U=100).
    snaps = Snapshots(snap_body(90, {1 * E8: 1}, {}), snap_body(104, SNAP_BIDS, SNAP_ASKS))
    sync = BookSync(SYM, snapshot=snaps)
    e1 = ev(100, 110, asks=[(102 * E8, 0)])
    assert sync.feed(e1) == 1
    assert snaps.calls == 2
    assert sync.snapshots == 2 and sync.stale_snapshots == 1
    assert sync.state == "live" and sync.last_update_id == 110
    ref = fresh_ref()
    apply_ref(ref, e1)
    assert book_dicts(sync.book) == ref  # nothing left of the stale snapshot


def test_spot_snapshot_just_before_first_event_is_fetched_again():
    # Spot step 4 as written: lastUpdateId (99) strictly less than the U of the first
    # buffered event (100) -> fetch again, even though 100 == lastUpdateId + 1.
    snaps = Snapshots(snap_body(99, SNAP_BIDS, SNAP_ASKS), snap_body(101, SNAP_BIDS, SNAP_ASKS))
    sync = BookSync(SYM, snapshot=snaps)
    e1 = ev(100, 102, bids=[(97 * E8, 4)])
    sync.feed(e1)
    assert snaps.calls == 2 and sync.stale_snapshots == 1
    assert sync.state == "live" and sync.last_update_id == 102
    ref = fresh_ref()
    apply_ref(ref, e1)
    assert book_dicts(sync.book) == ref


def test_spot_gap_inside_buffer_after_snapshot():
    # Snapshot 100 passes step 4 (U of the first event is 95); the first event left after
    # dropping starts at 104: ids 101..103 were lost, so the process starts again.
    snaps = Snapshots(snap_body(100, SNAP_BIDS, SNAP_ASKS), snap_body(105, {7 * E8: 1}, {}))
    gaps = []
    sync = BookSync(SYM, snapshot=snaps, on_gap=gaps.append)
    sync.feed(ev(95, 99))
    assert sync.state == "syncing" and sync.stale_dropped == 1
    e = ev(104, 106, bids=[(8 * E8, 2)])
    sync.feed(e)
    assert sync.gaps == 1 and (gaps[0].expected, gaps[0].received) == (101, 104)
    assert sync.state == "live" and sync.last_update_id == 106
    assert book_dicts(sync.book) == ({7 * E8: 1, 8 * E8: 2}, {})


def test_stale_snapshot_retries_are_bounded():
    snaps = Snapshots(snap_body(10, SNAP_BIDS, SNAP_ASKS))  # always too old
    sync = BookSync(SYM, snapshot=snaps, snapshot_retries=2)
    assert sync.feed(ev(100, 110)) == 0
    assert snaps.calls == 3  # one fetch and two retries, then wait for more stream
    assert sync.state == "syncing"
    assert len(sync.book) == 0
    snaps.bodies = [snap_body(112, SNAP_BIDS, SNAP_ASKS)]
    sync.feed(ev(111, 115, bids=[(97 * E8, 1)]))  # next event: fetches again
    assert sync.state == "live" and sync.last_update_id == 115
    assert sync.stale_dropped == 1  # the 100..110 event, older than the new snapshot


def live_spot(on_gap=None, extra=()):
    snaps = Snapshots(snap_body(102, SNAP_BIDS, SNAP_ASKS), *extra)
    sync = BookSync(SYM, "spot", snapshot=snaps, on_gap=on_gap)
    sync.feed(ev(101, 105, bids=[(97 * E8, 1)]))
    assert sync.state == "live" and sync.last_update_id == 105
    return sync, snaps


def test_gap_resyncs_and_logs_missing_range(caplog):
    gaps = []
    new_bids = {90 * E8: 1 * E8}
    new_asks = {91 * E8: 2 * E8}
    sync, snaps = live_spot(on_gap=gaps.append)
    snaps.bodies = [snap_body(109, new_bids, new_asks)]
    e = ev(108, 110, bids=[(89 * E8, 3)])  # 106 and 107 never arrived
    with caplog.at_level(logging.WARNING, logger="hftcore.binance.sync"):
        applied = sync.feed(e)
    assert "106..107" in caplog.text and SYM in caplog.text
    assert sync.gaps == 1 and sync.resyncs == 1 and sync.snapshots == 2
    assert len(gaps) == 1 and isinstance(gaps[0], SequenceGap)
    assert (gaps[0].expected, gaps[0].received) == (106, 108)
    # The new snapshot (109) is straddled by the very event that showed the gap.
    assert applied == 1 and sync.state == "live" and sync.last_update_id == 110
    ref = (dict(new_bids), dict(new_asks))
    apply_ref(ref, e)
    assert book_dicts(sync.book) == ref


def test_gap_with_failing_snapshot_stays_resyncing():
    sync, snaps = live_spot()
    snaps.bodies = [ConnectionError("network down")]
    with pytest.raises(SnapshotError, match="network down"):
        sync.feed(ev(120, 121))
    assert sync.state == "resyncing"
    assert len(sync.book) == 0  # a broken book is discarded, not served
    assert sync.last_update_id is None


def test_overlapping_event_is_applied():
    sync, _ = live_spot()
    e = ev(103, 108, asks=[(101 * E8, 0), (103 * E8, 1)])  # U <= 106 <= u
    assert sync.feed(e) == 1
    assert sync.last_update_id == 108 and sync.gaps == 0
    assert book_dicts(sync.book)[1] == {102 * E8: 5 * E8, 103 * E8: 1}


def test_stale_event_is_ignored():
    sync, _ = live_spot()
    before = book_dicts(sync.book)
    assert sync.feed(ev(101, 104, bids=[(100 * E8, 0)])) == 0  # u < 105
    assert sync.feed(ev(105, 105, bids=[(100 * E8, 0)])) == 0  # u == 105: already in
    assert book_dicts(sync.book) == before
    assert sync.stale_dropped == 2 and sync.gaps == 0 and sync.state == "live"
    assert sync.feed(ev(106, 106, bids=[(100 * E8, 0)])) == 1


def test_snapshot_callable_raising_keeps_syncing():
    snaps = Snapshots(TimeoutError("REST timed out"))
    sync = BookSync(SYM, snapshot=snaps)
    e1 = ev(100, 102, bids=[(99 * E8, 0)])
    with pytest.raises(SnapshotError) as info:
        sync.feed(e1)
    assert "REST timed out" in str(info.value) and SYM in str(info.value)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert sync.state == "syncing" and sync.snapshots == 0
    # Buffered event kept: the next feed fetches again and uses both events.
    snaps.bodies = [snap_body(101, SNAP_BIDS, SNAP_ASKS)]
    e2 = ev(103, 104, asks=[(101 * E8, 0)])
    assert sync.feed(e2) == 2
    ref = fresh_ref()
    apply_ref(ref, e1)
    apply_ref(ref, e2)
    assert book_dicts(sync.book) == ref


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"bids": []}', b'{"lastUpdateId": 5, "bids": [["1.5"]], "asks": []}',
     b'{"lastUpdateId": 5, "bids": [["1.123456789", "1"]], "asks": []}',
     b'{"lastUpdateId": "5", "bids": [], "asks": []}'],
)  # fmt: skip
def test_bad_snapshot_body(body):
    sync = BookSync(SYM, snapshot=Snapshots(body))
    with pytest.raises(SnapshotError, match="snapshot"):
        sync.feed(ev(1, 2))
    assert sync.state == "syncing"


def test_snapshot_record_accepted():
    snap = DepthSnapshot(100, 0, 0, "", rows(SNAP_BIDS.items()), rows(SNAP_ASKS.items()))
    sync = BookSync(SYM, snapshot=lambda: snap)
    sync.feed(ev(100, 101))
    assert sync.state == "live"
    assert book_dicts(sync.book) == fresh_ref()


def test_parse_snapshot_exact_decimals():
    body = b'{"lastUpdateId": 7, "bids": [["0.00000001", "12.5"]], "asks": [["65000.1", "0"]]}'
    snap = parse_snapshot(body)
    assert snap.last_update_id == 7
    assert snap.bids.tolist() == [[1, 1_250_000_000]]
    assert snap.asks.tolist() == [[6_500_010_000_000, 0]]


def test_wrong_symbol_and_market():
    sync = BookSync(SYM, snapshot=Snapshots(snap_body(1, {}, {})))
    with pytest.raises(ValueError, match="ETHUSDT"):
        sync.feed(ev(1, 2, symbol="ETHUSDT"))
    fut = BookSync(SYM, "usdm", snapshot=Snapshots(snap_body(1, {}, {})))
    with pytest.raises(ValueError, match="pu"):
        fut.feed(ev(1, 2))  # a spot event has no pu
    with pytest.raises(ValueError, match="market"):
        BookSync(SYM, "coinm")


def test_snapshot_url():
    assert (
        snapshot_url("btcusdt") == "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=5000"
    )
    assert snapshot_url("BTCUSDT", "usdm", 100).startswith("https://fapi.binance.com/fapi/v1/depth")


# -- USD-M futures -------------------------------------------------------------------


def test_futures_bridge_and_pu_chain():
    snaps = Snapshots(snap_body(100, SNAP_BIDS, SNAP_ASKS))
    sync = BookSync(SYM, "usdm", snapshot=snaps)
    e0 = ev(90, 99, pu=89, bids=[(1 * E8, 1)])  # u < 100: dropped
    e1 = ev(95, 100, pu=99, bids=[(100 * E8, 0)])  # U <= 100 <= u: applies on futures
    e2 = ev(104, 107, pu=100, asks=[(103 * E8, 2)])  # ids may jump; pu chains
    assert sync.feed(e0) == 0 and sync.stale_dropped == 1
    assert sync.feed(e1) == 1 and sync.state == "live"
    assert sync.feed(e2) == 1
    ref = fresh_ref()
    apply_ref(ref, e1)
    apply_ref(ref, e2)
    assert book_dicts(sync.book) == ref
    assert sync.last_update_id == 107


def test_futures_pu_break_resyncs(caplog):
    gaps = []
    snaps = Snapshots(snap_body(100, SNAP_BIDS, SNAP_ASKS), snap_body(115, {5 * E8: 1}, {}))
    sync = BookSync(SYM, "usdm", snapshot=snaps, on_gap=gaps.append)
    sync.feed(ev(98, 102, pu=97))
    assert sync.state == "live"
    e = ev(112, 118, pu=110, bids=[(6 * E8, 2)])  # previous u was 102, not 110
    with caplog.at_level(logging.WARNING, logger="hftcore.binance.sync"):
        sync.feed(e)
    assert "u=102" in caplog.text and "u=110" in caplog.text
    assert sync.gaps == 1 and sync.resyncs == 1
    assert (gaps[0].expected, gaps[0].received) == (102, 110)
    assert sync.state == "live" and sync.last_update_id == 118
    assert book_dicts(sync.book) == ({5 * E8: 1, 6 * E8: 2}, {})


def test_futures_stale_snapshot_and_repeated_event():
    snaps = Snapshots(snap_body(99, {}, {}), snap_body(100, SNAP_BIDS, SNAP_ASKS))
    sync = BookSync(SYM, "usdm", snapshot=snaps)
    e1 = ev(100, 103, pu=98)  # U=100 > 99: snapshot too old on futures
    sync.feed(e1)
    assert sync.stale_snapshots == 1 and sync.state == "live"
    assert sync.feed(e1) == 0  # a repeated event is stale, not a gap
    assert sync.stale_dropped == 1 and sync.gaps == 0


# -- a simulated exchange, with lost events --------------------------------------------


class Exchange:
    """Ground truth: a book whose every update id changes one level."""

    def __init__(self, rng):
        self.rng = rng
        self.bids, self.asks = {}, {}
        self.history = {0: ({}, {})}
        self.uid = 0

    def step(self, n, spot):
        first = self.uid + 1
        changed = ({}, {})
        for _ in range(n):
            self.uid += 1
            side = self.rng.randrange(2)
            price = (1000 - self.rng.randrange(30)) if side == 0 else 1001 + self.rng.randrange(30)
            qty = 0 if self.rng.random() < 0.3 else self.rng.randrange(1, 50)
            book = self.bids if side == 0 else self.asks
            if qty:
                book[price] = qty
            else:
                book.pop(price, None)
            changed[side][price] = qty
            self.history[self.uid] = (dict(self.bids), dict(self.asks))
        return first, self.uid, sorted(changed[0].items()), sorted(changed[1].items())


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("seed", range(6))
def test_simulated_stream_with_losses(market, seed):
    rng = random.Random(seed)
    exch = Exchange(rng)
    for _ in range(20):
        exch.step(1, market == "spot")

    def snapshot():
        # The REST snapshot is sometimes behind the stream (then it must be refetched).
        lag = rng.choice([0, 0, 0, 1, 5, 40])
        uid = max(0, exch.uid - lag)
        bids, asks = exch.history[uid]
        return snap_body(uid, bids, asks)

    sync = BookSync(SYM, market, snapshot=snapshot, snapshot_retries=50)
    prev_u = 0
    lost = 0
    for _ in range(400):
        first, final, bids, asks = exch.step(rng.randrange(1, 4), market == "spot")
        e = ev(first, final, bids=bids, asks=asks, pu=prev_u if market == "usdm" else -1)
        prev_u = final
        if rng.random() < 0.03:
            lost += 1
            continue  # lost in transit
        sync.feed(e)
        if sync.state == "live":
            assert sync.last_update_id == final
            assert book_dicts(sync.book) == exch.history[final]
    # The last events may have started a resync that still waits for its bridging event.
    for _ in range(5):
        first, final, bids, asks = exch.step(1, market == "spot")
        sync.feed(ev(first, final, bids=bids, asks=asks, pu=prev_u if market == "usdm" else -1))
        prev_u = final
    assert sync.state == "live"
    assert book_dicts(sync.book) == exch.history[final]
    assert sync.gaps == sync.resyncs
    assert 0 < sync.gaps <= lost


# -- raw JSON, as the WebSocket delivers it ----------------------------------------------


def depth_json(first, final, bids=(), asks=(), pu=None, symbol=SYM, envelope=False, compact=True):
    """A depthUpdate text frame built from decimal strings (spot, or USD-M with pu).

    Binance sends compact JSON; ``compact=False`` adds the spaces of ``json.dumps``.
    """
    data = {"e": "depthUpdate", "E": 1672515782136, "s": symbol, "U": first, "u": final}
    if pu is not None:
        data["T"] = 1672515782130
        data["pu"] = pu
    data["b"] = [[dec(p), dec(q)] for p, q in bids]
    data["a"] = [[dec(p), dec(q)] for p, q in asks]
    if envelope:
        data = {"stream": f"{symbol.lower()}@depth", "data": data}
    return json.dumps(data, separators=(",", ":") if compact else None)


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize("envelope", [False, True])
@pytest.mark.parametrize("fast", [False, True])
def test_spot_raw_json(as_bytes, envelope, fast):
    snaps = Snapshots(snap_body(97, SNAP_BIDS, SNAP_ASKS))
    sync = BookSync(SYM, snapshot=snaps, fast_json=fast)
    msgs = [
        depth_json(90, 95, bids=[(1 * E8, 1)], envelope=envelope),
        depth_json(96, 100, bids=[(100 * E8, 0)], asks=[(101 * E8, 7)], envelope=envelope),
        depth_json(101, 105, bids=[(99 * E8, 150_000_000)], envelope=envelope),
        depth_json(103, 106, asks=[(101_50000000, 1)], envelope=envelope),  # overlaps
    ]
    for m in msgs:
        sync.feed(m.encode() if as_bytes else m)
    assert sync.state == "live" and sync.last_update_id == 106
    assert (sync.applied, sync.stale_dropped, sync.resyncs) == (3, 1, 0)
    # Live events take the one-pass path when allowed (the bridging one never does).
    assert sync.applied_direct == (2 if fast else 0)
    expected_bids = {99 * E8: 150_000_000, 98 * E8: 3 * E8}
    expected_asks = {101 * E8: 7, 101_50000000: 1, 102 * E8: 5 * E8}
    assert book_dicts(sync.book) == (expected_bids, expected_asks)


def test_spaced_json_takes_the_record_path():
    sync = BookSync(SYM, snapshot=Snapshots(snap_body(10, SNAP_BIDS, SNAP_ASKS)))
    sync.feed(depth_json(9, 11, compact=False))
    sync.feed(depth_json(12, 12, bids=[(99 * E8, 0)], compact=False))
    assert sync.applied == 2 and sync.applied_direct == 0
    assert 99 * E8 not in book_dicts(sync.book)[0]


@pytest.mark.parametrize("fast", [True, False])
def test_stale_and_repeated_events_are_ignored_on_both_paths(fast):
    snaps = Snapshots(snap_body(10, SNAP_BIDS, SNAP_ASKS))
    sync = BookSync(SYM, snapshot=snaps, fast_json=fast)
    sync.feed(depth_json(9, 15))
    repeat = depth_json(16, 20, bids=[(99 * E8, 1)])
    sync.feed(repeat)
    before = book_dicts(sync.book)
    assert before[0][99 * E8] == 1
    # Out of order (u=14 <= 20), an exact duplicate, and one that ends at the book's id.
    for msg in (depth_json(12, 14, bids=[(99 * E8, 7)]), repeat,
                depth_json(18, 20, asks=[(101 * E8, 0)])):  # fmt: skip
        assert sync.feed(msg) == 0
    assert sync.stale_dropped == 3 and sync.resyncs == 0 and sync.gaps == 0
    assert sync.state == "live" and sync.last_update_id == 20 and snaps.calls == 1
    assert book_dicts(sync.book) == before  # nothing of the stale events applied
    sync.feed(depth_json(21, 22, bids=[(99 * E8, 3)]))
    assert sync.last_update_id == 22 and book_dicts(sync.book)[0][99 * E8] == 3
    assert sync.applied_direct == (2 if fast else 0)


@pytest.mark.parametrize("fast", [True, False])
def test_futures_repeated_event_is_ignored_on_both_paths(fast):
    sync = BookSync(SYM, "usdm", snapshot=Snapshots(snap_body(100, SNAP_BIDS, SNAP_ASKS)),
                    fast_json=fast)  # fmt: skip
    sync.feed(depth_json(95, 101, pu=94))
    e2 = depth_json(102, 110, pu=101, asks=[(101 * E8, 0)])
    sync.feed(e2)
    before = book_dicts(sync.book)
    assert sync.feed(e2) == 0  # repeated: u=110 <= 110
    assert sync.feed(depth_json(96, 105, pu=95, bids=[(99 * E8, 0)])) == 0  # out of order
    assert sync.stale_dropped == 2 and sync.resyncs == 0 and sync.gaps == 0
    assert book_dicts(sync.book) == before and sync.last_update_id == 110
    assert sync.applied_direct == (1 if fast else 0)


def test_gap_on_fast_path():
    gaps = []
    snaps = Snapshots(snap_body(10, SNAP_BIDS, SNAP_ASKS), snap_body(31, {5 * E8: 1}, {}))
    sync = BookSync(SYM, snapshot=snaps, on_gap=gaps.append)
    sync.feed(depth_json(9, 15))
    sync.feed(depth_json(16, 20))
    assert sync.applied_direct == 1
    sync.feed(depth_json(30, 32, bids=[(6 * E8, 2)]))  # 21..29 lost
    assert sync.gaps == 1 and (gaps[0].expected, gaps[0].received) == (21, 30)
    assert sync.state == "live" and sync.last_update_id == 32
    assert book_dicts(sync.book) == ({5 * E8: 1, 6 * E8: 2}, {})


def test_futures_raw_json_pu_break():
    snaps = Snapshots(snap_body(100, SNAP_BIDS, SNAP_ASKS), snap_body(130, {}, {2 * E8: 1}))
    sync = BookSync(SYM, "usdm", snapshot=snaps)
    sync.feed(depth_json(95, 101, pu=94, bids=[(100 * E8, 0)]))
    sync.feed(depth_json(102, 110, pu=101, asks=[(101 * E8, 0)]))
    assert sync.state == "live" and sync.last_update_id == 110 and sync.applied_direct == 1
    assert book_dicts(sync.book) == ({99 * E8: 2 * E8, 98 * E8: 3 * E8}, {102 * E8: 5 * E8})
    sync.feed(depth_json(125, 131, pu=120, asks=[(3 * E8, 4)]))  # 110 -> 120 missing
    assert sync.gaps == 1 and sync.state == "live" and sync.last_update_id == 131
    assert book_dicts(sync.book) == ({}, {2 * E8: 1, 3 * E8: 4})


def test_raw_json_that_is_not_a_depth_diff():
    sync = BookSync(SYM, snapshot=Snapshots(snap_body(1, {}, {})))
    trade = '{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","T":1,"m":true}'
    with pytest.raises(ValueError, match="depthUpdate"):
        sync.feed(trade)
    with pytest.raises(ValueError):
        sync.feed(b'{"e":"depthUpdate","U":')
    assert sync.state == "syncing" and sync.snapshots == 0
    sync.feed(depth_json(1, 3))
    assert sync.state == "live"
    with pytest.raises(ValueError, match="ETHUSDT"):
        sync.feed(depth_json(4, 4, symbol="ETHUSDT"))
    with pytest.raises(ValueError, match="DepthSnapshot"):
        sync.feed(snap_body(4, {}, {}))
    assert sync.state == "live" and sync.last_update_id == 3


@pytest.mark.parametrize("market", ["spot", "usdm"])
@pytest.mark.parametrize("fast", [False, True])
def test_simulated_json_stream_with_losses_and_repeats(market, fast):
    rng = random.Random(f"{market}-{fast}")
    exch = Exchange(rng)
    for _ in range(20):
        exch.step(1, market == "spot")

    def snapshot():
        lag = rng.choice([0, 0, 1, 30])
        uid = max(0, exch.uid - lag)
        return snap_body(uid, *exch.history[uid])

    sync = BookSync(SYM, market, snapshot=snapshot, snapshot_retries=50, fast_json=fast)
    prev_u, sent = 0, []
    for i in range(600):
        first, final, bids, asks = exch.step(rng.randrange(1, 4), market == "spot")
        pu = prev_u if market == "usdm" else None
        msg = depth_json(first, final, bids=bids, asks=asks, pu=pu, envelope=i % 2 == 0)
        prev_u = final
        sent.append(msg)
        if rng.random() < 0.02:
            continue  # lost
        sync.feed(msg)
        if rng.random() < 0.02 and len(sent) > 3:
            sync.feed(sent[-3])  # a repeat of an old event
        if sync.state == "live":
            assert book_dicts(sync.book) == exch.history[sync.last_update_id]
    assert (sync.applied_direct > 0) == fast
    assert sync.gaps > 0 and sync.stale_dropped > 0


# ---- one continuity rule: the state machine's and the one-pass applier's agree ---------


def test_continuity_agrees_with_the_one_pass_applier():
    from hftcore.binance import APPLIED, GAP, STALE, _apply
    from hftcore.binance.sync import continuity
    from hftcore.book import L2Book

    lid = 20
    seen = set()
    for market in ("spot", "usdm"):
        for first in range(14, 25):
            for final in range(first, 27):
                for pu in (-1,) if market == "spot" else range(17, 23):
                    obj = {"e": "depthUpdate", "E": 5, "s": SYM, "U": first, "u": final,
                           "b": [["1.5", "2"]], "a": []}  # fmt: skip
                    if market == "usdm":
                        obj["pu"] = pu
                    book = L2Book()
                    got, _ = _apply.apply_depth_json_after(book, json.dumps(obj), lid, market)
                    want = continuity(market, first, final, pu, lid)
                    assert got == want, (market, first, final, pu)
                    assert len(book) == (1 if got == APPLIED else 0)
                    seen.add(got)
    assert seen == {APPLIED, STALE, GAP}


@pytest.mark.parametrize(
    ("first", "final", "verdict"),
    [(18, 22, "APPLIED"), (20, 20, "APPLIED"), (21, 25, "GAP"), (15, 19, "STALE")],
)
def test_continuity_usdm_bridge(first, final, verdict):
    # The first USD-M event after a snapshot of lastUpdateId 20: U <= 20 <= u applies;
    # an event that starts after 20 means the snapshot is too old (GAP: fetch again).
    from hftcore import binance
    from hftcore.binance.sync import continuity

    got = continuity("usdm", first, final, 3, 20, bridged=False)
    assert got == getattr(binance, verdict)
