"""LOBSTER files from an ITCH day: the message file and the orderbook file of a stock.

LOBSTER (lobsterdata.com), the academic standard, writes per stock and day::

    TICKER_YYYY-MM-DD_START_END_message_N.csv
        Time (seconds after midnight, ns precision), Type, Order ID, Size, Price
        (dollars x 10000), Direction (1 buy, -1 sell)
    TICKER_YYYY-MM-DD_START_END_orderbook_N.csv
        Ask Price 1, Ask Size 1, Bid Price 1, Bid Size 1, ..., up to level N: the book
        after the message on the same line; an empty ask level reads 9999999999 0, an
        empty bid level -9999999999 0.

Event types: 1 new limit order (A, F), 2 partial cancellation (X), 3 deletion (D),
4 execution of a visible order (E, C; C at its execution price), 5 execution of a hidden
order (P), 6 cross trade (Q), 7 trading halt (H: price -1 halted or paused, 0 quotation
only, 1 trading resumed). An order replace (U) is written as LOBSTER represents it: the
deletion of the old order (3) then the new order (1), both followed by the book after
the replace.

The book is :class:`hftcore.itch.OrderBook` (only the requested stocks are kept); the
day is read chunk by chunk, and each chunk is applied to the book in slices that end
right after each message of a requested stock, so every orderbook line is the book
exactly after its message.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hftcore.errors import DecodeError
from hftcore.export._chunks import day_chunks
from hftcore.itch import spec

__all__ = ["write_lobster", "EMPTY_ASK", "EMPTY_BID"]

EMPTY_ASK = 9_999_999_999
EMPTY_BID = -9_999_999_999
_EVENT_TYPES = "AFEXDUPCQH"
_FRAMED = {t: 2 + m.length for t, m in ((m.type, m) for m in spec.MESSAGES)}


def _time(ns: int) -> str:
    s, frac = divmod(int(ns), 1_000_000_000)
    return f"{s}.{frac:09d}"


class _Out:
    def __init__(self, msg_path: Path, book_path: Path, levels: int):
        self.msg_tmp = msg_path.with_name(f".{msg_path.name}.tmp")
        self.book_tmp = book_path.with_name(f".{book_path.name}.tmp")
        self.msg_path, self.book_path = msg_path, book_path
        self.msg = open(self.msg_tmp, "w", newline="")
        self.book = open(self.book_tmp, "w", newline="")
        self.levels = levels
        self.rows = 0

    def write(self, ts, kind, ref, size, price, direction, depth):
        self.msg.write(f"{_time(ts)},{kind},{ref},{size},{price},{direction}\n")
        bids = depth[depth["side"] == b"B"]
        asks = depth[depth["side"] == b"S"]
        cells = []
        for i in range(self.levels):
            if i < len(asks):
                cells += (int(asks["price"][i]), int(asks["shares"][i]))
            else:
                cells += (EMPTY_ASK, 0)
            if i < len(bids):
                cells += (int(bids["price"][i]), int(bids["shares"][i]))
            else:
                cells += (EMPTY_BID, 0)
        self.book.write(",".join(map(str, cells)) + "\n")
        self.rows += 1

    def close(self, commit: bool):
        self.msg.close()
        self.book.close()
        if commit:
            os.replace(self.msg_tmp, self.msg_path)
            os.replace(self.book_tmp, self.book_path)
        else:
            for p in (self.msg_tmp, self.book_tmp):
                p.unlink(missing_ok=True)


def write_lobster(path, symbols, out, *, levels=10, date=None, start_ns=None, end_ns=None,
                  chunk_bytes=64 << 20, progress=None, book_options=None) -> dict:  # fmt: skip
    """Write the LOBSTER message and orderbook files of ``symbols`` for one ITCH day.

    Parameters
    ----------
    path : str or os.PathLike
        The ITCH 5.0 day (plain or ``.gz``).
    symbols : str or list of str
        Tickers (as in the stock directory, e.g. ``"AAPL"``).
    out : str or os.PathLike
        Output directory (created).
    levels : int
        Price levels per side in the orderbook file.
    date : str or datetime.date, optional
        For the file names (default: from the file name, else its stem).
    start_ns, end_ns : int, optional
        Keep messages with ``start_ns <= timestamp < end_ns`` (ns since midnight;
        default 09:30 to 16:00, LOBSTER's default window). The book is built from the
        whole day regardless.

    Returns
    -------
    dict
        ``{symbol: {"message": path, "orderbook": path, "rows": n}}``.
    """
    from hftcore import itch
    from hftcore.export.names import day_label

    if isinstance(symbols, str):
        symbols = [symbols]
    symbols = [s.upper() for s in symbols]
    if not symbols:
        raise ValueError("give at least one symbol")
    levels = int(levels)
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    start_ns = 34_200_000_000_000 if start_ns is None else int(start_ns)
    end_ns = 57_600_000_000_000 if end_ns is None else int(end_ns)
    label, _ = day_label(path, date)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    window = f"{start_ns // 1_000_000}_{end_ns // 1_000_000}"
    outs = {}
    for s in symbols:
        stem = f"{s}_{label}_{window}"
        outs[s] = _Out(out / f"{stem}_message_{levels}.csv",
                       out / f"{stem}_orderbook_{levels}.csv", levels)  # fmt: skip
    book = itch.OrderBook(symbols=symbols, **(book_options or {}))
    locates: dict[int, str] = {}
    ok = False
    try:
        for tables, chunk in day_chunks(path, None, chunk_bytes, progress):
            _apply_chunk(book, chunk, tables, tables.seq_start, symbols, locates, outs,
                         start_ns, end_ns)  # fmt: skip
        ok = True
    finally:
        for o in outs.values():
            o.close(ok)
    return {s: {"message": str(o.msg_path), "orderbook": str(o.book_path), "rows": o.rows}
            for s, o in outs.items()}  # fmt: skip


def _apply_chunk(book, view, tables, seq0, symbols, locates, outs, start_ns, end_ns):
    n = tables.messages
    if tables.unknown:
        raise DecodeError(
            f"{tables.unknown} message(s) of unknown types: their lengths are not in the "
            f"ITCH 5.0 table, so the book cannot be cut after each message",
            -1,
            None,
        )
    # Every message's framed length, by its type: the byte offset after each message.
    lengths = np.zeros(n, dtype=np.int64)
    for t in spec.TYPES:
        rows = tables[t]
        if len(rows):
            lengths[rows["seq"].astype(np.int64) - seq0] = _FRAMED[t]
    ends = np.cumsum(lengths)
    for s, loc in zip(tables["R"]["stock"], tables["R"]["stock_locate"], strict=True):
        name = bytes(s).rstrip(b" ").decode("ascii", "replace")
        if name in outs:
            locates[int(loc)] = name
    # The messages of the requested stocks, in stream order.
    picks = []
    for t in _EVENT_TYPES:
        rows = tables[t]
        if not len(rows) or not locates:
            continue
        mask = np.isin(rows["stock_locate"], np.fromiter(locates, dtype=np.uint16))
        for i in np.flatnonzero(mask).tolist():
            picks.append((int(rows["seq"][i]), t, i))
    picks.sort()
    pos = 0
    for s, t, i in picks:
        rec = tables[t][i]
        name = locates[int(rec["stock_locate"])]
        end = int(ends[s - seq0])
        start = end - _FRAMED[t]
        if start > pos:
            book.apply(view[pos:start])
        # What the message refers to, before it is applied.
        before = None
        if t in "EXDUC":
            before = book.order(int(rec["order_ref"] if t != "U" else rec["original_order_ref"]))
        book.apply(view[start:end])
        pos = end
        ts = int(rec["timestamp"])
        if not (start_ns <= ts < end_ns):
            continue
        depth = book.depth(name, outs[name].levels)
        o = outs[name]
        if t in "AF":
            o.write(ts, 1, int(rec["order_ref"]), int(rec["shares"]), int(rec["price"]),
                    1 if rec["side"] == b"B" else -1, depth)  # fmt: skip
        elif t in "EXDC":
            if before is None:
                continue  # an order the book never saw (counted in book.stats())
            direction = 1 if before.side in ("B", b"B") else -1
            if t == "E":
                o.write(ts, 4, before.order_ref, int(rec["executed_shares"]), before.price,
                        direction, depth)  # fmt: skip
            elif t == "C":
                o.write(ts, 4, before.order_ref, int(rec["executed_shares"]),
                        int(rec["execution_price"]), direction, depth)  # fmt: skip
            elif t == "X":
                o.write(ts, 2, before.order_ref, int(rec["cancelled_shares"]), before.price,
                        direction, depth)  # fmt: skip
            else:
                o.write(ts, 3, before.order_ref, before.shares, before.price, direction, depth)
        elif t == "U":
            if before is None:
                continue
            direction = 1 if before.side in ("B", b"B") else -1
            o.write(ts, 3, before.order_ref, before.shares, before.price, direction, depth)
            o.write(ts, 1, int(rec["new_order_ref"]), int(rec["shares"]), int(rec["price"]),
                    direction, depth)  # fmt: skip
        elif t == "P":
            o.write(ts, 5, int(rec["order_ref"]), int(rec["shares"]), int(rec["price"]),
                    1 if rec["side"] == b"B" else -1, depth)  # fmt: skip
        elif t == "Q":
            o.write(ts, 6, 0, int(rec["shares"]), int(rec["cross_price"]), 0, depth)
        elif t == "H":
            state = bytes(rec["trading_state"])
            code = {b"H": -1, b"P": -1, b"Q": 0, b"T": 1}.get(state, 1)
            o.write(ts, 7, 0, 0, code, 0, depth)
    if pos < len(view):
        book.apply(view[pos:])
