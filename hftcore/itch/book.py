"""The ITCH 5.0 L3 order book: every order of every stock, in fixed-size pools.

:class:`OrderBook` applies BinaryFILE-framed ITCH bytes without the GIL (the kernel is
``hftcore.itch._book``) and answers questions about the books between calls: best bid and
offer, depth, the orders at a price in queue order, an order's place in its queue.
"""

from __future__ import annotations

import operator
import os
from collections import namedtuple

import numpy as np

from hftcore._core.files import FIRST_BUFFER, fill, open_stream, progress_bar
from hftcore.errors import DecodeError
from hftcore.itch._book import (
    BBO_DTYPE,
    DEFAULT_MAX_LEVELS,
    DEFAULT_MAX_ORDERS,
    DEPTH_DTYPE,
    EXEC_DTYPE,
    QUEUE_DTYPE,
    OrderBookCore,
)

__all__ = [
    "OrderBook",
    "OrderRecord",
    "QueuePosition",
    "TradingState",
    "BBO_DTYPE",
    "EXEC_DTYPE",
    "DEPTH_DTYPE",
    "QUEUE_DTYPE",
]

#: One resting order, as :meth:`OrderBook.order` returns it. ``price`` has 4 implied decimals.
OrderRecord = namedtuple("OrderRecord", "order_ref stock_locate symbol side price shares")
#: Where an order stands in its price level's queue: 0 orders ahead = the front.
QueuePosition = namedtuple("QueuePosition", "orders_ahead shares_ahead")
#: ``trading_state`` from H ('H' halted, 'P' paused, 'Q' quotation only, 'T' trading; ''
#: if none seen); ``halt_action`` / ``halt_market`` from the last h (operational halt).
TradingState = namedtuple("TradingState", "trading_state halt_action halt_market")

_CHUNK = 8 << 20


class OrderBook(OrderBookCore):
    """Order books of every stock of an ITCH 5.0 stream, at order level (L3).

    Each order keeps its reference, side, price, remaining shares and its place in the
    FIFO queue of its price level (price-time priority). Capacities are fixed at
    construction; running out raises :class:`hftcore.BookFull` naming the argument to
    raise. Memory is reserved up front but touched only as it is used: 32 bytes per
    resting order, 24 per price level, and two order_ref indexes of 4-byte entries,
    each a power of two >= 2 * ``max_orders`` long: a window over the newest refs
    (touched as refs advance through the day) and a hash table for older ones (touched
    as old refs spread over it); up to 64 MiB each with the default ``max_orders``:
    size it to your day (peak resting orders plus a margin).

    Parameters
    ----------
    max_orders : int, default 8_000_000
        Most orders resting at once, over every stock.
    max_levels : int, default 2_000_000
        Most price levels in use at once, over every stock and side.
    symbols : str, int or sequence of them, optional
        Keep only these books: tickers (resolved through the stock directory, R
        messages) or stock locates. The rest of the stream is still walked and its
        framing validated, faster. Default: every stock.
    strict : bool, default False
        Raise :class:`hftcore.BookError` at the first anomaly (unknown order, execution
        or cancel larger than the order, duplicate order reference, an add crossing the
        book) instead of counting it in :meth:`stats`.
    bbo : bool, default False
        Record each top-of-book change (drain with :meth:`drain_bbo`).
    executions : bool, default False
        Record each execution E/C (drain with :meth:`drain_executions`).

    Notes
    -----
    Event tables grow as needed inside :meth:`apply`: no event is ever dropped; drain
    them between calls to bound memory. :meth:`apply` releases the GIL; one thread at a
    time may apply to a book (a second concurrent call raises RuntimeError). Queries read
    the book between calls.

    Examples
    --------
    >>> from hftcore import itch
    >>> book = itch.OrderBook(max_orders=1000, max_levels=100)
    >>> wire = itch.encode("R", stock_locate=1, stock="AAPL") + itch.encode(
    ...     "A", stock_locate=1, order_ref=7, side="B", shares=100, price=1_892_500)
    >>> book.apply(wire)
    2
    >>> book.bbo("AAPL")
    (1892500, 100, 0, 0)
    """

    _names: dict | None = None
    _names_at = -1

    # ------------------------------------------------------------ applying bytes

    def apply(self, buf, until=None):
        """Apply the BinaryFILE-framed messages of ``buf`` (2-byte big-endian length each).

        Parameters
        ----------
        buf : bytes, bytearray, memoryview, mmap or uint8 numpy array
            Read in place (no copy).
        until : int, optional
            Stop before the first message whose timestamp (ns since midnight) is greater;
            :attr:`reached_until` tells whether that happened.

        Returns
        -------
        int
            Messages walked (every framed message, including types the book ignores).
            :attr:`consumed` holds the bytes used: a trailing partial message is left
            unconsumed, so pass ``buf[book.consumed:]`` plus the next bytes next time. A
            zero length prefix ends the session (:attr:`ended`); later calls return 0.

        Raises
        ------
        hftcore.DecodeError
            A length disagrees with the spec, or a side is neither B nor S; the offset is
            the message's byte offset in ``buf``. Messages before it are applied.
        hftcore.BookFull
            The order store or the price levels are full; the message is not applied.
        hftcore.BookError
            ``strict=True`` and an anomaly at ``error.seq``; the message is not applied.
        ValueError
            ``until`` is negative or does not fit 64 bits.
        """
        return OrderBookCore.apply(self, buf, _check_until(until))

    def apply_file(self, path, progress=None, until=None, chunk_bytes=_CHUNK):
        """Apply a whole ITCH file (BinaryFILE framing; ``.gz`` is decompressed on the fly).

        The file is streamed in chunks of ``chunk_bytes``, so memory stays bounded.

        Parameters
        ----------
        path : str or os.PathLike
        progress : bool, optional
            Show a progress bar on stderr (default: when stderr is a terminal).
        until : int, optional
            Stop before the first message with a later timestamp (ns since midnight).
        chunk_bytes : int
            Bytes read per step.

        Returns
        -------
        int
            Messages walked.

        Raises
        ------
        hftcore.DecodeError
            Bad framing, or the file ends inside a message; names the file and the byte
            offset in the (decompressed) stream.
        """
        for _ in self.iter_file(path, progress=progress, until=until, chunk_bytes=chunk_bytes):
            pass
        return self._file_messages

    def iter_file(self, path, progress=None, until=None, chunk_bytes=_CHUNK):
        """Apply a file chunk by chunk, yielding after each chunk (e.g. to drain events).

        Same parameters as :meth:`apply_file`; yields the stream offset reached.
        """
        path = os.fspath(path)
        until = _check_until(until)
        chunk_bytes = int(chunk_bytes)
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be >= 1, not {chunk_bytes}")
        self._file_messages = 0
        buf = bytearray()
        tail = 0  # bytes at the front of buf carried over: a partial message
        offset = 0  # stream offset of buf[0]
        with open_stream(path) as (reader, raw, _), progress_bar(path, progress) as bar:
            while True:
                # Each step reads chunk_bytes of fresh stream after the carried tail. The
                # buffer starts at FIRST_BUFFER and grows to that only when the stream
                # fills it (a small .gz does not zero a 64 MiB buffer).
                need = tail + chunk_bytes
                first = min(need, max(len(buf), FIRST_BUFFER))
                if len(buf) < first:
                    buf.extend(bytes(first - len(buf)))
                with memoryview(buf) as view:
                    filled, eof = fill(reader, raw, view[:first], tail, offset, path)
                if not eof and filled == first < need:
                    buf.extend(bytes(need - len(buf)))
                    with memoryview(buf) as view:
                        filled, eof = fill(reader, raw, view[:need], filled, offset, path)
                with memoryview(buf) as view:
                    if filled == tail:
                        break
                    self._file_messages += OrderBookCore.apply(
                        self, view[:filled], until, base_offset=offset, source=path
                    )
                used = self.consumed
                offset += used
                tail = filled - used
                if used:
                    buf[:tail] = buf[used:filled]
                bar.update(raw.tell())
                yield offset
                if self.ended or self.reached_until or eof:
                    break
            if tail and not (self.ended or self.reached_until):
                carry = bytes(buf[:tail])
                need = int.from_bytes(carry[:2], "big") + 2 if len(carry) >= 2 else 2
                raise DecodeError(
                    f"truncated input: message needs {need} bytes, {len(carry)} left",
                    offset,
                    path,
                )

    # ------------------------------------------------------------ names

    def _directory_names(self):
        n = self._directory_version()
        if self._names is None or self._names_at != n:
            self._names = {
                t.rstrip(b" ").decode("ascii", "replace"): loc for loc, t in self._directory()
            }
            self._names_at = n
        return self._names

    @property
    def symbols(self):
        """``{ticker: stock_locate}`` of the stocks in the directory whose books are kept."""
        return {t: loc for t, loc in self._directory_names().items() if self._kept(loc)}

    def locate(self, symbol):
        """The stock locate of ``symbol`` (a ticker str, or a locate int passed through).

        Raises
        ------
        KeyError
            A ticker not (yet) in the stock directory.
        """
        if isinstance(symbol, (int, np.integer)) and not isinstance(symbol, bool):
            if not 0 <= symbol < 65536:
                raise ValueError(f"stock_locate {symbol} out of range [0, 65535]")
            return int(symbol)
        if isinstance(symbol, bytes):
            symbol = symbol.decode("ascii")
        names = self._directory_names()
        try:
            return names[symbol.strip()]
        except KeyError:
            raise KeyError(f"{symbol!r} is not in the stock directory (no R message)") from None

    def ticker(self, stock_locate):
        """The ticker of a stock locate ('' when no R message named it)."""
        for t, loc in self._directory_names().items():
            if loc == stock_locate:
                return t
        return ""

    # ------------------------------------------------------------ queries

    def bbo(self, symbol):
        """Best bid and offer: ``(bid_price, bid_shares, ask_price, ask_shares)``.

        Prices have 4 implied decimals; an empty side reads ``0, 0``.
        """
        return self._bbo(self.locate(symbol))

    def depth(self, symbol, levels=10):
        """The top ``levels`` price levels of each side of a book.

        Returns
        -------
        numpy.ndarray of DEPTH_DTYPE
            Columns ``side`` (b'B'/b'S'), ``price``, ``shares``, ``orders``: the bids best
            (highest) first, then the asks best (lowest) first.
        """
        if levels < 0:
            raise ValueError("levels must be >= 0")
        return self._depth(self.locate(symbol), levels)

    def orders_at(self, symbol, side, price):
        """The orders resting at ``price`` on ``side`` ('B' or 'S'), front of the queue first.

        Returns
        -------
        numpy.ndarray of QUEUE_DTYPE
            Columns ``order_ref``, ``shares``; empty when there is no such level.
        """
        return self._orders_at(self.locate(symbol), side, int(price))

    def order(self, order_ref):
        """The resting order ``order_ref`` as an :data:`OrderRecord`, or None."""
        r = self._order(int(order_ref))
        if r is None:
            return None
        ref, loc, side, price, shares = r
        return OrderRecord(ref, loc, self.ticker(loc), side, price, shares)

    def queue_position(self, order_ref):
        """Where ``order_ref`` stands in its level's FIFO queue, or None if not resting.

        Returns
        -------
        QueuePosition
            ``orders_ahead`` (0 = the front) and ``shares_ahead``.
        """
        r = self._queue_position(int(order_ref))
        return None if r is None else QueuePosition(*r)

    def trading_state(self, symbol):
        """The stock's :data:`TradingState` (from H and h messages)."""
        return TradingState(*self._trading_state(self.locate(symbol)))

    def stats(self):
        """Counters: messages, live/peak orders and levels, trades, and anomalies.

        Anomalies (counted unless ``strict=True``): ``unknown_order``,
        ``duplicate_order``, ``overfill``, ``overcancel``, ``crossed``; ``anomalies`` is
        their sum. ``by_type`` counts messages per type character. ``ref_window`` is the
        span of the direct-indexed order_ref window (0 once refs were too sparse for it:
        every lookup then goes through the hash); ``hash_max_displacement`` the longest
        probe the hash has seen.
        """
        return self._stats()

    def __repr__(self):
        return (
            f"<OrderBook {self.live_orders} orders, {self.live_levels} levels, "
            f"{self.seq} messages, max_orders={self.max_orders}, max_levels={self.max_levels}>"
        )


__all__ += ["DEFAULT_MAX_ORDERS", "DEFAULT_MAX_LEVELS"]


def _check_until(until):
    """``until`` as the kernel takes it: None, or ns since midnight in [0, 2**64)."""
    if until is None:
        return None
    until = operator.index(until)  # TypeError for a float or a str, as int arguments do
    if not 0 <= until < 1 << 64:
        raise ValueError(f"until must be a time of day in ns, >= 0 and < 2**64, not {until}")
    return until
