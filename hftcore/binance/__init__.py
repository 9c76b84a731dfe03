"""Binance market data: JSON and SBE decoders into exact-integer numpy tables.

Batch: :func:`decode_many` (JSON streams, REST depth snapshots) and
:func:`decode_many_sbe` (spot SBE streams) return :class:`BinanceTables`. One message:
:func:`decode`, :func:`decode_sbe`. Straight into an order book: :func:`apply_depth_json`,
:func:`apply_depth_sbe`. Prices and quantities are int64 with 8 implied decimals
(:data:`SCALE`); times are int64 nanoseconds.
"""

from hftcore.binance.decode import (
    KINDS,
    SCALE,
    BinanceTables,
    decode,
    decode_many,
    decode_many_sbe,
    decode_sbe,
)
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

__all__ = [
    "KINDS",
    "SCALE",
    "BinanceTables",
    "decode",
    "decode_many",
    "decode_many_sbe",
    "decode_sbe",
    "apply_depth_json",
    "apply_depth_sbe",
    "apply_depth_json_many",
    "BookSync",
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


def __getattr__(name):
    # The book appliers need the L2 book extension; load them on first use.
    if name in ("apply_depth_json", "apply_depth_sbe", "apply_depth_json_many"):
        from hftcore.binance import _apply

        fn = getattr(_apply, name)
        globals()[name] = fn  # resolve once: later lookups skip this hook
        return fn
    raise AttributeError(f"module 'hftcore.binance' has no attribute {name!r}")
