"""Encoder for Binance spot SBE market data (schema ``stream_1_0.xml``: id 1, version 0).

For tests, simulators and benchmarks. The wire layout (message header, root blocks,
repeating groups, field offsets and types) is read from
:data:`hftcore.binance.schema.SBE_TEMPLATES`; this module only packs values into it.
Little-endian throughout: an 8-byte message header (``blockLength``, ``templateId``,
``schemaId``, ``version``, uint16 each), the root block, repeating groups
(``groupSizeEncoding``: uint16 blockLength + uint32 numInGroup for trades;
``groupSize16Encoding``: uint16 + uint16 for depth levels), then the ``symbol`` as a
``varString8`` (uint8 length + UTF-8 bytes).

Prices and quantities are given as int64 with 8 implied decimals (hftcore's
representation) and written as ``mantissa * 10**exponent`` with the chosen exponents;
times are microseconds, as on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from hftcore.binance import schema
from hftcore.binance.schema import (
    BEST_BID_ASK_STREAM_EVENT,
    DEPTH_DIFF_STREAM_EVENT,
    DEPTH_SNAPSHOT_STREAM_EVENT,
    SBE_SCHEMA_ID,
    SBE_SCHEMA_VERSION,
    TRADES_STREAM_EVENT,
)

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

SCHEMA_ID = SBE_SCHEMA_ID
SCHEMA_VERSION = SBE_SCHEMA_VERSION


def _struct(fields) -> struct.Struct:
    """A little-endian Struct of ``fields``, which must tile their block without holes."""
    fmt, at = "<", 0
    for f in fields:
        code, size = schema.SBE_TYPES[f.type]
        if f.offset != at:
            raise AssertionError(f"schema: {f.name} at offset {f.offset}, expected {at}")
        fmt += code
        at += size
    return struct.Struct(fmt)


_HEADER = _struct(schema.SBE_HEADER)
# template id -> (root block, [(group dimension, group entry)])
_LAYOUT = {
    tid: (_struct(t.block), [(_struct(g.dimension), _struct(g.entry)) for g in t.groups])
    for tid, t in schema.SBE_TEMPLATES.items()
}


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


def _group(dim: struct.Struct, entry: struct.Struct, rows: list[tuple]) -> bytes:
    return dim.pack(entry.size, len(rows)) + b"".join(entry.pack(*r) for r in rows)


def _message(template_id: int, block: tuple, groups: Iterable[list[tuple]], symbol) -> bytes:
    """Header, root block, groups (rows in entry field order), then the symbol."""
    root, dims = _LAYOUT[template_id]
    parts = [_header(root.size, template_id), root.pack(*block)]
    parts += [_group(d, e, rows) for (d, e), rows in zip(dims, groups, strict=True)]
    parts.append(_symbol(symbol))
    return b"".join(parts)


def _levels(levels, pexp: int, qexp: int) -> list[tuple[int, int]]:
    return [(to_mantissa(p, pexp), to_mantissa(q, qexp)) for p, q in levels]


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
    rows = [
        (trade_id, to_mantissa(price, price_exponent), to_mantissa(qty, qty_exponent),
         1 if maker else 0)
        for trade_id, price, qty, maker in trades
    ]  # fmt: skip
    block = (event_time, transact_time, price_exponent, qty_exponent)
    return _message(TRADES_STREAM_EVENT, block, [rows], symbol)


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
    block = (
        event_time,
        book_update_id,
        price_exponent,
        qty_exponent,
        to_mantissa(bid_price, price_exponent),
        to_mantissa(bid_qty, qty_exponent),
        to_mantissa(ask_price, price_exponent),
        to_mantissa(ask_qty, qty_exponent),
    )
    return _message(BEST_BID_ASK_STREAM_EVENT, block, [], symbol)


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
    block = (event_time, book_update_id, price_exponent, qty_exponent)
    groups = [
        _levels(bids, price_exponent, qty_exponent),
        _levels(asks, price_exponent, qty_exponent),
    ]
    return _message(DEPTH_SNAPSHOT_STREAM_EVENT, block, groups, symbol)


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
    block = (event_time, first_book_update_id, last_book_update_id, price_exponent, qty_exponent)
    groups = [
        _levels(bids, price_exponent, qty_exponent),
        _levels(asks, price_exponent, qty_exponent),
    ]
    return _message(DEPTH_DIFF_STREAM_EVENT, block, groups, symbol)
