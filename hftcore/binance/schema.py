"""The Binance market-data schema: the one place a table's columns are written.

Every decoded table (JSON or SBE) has the columns listed here, in this order, with these
numpy types. The Cython row structs (``_json.pxd``) give each column its memory offset;
the dtypes are built from this table and those offsets (``_json.DTYPES``). The record
classes of :mod:`hftcore.binance.records` are generated from these columns (or checked
against them by the tests), the per-message record builders of
:mod:`hftcore.binance.decode` read rows by these names, and the SBE encoder packs the
wire layout written below (:data:`SBE_TEMPLATES`).

Numbers are exact: prices and quantities are int64 with :data:`DECIMALS` implied decimals
(``SCALE`` = 10**8 is one unit); times are int64 nanoseconds, converted from the stream's
unit (:data:`TIME_UNITS`).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "DECIMALS",
    "SCALE",
    "TIME_UNITS",
    "SYMBOL_BYTES",
    "MARKETS",
    "Column",
    "TABLES",
    "FIXED_POINT",
    "time_multiplier",
    "check_market",
    "SBE_SCHEMA_ID",
    "SBE_SCHEMA_VERSION",
    "SbeField",
    "SbeGroup",
    "SbeTemplate",
    "SBE_HEADER",
    "SBE_TYPES",
    "SBE_TEMPLATES",
    "TRADES_STREAM_EVENT",
    "BEST_BID_ASK_STREAM_EVENT",
    "DEPTH_SNAPSHOT_STREAM_EVENT",
    "DEPTH_DIFF_STREAM_EVENT",
]

DECIMALS = 8
SCALE = 10**DECIMALS  # one unit of price or quantity, in the int64 columns
SYMBOL_BYTES = 24  # symbols are NUL-padded UTF-8 of at most this many bytes

# The markets whose stream shapes and book rules this package knows: Binance Spot and
# USD-M futures.
MARKETS = ("spot", "usdm")

# Nanoseconds per unit of a stream's integer times: Binance sends milliseconds unless a
# stream is opened with ``timeUnit=MICROSECOND``.
TIME_UNITS = {"ms": 1_000_000, "us": 1_000}


def time_multiplier(time_unit: str) -> int:
    """Nanoseconds per unit of ``time_unit`` ("ms" or "us"); ValueError otherwise."""
    try:
        return TIME_UNITS[time_unit]
    except (KeyError, TypeError):
        raise ValueError(f"time_unit must be 'ms' or 'us', not {time_unit!r}") from None


def check_market(market: str) -> str:
    """``market`` if it is one of :data:`MARKETS`; ValueError otherwise."""
    if market not in MARKETS:
        raise ValueError(f"market must be one of {MARKETS}, got {market!r}")
    return market


class Column(NamedTuple):
    """One column of a decoded table."""

    name: str  # the column (and the row struct field) name
    dtype: str  # numpy type: '<i8' int64, 'S24' bytes, '?' bool, 'u1' uint8
    key: str  # the JSON key it comes from ('' when derived, e.g. msg_index)
    doc: str


def _c(name, dtype, key, doc):
    return Column(name, dtype, key, doc)


_SYMBOL = _c("symbol", f"S{SYMBOL_BYTES}", "s", "symbol, UTF-8, NUL padded")
_MSG_INDEX = _c("msg_index", "<i8", "", "index of the message in the input")

TABLES: dict[str, tuple[Column, ...]] = {
    "trades": (
        _c("event_time", "<i8", "E", "event time, ns"),
        _c("trade_time", "<i8", "T", "trade time, ns"),
        _SYMBOL,
        _c("trade_id", "<i8", "t", "trade id"),
        _c("price", "<i8", "p", "price, 8 implied decimals"),
        _c("qty", "<i8", "q", "quantity, 8 implied decimals"),
        _c("buyer_is_maker", "?", "m", "the buyer is the market maker"),
        _c("buyer_order_id", "<i8", "b", "buyer order id; -1 when absent"),
        _c("seller_order_id", "<i8", "a", "seller order id; -1 when absent"),
        _MSG_INDEX,
    ),
    "agg_trades": (
        _c("event_time", "<i8", "E", "event time, ns"),
        _c("trade_time", "<i8", "T", "trade time, ns"),
        _SYMBOL,
        _c("agg_trade_id", "<i8", "a", "aggregate trade id"),
        _c("price", "<i8", "p", "price, 8 implied decimals"),
        _c("qty", "<i8", "q", "quantity, 8 implied decimals"),
        _c("first_trade_id", "<i8", "f", "first trade id"),
        _c("last_trade_id", "<i8", "l", "last trade id"),
        _c("buyer_is_maker", "?", "m", "the buyer is the market maker"),
        _MSG_INDEX,
    ),
    "book_ticker": (
        _c("event_time", "<i8", "E", "event time, ns; 0 when absent (spot JSON)"),
        _c("transaction_time", "<i8", "T", "transaction time, ns; 0 when absent"),
        _SYMBOL,
        _c("update_id", "<i8", "u", "order book update id"),
        _c("bid_price", "<i8", "b", "best bid price"),
        _c("bid_qty", "<i8", "B", "best bid quantity"),
        _c("ask_price", "<i8", "a", "best ask price"),
        _c("ask_qty", "<i8", "A", "best ask quantity"),
        _MSG_INDEX,
    ),
    "depth": (
        _c("event_time", "<i8", "E", "event time, ns; 0 when absent"),
        _c("transaction_time", "<i8", "T", "transaction time, ns; 0 when absent (spot)"),
        _SYMBOL,
        _c("first_update_id", "<i8", "U", "first update id; -1 for snapshots"),
        _c("final_update_id", "<i8", "u", "final update id (lastUpdateId for snapshots)"),
        _c("prev_final_update_id", "<i8", "pu", "previous final update id (USD-M); -1"),
        _c("side", "u1", "", "0 bid ('b'/'bids'), 1 ask ('a'/'asks')"),
        _c("price", "<i8", "", "level price"),
        _c("qty", "<i8", "", "level quantity; 0 removes the level"),
        _MSG_INDEX,
    ),
    "klines": (
        _c("event_time", "<i8", "E", "event time, ns"),
        _SYMBOL,
        _c("interval", "S8", "k.i", "interval, e.g. '1m'"),
        _c("start_time", "<i8", "k.t", "kline start time, ns"),
        _c("close_time", "<i8", "k.T", "kline close time, ns"),
        _c("first_trade_id", "<i8", "k.f", "first trade id"),
        _c("last_trade_id", "<i8", "k.L", "last trade id"),
        _c("open", "<i8", "k.o", "open price"),
        _c("high", "<i8", "k.h", "high price"),
        _c("low", "<i8", "k.l", "low price"),
        _c("close", "<i8", "k.c", "close price"),
        _c("volume", "<i8", "k.v", "base asset volume"),
        _c("quote_volume", "<i8", "k.q", "quote asset volume"),
        _c("taker_buy_base_volume", "<i8", "k.V", "taker buy base asset volume"),
        _c("taker_buy_quote_volume", "<i8", "k.Q", "taker buy quote asset volume"),
        _c("num_trades", "<i8", "k.n", "number of trades"),
        _c("is_closed", "?", "k.x", "the kline is closed"),
        _MSG_INDEX,
    ),
}
# Snapshots (REST bodies, partial depth) share the depth table's columns.
TABLES["depth_snapshots"] = TABLES["depth"]

# Columns holding prices and quantities with DECIMALS implied decimals (int64).
FIXED_POINT = frozenset(
    {
        "price",
        "qty",
        "bid_price",
        "bid_qty",
        "ask_price",
        "ask_qty",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "quote_volume",
        "taker_buy_base_volume",
        "taker_buy_quote_volume",
    }
)


# ---- spot SBE streams: schema ``spot_stream`` (stream_1_0.xml), id 1, version 0 ----------
#
# Every message: the 8-byte message header, the root block (``block_length`` bytes; a
# later minor version may append fields, so a reader honours a longer block), the
# repeating groups in order (each a dimension header, then ``count`` entries of
# ``entry_length`` bytes, again possibly longer on the wire), then the ``symbol`` as a
# ``varString8`` (uint8 length, UTF-8 bytes). Little-endian throughout. Prices and
# quantities are int64 mantissas scaled by the message's int8 exponents; times are
# microseconds since the epoch.

SBE_SCHEMA_ID = 1
SBE_SCHEMA_VERSION = 0
TRADES_STREAM_EVENT = 10000
BEST_BID_ASK_STREAM_EVENT = 10001
DEPTH_SNAPSHOT_STREAM_EVENT = 10002
DEPTH_DIFF_STREAM_EVENT = 10003

# SBE primitive type: (struct format code, size in bytes).
SBE_TYPES = {
    "int8": ("b", 1),
    "uint8": ("B", 1),
    "uint16": ("H", 2),
    "uint32": ("I", 4),
    "int64": ("q", 8),
}


class SbeField(NamedTuple):
    """One fixed-size field of a root block, group entry or header."""

    name: str  # the schema's field name
    type: str  # a key of SBE_TYPES
    offset: int  # bytes from the start of the block or entry
    column: str  # the table column it fills ('' for exponents, constants, ...)


class SbeGroup(NamedTuple):
    """A repeating group: a dimension header, then ``count`` fixed-size entries."""

    name: str
    dimension: tuple[SbeField, ...]  # blockLength (entry size) and numInGroup
    entry: tuple[SbeField, ...]
    entry_length: int  # bytes per entry in this schema version


class SbeTemplate(NamedTuple):
    """One message template: root block, groups, then the ``symbol`` varString8."""

    template_id: int
    name: str  # the schema's message name
    table: str  # the table its rows go to (a key of TABLES)
    block: tuple[SbeField, ...]
    block_length: int  # root block bytes in this schema version
    groups: tuple[SbeGroup, ...]


def _f(name, type_, offset, column=""):
    return SbeField(name, type_, offset, column)


SBE_HEADER = (  # messageHeader: 8 bytes
    _f("blockLength", "uint16", 0),
    _f("templateId", "uint16", 2),
    _f("schemaId", "uint16", 4),
    _f("version", "uint16", 6),
)
# groupSizeEncoding (trades) and groupSize16Encoding (depth levels)
_GROUP_SIZE = (_f("blockLength", "uint16", 0), _f("numInGroup", "uint32", 2))
_GROUP_SIZE16 = (_f("blockLength", "uint16", 0), _f("numInGroup", "uint16", 2))
_LEVEL = (_f("price", "int64", 0, "price"), _f("qty", "int64", 8, "qty"))
_EXPONENTS = ("priceExponent", "qtyExponent")

SBE_TEMPLATES: dict[int, SbeTemplate] = {
    t.template_id: t
    for t in (
        SbeTemplate(
            TRADES_STREAM_EVENT, "TradesStreamEvent", "trades",
            (
                _f("eventTime", "int64", 0, "event_time"),
                _f("transactTime", "int64", 8, "trade_time"),
                _f(_EXPONENTS[0], "int8", 16),
                _f(_EXPONENTS[1], "int8", 17),
            ),
            18,
            (
                SbeGroup(
                    "trades", _GROUP_SIZE,
                    (
                        _f("id", "int64", 0, "trade_id"),
                        _f("price", "int64", 8, "price"),
                        _f("qty", "int64", 16, "qty"),
                        _f("isBuyerMaker", "uint8", 24, "buyer_is_maker"),
                        # isBestMatch is a constant: not on the wire
                    ),
                    25,
                ),
            ),
        ),
        SbeTemplate(
            BEST_BID_ASK_STREAM_EVENT, "BestBidAskStreamEvent", "book_ticker",
            (
                _f("eventTime", "int64", 0, "event_time"),
                _f("bookUpdateId", "int64", 8, "update_id"),
                _f(_EXPONENTS[0], "int8", 16),
                _f(_EXPONENTS[1], "int8", 17),
                _f("bidPrice", "int64", 18, "bid_price"),
                _f("bidQty", "int64", 26, "bid_qty"),
                _f("askPrice", "int64", 34, "ask_price"),
                _f("askQty", "int64", 42, "ask_qty"),
            ),
            50,
            (),
        ),
        SbeTemplate(
            DEPTH_SNAPSHOT_STREAM_EVENT, "DepthSnapshotStreamEvent", "depth_snapshots",
            (
                _f("eventTime", "int64", 0, "event_time"),
                _f("bookUpdateId", "int64", 8, "final_update_id"),
                _f(_EXPONENTS[0], "int8", 16),
                _f(_EXPONENTS[1], "int8", 17),
            ),
            18,
            (SbeGroup("bids", _GROUP_SIZE16, _LEVEL, 16), SbeGroup("asks", _GROUP_SIZE16, _LEVEL, 16)),
        ),
        SbeTemplate(
            DEPTH_DIFF_STREAM_EVENT, "DepthDiffStreamEvent", "depth",
            (
                _f("eventTime", "int64", 0, "event_time"),
                _f("firstBookUpdateId", "int64", 8, "first_update_id"),
                _f("lastBookUpdateId", "int64", 16, "final_update_id"),
                _f(_EXPONENTS[0], "int8", 24),
                _f(_EXPONENTS[1], "int8", 25),
            ),
            26,
            (SbeGroup("bids", _GROUP_SIZE16, _LEVEL, 16), SbeGroup("asks", _GROUP_SIZE16, _LEVEL, 16)),
        ),
    )
}  # fmt: skip
