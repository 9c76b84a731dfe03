"""Per-message records returned by :func:`hftcore.binance.decode` (the convenience path).

Prices and quantities are int64 with 8 implied decimals; times are int64 in the stream's
unit converted to nanoseconds. Level arrays have shape ``(n, 2)``: ``[:, 0]`` price,
``[:, 1]`` quantity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "DepthUpdate",
    "DepthSnapshot",
    "Trade",
    "AggTrade",
    "BookTicker",
    "Kline",
    "ControlReply",
    "ErrorReply",
    "ServerShutdown",
    "UnknownEvent",
    "DepthHeader",
]


class DepthUpdate(NamedTuple):
    """A diff depth event (spot ``depthUpdate``; USD-M adds ``T`` and ``pu``)."""

    event_time: int  # ns
    transaction_time: int  # ns; 0 on spot
    symbol: str
    first_update_id: int  # U
    final_update_id: int  # u
    prev_final_update_id: int  # pu (USD-M); -1 on spot
    bids: np.ndarray  # int64 (n, 2)
    asks: np.ndarray  # int64 (n, 2)


class DepthSnapshot(NamedTuple):
    """A full or partial book: REST ``/api/v3/depth`` / ``/fapi/v1/depth`` or a partial
    book depth stream event."""

    last_update_id: int
    event_time: int  # ns; 0 when absent (spot REST, spot partial depth)
    transaction_time: int  # ns; 0 when absent
    symbol: str  # "" when absent
    bids: np.ndarray  # int64 (n, 2)
    asks: np.ndarray  # int64 (n, 2)


class Trade(NamedTuple):
    """A raw trade (``trade`` stream; SBE ``TradesStreamEvent`` yields one per trade)."""

    event_time: int  # ns
    trade_time: int  # ns (T; SBE transactTime)
    symbol: str
    trade_id: int  # t
    price: int  # 8 implied decimals
    qty: int  # 8 implied decimals
    buyer_is_maker: bool  # m
    buyer_order_id: int  # b; -1 when absent
    seller_order_id: int  # a; -1 when absent


class AggTrade(NamedTuple):
    """An aggregate trade (``aggTrade`` stream): fills of one taker order at one price."""

    event_time: int  # ns
    trade_time: int  # ns
    symbol: str
    agg_trade_id: int  # a
    price: int
    qty: int
    first_trade_id: int  # f
    last_trade_id: int  # l
    buyer_is_maker: bool  # m


class BookTicker(NamedTuple):
    """Best bid and ask (spot ``bookTicker`` has no ``E``/``T``: 0 here; SBE
    ``BestBidAskStreamEvent`` and USD-M carry ``E``)."""

    event_time: int  # ns; 0 when absent
    transaction_time: int  # ns; 0 when absent
    symbol: str
    update_id: int  # u (order book update id)
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


class Kline(NamedTuple):
    """A kline/candlestick update (``kline_<interval>`` stream)."""

    event_time: int  # ns
    symbol: str
    interval: str  # "1m", "1h", ...
    start_time: int  # ns
    close_time: int  # ns
    first_trade_id: int
    last_trade_id: int
    open: int
    high: int
    low: int
    close: int
    volume: int  # base asset
    quote_volume: int
    taker_buy_base_volume: int
    taker_buy_quote_volume: int
    num_trades: int
    is_closed: bool


class ControlReply(NamedTuple):
    """Reply to a SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS / ... request."""

    result: object  # None on success of a non-query request; a list or value otherwise
    id: object  # int, str or None, as sent in the request


class ErrorReply(NamedTuple):
    """An error reply (``{"code": .., "msg": ..}``)."""

    code: int
    msg: str
    id: object  # None when absent


class ServerShutdown(NamedTuple):
    """``serverShutdown``: the server is about to close the connection; reconnect."""

    event_time: int  # ns


class UnknownEvent(NamedTuple):
    """A well-formed message of a kind this decoder does not turn into columns
    (e.g. ``24hrTicker``); kept, not dropped."""

    event_type: str  # "e", or "" when absent
    payload: dict  # the message as parsed by :mod:`json`


class DepthHeader(NamedTuple):
    """What :func:`hftcore.binance.apply_depth_json` / ``apply_depth_sbe`` applied."""

    event_time: int  # ns; 0 when absent
    transaction_time: int  # ns; 0 when absent
    first_update_id: int  # U; -1 for snapshots
    final_update_id: int  # u, or the snapshot's lastUpdateId
    prev_final_update_id: int  # pu (USD-M); -1 when absent
    n_bids: int  # bid levels applied
    n_asks: int  # ask levels applied
    is_snapshot: bool  # the book was replaced
