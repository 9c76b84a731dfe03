"""Binance market data: JSON and SBE decoders into exact-integer numpy tables.

Batch: :func:`decode_many` (JSON streams, REST depth snapshots) and
:func:`decode_many_sbe` (spot SBE streams) return :class:`BinanceTables`; recordings on
disk (one JSON message per line, ``.gz`` too): :func:`read_file`, or :func:`iter_file`
chunk by chunk with bounded memory. One message:
:func:`decode`, :func:`decode_sbe`. Straight into an order book: :func:`apply_depth_json`,
:func:`apply_depth_sbe`. Prices and quantities are int64 with 8 implied decimals
(:data:`SCALE`); times are int64 nanoseconds.
"""

from hftcore.binance._apply import (
    APPLIED,
    GAP,
    NOT_A_DIFF,
    OTHER_SYMBOL,
    STALE,
    apply_depth_json,
    apply_depth_json_after,
    apply_depth_json_many,
    apply_depth_sbe,
    apply_depth_sbe_many,
)
from hftcore.binance.decode import (
    KINDS,
    SCALE,
    BinanceTables,
    decode,
    decode_many,
    decode_many_sbe,
    decode_sbe,
)
from hftcore.binance.files import concat_tables, iter_file, read_file
from hftcore.binance.records import (
    AggTrade,
    BookTicker,
    ControlReply,
    DepthHeader,
    DepthSnapshot,
    DepthUpdate,
    ErrorReply,
    Kline,
    ServerShutdown,
    Trade,
    UnknownEvent,
)
from hftcore.binance.sync import BookSync


def __getattr__(name):
    # The live feed loads its threads, sockets and capture machinery on first use only.
    if name in ("Feed", "FeedError", "replay"):
        from hftcore.binance import feed

        return getattr(feed, name)
    raise AttributeError(f"module 'hftcore.binance' has no attribute {name!r}")


__all__ = [
    "KINDS",
    "SCALE",
    "BinanceTables",
    "decode",
    "decode_many",
    "decode_many_sbe",
    "decode_sbe",
    "read_file",
    "iter_file",
    "concat_tables",
    "apply_depth_json",
    "apply_depth_sbe",
    "apply_depth_json_many",
    "apply_depth_json_after",
    "apply_depth_sbe_many",
    "APPLIED",
    "STALE",
    "GAP",
    "NOT_A_DIFF",
    "OTHER_SYMBOL",
    "BookSync",
    "Feed",
    "FeedError",
    "replay",
    "DepthHeader",
    "AggTrade",
    "BookTicker",
    "ControlReply",
    "DepthSnapshot",
    "DepthUpdate",
    "ErrorReply",
    "Kline",
    "ServerShutdown",
    "Trade",
    "UnknownEvent",
]
