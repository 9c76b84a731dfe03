"""The order book against a plain reference book on generated days, and fuzzing."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftcore.errors import BookError, BookFull, DecodeError
from hftcore.itch import OrderBook, encode

from .reference_book import ReferenceBook, generate_day, message_offsets, parse


def _depth_rows(book, loc):
    return [(s.decode(), int(p), int(q), int(c)) for s, p, q, c in book.depth(loc, 10**6)]


def _assert_same(book, ref, locates):
    for loc in locates:
        assert _depth_rows(book, loc) == ref.depth(loc), f"stock_locate {loc}"
    assert book.live_orders == len(ref.orders)
    for order_ref, (loc, side, price, shares) in list(ref.orders.items())[:200]:
        rec = book.order(order_ref)
        assert (rec.stock_locate, rec.side, rec.price, rec.shares) == (loc, side, price, shares)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_depth_matches_reference_through_the_day(seed):
    buf, tickers = generate_day(messages=6000, symbols=6, seed=seed)
    offsets = message_offsets(buf)
    book = OrderBook(max_orders=10_000, max_levels=1_000, executions=True)
    ref = ReferenceBook()
    # Compare at several points in the stream, then at the end.
    cuts = sorted({0, *random.Random(seed).sample(range(len(offsets)), 6), len(offsets) - 1})
    for a, b in zip(cuts, cuts[1:], strict=False):
        part = buf[offsets[a] : offsets[b]]
        assert book.apply(part) == b - a
        assert book.consumed == len(part)
        ref.apply(part)
        _assert_same(book, ref, list(tickers))
    stats = book.stats()
    assert stats["anomalies"] == 0
    assert book.symbols == {t: loc for loc, t in tickers.items()}
    # Executions: same rows as the reference recorded.
    ex = book.drain_executions()
    got = [
        (int(r["seq"]), int(r["stock_locate"]), int(r["order_ref"]), r["side"].decode(),
         int(r["price"]), int(r["shares"]), int(r["match_number"]))
        for r in ex
    ]  # fmt: skip
    assert got == ref.executions


def test_queue_order_matches_reference():
    buf, tickers = generate_day(messages=4000, symbols=3, seed=11)
    book = OrderBook(max_orders=10_000, max_levels=1_000)
    book.apply(buf)
    ref = ReferenceBook()
    ref.apply(buf)
    for (loc, side), levels in ref.levels.items():
        for price, refs in levels.items():
            q = book.orders_at(loc, side, price)
            assert q["order_ref"].tolist() == refs
            shares = [ref.orders[r][3] for r in refs]
            assert q["shares"].tolist() == shares
            for i, r in enumerate(refs):
                pos = book.queue_position(r)
                assert (pos.orders_ahead, pos.shares_ahead) == (i, sum(shares[:i]))


def test_symbols_restriction_gives_the_same_books():
    buf, tickers = generate_day(messages=5000, symbols=6, seed=5)
    full = OrderBook(max_orders=10_000, max_levels=1_000)
    full.apply(buf)
    some = OrderBook(max_orders=10_000, max_levels=1_000, symbols=[tickers[2], 5])
    assert some.apply(buf) == full.seq
    for loc in tickers:
        if loc in (2, 5):
            assert _depth_rows(some, loc) == _depth_rows(full, loc)
        else:
            assert len(some.depth(loc)) == 0
    assert set(some.symbols) == {tickers[2], tickers[5]}
    assert some.stats()["anomalies"] == 0


def test_apply_in_chunks_split_at_every_offset_equals_one_apply():
    buf, tickers = generate_day(messages=300, symbols=3, seed=9)
    whole = OrderBook(max_orders=1_000, max_levels=500, bbo=True)
    whole.apply(buf)
    want = {loc: _depth_rows(whole, loc) for loc in tickers}
    want_bbo = whole.drain_bbo()
    for cut in range(len(buf) + 1):
        book = OrderBook(max_orders=1_000, max_levels=500, bbo=True)
        n1 = book.apply(buf[:cut])
        rest = buf[book.consumed :]
        n2 = book.apply(rest)
        assert book.consumed == len(rest)
        assert n1 + n2 == whole.seq
        assert {loc: _depth_rows(book, loc) for loc in tickers} == want
        assert np.array_equal(book.drain_bbo(), want_bbo)


def test_bbo_events_follow_the_top_of_book():
    buf, tickers = generate_day(messages=3000, symbols=4, seed=21)
    book = OrderBook(max_orders=10_000, max_levels=1_000, bbo=True)
    ref = ReferenceBook()
    expected = []
    last = {}
    for t, f in parse(buf):
        ref.apply_one(t, f)
        if t in "AFECXDU":
            loc = f[0]  # the header's stock_locate
            d = ref.depth(loc, 1)
            bid = next(((p, q) for s, p, q, _ in d if s == "B"), (0, 0))
            ask = next(((p, q) for s, p, q, _ in d if s == "S"), (0, 0))
            top = (*bid, *ask)
            if last.get(loc, (0, 0, 0, 0)) != top:
                expected.append((ref.seq, loc, *top))
                last[loc] = top
        ref.seq += 1
    book.apply(buf)
    got = book.drain_bbo()
    rows = [
        (int(r["seq"]), int(r["stock_locate"]), int(r["bid_price"]), int(r["bid_shares"]),
         int(r["ask_price"]), int(r["ask_shares"]))
        for r in got
    ]  # fmt: skip
    assert rows == expected
    assert len(book.drain_bbo()) == 0  # drained


def test_book_full_on_a_generated_day_is_clean():
    buf, _ = generate_day(messages=3000, symbols=3, seed=4)
    book = OrderBook(max_orders=20, max_levels=1_000)
    with pytest.raises(BookFull, match="max_orders"):
        book.apply(buf)
    assert book.live_orders == 20


# ---------------------------------------------------------------- fuzzing

_DAY, _ = generate_day(messages=800, symbols=3, seed=77)


def _apply_all(buf, **kw):
    book = OrderBook(max_orders=2_000, max_levels=1_000, bbo=True, executions=True, **kw)
    try:
        book.apply(buf)
    except (DecodeError, BookError, BookFull):
        pass
    # The book must still answer queries consistently afterwards.
    for loc in range(0, 5):
        d = book.depth(loc, 50)
        assert (d["orders"] > 0).all()
    book.drain_bbo()
    book.drain_executions()
    return book


def test_fuzz_mutations_and_truncations():
    rng = random.Random(1234)
    data = bytearray(_DAY)
    for _ in range(1500):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        if rng.random() < 0.3:
            buf = buf[: rng.randrange(len(buf))]
        _apply_all(bytes(buf), strict=rng.random() < 0.3)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data):
    _apply_all(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("AFEXCDUPQBRH"), max_size=40), st.integers(0, 2**32))
def test_fuzz_valid_framing_random_references(types, seed):
    rng = random.Random(seed)
    parts = []
    for t in types:
        f = {"stock_locate": rng.randint(0, 3), "timestamp": rng.randint(0, 10**9)}
        ref = rng.randint(0, 6)
        if t in "AF":
            f |= {"order_ref": ref, "side": rng.choice("BS"), "shares": rng.randint(0, 9)}
            f |= {"price": rng.randint(0, 5)}
        elif t in "EXC":
            key = "cancelled_shares" if t == "X" else "executed_shares"
            f |= {"order_ref": ref, key: rng.randint(0, 12)}
        elif t == "D":
            f |= {"order_ref": ref}
        elif t == "U":
            f |= {"original_order_ref": ref, "new_order_ref": rng.randint(0, 6)}
            f |= {"shares": rng.randint(0, 9), "price": rng.randint(0, 5)}
        parts.append(encode(t, **f))
    buf = b"".join(parts)
    book = _apply_all(buf)
    ref = ReferenceBook()
    ref.apply(buf)
    for loc in range(4):
        assert _depth_rows(book, loc) == ref.depth(loc)
    stats = book.stats()
    for k in ("unknown_order", "duplicate_order", "overfill", "overcancel", "crossed"):
        assert stats[k] == ref.anomalies[k], k


def test_colliding_order_refs_in_a_small_table():
    # Refs that share low bits, dense blocks and huge values all land in a table of a few
    # hundred buckets: probe runs, wrap-around and delete back-shifts get exercised.
    rng = random.Random(3)
    refs = (
        [i << 20 for i in range(60)] + list(range(5000, 5150)) + [2**64 - 1 - i for i in range(40)]
    )
    rng.shuffle(refs)
    parts, live = [], []
    for ref in refs:
        side = rng.choice("BS")
        price = rng.randint(1, 20) * 100 if side == "B" else rng.randint(21, 40) * 100
        parts.append(encode("A", stock_locate=1, order_ref=ref, side=side, shares=100, price=price))
        live.append(ref)
        if rng.random() < 0.4:
            victim = live.pop(rng.randrange(len(live)))
            parts.append(encode("D", stock_locate=1, order_ref=victim))
        if rng.random() < 0.2 and live:
            i = rng.randrange(len(live))
            new = live[i] ^ (1 << 40)
            parts.append(
                encode(
                    "U",
                    stock_locate=1,
                    original_order_ref=live[i],
                    new_order_ref=new,
                    shares=7,
                    price=price,
                )
            )
            live[i] = new
    buf = b"".join(parts)
    book = OrderBook(max_orders=len(refs), max_levels=100)
    book.apply(buf)
    ref = ReferenceBook()
    ref.apply(buf)
    assert _depth_rows(book, 1) == ref.depth(1)
    assert sorted(r for r in ref.orders) == sorted(live)
    for r in live:
        assert book.order(r).order_ref == r
    stats = book.stats()
    assert stats["unknown_order"] == stats["duplicate_order"] == 0
    assert stats["crossed"] == ref.anomalies["crossed"]  # U may move a bid above the asks


@pytest.mark.parametrize("seed", [0, 7])
def test_sim_day_matches_reference_with_a_tight_order_store(seed):
    from hftcore.sim.itch import generate

    buf = generate(messages=40_000, symbols=40, seed=seed)
    offsets = message_offsets(buf)
    ref = ReferenceBook()
    peak = 0
    for t, f in parse(buf):
        ref.apply_one(t, f)
        ref.seq += 1
        peak = max(peak, len(ref.orders))
    # A store exactly as large as the peak: the hash table is as full as it gets.
    book = OrderBook(max_orders=peak, max_levels=20_000)
    ref2 = ReferenceBook()
    cuts = [0, len(offsets) // 3, 2 * len(offsets) // 3, len(offsets) - 1]
    for a, b in zip(cuts, cuts[1:], strict=False):
        part = buf[offsets[a] : offsets[b]]
        book.apply(part)
        ref2.apply(part)
        _assert_same(book, ref2, ref2.locates())
    assert book.stats()["anomalies"] == 0
    assert book.stats()["peak_orders"] == peak


def _ref_pattern_stream(rng, next_ref_fn, n_ops):
    """Adds with refs from ``next_ref_fn``; deletes, executions and replaces of random
    live orders (old ones too): the order_ref window, its slides and the hash behind it."""
    parts, live = [], []
    for _ in range(n_ops):
        r = rng.random()
        if not live or (r < 0.5 and len(live) < 150):  # at most 150 live: max_orders=200
            ref = next_ref_fn()
            if ref in live:
                continue
            side = rng.choice("BS")
            price = rng.randint(1, 20) * 100 if side == "B" else rng.randint(21, 40) * 100
            parts.append(
                encode("A", stock_locate=1, order_ref=ref, side=side, shares=100, price=price)
            )
            live.append(ref)
            continue
        i = rng.randrange(len(live))
        if r < 0.7:
            parts.append(encode("D", stock_locate=1, order_ref=live.pop(i)))
        elif r < 0.85:
            parts.append(
                encode("E", stock_locate=1, order_ref=live[i], executed_shares=30, match_number=1)
            )
        else:
            new = next_ref_fn()
            if new in live:
                continue
            side = rng.choice("BS")
            price = rng.randint(1, 20) * 100 if side == "B" else rng.randint(21, 40) * 100
            parts.append(
                encode("U", stock_locate=1, original_order_ref=live[i], new_order_ref=new,
                       shares=50, price=price)
            )  # fmt: skip
            live[i] = new
    return b"".join(parts), live


@pytest.mark.parametrize("pattern", ["dense", "gaps", "jumps", "behind", "top", "mixed"])
def test_order_ref_window_patterns_match_reference(pattern):
    # max_orders=200 gives a window of 1024 refs: long-lived orders leave it for the hash,
    # jumps slide it past every entry, refs below it and near 2**64 go to the hash, and a
    # stream of far jumps exhausts the slide credit and switches the window off.
    rng = random.Random(pattern)
    state = {"ref": 1}

    def nxt():
        if pattern == "dense":
            state["ref"] += 1
        elif pattern == "gaps":
            state["ref"] += rng.choice([1, 3, 40, 300])
        elif pattern == "jumps":
            state["ref"] += rng.choice([1, 1, 1, 5000])
        elif pattern == "behind":
            state["ref"] += 1
            if rng.random() < 0.3:
                return rng.randrange(1, state["ref"]) + 10**9  # around a far base
            return state["ref"] + 10**9 + 5000
        elif pattern == "top":
            return 2**64 - 1 - rng.randrange(3000)
        else:
            state["ref"] += rng.choice([1, 1, 2**20, 2**40])
            state["ref"] %= 2**64
        return state["ref"]

    buf, live = _ref_pattern_stream(rng, nxt, 6000)
    book = OrderBook(max_orders=200, max_levels=100)
    ref = ReferenceBook()
    offsets = message_offsets(buf)
    for a, b in zip([0, len(offsets) // 2], [len(offsets) // 2, len(offsets) - 1], strict=True):
        part = buf[offsets[a] : offsets[b]]
        book.apply(part)
        ref.apply(part)
        assert _depth_rows(book, 1) == ref.depth(1)
        assert book.live_orders == len(ref.orders)
        for r, (_, side, price, shares) in ref.orders.items():
            rec = book.order(r)
            assert (rec.side, rec.price, rec.shares) == (side, price, shares), r
    stats = book.stats()
    for k in ("unknown_order", "duplicate_order", "overfill"):
        assert stats[k] == ref.anomalies[k], k
    if pattern == "dense":
        assert stats["ref_window"] == 1024
    if pattern == "mixed":
        assert stats["ref_window"] == 0
