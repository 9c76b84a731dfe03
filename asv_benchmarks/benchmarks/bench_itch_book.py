"""asv benchmarks of the ITCH L3 order book (hftcore.itch.OrderBook).

Inputs are synthetic days from ``hftcore.sim.itch.generate`` (day-shaped: Zipf-like
activity over symbols, most removals close to the touch), plus a cache-hostile stress day
built below, where executions and cancels pick uniformly among a symbol's live orders and
the book builds up to about a quarter of the message count.
"""

import random

import numpy as np

from hftcore.itch import OrderBook, encode_stream, spec

_CACHE = {}


def _rows_to_stream(rows):
    tables = {}
    for t, items in rows.items():
        if not items:
            continue
        arr = np.zeros(len(items), dtype=spec.dtype(t))
        cols = list(zip(*items, strict=True))
        names = _COLUMNS[t]
        for name, col in zip(names, cols, strict=True):
            arr[name] = col
        tables[t] = arr
    return encode_stream(tables)


_COLUMNS = {
    "R": ("seq", "stock_locate", "stock"),
    "A": ("seq", "stock_locate", "timestamp", "order_ref", "side", "shares", "price"),
    "E": ("seq", "stock_locate", "timestamp", "order_ref", "executed_shares", "match_number"),
    "X": ("seq", "stock_locate", "timestamp", "order_ref", "cancelled_shares"),
    "D": ("seq", "stock_locate", "timestamp", "order_ref"),
    "U": ("seq", "stock_locate", "timestamp", "original_order_ref", "new_order_ref", "shares",
          "price"),
}  # fmt: skip


def day(messages, symbols, seed=0):
    """A synthetic ITCH day of ``messages`` messages over ``symbols`` stocks (bytes)."""
    from hftcore.sim.itch import generate

    key = ("sim", messages, symbols, seed)
    if key not in _CACHE:
        _CACHE[key] = generate(messages=messages, symbols=symbols, seed=seed)
    return _CACHE[key]


def stress_day(messages, symbols, seed=0):
    """The cache-hostile stress day (bytes), see the module docstring."""
    key = ("stress", messages, symbols, seed)
    if key not in _CACHE:
        _CACHE[key] = _stress_day(messages, symbols, seed)
    return _CACHE[key]


def _stress_day(messages, symbols, seed):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, symbols + 1)
    picks = nrng.choice(symbols, size=messages, p=weights / weights.sum()) + 1
    rolls = nrng.random(messages)
    rows = {t: [] for t in _COLUMNS}
    for loc in range(1, symbols + 1):
        rows["R"].append((len(rows["R"]), loc, f"T{loc:05d}"))
    seq = symbols
    live = {loc: [] for loc in range(1, symbols + 1)}  # refs, swap-removed
    info = {}  # ref -> [side, price, shares]
    mid = {loc: 10_0000 + 50 * loc for loc in range(1, symbols + 1)}
    next_ref = 1
    ts = 14_400_000_000_000
    match = 1
    for i in range(messages - symbols):
        loc = int(picks[i])
        r = float(rolls[i])
        ts += 1000
        book = live[loc]
        # Early in the day the book builds up; later adds and removals balance.
        p_add = 0.7 if i < messages // 5 else 0.48
        if r < p_add or not book:
            side = "B" if rng.random() < 0.5 else "S"
            ticks = rng.randint(1, 40)
            price = mid[loc] - ticks * 100 if side == "B" else mid[loc] + (ticks - 1) * 100
            shares = rng.choice((100, 100, 200, 300, 500, 1000, rng.randint(1, 3000)))
            rows["A"].append((seq, loc, ts, next_ref, side, shares, price))
            info[next_ref] = [side, price, shares]
            book.append(next_ref)
            next_ref += 1
            seq += 1
            continue
        j = rng.randrange(len(book))
        ref = book[j]
        side, price, shares = info[ref]
        q = (r - p_add) / (1 - p_add)
        if q < 0.6:
            rows["D"].append((seq, loc, ts, ref))
            shares = 0
        elif q < 0.75:
            n = rng.randint(1, shares)
            rows["E"].append((seq, loc, ts, ref, n, match))
            match += 1
            shares -= n
        elif q < 0.85:
            n = rng.randint(1, shares)
            rows["X"].append((seq, loc, ts, ref, n))
            shares -= n
        else:
            ticks = rng.randint(1, 40)
            price = mid[loc] - ticks * 100 if side == "B" else mid[loc] + (ticks - 1) * 100
            shares = rng.choice((100, 200, 300, 500))
            rows["U"].append((seq, loc, ts, ref, next_ref, shares, price))
            del info[ref]
            info[next_ref] = [side, price, shares]
            book[j] = next_ref
            next_ref += 1
            seq += 1
            continue
        seq += 1
        if shares == 0:
            del info[ref]
            book[j] = book[-1]
            book.pop()
        else:
            info[ref][2] = shares
    return _rows_to_stream(rows)


def _build(buf):
    book = OrderBook(max_orders=4_000_000, max_levels=1_000_000)
    book.apply(buf)
    return book


def _msgs_per_second(buf, **kw):
    import time

    runs = []
    for _ in range(5):
        book = OrderBook(**kw)
        t0 = time.perf_counter()
        n = book.apply(buf)
        runs.append(n / (time.perf_counter() - t0))
    return float(np.median(runs))


class BuildDay:
    """Build every symbol's book from a day-shaped file (3000 symbols)."""

    params = [[1_000_000, 5_000_000]]
    param_names = ["messages"]
    timeout = 600

    def setup(self, messages):
        self.buf = day(messages, 3000, seed=1)

    def time_build(self, messages):
        _build(self.buf)

    def track_msgs_per_second(self, messages):
        return _msgs_per_second(self.buf, max_orders=4_000_000, max_levels=1_000_000)

    track_msgs_per_second.unit = "messages/s"

    def peakmem_build(self, messages):
        _build(self.buf)


class StressDay:
    """Uniformly random references into a book of ~500k orders: memory latency bound."""

    timeout = 600

    def setup(self):
        self.buf = stress_day(2_000_000, 3000, seed=1)

    def time_build(self):
        _build(self.buf)

    def track_msgs_per_second(self):
        return _msgs_per_second(self.buf, max_orders=4_000_000, max_levels=1_000_000)

    track_msgs_per_second.unit = "messages/s"

    def peakmem_build(self):
        _build(self.buf)


class SmallFile:
    """A small 50-symbol file: the per-message cost when everything is in cache."""

    def setup(self):
        self.buf = day(1_000_000, 50, seed=2)

    def time_apply(self):
        book = OrderBook(max_orders=1_000_000, max_levels=100_000)
        book.apply(self.buf)

    def track_msgs_per_second(self):
        return _msgs_per_second(self.buf, max_orders=1_000_000, max_levels=100_000)

    track_msgs_per_second.unit = "messages/s"


class EventTables:
    """The cost of recording top-of-book changes and executions."""

    def setup(self):
        self.buf = day(1_000_000, 50, seed=2)

    def time_apply_with_events(self):
        book = OrderBook(max_orders=1_000_000, max_levels=100_000, bbo=True, executions=True)
        book.apply(self.buf)
        book.drain_bbo()
        book.drain_executions()
