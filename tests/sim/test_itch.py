"""Synthetic ITCH days, checked by an independent pure-Python walker (struct, no hftcore)."""

import gzip
import struct
from collections import Counter

import pytest

from hftcore.sim import itch as simitch

# Body layouts after the 11-byte header, restated from the ITCH 5.0 specification.
BODY = {
    "S": "c", "R": "8sccIcc2scccccIc", "H": "8scc4s", "Y": "8sc", "L": "4s8sccc",
    "V": "QQQ", "W": "c", "K": "8sIcI", "J": "8sIIII", "h": "8scc", "A": "QcI8sI",
    "F": "QcI8sI4s", "E": "QIQ", "C": "QIQcI", "X": "QI", "D": "Q", "U": "QQII",
    "P": "QcI8sIQ", "Q": "Q8sIQc", "B": "Q", "I": "QQc8sIIIcc", "N": "8sc",
    "O": "8scIIIQII",
}  # fmt: skip
LENGTHS = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
    "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
    "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48,
}  # fmt: skip


def walk(buf):
    """Yield (type, stock_locate, timestamp, body fields) for each framed message."""
    pos = 0
    while pos < len(buf):
        assert pos + 2 <= len(buf), f"truncated length prefix at {pos}"
        (n,) = struct.unpack_from(">H", buf, pos)
        t = chr(buf[pos + 2])
        assert t in LENGTHS, f"unknown type {t!r} at {pos}"
        assert n == LENGTHS[t], f"type {t} length {n} at {pos}"
        assert pos + 2 + n <= len(buf), f"truncated message at {pos}"
        locate, _tracking = struct.unpack_from(">HH", buf, pos + 3)
        ts = int.from_bytes(buf[pos + 7 : pos + 13], "big")
        fields = struct.unpack_from(">" + BODY[t], buf, pos + 13)
        yield t, locate, ts, fields
        pos += 2 + n


def check_day(buf):
    """Assert every documented invariant; return the per-type counts."""
    counts = Counter()
    symbols = {}  # stock_locate -> stock
    live = {}  # order_ref -> [locate, side, shares, price]
    book = {}  # (locate, side) -> {price: {order_ref: None}} (queues in time priority)
    last_ts = 0
    last_ref = 0
    last_match = 0

    def book_add(loc, side, price, ref):
        book.setdefault((loc, side), {}).setdefault(price, {})[ref] = None

    def book_remove(loc, side, price, ref):
        levels = book[(loc, side)]
        del levels[price][ref]
        if not levels[price]:
            del levels[price]

    def assert_no_cross(loc, side, price):
        if side == b"B":
            asks = book.get((loc, b"S"))
            assert not asks or price < min(asks), (loc, price, min(asks))
        else:
            assert side == b"S"
            bids = book.get((loc, b"B"))
            assert not bids or price > max(bids), (loc, price, max(bids))

    def assert_price(price):
        assert price > 0 and price % 100 == 0, price

    def new_ref(ref):
        nonlocal last_ref
        assert ref > last_ref, (ref, last_ref)
        last_ref = ref

    def new_match(m):
        nonlocal last_match
        assert m > last_match
        last_match = m

    for t, loc, ts, f in walk(buf):
        counts[t] += 1
        assert ts >= last_ts, (t, ts, last_ts)
        last_ts = ts
        if t == "R":
            assert loc not in symbols and f[0] not in symbols.values()
            assert f[0] == f[0].rstrip(b" ").ljust(8) and f[0].strip().isalpha()
            symbols[loc] = f[0]
        elif t in "HYKJhNO":
            assert symbols[loc] == f[0]
        elif t in "AF":
            ref, side, shares, stock, price = f[:5]
            assert symbols[loc] == stock
            assert shares > 0
            assert_price(price)
            new_ref(ref)
            assert_no_cross(loc, side, price)
            live[ref] = [loc, side, shares, price]
            book_add(loc, side, price, ref)
        elif t in "ECXDU":
            ref = f[0]
            assert ref in live, f"{t} references order {ref} that is not live"
            o = live[ref]
            assert o[0] == loc
            if t in "EC":
                assert 0 < f[1] <= o[2], (t, f[1], o[2])
                # executions hit the front of the queue at the best bid or ask
                levels = book[(loc, o[1])]
                best = max(levels) if o[1] == b"B" else min(levels)
                assert o[3] == best, (t, ref, o[3], best)
                assert next(iter(levels[best])) == ref, (t, ref)
                new_match(f[2])
                if t == "C":
                    assert f[3] in (b"Y", b"N")
                    assert_price(f[4])
                o[2] -= f[1]
            elif t == "X":
                assert 0 < f[1] < o[2], (f[1], o[2])
                o[2] -= f[1]
            if t in "DU" or o[2] == 0:
                del live[ref]
                book_remove(loc, o[1], o[3], ref)
            if t == "U":
                _, new, shares, price = f
                new_ref(new)
                assert shares > 0
                assert_price(price)
                assert_no_cross(loc, o[1], price)
                live[new] = [loc, o[1], shares, price]
                book_add(loc, o[1], price, new)
        elif t == "P":
            assert f[0] == 0 and symbols[loc] == f[3] and f[2] > 0
            assert_price(f[4])
            new_match(f[5])
        elif t == "Q":
            assert symbols[loc] == f[1]
            assert_price(f[2])
            new_match(f[3])
        elif t == "B":
            assert 0 < f[0] <= last_match
        elif t == "I":
            assert symbols[loc] == f[3]
    return counts, symbols, live


@pytest.fixture(scope="module")
def day():
    return simitch.generate(messages=50_000, symbols=300, seed=7)


def test_invariants_hold_over_a_day(day):
    counts, symbols, live = check_day(day)
    assert sum(counts.values()) == 50_000
    assert len(symbols) == 300 and sorted(symbols) == list(range(1, 301))
    assert set(counts) == set(LENGTHS), set(LENGTHS) - set(counts)
    bulk = sum(counts[t] for t in "AFDUECXPB")
    # a realistic mix: adds ~45%, deletes ~40% of the order flow
    assert 0.38 < (counts["A"] + counts["F"]) / bulk < 0.52
    assert 0.33 < counts["D"] / bulk < 0.47
    assert live  # orders still rest at the end of the day


def test_day_shape(day):
    msgs = list(walk(day))
    assert msgs[0][0] == "S" and msgs[0][3] == (b"O",)
    events = [m[3][0] for m in msgs if m[0] == "S"]
    assert events == [b"O", b"S", b"Q", b"M", b"E", b"C"]
    assert msgs[-1][0] == "S" and msgs[-1][3] == (b"C",)
    hours = [m[2] / 3.6e12 for m in msgs]
    assert 3.9 < hours[0] and hours[-1] < 20.2
    flow = [h for m, h in zip(msgs, hours, strict=True) if m[0] in "AFDUECX"]
    regular = sum(9.5 <= h < 16 for h in flow) / len(flow)
    assert regular > 0.85


def test_activity_is_skewed(day):
    per_symbol = Counter(loc for t, loc, _, _ in walk(day) if t in "AF")
    top = sum(c for _, c in per_symbol.most_common(30))  # 10% of the symbols
    assert top / sum(per_symbol.values()) > 0.5


def test_other_seeds_and_sizes_keep_invariants():
    for seed, messages, symbols in ((1, 20_000, 40), (2, 30_000, 1), (3, 5_000, 900)):
        counts, symbols_seen, _ = check_day(simitch.generate(messages, symbols, seed))
        assert len(symbols_seen) == symbols


def test_reproducible(day):
    assert simitch.generate(messages=50_000, symbols=300, seed=7) == day
    assert simitch.generate(messages=50_000, symbols=300, seed=8) != day


def test_tiny_day_is_the_schedule():
    buf = simitch.generate(messages=0, symbols=3, seed=0)
    counts, symbols, live = check_day(buf)
    assert counts["R"] == 3 and not live and counts["A"] == 0


def test_write_day_equals_generate(tmp_path):
    want = simitch.generate(messages=30_000, symbols=100, seed=5)
    seen = []
    out = simitch.write_day(
        tmp_path / "d.itch", messages=30_000, symbols=100, seed=5,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert (tmp_path / "d.itch").read_bytes() == want
    assert out.messages == 30_000 and out.bytes == len(want) and out.symbols == 100
    assert seen[-1] == (30_000, 30_000)
    out = simitch.write_day(tmp_path / "d.itch.gz", messages=30_000, symbols=100, seed=5)
    gz = (tmp_path / "d.itch.gz").read_bytes()
    assert gzip.decompress(gz) == want
    simitch.write_day(tmp_path / "e.itch.gz", messages=30_000, symbols=100, seed=5)
    assert (tmp_path / "e.itch.gz").read_bytes() == gz  # reproducible compressed bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.itch", "d.itch.gz", "e.itch.gz"]


def test_interrupted_write_leaves_no_file(tmp_path):
    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simitch.write_day(tmp_path / "d.itch", messages=30_000, symbols=10, progress=stop)
    assert list(tmp_path.iterdir()) == []


def test_chunking_does_not_change_bytes():
    want = simitch.generate(messages=10_000, symbols=20, seed=3)
    gen, total, _ = simitch._plan(10_000, 20, 3)
    got = b"".join(bytes(c) for c in simitch._chunks(gen, total, None, chunk_bytes=64))
    assert got == want


def test_bad_arguments():
    with pytest.raises(ValueError, match="symbols"):
        simitch.generate(messages=10, symbols=0)
    with pytest.raises(ValueError, match="symbols"):
        simitch.generate(messages=10, symbols=70_000)
    with pytest.raises(ValueError, match="messages"):
        simitch.generate(messages=-1)
