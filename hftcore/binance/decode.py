"""Binance market data decoders: the thin Python layer over the nogil kernels.

Batch path (fast): :func:`decode_many` (JSON) and :func:`decode_many_sbe` (SBE) turn many
messages into :class:`BinanceTables`, numpy structured arrays, one row per trade, book
ticker, kline or depth price level. Per-message path (convenient, slower):
:func:`decode` and :func:`decode_sbe` return one record from :mod:`hftcore.binance.records`.

Prices and quantities are int64 with 8 implied decimals, exactly (``"43250.01000000"`` is
``4325001000000``); times are int64 nanoseconds.
"""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from hftcore.binance import _json, schema
from hftcore.binance.records import (
    AggTrade,
    BookTicker,
    ControlReply,
    DepthSnapshot,
    DepthUpdate,
    ErrorReply,
    Kline,
    ServerShutdown,
    Trade,
    UnknownEvent,
)
from hftcore.errors import DecodeError

__all__ = [
    "BinanceTables",
    "SCALE",
    "decode",
    "decode_many",
    "decode_sbe",
    "decode_many_sbe",
    "KINDS",
]

#: Fixed-point scale of prices and quantities (8 implied decimals); from
#: :mod:`hftcore.binance.schema`.
SCALE = schema.SCALE

#: Message kind names, indexed by the codes in :attr:`BinanceTables.kinds`.
KINDS = _json.KIND_NAMES


class BinanceTables(Mapping):
    """Decoded Binance messages as numpy structured arrays, one table per kind.

    Tables: ``trades``, ``agg_trades``, ``book_ticker``, ``depth`` (one row per price
    level of diff depth events: ``side`` 0 bid / 1 ask, with the event's header fields
    repeated), ``depth_snapshots`` (levels of REST snapshots and partial book depth
    events; ``final_update_id`` holds ``lastUpdateId``) and ``klines``. Every row has
    ``msg_index``, the index of its message in the input.

    Attributes
    ----------
    counts : dict of str to int
        Messages per kind, including ``control``, ``error``, ``serverShutdown`` and
        ``unknown`` (well-formed messages of other kinds, e.g. ``24hrTicker``), which
        are counted, never dropped silently; ``invalid`` counts messages skipped with
        ``errors="skip"``.
    kinds : numpy.ndarray of uint8
        The kind code of every message (names in :data:`KINDS`; 0 is ``invalid``).
    errors : list of DecodeError
        With ``errors="skip"``: the first 100 errors (each names its message).
    """

    def __init__(self, tables: dict, counts: dict, errors: list | None = None):
        self.kinds = tables.pop("kinds")
        self._tables = tables
        self.counts = counts
        self.errors = errors or []

    def __getitem__(self, name: str) -> np.ndarray:
        return self._tables[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    @property
    def n_messages(self) -> int:
        """Number of messages decoded."""
        return len(self.kinds)

    def as_float(self, table: str, column: str) -> np.ndarray:
        """A fixed-point column as float64 (``value / 1e8``), for plotting and quick looks.

        Parameters
        ----------
        table : str
            Table name, e.g. ``"trades"``.
        column : str
            A price or quantity column, e.g. ``"price"``.

        Returns
        -------
        numpy.ndarray of float64
            Rounded to the nearest double; use the int64 column for exact arithmetic.
        """
        if column not in schema.FIXED_POINT:
            raise KeyError(f"{column!r} is not a fixed-point price/quantity column")
        return self._tables[table][column] / SCALE

    def __repr__(self) -> str:
        rows = ", ".join(f"{k}={len(v)}" for k, v in self._tables.items())
        return f"BinanceTables(messages={self.n_messages}, {rows})"


def _as_bytes(msg) -> bytes:
    if isinstance(msg, str):
        return msg.encode("utf-8")
    return msg


def _prepare(data):
    """``(buffer, starts, ends)``: one buffer, with message bounds for a sequence input."""
    if isinstance(data, str):
        return data.encode("utf-8"), None, None
    if isinstance(data, (bytes, bytearray, memoryview, mmap.mmap, np.ndarray)):
        return data, None, None
    if isinstance(data, Sequence) or hasattr(data, "__iter__"):
        parts = [_as_bytes(m) for m in data]
        lengths = np.fromiter((len(m) for m in parts), dtype=np.int64, count=len(parts))
        starts = np.zeros(len(parts), dtype=np.int64)
        if len(parts) > 1:
            np.cumsum(lengths[:-1] + 1, out=starts[1:])  # + 1: the separator
        ends = starts + lengths
        return b"\n".join(parts), starts, ends
    raise TypeError(f"expected bytes-like, str or a sequence of messages, not {type(data)}")


_MAX_INITIAL_ROWS = 1 << 22  # beyond this, grow on demand rather than reserve


def _initial_caps(nbytes: int, n_msgs: int | None) -> list[int]:
    # Rough guesses from typical message sizes; tables grow (doubling) when short. The
    # reservation is virtual memory only until rows are written, and it is capped so a
    # multi-GB input does not reserve several times its size up front.
    n = n_msgs if n_msgs is not None else nbytes // 60 + 16
    caps = [
        n // 2 + 16,  # trades
        16,  # agg_trades
        n // 2 + 16,  # book_ticker
        nbytes // 24 + 16,  # depth levels: a level takes at least ~24 bytes
        16,  # depth_snapshots
        16,  # klines
        n + 16,  # kinds
    ]
    return [min(c, _MAX_INITIAL_ROWS) for c in caps]


def decode_many(data, time_unit: str = "ms", errors: str = "raise") -> BinanceTables:
    """Decode many Binance JSON stream messages into tables in one nogil pass.

    Parameters
    ----------
    data : bytes-like, str, or sequence of bytes/str
        Newline-delimited JSON (any whitespace between messages works; bytes, bytearray,
        memoryview, mmap and uint8 arrays are read without copying), or a sequence of
        single messages (e.g. WebSocket frames). Combined-stream envelopes
        (``{"stream": .., "data": ..}``) are unwrapped.
    time_unit : {"ms", "us"}
        Unit of the stream's times (``"us"`` for ``timeUnit=MICROSECOND`` streams).
    errors : {"raise", "skip"}
        ``"skip"``: a bad message is counted (``counts["invalid"]``, kind 0), its error
        kept in ``errors``, and decoding resumes with the next message (for a buffer, the
        next line). For recorded streams with the odd corrupt line.

    Returns
    -------
    BinanceTables
        Mapping of table name to numpy structured array, with ``counts`` and ``kinds``.

    Raises
    ------
    DecodeError
        Malformed JSON, a malformed or inexact decimal (more than 8 significant
        decimals, overflow of int64 at 8 decimals, exponent notation), a missing
        required field, or a symbol longer than 24 bytes. The error names the message
        (``source``: ``"message 17"``) and the byte offset (in the buffer, or within the
        message for a sequence input).

    Examples
    --------
    >>> from hftcore import binance
    >>> t = binance.decode_many(b'{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"43250.01",'
    ...                         b'"q":"0.5","T":1,"m":true}')
    >>> int(t["trades"]["price"][0]), t.counts["trade"]
    (4325001000000, 1)
    """
    mult = schema.time_multiplier(time_unit)
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    buf, starts, ends = _prepare(data)
    view = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
    caps = _initial_caps(len(view), None if starts is None else len(starts))
    tables, counts, errs = _json.decode_json(
        view, starts, ends, mult, caps, skip_errors=errors == "skip"
    )
    return BinanceTables(tables, counts, errs)


def _sym(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _levels(rows: np.ndarray, side: int) -> np.ndarray:
    sel = rows[rows["side"] == side]
    out = np.empty((len(sel), 2), dtype=np.int64)
    out[:, 0] = sel["price"]
    out[:, 1] = sel["qty"]
    return out


def _row_values(table: str, n: int):
    """A function: a row of ``table`` -> its first ``n`` column values as Python objects
    (bytes columns decoded as UTF-8 ``str``), in the schema's column order."""
    text = tuple(i for i, c in enumerate(schema.TABLES[table][:n]) if c.dtype.startswith("S"))

    def values(row) -> list:
        v = list(row.item()[:n])  # int, bool and bytes, in column order
        for i in text:
            v[i] = _sym(v[i])
        return v

    return values


def _row_builder(cls, table: str):
    """Build ``cls`` (a record generated from ``table``'s columns) from one table row."""
    values = _row_values(table, len(cls._fields))
    return lambda row: cls._make(values(row))


# Record builders of the one-row kinds: kind -> (table, row -> record).
_ROW_RECORDS = {
    "trade": ("trades", _row_builder(Trade, "trades")),
    "aggTrade": ("agg_trades", _row_builder(AggTrade, "agg_trades")),
    "bookTicker": ("book_ticker", _row_builder(BookTicker, "book_ticker")),
    "kline": ("klines", _row_builder(Kline, "klines")),
}
# The depth header: the columns before 'side' (DepthUpdate's fields before bids/asks).
_DEPTH_HEAD = len(DepthUpdate._fields) - 2
_depth_head = _row_values("depth", _DEPTH_HEAD)


def _record(tables: BinanceTables, kind: str, raw: bytes | None, mult: int):
    row_record = _ROW_RECORDS.get(kind)
    if row_record is not None:
        table, build = row_record
        return build(tables[table][0])
    if kind in ("depthUpdate", "depthSnapshot"):
        name = "depth" if kind == "depthUpdate" else "depth_snapshots"
        rows = tables[name]
        if len(rows):
            head = _depth_head(rows[0])
        else:  # no level, no row: the header from the same parser, one message
            head = _header(raw, mult)
        bids, asks = _levels(rows, 0), _levels(rows, 1)
        if kind == "depthUpdate":
            return DepthUpdate(*head, bids, asks)
        event_time, transaction_time, symbol, _, final_update_id = head[:5]
        return DepthSnapshot(final_update_id, event_time, transaction_time, symbol, bids, asks)
    if kind == "serverShutdown":
        return ServerShutdown(_header(raw, mult)[0])
    # Replies and unknown events carry arbitrary JSON (ControlReply.result,
    # UnknownEvent.payload): the parser has validated the message, its duplicate keys and
    # the replies' typed fields; json builds the values.
    obj = _loads(raw)
    if kind == "control":
        return ControlReply(_field(obj, "result"), _reply_id(obj))
    if kind == "error":
        code, msg = _field(obj, "code"), _field(obj, "msg")
        if type(code) is not int or type(msg) is not str:
            raise DecodeError("error reply: 'code' must be an integer, 'msg' a string", 0)
        return ErrorReply(code, msg, _reply_id(obj))
    payload = _payload(obj)
    event_type = payload.get("e", "")
    return UnknownEvent(event_type if type(event_type) is str else "", payload)


def _header(raw: bytes, mult: int) -> tuple:
    """The depth header fields of one message in DepthUpdate's order (event_time,
    transaction_time, symbol, first_update_id, final_update_id, prev_final_update_id),
    from the Cython parser (the one parser of a message)."""
    _, event_time, transaction_time, first, final, prev, sym = _json.message_header(raw, mult)
    return event_time, transaction_time, _sym(sym), first, final, prev


def _payload(obj: dict) -> dict:
    """The event of a combined-stream (``data``) or WebSocket API (``event``) envelope."""
    for key in ("data", "event"):
        if type(obj.get(key)) is dict:
            return obj[key]
    return obj


def _field(obj: dict, key: str):
    """``key`` of the message or of its envelope's payload (the parser reads both as one
    object and has rejected a key that is in both)."""
    if key in obj:
        return obj[key]
    return _payload(obj).get(key)


def _reply_id(obj: dict):
    rid = _field(obj, "id")
    if rid is not None and type(rid) not in (int, str):
        raise DecodeError("reply 'id' must be an integer, a string or null", 0)
    return rid


def _unique_keys(pairs: list) -> dict:
    """json's object hook: duplicate keys are a DecodeError, as in the Cython parser."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DecodeError(f"duplicate key {key!r}", 0)
            seen.add(key)
    return obj


def _loads(raw: bytes) -> dict:
    try:
        obj = json.loads(raw, object_pairs_hook=_unique_keys)
    except ValueError as exc:  # the scanner is the stricter one; this is a safety net
        if isinstance(exc, DecodeError):
            raise
        raise DecodeError(f"invalid JSON: {exc}", getattr(exc, "pos", -1)) from None
    except RecursionError:  # the scanner bounds the nesting first; a safety net too
        raise DecodeError("invalid JSON: nested too deeply", 0) from None
    if type(obj) is not dict:
        raise DecodeError("a message must be a JSON object", 0)
    return obj


def decode(msg, time_unit: str = "ms"):
    """Decode one Binance JSON message into a record (the convenient, slower path).

    Parameters
    ----------
    msg : bytes-like or str
        One message (a WebSocket text frame, or a REST depth snapshot body).
    time_unit : {"ms", "us"}
        Unit of the stream's times.

    Returns
    -------
    Trade, AggTrade, DepthUpdate, DepthSnapshot, BookTicker, Kline, ControlReply,
    ErrorReply, ServerShutdown or UnknownEvent
        Every field has its declared type whatever the input: ``ErrorReply.code`` an
        int, ``msg`` a str, ``ErrorReply.id`` / ``ControlReply.id`` an int, a str or
        None; ``ControlReply.result`` and ``UnknownEvent.payload`` are the JSON values
        as :mod:`json` parses them (any JSON value; a dict for the payload).

    Raises
    ------
    DecodeError
        As :func:`decode_many`; also a reply whose ``code``, ``msg`` or ``id`` has
        another JSON type, and a duplicated key (docs/guides/binance.rst).

    Examples
    --------
    >>> from hftcore import binance
    >>> binance.decode('{"u":1,"s":"BNBUSDT","b":"25.3519","B":"31.21","a":"25.3652",'
    ...                '"A":"40.66"}').bid_price
    2535190000
    """
    mult = schema.time_multiplier(time_unit)
    raw = _as_bytes(msg)
    if not isinstance(raw, bytes):
        raw = bytes(raw)
    t = decode_many([raw], time_unit)
    if t.n_messages != 1:
        raise DecodeError("no message", 0)
    return _record(t, KINDS[int(t.kinds[0])], raw, mult)


def decode_many_sbe(data) -> BinanceTables:
    """Decode Binance spot SBE market data (schema 1, version 0) into tables.

    Parameters
    ----------
    data : bytes-like, or sequence of bytes-like
        Concatenated SBE messages (each starts with its 8-byte message header and its
        length follows from the schema), or a sequence of single messages (WebSocket
        binary frames).

    Returns
    -------
    BinanceTables
        The same tables as :func:`decode_many`: ``TradesStreamEvent`` -> ``trades`` (one
        row per trade; order ids -1), ``BestBidAskStreamEvent`` -> ``book_ticker``,
        ``DepthDiffStreamEvent`` -> ``depth``, ``DepthSnapshotStreamEvent`` ->
        ``depth_snapshots``. SBE times are microseconds; they become nanoseconds.

    Raises
    ------
    DecodeError
        Truncated message, unknown template id, schema id/version other than 1/0, or a
        mantissa/exponent that is not exact at 8 decimals or overflows int64.
    """
    from hftcore.binance import _sbe

    buf, starts, ends = _prepare_binary(data)
    view = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
    caps = _initial_caps(len(view) * 2, None if starts is None else len(starts))
    tables, counts, _ = _sbe.decode_sbe_tables(view, starts, ends, caps)
    return BinanceTables(tables, counts)


def _prepare_binary(data):
    if isinstance(data, (bytes, bytearray, memoryview, mmap.mmap, np.ndarray)):
        return data, None, None
    parts = [bytes(m) for m in data]
    lengths = np.fromiter((len(m) for m in parts), dtype=np.int64, count=len(parts))
    starts = np.zeros(len(parts), dtype=np.int64)
    if len(parts) > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    return b"".join(parts), starts, starts + lengths


def decode_sbe(msg):
    """Decode one SBE message into a record (the convenient, slower path).

    Parameters
    ----------
    msg : bytes-like
        One message, header included.

    Returns
    -------
    list of Trade, or BookTicker, DepthUpdate, DepthSnapshot
        A ``TradesStreamEvent`` carries several trades: a list of :class:`Trade`.

    Raises
    ------
    DecodeError
        As :func:`decode_many_sbe`.
    """
    t = decode_many_sbe([msg])
    if t.n_messages != 1:
        raise DecodeError("no message", 0)
    kind = KINDS[int(t.kinds[0])]
    if kind == "trade":
        build = _ROW_RECORDS["trade"][1]  # the SBE decoder writes -1 order ids
        return [build(r) for r in t["trades"]]
    if kind in ("depthUpdate", "depthSnapshot"):
        from hftcore.binance import _sbe

        head = _sbe.header_fields(msg)
        name = "depth" if kind == "depthUpdate" else "depth_snapshots"
        rows = t[name]
        bids, asks = _levels(rows, 0), _levels(rows, 1)
        if kind == "depthUpdate":
            return DepthUpdate(
                head["event_time"], 0, head["symbol"], head["first_update_id"],
                head["final_update_id"], -1, bids, asks,
            )  # fmt: skip
        return DepthSnapshot(
            head["final_update_id"], head["event_time"], 0, head["symbol"], bids, asks
        )
    return _record(t, kind, None, 1000)
