"""The Binance market-data schema: the one place a table's columns are written.

Every decoded table (JSON or SBE) has the columns listed here, in this order, with these
numpy types. The Cython row structs (``_json.pxd``) give each column its memory offset;
the dtypes are built from this table and those offsets (``_json.DTYPES``), and an import
check refuses a struct that lacks a column. Record classes, encoders and tests derive from
the same table.

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
    "Column",
    "TABLES",
    "time_multiplier",
]

DECIMALS = 8
SCALE = 10**DECIMALS  # one unit of price or quantity, in the int64 columns
SYMBOL_BYTES = 24  # symbols are NUL-padded UTF-8 of at most this many bytes

# Nanoseconds per unit of a stream's integer times: Binance sends milliseconds unless a
# stream is opened with ``timeUnit=MICROSECOND``.
TIME_UNITS = {"ms": 1_000_000, "us": 1_000}


def time_multiplier(time_unit: str) -> int:
    """Nanoseconds per unit of ``time_unit`` ("ms" or "us"); ValueError otherwise."""
    try:
        return TIME_UNITS[time_unit]
    except (KeyError, TypeError):
        raise ValueError(f"time_unit must be 'ms' or 'us', not {time_unit!r}") from None


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
