"""Per-message records returned by :func:`hftcore.binance.decode` (the convenience path).

Prices and quantities are int64 with 8 implied decimals; times are int64 in the stream's
unit converted to nanoseconds. Level arrays have shape ``(n, 2)``: ``[:, 0]`` price,
``[:, 1]`` quantity.

The records of a table row (:class:`Trade`, :class:`AggTrade`, :class:`BookTicker`,
:class:`Kline`, and the header of :class:`DepthUpdate`) are generated from the table's
columns in :mod:`hftcore.binance.schema`: same names, same order, ``msg_index`` left out,
bytes columns as ``str``. The others are written here and checked against the schema by
the tests.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from hftcore.binance.schema import TABLES, Column

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


def _py_type(col: Column) -> type:
    """The Python type of a column's value in a record."""
    if col.dtype == "?":
        return bool
    if col.dtype.startswith("S"):
        return str  # NUL-padded UTF-8 in the table, decoded in the record
    return int


def _row_record(name: str, table: str, doc: str, stop: str = "msg_index", extra=()):
    """A NamedTuple of ``table``'s columns up to ``stop``, then ``extra`` fields."""
    cols = []
    for c in TABLES[table]:
        if c.name == stop:
            break
        cols.append(c)
    cls = NamedTuple(name, [(c.name, _py_type(c)) for c in cols] + [(n, t) for n, t, _ in extra])
    cls.__module__ = __name__  # pickling and docs: the class lives here
    cls.__doc__ = doc
    for c in cols:
        getattr(cls, c.name).__doc__ = c.doc
    for n, _, d in extra:
        getattr(cls, n).__doc__ = d
    return cls


# The depth table's header columns (those before 'side'), then the two level arrays.
DepthUpdate = _row_record(
    "DepthUpdate",
    "depth",
    "A diff depth event (spot ``depthUpdate``; USD-M adds ``T`` and ``pu``).",
    stop="side",
    extra=(
        ("bids", np.ndarray, "bid levels, int64 (n, 2): price, quantity"),
        ("asks", np.ndarray, "ask levels, int64 (n, 2): price, quantity"),
    ),
)


class DepthSnapshot(NamedTuple):
    """A full or partial book: REST ``/api/v3/depth`` / ``/fapi/v1/depth`` or a partial
    book depth stream event.

    The header fields are the depth table's columns (``last_update_id`` is its
    ``final_update_id``), in the order of the released API.
    """

    last_update_id: int
    event_time: int  # ns; 0 when absent (spot REST, spot partial depth)
    transaction_time: int  # ns; 0 when absent
    symbol: str  # "" when absent
    bids: np.ndarray  # int64 (n, 2)
    asks: np.ndarray  # int64 (n, 2)


Trade = _row_record(
    "Trade", "trades",
    "A raw trade (``trade`` stream; SBE ``TradesStreamEvent`` yields one per trade).",
)  # fmt: skip
AggTrade = _row_record(
    "AggTrade", "agg_trades",
    "An aggregate trade (``aggTrade`` stream): fills of one taker order at one price.",
)  # fmt: skip
BookTicker = _row_record(
    "BookTicker", "book_ticker",
    "Best bid and ask (spot ``bookTicker`` has no ``E``/``T``: 0 here; SBE\n"
    "``BestBidAskStreamEvent`` and USD-M carry ``E``).",
)  # fmt: skip
Kline = _row_record("Kline", "klines", "A kline/candlestick update (``kline_<interval>`` stream).")


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
