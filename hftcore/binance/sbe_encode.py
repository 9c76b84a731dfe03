"""Encoder for Binance spot SBE market data (schema ``stream_1_0.xml``: id 1, version 0).

For tests, simulators and benchmarks. Little-endian throughout: an 8-byte message header
(``blockLength``, ``templateId``, ``schemaId``, ``version``, uint16 each), the root block,
repeating groups (``groupSizeEncoding``: uint16 blockLength + uint32 numInGroup for trades;
``groupSize16Encoding``: uint16 + uint16 for depth levels), then the ``symbol`` as a
``varString8`` (uint8 length + UTF-8 bytes).

Prices and quantities are given as int64 with 8 implied decimals (hftcore's
representation) and written as ``mantissa * 10**exponent`` with the chosen exponents;
times are microseconds, as on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = [
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "TRADES_STREAM_EVENT",
    "BEST_BID_ASK_STREAM_EVENT",
    "DEPTH_SNAPSHOT_STREAM_EVENT",
    "DEPTH_DIFF_STREAM_EVENT",
    "to_mantissa",
    "encode_trades",
    "encode_best_bid_ask",
    "encode_depth_snapshot",
    "encode_depth_diff",
]

SCHEMA_ID = 1
SCHEMA_VERSION = 0
TRADES_STREAM_EVENT = 10000
BEST_BID_ASK_STREAM_EVENT = 10001
DEPTH_SNAPSHOT_STREAM_EVENT = 10002
DEPTH_DIFF_STREAM_EVENT = 10003

_HEADER = struct.Struct("<HHHH")
_TRADE = struct.Struct("<qqqB")  # id, price, qty, isBuyerMaker (isBestMatch is constant)
_LEVEL = struct.Struct("<qq")


def to_mantissa(value: int, exponent: int) -> int:
    """The mantissa of an 8-decimal fixed-point ``value`` at ``exponent``.

    Raises
    ------
    ValueError
        ``value`` is not a whole multiple of ``10**(exponent + 8)``, or the mantissa does
        not fit int64.
    """
    shift = exponent + 8
    if shift >= 0:
        m, rem = divmod(value, 10**shift)
        if rem:
            raise ValueError(f"{value} is not representable with exponent {exponent}")
    else:
        m = value * 10**-shift
    if not -(2**63) <= m < 2**63:
        raise ValueError(f"mantissa of {value} at exponent {exponent} overflows int64")
    return m


def _header(block_length: int, template_id: int) -> bytes:
    return _HEADER.pack(block_length, template_id, SCHEMA_ID, SCHEMA_VERSION)


def _symbol(symbol: str | bytes) -> bytes:
    raw = symbol.encode("utf-8") if isinstance(symbol, str) else bytes(symbol)
    if len(raw) > 255:
        raise ValueError("symbol longer than 255 bytes")
    return bytes([len(raw)]) + raw


def _levels16(levels, pexp: int, qexp: int) -> bytes:
    levels = list(levels)
    out = [struct.pack("<HH", _LEVEL.size, len(levels))]
    out += [_LEVEL.pack(to_mantissa(p, pexp), to_mantissa(q, qexp)) for p, q in levels]
    return b"".join(out)


def encode_trades(
    event_time: int,
    transact_time: int,
    symbol: str,
    trades: Iterable[tuple[int, int, int, bool]],
    price_exponent: int = -8,
    qty_exponent: int = -8,
) -> bytes:
    """``TradesStreamEvent`` (template 10000).

    Parameters
    ----------
    event_time, transact_time : int
        Microseconds.
    symbol : str
    trades : iterable of (trade_id, price, qty, is_buyer_maker)
        ``price`` and ``qty`` with 8 implied decimals.
    price_exponent, qty_exponent : int
        Decimal exponents of the wire mantissas.
    """
    trades = list(trades)
    body = struct.pack("<qqbb", event_time, transact_time, price_exponent, qty_exponent)
    group = [struct.pack("<HI", _TRADE.size, len(trades))]
    for trade_id, price, qty, maker in trades:
        group.append(
            _TRADE.pack(
                trade_id,
                to_mantissa(price, price_exponent),
                to_mantissa(qty, qty_exponent),
                1 if maker else 0,
            )
        )
    return _header(len(body), TRADES_STREAM_EVENT) + body + b"".join(group) + _symbol(symbol)


def encode_best_bid_ask(
    event_time: int,
    book_update_id: int,
    symbol: str,
    bid_price: int,
    bid_qty: int,
    ask_price: int,
    ask_qty: int,
    price_exponent: int = -8,
    qty_exponent: int = -8,
) -> bytes:
    """``BestBidAskStreamEvent`` (template 10001); values with 8 implied decimals."""
    body = struct.pack(
        "<qqbbqqqq",
        event_time,
        book_update_id,
        price_exponent,
        qty_exponent,
        to_mantissa(bid_price, price_exponent),
        to_mantissa(bid_qty, qty_exponent),
        to_mantissa(ask_price, price_exponent),
        to_mantissa(ask_qty, qty_exponent),
    )
    return _header(len(body), BEST_BID_ASK_STREAM_EVENT) + body + _symbol(symbol)


def encode_depth_snapshot(
    event_time: int,
    book_update_id: int,
    symbol: str,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    price_exponent: int = -8,
    qty_exponent: int = -8,
) -> bytes:
    """``DepthSnapshotStreamEvent`` (template 10002); levels as (price, qty) pairs."""
    body = struct.pack("<qqbb", event_time, book_update_id, price_exponent, qty_exponent)
    groups = _levels16(bids, price_exponent, qty_exponent) + _levels16(
        asks, price_exponent, qty_exponent
    )
    return _header(len(body), DEPTH_SNAPSHOT_STREAM_EVENT) + body + groups + _symbol(symbol)


def encode_depth_diff(
    event_time: int,
    first_book_update_id: int,
    last_book_update_id: int,
    symbol: str,
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    price_exponent: int = -8,
    qty_exponent: int = -8,
) -> bytes:
    """``DepthDiffStreamEvent`` (template 10003); levels as (price, qty) pairs, qty 0
    removes a level."""
    body = struct.pack(
        "<qqqbb",
        event_time,
        first_book_update_id,
        last_book_update_id,
        price_exponent,
        qty_exponent,
    )
    groups = _levels16(bids, price_exponent, qty_exponent) + _levels16(
        asks, price_exponent, qty_exponent
    )
    return _header(len(body), DEPTH_DIFF_STREAM_EVENT) + body + groups + _symbol(symbol)
