"""Decoded tables as Apache Arrow tables: the columns and types of the message tables.

ITCH (:mod:`hftcore.itch.spec`): integers stay integers of their width; prices stay the
raw integers with their implied decimals in the field's metadata (``decimals``: 4, or 8
for the ``V`` levels); alpha and enum fields become dictionary-encoded strings with the
space padding removed (the stock symbol among them); ``timestamp`` stays the int64
nanoseconds since midnight (Eastern time, as NASDAQ sends it), and a ``time`` column of
``timestamp[ns, America/New_York]`` is added when the day's date is known.

Binance (:mod:`hftcore.binance.schema`): int64 prices and quantities with ``decimals``: 8
in the metadata, symbols dictionary-encoded strings, the nanosecond times as
``timestamp[ns, UTC]`` (null where the schema says 0 means absent), booleans as booleans.

The table-level metadata names the source format (``hftcore.format``) and the day.
"""

from __future__ import annotations

import datetime as _dt
import zoneinfo

import numpy as np
import pyarrow as pa

from hftcore.binance import schema as bschema
from hftcore.binance.decode import BinanceTables
from hftcore.export.names import date_from_name
from hftcore.itch import spec
from hftcore.itch.decoder import Tables

__all__ = [
    "to_arrow",
    "itch_table",
    "itch_schema",
    "binance_table",
    "binance_schema",
    "bbo_table",
    "bbo_schema",
    "date_from_name",
    "midnight_ns",
    "NASDAQ_TZ",
]

#: NASDAQ's timestamps count nanoseconds since midnight, US Eastern time.
NASDAQ_TZ = "America/New_York"


def midnight_ns(date: _dt.date, tz: str = NASDAQ_TZ) -> int:
    """Nanoseconds since the Unix epoch (UTC) of midnight of ``date`` in ``tz``."""
    local = _dt.datetime(date.year, date.month, date.day, tzinfo=zoneinfo.ZoneInfo(tz))
    return int(local.timestamp()) * 1_000_000_000


def _dict_strings(col: np.ndarray, strip: bytes) -> pa.DictionaryArray:
    """A fixed-width bytes column as a dictionary-encoded string array.

    The values are hashed by Arrow as unsigned integers of their width (one pass, no
    per-row Python); only the distinct values are turned into ``str``.
    """
    width = col.dtype.itemsize
    if len(col) == 0:
        return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))
    if width in (1, 2, 4, 8):
        keys = pa.array(np.ascontiguousarray(col).view(f"u{width}"))
        enc = keys.dictionary_encode()
        uniq = enc.dictionary.to_numpy(zero_copy_only=False).astype(f"u{width}").view(f"S{width}")
        indices = enc.indices
    else:
        uniq, inverse = np.unique(np.ascontiguousarray(col), return_inverse=True)
        indices = pa.array(inverse.astype(np.int32, copy=False).reshape(-1))
    words = [bytes(u).rstrip(strip).decode("utf-8", "replace") for u in uniq.tolist()]
    return pa.DictionaryArray.from_arrays(indices, pa.array(words, pa.string()))


_DICT_STRING = pa.dictionary(pa.int32(), pa.string())
_ITCH_SCHEMAS: dict[tuple[str, bool], pa.Schema] = {}


def itch_schema(type_: str, dated: bool = False) -> pa.Schema:
    """The Arrow schema of ITCH message type ``type_`` (``dated``: with the ``time`` column).

    Column order: ``seq``, ``stock_locate``, ``tracking_number``, ``timestamp``, [``time``],
    then the type's fields in wire order.
    """
    key = (type_, bool(dated))
    sch = _ITCH_SCHEMAS.get(key)
    if sch is not None:
        return sch
    msg = spec.BY_TYPE[type_]
    fields = [pa.field("seq", pa.uint64(), nullable=False,
                       metadata={"doc": "0-based index of the message in the day's stream"})]  # fmt: skip
    for f in msg.all_fields:
        meta = {"itch_kind": f.kind}
        if f.name == "timestamp":
            meta["doc"] = "nanoseconds since midnight, US Eastern time"
            fields.append(pa.field("timestamp", pa.int64(), nullable=False, metadata=meta))
            if dated:
                fields.append(pa.field("time", pa.timestamp("ns", tz=NASDAQ_TZ), nullable=False,
                                       metadata={"doc": "the day's midnight plus timestamp"}))  # fmt: skip
            continue
        if f.kind in ("alpha", "enum"):
            typ = _DICT_STRING
        elif f.size == 2:
            typ = pa.uint16()
        elif f.size == 4:
            typ = pa.uint32()
        else:
            typ = pa.uint64()
        if f.kind in spec.PRICE_SCALE:
            meta["decimals"] = str(len(str(spec.PRICE_SCALE[f.kind])) - 1)
        fields.append(pa.field(f.name, typ, nullable=False, metadata=meta))
    sch = pa.schema(fields, metadata={"hftcore.format": "itch50", "hftcore.type": type_,
                                      "hftcore.message": msg.name})  # fmt: skip
    _ITCH_SCHEMAS[key] = sch
    return sch


def itch_table(type_: str, rows: np.ndarray, date: _dt.date | None = None) -> pa.Table:
    """One ITCH message type's rows (a :func:`hftcore.itch.dtype` array) as an Arrow table."""
    sch = itch_schema(type_, date is not None)
    cols = []
    for field in sch:
        name = field.name
        if name == "time":
            base = midnight_ns(date)
            ns = rows["timestamp"].astype(np.int64) + base
            cols.append(pa.array(ns, pa.int64()).view(field.type))
        elif name == "timestamp":
            cols.append(pa.array(rows["timestamp"].astype(np.int64)))
        elif field.type == _DICT_STRING:
            cols.append(_dict_strings(rows[name], b" "))
        else:
            cols.append(pa.array(np.ascontiguousarray(rows[name]), field.type))
    return pa.Table.from_arrays(cols, schema=sch)


# ---------------------------------------------------------------- order book BBO

#: Columns of the top-of-book change events (OrderBook.drain_bbo), plus symbol and time.
_BBO_PRICES = ("bid_price", "ask_price")


def bbo_schema(dated: bool = False) -> pa.Schema:
    """Schema of the ``bbo`` dataset: one row per top-of-book change of a stock."""
    fields = [
        pa.field("seq", pa.uint64(), nullable=False, metadata={"doc": "seq of the message"}),
        pa.field(
            "timestamp",
            pa.int64(),
            nullable=False,
            metadata={"doc": "nanoseconds since midnight, US Eastern time"},
        ),  # fmt: skip
    ]
    if dated:
        fields.append(pa.field("time", pa.timestamp("ns", tz=NASDAQ_TZ), nullable=False))
    fields += [
        pa.field("stock_locate", pa.uint16(), nullable=False),
        pa.field("stock", _DICT_STRING, nullable=False),
        pa.field(
            "bid_price",
            pa.uint32(),
            nullable=False,
            metadata={"decimals": "4", "doc": "0 when the side is empty"},
        ),  # fmt: skip
        pa.field("bid_shares", pa.uint64(), nullable=False),
        pa.field(
            "ask_price",
            pa.uint32(),
            nullable=False,
            metadata={"decimals": "4", "doc": "0 when the side is empty"},
        ),  # fmt: skip
        pa.field("ask_shares", pa.uint64(), nullable=False),
    ]
    return pa.schema(fields, metadata={"hftcore.format": "itch50", "hftcore.type": "bbo"})


def bbo_table(events: np.ndarray, symbols: dict, date: _dt.date | None = None) -> pa.Table:
    """Top-of-book events (``OrderBook.drain_bbo()`` rows) as an Arrow table.

    ``symbols`` maps stock_locate to ticker (``OrderBook.symbols()`` inverted).
    """
    sch = bbo_schema(date is not None)
    enc = pa.array(np.ascontiguousarray(events["stock_locate"])).dictionary_encode()
    names = [symbols.get(int(u), "") for u in enc.dictionary.to_pylist()]
    stock = pa.DictionaryArray.from_arrays(enc.indices, pa.array(names, pa.string()))
    cols = []
    for field in sch:
        name = field.name
        if name == "time":
            ns = events["timestamp"].astype(np.int64) + midnight_ns(date)
            cols.append(pa.array(ns, pa.int64()).view(field.type))
        elif name == "timestamp":
            cols.append(pa.array(events["timestamp"].astype(np.int64)))
        elif name == "stock":
            cols.append(stock)
        else:
            cols.append(pa.array(np.ascontiguousarray(events[name]), field.type))
    return pa.Table.from_arrays(cols, schema=sch)


# ---------------------------------------------------------------- Binance

_TIME_COLUMNS = frozenset(
    {"event_time", "trade_time", "transaction_time", "start_time", "close_time"}
)
_BINANCE_SCHEMAS: dict[str, pa.Schema] = {}


def binance_schema(kind: str) -> pa.Schema:
    """The Arrow schema of a Binance table (``trades``, ``depth``, ... of the schema)."""
    sch = _BINANCE_SCHEMAS.get(kind)
    if sch is not None:
        return sch
    fields = []
    for c in bschema.TABLES[kind]:
        meta = {"doc": c.doc}
        if c.key:
            meta["json_key"] = c.key
        nullable = False
        if c.name in _TIME_COLUMNS:
            typ = pa.timestamp("ns", tz="UTC")
            nullable = "0 when absent" in c.doc
        elif c.dtype.startswith("S"):
            typ = _DICT_STRING
        elif c.dtype == "?":
            typ = pa.bool_()
        elif c.dtype == "u1":
            typ = pa.uint8()
        else:
            typ = pa.int64()
        if c.name in bschema.FIXED_POINT:
            meta["decimals"] = str(bschema.DECIMALS)
        fields.append(pa.field(c.name, typ, nullable=nullable, metadata=meta))
    sch = _BINANCE_SCHEMAS[kind] = pa.schema(
        fields, metadata={"hftcore.format": "binance", "hftcore.kind": kind}
    )
    return sch


def binance_table(kind: str, rows: np.ndarray) -> pa.Table:
    """One Binance table's rows (a :class:`~hftcore.binance.BinanceTables` array) as Arrow."""
    sch = binance_schema(kind)
    cols = []
    for field in sch:
        col = rows[field.name]
        if field.type == _DICT_STRING:
            cols.append(_dict_strings(col, b"\x00"))
        elif pa.types.is_timestamp(field.type):
            values = np.ascontiguousarray(col, dtype=np.int64)
            mask = (values == 0) if field.nullable else None
            cols.append(pa.array(values, pa.int64(), mask=mask).view(field.type))
        else:
            cols.append(pa.array(np.ascontiguousarray(col), field.type))
    return pa.Table.from_arrays(cols, schema=sch)


# ---------------------------------------------------------------- entry point


def to_arrow(tables, *, date=None, types=None) -> dict[str, pa.Table]:
    """Decoded tables as one :class:`pyarrow.Table` per ITCH message type or Binance kind.

    Parameters
    ----------
    tables : hftcore.itch.Tables or hftcore.binance.BinanceTables
        From ``itch.decode`` / ``itch.read_file`` / ``itch.iter_file`` or the Binance
        decoders and readers.
    date : datetime.date or str, optional
        ITCH only: the trading day (``"2020-01-30"`` or a date), which adds the ``time``
        column (``timestamp[ns, America/New_York]``).
    types : iterable of str, optional
        ITCH types (or Binance kinds) to convert; default: every decoded one.

    Returns
    -------
    dict of str to pyarrow.Table
        Keyed by type character (ITCH) or kind name (Binance); empty types are included
        (with their schema) when they were decoded.

    Examples
    --------
    >>> from hftcore import itch, export                     # doctest: +SKIP
    >>> arrow = export.to_arrow(itch.read_file("01302020.NASDAQ_ITCH50.gz", types="AP"),
    ...                         date="2020-01-30")
    >>> arrow["P"].schema.field("price").metadata            # {b'decimals': b'4', ...}
    """
    if isinstance(date, str):
        date = _dt.date.fromisoformat(date)
    if isinstance(tables, Tables):
        wanted = tables.decoded if types is None else "".join(types)
        return {t: itch_table(t, tables[t], date) for t in spec.TYPES if t in wanted}
    if isinstance(tables, BinanceTables):
        if date is not None:
            raise ValueError("date= is for ITCH tables; Binance times are absolute")
        kinds = list(tables) if types is None else list(types)
        return {k: binance_table(k, tables[k]) for k in kinds}
    raise TypeError(
        f"to_arrow takes hftcore.itch.Tables or hftcore.binance.BinanceTables, "
        f"not {type(tables).__name__}"
    )
