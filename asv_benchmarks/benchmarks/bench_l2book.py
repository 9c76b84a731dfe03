"""L2Book: level updates near the touch and deep in a full book, batches, snapshot loads.

Every update stream leaves the book as it found it (each removal is followed by the
re-insert of the same level), so repeated timing runs measure the same work.
"""

import time

import numpy as np

E8 = 100_000_000
LEVELS = 5000  # a full Binance book side
MID = 50_000 * E8
TICK = E8 // 100
N_UPDATES = 20_000


def _full_book():
    from hftcore.book import L2Book

    book = L2Book(max_levels=LEVELS)
    k = np.arange(LEVELS, dtype=np.int64)
    qty = np.full(LEVELS, 3 * E8, dtype=np.int64)
    bids = np.column_stack([MID - k * TICK, qty])  # best first, as REST sends them
    asks = np.column_stack([MID + TICK + k * TICK, qty])
    book.load_snapshot(bids, asks)
    return book, bids, asks


def _stream(where, n=N_UPDATES, seed=1):
    """Bid updates as (prices, qtys): pairs of remove + re-insert, and quantity changes.

    ``where`` is "touch" (within 5 levels of the best bid) or "deep" (anywhere in the
    5000 levels, uniformly).
    """
    rng = np.random.default_rng(seed)
    span = 5 if where == "touch" else LEVELS
    depth = rng.integers(0, span, n // 2)
    prices = np.repeat(MID - depth * TICK, 2)
    qtys = np.empty(n // 2 * 2, dtype=np.int64)
    qtys[0::2] = 0  # remove
    qtys[1::2] = rng.integers(1, 10 * E8, n // 2)  # and put back
    return prices.astype(np.int64), qtys


class UpdateMany:
    """``update_many``: one nogil call applying ``N_UPDATES`` level updates."""

    params = ["touch", "deep"]
    param_names = ["where"]

    def setup(self, where):
        self.book, _, _ = _full_book()
        self.prices, self.qtys = _stream(where)

    def time_update_many(self, where):
        self.book.update_many(0, self.prices, self.qtys)

    def track_ns_per_update(self, where):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter_ns()
            self.book.update_many(0, self.prices, self.qtys)
            best = min(best, time.perf_counter_ns() - t0)
        return best / len(self.prices)

    track_ns_per_update.unit = "ns"


class UpdatePython:
    """``update`` called from Python once per level: the per-call overhead."""

    params = ["touch", "deep"]
    param_names = ["where"]

    def setup(self, where):
        self.book, _, _ = _full_book()
        prices, qtys = _stream(where, n=2000)
        self.rows = list(zip(prices.tolist(), qtys.tolist(), strict=True))

    def time_update(self, where):
        update = self.book.update
        for price, qty in self.rows:
            update(0, price, qty)


class Snapshot:
    """``load_snapshot`` of a full 5000 x 2 book in REST order, and shuffled."""

    params = ["rest_order", "shuffled"]
    param_names = ["order"]

    def setup(self, order):
        self.book, self.bids, self.asks = _full_book()
        if order == "shuffled":
            rng = np.random.default_rng(2)
            self.bids = self.bids[rng.permutation(LEVELS)]
            self.asks = self.asks[rng.permutation(LEVELS)]

    def time_load_snapshot(self, order):
        self.book.load_snapshot(self.bids, self.asks)


class Read:
    """``bbo`` and ``depth(20)``: what a strategy reads after each update."""

    def setup(self):
        self.book, _, _ = _full_book()

    def time_bbo(self):
        self.book.bbo()

    def time_depth_20(self):
        self.book.depth(20)


def _levels_json(rng, base, n=5):
    """``n`` JSON levels within 10 units above ``base``, 2 decimals (Binance text)."""
    whole = rng.integers(0, 10, n) + base
    cents = rng.integers(0, 100, n)
    qty = rng.integers(0, 3, n)
    return ",".join(
        f'["{w}.{c:02d}","{q}.5"]'
        for w, c, q in zip(whole.tolist(), cents.tolist(), qty.tolist(), strict=True)
    )


class SyncFeed:
    """``BookSync.feed`` of live raw JSON diffs (10 levels each, near the touch): the
    one-pass path (``fast_json``) against decode-to-record then apply."""

    params = [True, False]
    param_names = ["fast_json"]
    n_events = 2000

    def setup(self, fast_json):
        rng = np.random.default_rng(3)
        self.first = 1_000_001
        self.msgs = []
        for i in range(self.n_events):
            uid = self.first + i
            bids = _levels_json(rng, 49_990)
            asks = _levels_json(rng, 50_001)
            self.msgs.append(
                f'{{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":{uid},"u":{uid},'
                f'"b":[{bids}],"a":[{asks}]}}'.encode()
            )
        self.snapshot = (
            f'{{"lastUpdateId":{self.first},"bids":[["49990","1"]],"asks":[["50010","1"]]}}'
        ).encode()

    def _run(self, fast_json):
        from hftcore.binance.sync import BookSync

        sync = BookSync("BTCUSDT", snapshot=lambda: self.snapshot, fast_json=fast_json)
        for msg in self.msgs:
            sync.feed(msg)
        return sync

    def time_feed(self, fast_json):
        self._run(fast_json)

    def track_ns_per_event(self, fast_json):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter_ns()
            self._run(fast_json)
            best = min(best, time.perf_counter_ns() - t0)
        return best / self.n_events

    track_ns_per_event.unit = "ns"
