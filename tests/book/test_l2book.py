"""L2Book against a plain dict-based reference book written here."""

import random
import re
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftcore.binance.records import DepthSnapshot
from hftcore.book import L2Book

E8 = 100_000_000


class RefBook:
    """Reference: a dict per side, the capacity rule stated plainly.

    When a new level arrives on a full side, the level furthest from the touch is dropped
    (or the new level itself, if it is the furthest); each such event counts one drop.
    """

    def __init__(self, max_levels):
        self.max_levels = max_levels
        self.sides = {0: {}, 1: {}}
        self.dropped = 0

    @staticmethod
    def furthest(side, prices):
        return min(prices) if side == 0 else max(prices)

    def update(self, side, price, qty):
        levels = self.sides[side]
        if qty == 0:
            levels.pop(price, None)
        elif price in levels or len(levels) < self.max_levels:
            levels[price] = qty
        else:
            self.dropped += 1
            worst = self.furthest(side, list(levels) + [price])
            if worst != price:
                del levels[worst]
                levels[price] = qty

    def depth(self, side, n=None):
        rows = sorted(self.sides[side].items(), reverse=(side == 0))
        return rows if n is None else rows[:n]

    def bbo(self):
        b = self.depth(0, 1)
        a = self.depth(1, 1)
        bp, bq = b[0] if b else (0, 0)
        ap, aq = a[0] if a else (0, 0)
        return (bp, bq, ap, aq)


def assert_same(book, ref, n=None):
    bids, asks = book.depth(n)
    assert [tuple(r) for r in bids.tolist()] == ref.depth(0, n)
    assert [tuple(r) for r in asks.tolist()] == ref.depth(1, n)
    assert book.bbo() == ref.bbo()
    assert book.dropped == ref.dropped
    assert book.bid_count == len(ref.sides[0])
    assert book.ask_count == len(ref.sides[1])
    assert len(book) == len(ref.sides[0]) + len(ref.sides[1])


def random_stream(rng, n, mid=10_000, spread=60, qty_zero=0.3):
    out = []
    for _ in range(n):
        side = rng.randrange(2)
        # Bids mostly below mid, asks mostly above, with some overlap near the touch.
        off = int(rng.expovariate(1 / 8)) % spread
        price = (mid - off if side == 0 else mid + off) * E8 // 100
        qty = 0 if rng.random() < qty_zero else rng.randrange(1, 10**9)
        out.append((side, price, qty))
    return out


@pytest.mark.parametrize("max_levels", [1, 2, 5, 17, 5000])
@pytest.mark.parametrize("seed", range(4))
def test_random_stream_matches_reference(max_levels, seed):
    rng = random.Random(seed * 1000 + max_levels)
    book = L2Book(max_levels=max_levels)
    ref = RefBook(max_levels)
    for i, (side, price, qty) in enumerate(random_stream(rng, 3000)):
        book.update(side, price, qty)
        ref.update(side, price, qty)
        if i % 97 == 0:
            assert_same(book, ref, n=rng.randrange(0, 12))
    assert_same(book, ref)
    assert book.updates == 3000
    if max_levels <= 5:
        assert book.dropped > 0  # the capacity rule was exercised


@pytest.mark.parametrize("max_levels", [3, 40])
def test_update_many_matches_reference(max_levels):
    rng = random.Random(max_levels)
    book = L2Book(max_levels=max_levels)
    ref = RefBook(max_levels)
    for _ in range(50):
        side = rng.randrange(2)
        batch = [(p, q) for _, p, q in random_stream(rng, rng.randrange(0, 80))]
        prices = np.array([p for p, _ in batch], dtype=np.int64)
        qtys = np.array([q for _, q in batch], dtype=np.int64)
        book.update_many(side, prices, qtys)
        for p, q in batch:
            ref.update(side, p, q)
        assert_same(book, ref)


levels_st = st.lists(
    st.tuples(st.integers(0, 1), st.integers(1, 40), st.integers(0, 3)), max_size=300
)


@settings(max_examples=300, deadline=None)
@given(max_levels=st.integers(1, 8), stream=levels_st)
def test_hypothesis_streams(max_levels, stream):
    book = L2Book(max_levels=max_levels)
    ref = RefBook(max_levels)
    for side, price, qty in stream:
        book.update(side, price, qty)
        ref.update(side, price, qty)
    assert_same(book, ref)


@settings(max_examples=200, deadline=None)
@given(
    max_levels=st.integers(1, 8),
    bids=st.lists(st.tuples(st.integers(1, 30), st.integers(0, 3)), max_size=20),
    asks=st.lists(st.tuples(st.integers(1, 30), st.integers(0, 3)), max_size=20),
    best_first=st.booleans(),
)
def test_hypothesis_snapshot(max_levels, bids, asks, best_first):
    if best_first:  # the REST order: unique prices, best first
        bids = sorted(dict(bids).items(), reverse=True)
        asks = sorted(dict(asks).items())
    book = L2Book(max_levels=max_levels)
    book.update(0, 999, 1)  # replaced by the snapshot
    book.update(1, 999, 1)
    ref = RefBook(max_levels)
    for p, q in bids:
        ref.update(0, p, q)
    for p, q in asks:
        ref.update(1, p, q)
    book.load_snapshot(np.array(bids, dtype=np.int64), np.array(asks, dtype=np.int64))
    assert_same(book, ref)


def test_remove_absent_level_is_noop():
    book = L2Book(max_levels=4)
    book.update("bid", 100, 0)
    book.update("ask", 100, 0)
    assert len(book) == 0
    book.update("bid", 100, 5)
    book.update("bid", 99, 0)
    book.update("bid", 101, 0)
    assert book.depth()[0].tolist() == [[100, 5]]
    assert book.dropped == 0


def test_bbo_and_depth_order():
    book = L2Book()
    for p, q in [(100, 1), (102, 2), (101, 3)]:
        book.update("b", p * E8, q)
    for p, q in [(105, 4), (103, 5), (104, 6)]:
        book.update("a", p * E8, q)
    assert book.bbo() == (102 * E8, 2, 103 * E8, 5)
    bids, asks = book.depth(2)
    assert bids.dtype == np.int64 and bids.shape == (2, 2)
    assert bids.tolist() == [[102 * E8, 2], [101 * E8, 3]]
    assert asks.tolist() == [[103 * E8, 5], [104 * E8, 6]]
    assert book.depth(0)[0].shape == (0, 2)
    assert book.depth(100)[1].shape == (3, 2)
    fb, fa = book.depth_float(1)
    assert fb.tolist() == [[102.0, 2e-8]] and fa.tolist() == [[103.0, 5e-8]]
    with pytest.raises(ValueError):
        book.depth(-1)


def test_empty_book():
    book = L2Book(max_levels=10)
    assert book.bbo() == (0, 0, 0, 0)
    assert not book.crossed
    assert len(book) == 0
    bids, asks = book.depth(5)
    assert bids.shape == (0, 2) and asks.shape == (0, 2)
    assert "levels 0 bids, 0 asks" in repr(book)


def test_crossed_and_locked():
    book = L2Book()
    book.update("bid", 100, 1)
    book.update("ask", 101, 1)
    assert not book.crossed
    book.update("bid", 101, 1)  # locked
    assert book.crossed
    book.update("bid", 101, 0)
    book.update("bid", 102, 1)  # crossed
    assert book.crossed
    book.update("bid", 102, 0)
    assert not book.crossed


@pytest.mark.parametrize(
    ("side", "expect"),
    [(0, 0), (1, 1), ("bid", 0), ("ask", 1), ("b", 0), ("a", 1), ("BID", 0), ("Ask", 1)],
)
def test_side_arguments(side, expect):
    book = L2Book()
    book.update(side, 100, 7)
    bids, asks = book.depth()
    assert (bids if expect == 0 else asks).tolist() == [[100, 7]]
    assert book.levels(side) == 1


@pytest.mark.parametrize("side", [2, -1, "x", "", None, True, 0.0])
def test_bad_side(side):
    with pytest.raises(ValueError, match="side"):
        L2Book().update(side, 100, 1)


def test_bad_values():
    book = L2Book()
    with pytest.raises(ValueError, match="negative"):
        book.update("bid", 100, -1)
    with pytest.raises(TypeError):
        book.update("bid", 100.5, 1)
    with pytest.raises(OverflowError):
        book.update("bid", 2**63, 1)
    with pytest.raises(ValueError, match="negative"):
        book.update_many("ask", [1, 2, 3], [1, -1, 1])
    assert len(book) == 0  # nothing applied from the rejected batch
    with pytest.raises(ValueError, match="rows"):
        book.update_many("ask", [1, 2], [1])
    with pytest.raises(TypeError):
        book.update_many("ask", [1.5], [1])
    with pytest.raises(ValueError, match="shape"):
        book.load_snapshot(np.zeros((2, 3), dtype=np.int64), [])
    with pytest.raises(ValueError, match="negative"):
        book.load_snapshot([[1, -2]], [])
    with pytest.raises(ValueError):
        L2Book(max_levels=0)


def test_capacity_drops_furthest_level():
    # Documented rule: a full side drops the level furthest from the touch.
    book = L2Book(max_levels=3)
    for p in (10, 11, 12):
        book.update("bid", p, 1)
    book.update("bid", 13, 1)  # better than all: 10 is dropped
    assert book.depth()[0][:, 0].tolist() == [13, 12, 11]
    assert book.dropped == 1
    book.update("bid", 5, 1)  # worse than every level of a full side: itself dropped
    assert book.depth()[0][:, 0].tolist() == [13, 12, 11]
    assert book.dropped == 2
    book.update("bid", 12, 9)  # existing level: no drop
    assert book.dropped == 2
    for p in (20, 21, 22):
        book.update("ask", p, 1)
    book.update("ask", 19, 1)  # better ask: 22 goes
    book.update("ask", 30, 1)  # worse than all: dropped
    assert book.depth()[1][:, 0].tolist() == [19, 20, 21]
    assert book.dropped == 4


@pytest.mark.parametrize("record", ["DepthSnapshot", "duck"])
def test_snapshot_record_and_capacity(record):
    # Any object with bids / asks attributes: the book imports no record class.
    bids = np.array([[105, 1], [104, 2], [103, 0], [102, 3], [101, 4]], dtype=np.int64)
    asks = np.array([[106, 5], [107, 6]], dtype=np.int64)
    if record == "DepthSnapshot":
        snap = DepthSnapshot(42, 0, 0, "X", bids, asks)
    else:
        snap = SimpleNamespace(bids=bids.tolist(), asks=asks)
    book = L2Book(max_levels=3)
    book.update("ask", 200, 1)
    book.load_snapshot(snap)
    # Best 3 non-zero bids kept; one more (101) counted as dropped.
    assert book.depth()[0].tolist() == [[105, 1], [104, 2], [102, 3]]
    assert book.depth()[1].tolist() == [[106, 5], [107, 6]]
    assert book.dropped == 1
    book.load_snapshot([], [])
    assert len(book) == 0
    with pytest.raises(TypeError):
        book.load_snapshot(bids)


def test_clear_and_repr():
    book = L2Book(max_levels=7)
    book.update("bid", 12_345_00000000, 150_000_000)
    book.update("ask", 12_346_50000000, 2 * E8)
    r = repr(book)
    assert "1.5 @ 12345" in r and "2 @ 12346.5" in r and "max 7" in r
    book.clear()
    assert len(book) == 0 and book.bbo() == (0, 0, 0, 0)


def test_deep_book_near_and_far_updates():
    # Exercises both the scan-from-touch and the binary-search paths.
    rng = random.Random(7)
    book = L2Book(max_levels=400)
    ref = RefBook(400)
    for _ in range(20000):
        side = rng.randrange(2)
        off = rng.randrange(0, 500) if rng.random() < 0.3 else rng.randrange(0, 10)
        price = 100_000 - off if side == 0 else 100_001 + off
        qty = 0 if rng.random() < 0.2 else rng.randrange(1, 100)
        book.update(side, price, qty)
        ref.update(side, price, qty)
    assert_same(book, ref)


def test_update_levels_rows():
    rng = random.Random(11)
    book = L2Book(max_levels=6)
    ref = RefBook(6)
    for _ in range(200):
        side = rng.randrange(2)
        rows = [(p, q) for _, p, q in random_stream(rng, rng.randrange(0, 10))]
        book.update_levels("bid" if side == 0 else "ask", np.array(rows, dtype=np.int64))
        for p, q in rows:
            ref.update(side, p, q)
    assert_same(book, ref)
    with pytest.raises(ValueError, match="negative"):
        book.update_levels("bid", [[1, 2], [3, -4]])


@pytest.mark.parametrize("max_levels", [10, 300, 5000])
def test_shuffled_snapshot_matches_reference(max_levels):
    # Unique prices in random order (the sorted path) and with repeats (in-order path).
    rng = random.Random(max_levels)
    for repeats in (False, True):
        prices = rng.sample(range(1, 10_000), 600)
        if repeats:
            prices += rng.sample(prices, 50)
        bids = [(p, rng.choice([0, 1, 2, 3])) for p in prices]
        asks = [(p + 10_000, rng.choice([0, 5])) for p in prices]
        book = L2Book(max_levels=max_levels)
        ref = RefBook(max_levels)
        for p, q in bids:
            ref.update(0, p, q)
        for p, q in asks:
            ref.update(1, p, q)
        book.load_snapshot(bids, asks)
        assert_same(book, ref)


def test_apply_depth_json_and_sbe_delegate():
    # The one-pass decoders (hftcore.binance._apply) behind the deprecated L2Book methods.
    from hftcore.binance.sbe_encode import encode_depth_diff

    book = L2Book(max_levels=10)
    book.update("bid", 100 * E8, 1)
    msg = (
        b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,'
        b'"b":[["100.0","0"],["99.5","2.25"]],"a":[["101","0.00000001"]]}'
    )
    with pytest.warns(DeprecationWarning):
        head = book.apply_depth_json(msg)
    assert (head.first_update_id, head.final_update_id) == (5, 7)
    assert book.depth()[0].tolist() == [[99_50000000, 2_25000000]]
    assert book.depth()[1].tolist() == [[101 * E8, 1]]
    sbe = encode_depth_diff(1, 8, 9, "BTCUSDT", [(99_50000000, 0)], [(102 * E8, 3)])
    with pytest.warns(DeprecationWarning):
        head = book.apply_depth_sbe(sbe)
    assert head.final_update_id == 9
    assert book.bid_count == 0
    assert book.depth()[1].tolist() == [[101 * E8, 1], [102 * E8, 3]]


def _level_text(v: int) -> str:
    whole, frac = divmod(v, E8)
    return f"{whole}.{frac:08d}"


@pytest.mark.parametrize("order", ["best_first", "worst_first", "shuffled"])
@pytest.mark.parametrize("max_levels", [3, 16, 5000])
def test_message_level_order_matches_reference(order, max_levels):
    # Each level's search starts where the previous level of its message landed
    # (Binance lists levels best first); any other order must give the same book.
    from hftcore.binance import apply_depth_json_many

    rng = random.Random(f"{order}-{max_levels}")
    book, ref = L2Book(max_levels=max_levels), RefBook(max_levels)
    lines = []
    for u in range(1, 400):
        sides = []
        for side in (0, 1):
            n = rng.randrange(0, 25)
            offs = sorted(rng.sample(range(1, 120), n))  # best first
            if order == "worst_first":
                offs.reverse()
            elif order == "shuffled":
                rng.shuffle(offs)
            rows = []
            for off in offs:
                price = (10_000 - off if side == 0 else 10_000 + off) * E8 // 100
                qty = 0 if rng.random() < 0.25 else rng.randrange(1, 10**9)
                rows.append((price, qty))
                ref.update(side, price, qty)
            sides.append(",".join(f'["{_level_text(p)}","{_level_text(q)}"]' for p, q in rows))
        lines.append(
            f'{{"e":"depthUpdate","E":1,"s":"X","U":{u},"u":{u},"b":[{sides[0]}],"a":[{sides[1]}]}}'
        )
    apply_depth_json_many(book, "\n".join(lines).encode())
    assert_same(book, ref)
    if max_levels == 3:
        assert book.dropped > 0


# -- implied decimals as data --------------------------------------------------------


def test_decimals_default_and_validation():
    book = L2Book(3)
    assert (book.price_decimals, book.qty_decimals) == (8, 8)
    for bad in ({"price_decimals": -1}, {"qty_decimals": 19}, {"price_decimals": 19}):
        with pytest.raises(ValueError, match="decimals"):
            L2Book(3, **bad)
    with pytest.raises(TypeError):
        L2Book(3, 4)  # keyword-only: never mistaken for a capacity
    with pytest.raises(AttributeError):
        book.price_decimals = 4
    edge = L2Book(3, price_decimals=0, qty_decimals=18)
    assert (edge.price_decimals, edge.qty_decimals) == (0, 18)


def test_decimals_float_views():
    # 4 price decimals (ITCH's scale) and whole-share quantities; values by hand.
    book = L2Book(10, price_decimals=4, qty_decimals=0)
    book.update("bid", 1_234_500, 300)  # 123.45 x 300
    book.update("bid", 1_234_499, 7)  # 123.4499 x 7
    book.update("ask", 1_234_600, 1)  # 123.46 x 1
    bids, asks = book.depth_float()
    assert bids.dtype == np.float64
    assert bids.tolist() == [[123.45, 300.0], [123.4499, 7.0]]
    assert asks.tolist() == [[123.46, 1.0]]
    b2, a2 = L2Book(10, price_decimals=2, qty_decimals=3), None
    b2.update("ask", 10_001, 2_500)  # 100.01 x 2.5
    _, a2 = b2.depth_float(1)
    assert a2.tolist() == [[100.01, 2.5]]
    # The default: both divided by 1e8, as before.
    d = L2Book(2)
    d.update("bid", 12_345_00000000, 150_000_000)
    assert d.depth_float()[0].tolist() == [[12345.0, 1.5]]


@pytest.mark.parametrize(
    ("price_decimals", "qty_decimals", "bid", "ask", "text"),
    [
        (4, 4, (1_234_500, 15_000), (1_234_601, 1), "bid 1.5 @ 123.45 | ask 0.0001 @ 123.4601"),
        (4, 0, (10_000, 300), (20_001, 5), "bid 300 @ 1 | ask 5 @ 2.0001"),
        (0, 2, (-7, 1), (42, 250), "bid 0.01 @ -7 | ask 2.5 @ 42"),
        (4, 8, (-5, 1), (1, 100_000_000), "bid 0.00000001 @ -0.0005 | ask 1 @ 0.0001"),
    ],
)
def test_decimals_repr(price_decimals, qty_decimals, bid, ask, text):
    book = L2Book(5, price_decimals=price_decimals, qty_decimals=qty_decimals)
    book.update("bid", *bid)
    book.update("ask", *ask)
    assert f"<L2Book {text}; levels 1 bids, 1 asks (max 5); dropped 0>" == repr(book)


def test_decimals_leave_updates_exact():
    # The scale only formats: the same integers give the same book at any scale.
    rng = random.Random(5)
    stream = random_stream(rng, 2000)
    books = [L2Book(20, price_decimals=d, qty_decimals=d) for d in (0, 4, 8)]
    for book in books:
        for side, price, qty in stream:
            book.update(side, price, qty)
    for book in books[1:]:
        for got, want in zip(book.depth(), books[0].depth(), strict=True):
            np.testing.assert_array_equal(got, want)
        assert (book.dropped, book.updates) == (books[0].dropped, books[0].updates)


# -- snapshots: plain arrays or any object with bids / asks --------------------------


class _Snap:
    """A snapshot record that is neither a NamedTuple nor a namespace."""

    def __init__(self, bids, asks):
        self._b, self._a = bids, asks

    @property
    def bids(self):
        return self._b

    @property
    def asks(self):
        return self._a


@pytest.mark.parametrize("form", ["lists", "arrays", "namespace", "properties"])
def test_load_snapshot_forms(form):
    bids = [[105, 1], [103, 2], [104, 0]]
    asks = [[107, 6], [106, 5]]
    book = L2Book(4)
    book.update("bid", 1, 1)  # replaced
    if form == "lists":
        book.load_snapshot(bids, asks)
    elif form == "arrays":
        book.load_snapshot(np.array(bids), np.array(asks, dtype=np.int64))
    elif form == "namespace":
        book.load_snapshot(SimpleNamespace(bids=bids, asks=np.array(asks)))
    else:
        book.load_snapshot(_Snap(bids, asks))
    assert book.depth()[0].tolist() == [[105, 1], [103, 2]]
    assert book.depth()[1].tolist() == [[106, 5], [107, 6]]
    assert book.updates == 1 + 5  # every snapshot row counts, zero quantities too
    with pytest.raises(TypeError, match="bids and asks"):
        book.load_snapshot(SimpleNamespace(bids=bids))
    with pytest.raises(TypeError, match="integers"):
        book.load_snapshot([[1.5, 1]], [])


def test_updates_count_every_row():
    book = L2Book(3)
    book.update_many("bid", [10, 11, 12, 13], [1, 0, 2, 3])
    book.update_levels("ask", [[20, 1], [21, 1]])
    book.update("ask", 20, 0)
    book.load_snapshot([[5, 1], [7, 1], [5, 2]], [[9, 1]])  # repeated price: in order
    assert book.updates == 4 + 2 + 1 + 4
    assert book.depth()[0].tolist() == [[7, 1], [5, 2]]
    book.update_many("bid", [], [])
    book.update_levels("bid", np.empty((0, 2), dtype=np.int64))
    assert book.updates == 11


# -- the deprecated Binance shims ------------------------------------------------------

_DIFF = (
    b'{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":7,'
    b'"b":[["100.5","2"]],"a":[["101","0.00000001"]]}'
)


def test_apply_depth_json_shim_warns_and_matches_function():
    from hftcore import binance

    book, want = L2Book(10), L2Book(10)
    with pytest.warns(
        DeprecationWarning, match=r"hftcore\.binance\.apply_depth_json\(book, msg\)"
    ) as rec:
        head = book.apply_depth_json(_DIFF)
    assert "removed in the next release" in str(rec[0].message)
    assert rec[0].filename == __file__  # points at the caller
    assert head == binance.apply_depth_json(want, _DIFF)
    np.testing.assert_array_equal(book.depth()[0], want.depth()[0])
    np.testing.assert_array_equal(book.depth()[1], want.depth()[1])


def test_apply_depth_sbe_shim_warns_and_matches_function():
    from hftcore import binance
    from hftcore.binance.sbe_encode import encode_depth_diff

    msg = encode_depth_diff(1, 8, 9, "BTCUSDT", [(99_50000000, 4)], [(102 * E8, 3)])
    book, want = L2Book(10), L2Book(10)
    with pytest.warns(
        DeprecationWarning, match=r"hftcore\.binance\.apply_depth_sbe\(book, msg\)"
    ) as rec:
        head = book.apply_depth_sbe(msg)
    assert rec[0].filename == __file__
    assert head == binance.apply_depth_sbe(want, msg)
    assert book.depth()[0].tolist() == want.depth()[0].tolist() == [[99_50000000, 4]]


def test_book_sources_import_no_exchange(repo):
    # book/ knows no exchange; the deprecated shims are the one marked exception.
    imports = re.compile(r"^\s*(from|import|cimport)\s+\S*binance", re.M)
    folder = repo / "hftcore" / "book"
    for name in ("__init__.py", "_l2book.pxd", "_l2book.pyi"):
        path = folder / name
        if path.exists():
            assert not imports.search(path.read_text()), name
    pyx = folder / "_l2book.pyx"
    text = pyx.read_text()
    start = text.index("# -- deprecated: the one call-time import")
    end = text.index("def __repr__", start)
    assert imports.search(text[start:end])  # the shims (this test finds imports)
    assert not imports.search(text[:start] + text[end:])
