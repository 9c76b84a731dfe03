"""A plain, independent ITCH 5.0 order book for tests, and a small consistent day generator.

The reference book parses the wire with :mod:`struct` (not hftcore's decoder) and keeps
its state in dicts and lists, written for obviousness, not speed. The generator builds a
random but internally consistent stream (every E/C/X/D/U names a live order, adds never
cross) with :func:`hftcore.itch.encode_stream`.
"""

from __future__ import annotations

import random
import struct
from collections import defaultdict

import numpy as np

from hftcore.itch import encode_stream, spec

# Body layouts after the 1-byte type, from NASDAQ's TotalView-ITCH 5.0 specification:
# stock_locate, tracking_number, timestamp (6 bytes), then the type's own fields.
_HEAD = ">HH6s"
_FORMATS = {
    "R": _HEAD + "8s" + "ccIcc2sccccIc",
    "H": _HEAD + "8scc4s",
    "h": _HEAD + "8scc",
    "A": _HEAD + "QcI8sI",
    "F": _HEAD + "QcI8sI4s",
    "E": _HEAD + "QIQ",
    "C": _HEAD + "QIQcI",
    "X": _HEAD + "QI",
    "D": _HEAD + "Q",
    "U": _HEAD + "QQII",
    "P": _HEAD + "QcI8sIQ",
    "Q": _HEAD + "Q8sIQc",
    "B": _HEAD + "Q",
}
_LENGTHS = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
    "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
    "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48,
}  # fmt: skip


def parse(buf):
    """Yield ``(type, fields tuple)`` for every framed message of ``buf``; fields start
    with stock_locate, tracking_number, timestamp (int)."""
    pos = 0
    while pos + 2 <= len(buf):
        (n,) = struct.unpack_from(">H", buf, pos)
        if n == 0:
            return
        body = bytes(buf[pos + 2 : pos + 2 + n])
        assert len(body) == n, "truncated"
        t = chr(body[0])
        assert _LENGTHS.get(t, n) == n, f"bad length {n} for {t!r}"
        fmt = _FORMATS.get(t)
        if fmt is None:
            yield t, None
        else:
            vals = list(struct.unpack(fmt, body[1 : 1 + struct.calcsize(fmt)]))
            vals[2] = int.from_bytes(vals[2], "big")
            yield t, tuple(vals)
        pos += 2 + n


class ReferenceBook:
    """Every order of every stock in dicts; price levels are lists of order refs (FIFO)."""

    def __init__(self):
        self.orders = {}  # order_ref -> [stock_locate, side, price, shares]
        self.levels = defaultdict(dict)  # (stock_locate, side) -> {price: [order_ref, ...]}
        self.anomalies = defaultdict(int)
        self.executions = []  # (seq, stock_locate, order_ref, side, price, shares, match)
        self.seq = 0

    def _remove(self, ref):
        loc, side, price, _ = self.orders.pop(ref)
        queue = self.levels[(loc, side)][price]
        queue.remove(ref)
        if not queue:
            del self.levels[(loc, side)][price]

    def _crosses(self, loc, side, price):
        other = self.levels[(loc, "S" if side == "B" else "B")]
        if not other:
            return False
        if side == "B":
            return price >= min(other)
        return price <= max(other)

    def _add(self, ref, loc, side, price, shares):
        if ref in self.orders:
            self.anomalies["duplicate_order"] += 1
            return
        if self._crosses(loc, side, price):
            self.anomalies["crossed"] += 1
        self.orders[ref] = [loc, side, price, shares]
        self.levels[(loc, side)].setdefault(price, []).append(ref)

    def _take(self, ref, n, what):
        order = self.orders[ref]
        if n > order[3]:
            self.anomalies[what] += 1
            n = order[3]
        order[3] -= n
        if order[3] == 0:
            self._remove(ref)

    def apply(self, buf):
        for t, f in parse(buf):
            self.apply_one(t, f)
            self.seq += 1

    def apply_one(self, t, f):
        if t in ("A", "F"):
            loc, ref, side, shares, price = f[0], f[3], f[4].decode(), f[5], f[7]
            self._add(ref, loc, side, price, shares)
        elif t in ("E", "C", "X"):
            ref, n = f[3], f[4]
            if ref not in self.orders:
                self.anomalies["unknown_order"] += 1
                return
            if t != "X":
                loc, side, price, _ = self.orders[ref]
                if t == "C":
                    price = f[7]
                self.executions.append((self.seq, loc, ref, side, price, n, f[5]))
            self._take(ref, n, "overcancel" if t == "X" else "overfill")
        elif t == "D":
            ref = f[3]
            if ref not in self.orders:
                self.anomalies["unknown_order"] += 1
                return
            self._remove(ref)
        elif t == "U":
            ref, new_ref, shares, price = f[3], f[4], f[5], f[6]
            if ref not in self.orders:
                self.anomalies["unknown_order"] += 1
                return
            if new_ref != ref and new_ref in self.orders:
                self.anomalies["duplicate_order"] += 1
                return
            loc, side = self.orders[ref][0], self.orders[ref][1]
            self._remove(ref)
            self._add(new_ref, loc, side, price, shares)

    def depth(self, loc, levels=10**9):
        """``[(side, price, shares, orders)]``: bids best first, then asks best first."""
        out = []
        for side, best_first in (("B", True), ("S", False)):
            book = self.levels[(loc, side)]
            for price in sorted(book, reverse=best_first)[:levels]:
                refs = book[price]
                out.append((side, price, sum(self.orders[r][3] for r in refs), len(refs)))
        return out

    def locates(self):
        return sorted({loc for (loc, _side), lv in self.levels.items() if lv})


def _tables(rows):
    """rows: list of (type, dict) in stream order -> {type: structured array with seq}."""
    by_type = defaultdict(list)
    for seq, (t, fields) in enumerate(rows):
        by_type[t].append((seq, fields))
    out = {}
    for t, items in by_type.items():
        arr = np.zeros(len(items), dtype=spec.dtype(t))
        for i, (seq, fields) in enumerate(items):
            arr["seq"][i] = seq
            for k, v in fields.items():
                arr[k][i] = v
        out[t] = arr
    return out


def generate_day(messages=5000, symbols=5, seed=0, with_trades=True):
    """A random, internally consistent ITCH stream: returns (bytes, tickers by locate)."""
    rng = random.Random(seed)
    tickers = {loc: f"S{loc:03d}" for loc in range(1, symbols + 1)}
    rows = [("R", {"stock_locate": loc, "stock": t}) for loc, t in tickers.items()]
    rows += [
        ("H", {"stock_locate": loc, "stock": t, "trading_state": "T"}) for loc, t in tickers.items()
    ]
    live = {}  # ref -> [loc, side, price, shares]
    next_ref = 1000
    ts = 34_200_000_000_000
    mid = {loc: 100_0000 + loc * 1_0000 for loc in tickers}
    match = 1
    while len(rows) < messages:
        ts += rng.randint(1, 50_000)
        loc = rng.choice(list(tickers))
        r = rng.random()
        head = {"stock_locate": loc, "timestamp": ts}
        refs = [ref for ref, o in live.items() if o[0] == loc] if r >= 0.4 else []
        if r < 0.4 or not refs:
            side = rng.choice("BS")
            # Bids strictly below the mid, asks at or above it: adds never cross.
            ticks = rng.randint(1, 12) if side == "B" else rng.randint(0, 11)
            price = mid[loc] - ticks * 100 if side == "B" else mid[loc] + ticks * 100
            shares = rng.choice([1, 5, 100, 200, 300, 1000, rng.randint(1, 5000)])
            t = rng.choice("AAAF")
            extra = {"attribution": "MPID"} if t == "F" else {}
            rows.append(
                (
                    t,
                    head
                    | {"order_ref": next_ref, "side": side, "shares": shares, "stock": tickers[loc]}
                    | {"price": price}
                    | extra,
                )
            )
            live[next_ref] = [loc, side, price, shares]
            next_ref += rng.choice([1, 1, 1, 2, 7])
            continue
        ref = rng.choice(refs)
        o = live[ref]
        if r < 0.52:
            n = rng.randint(1, o[3])
            rows.append(
                ("E", head | {"order_ref": ref, "executed_shares": n, "match_number": match})
            )
            match += 1
            o[3] -= n
        elif r < 0.57:
            n = rng.randint(1, o[3])
            px = o[2] + rng.choice([-100, 0, 100])
            rows.append(
                (
                    "C",
                    head
                    | {"order_ref": ref, "executed_shares": n, "match_number": match}
                    | {"printable": rng.choice("YN"), "execution_price": px},
                )
            )
            match += 1
            o[3] -= n
        elif r < 0.67:
            n = rng.randint(1, o[3])
            rows.append(("X", head | {"order_ref": ref, "cancelled_shares": n}))
            o[3] -= n
        elif r < 0.85:
            rows.append(("D", head | {"order_ref": ref}))
            o[3] = 0
        elif r < 0.95:
            side = o[1]
            ticks = rng.randint(1, 12) if side == "B" else rng.randint(0, 11)
            price = mid[loc] - ticks * 100 if side == "B" else mid[loc] + ticks * 100
            shares = rng.randint(1, 3000)
            rows.append(
                (
                    "U",
                    head
                    | {"original_order_ref": ref, "new_order_ref": next_ref}
                    | {"shares": shares, "price": price},
                )
            )
            del live[ref]
            live[next_ref] = [loc, side, price, shares]
            next_ref += 1
            continue
        elif with_trades and r < 0.98:
            rows.append(
                (
                    "P",
                    head
                    | {"order_ref": 0, "side": "B", "shares": 100, "stock": tickers[loc]}
                    | {"price": mid[loc], "match_number": match},
                )
            )
            match += 1
        elif with_trades:
            rows.append(
                (
                    "Q",
                    head
                    | {"shares": 500, "stock": tickers[loc], "cross_price": mid[loc]}
                    | {"match_number": match, "cross_type": "O"},
                )
            )
            match += 1
        if o[3] == 0:
            del live[ref]
    return encode_stream(_tables(rows)), tickers


def message_offsets(buf):
    """Byte offset of each framed message in ``buf`` (plus the end)."""
    out = []
    pos = 0
    while pos + 2 <= len(buf):
        out.append(pos)
        pos += 2 + struct.unpack_from(">H", buf, pos)[0]
    out.append(pos)
    return out
