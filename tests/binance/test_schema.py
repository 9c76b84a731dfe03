"""schema.py is the one place a Binance field's name, type and position are written:
the decoders' dtypes, the record classes, the record builders and the SBE encoder must
all agree with it."""

import struct

import numpy as np
import pytest

from hftcore.binance import _json, decode_many_sbe, decode_sbe, records, sbe_encode, schema
from hftcore.binance.schema import SBE_TEMPLATES, SBE_TYPES, TABLES

TABLE_ORDER = ("trades", "agg_trades", "book_ticker", "depth", "depth_snapshots", "klines")
ROW_RECORDS = {
    "trades": records.Trade,
    "agg_trades": records.AggTrade,
    "book_ticker": records.BookTicker,
    "klines": records.Kline,
}


def _py_type(dtype: str):
    return bool if dtype == "?" else str if dtype.startswith("S") else int


@pytest.mark.parametrize("i", range(len(TABLE_ORDER)))
def test_dtypes_are_the_schema_columns(i):
    dt = _json.DTYPES[i]
    cols = TABLES[TABLE_ORDER[i]]
    assert dt.names == tuple(c.name for c in cols)
    for c in cols:
        assert dt[c.name] == np.dtype(c.dtype), c.name


@pytest.mark.parametrize(("table", "cls"), sorted(ROW_RECORDS.items()))
def test_row_records_are_the_columns_without_msg_index(table, cls):
    cols = [c for c in TABLES[table] if c.name != "msg_index"]
    assert cls._fields == tuple(c.name for c in cols)
    for c in cols:
        assert cls.__annotations__[c.name] is _py_type(c.dtype), c.name
        assert getattr(cls, c.name).__doc__ == c.doc
    assert TABLES[table][-1].name == "msg_index"


def test_depth_records_follow_the_depth_columns():
    depth = {c.name: c for c in TABLES["depth"]}
    head = records.DepthUpdate._fields[:-2]
    assert records.DepthUpdate._fields[-2:] == ("bids", "asks")
    assert head == tuple(c.name for c in TABLES["depth"][: len(head)])
    assert TABLES["depth"][len(head)].name == "side"
    # DepthSnapshot keeps its released field order; lastUpdateId is final_update_id.
    renamed = {"last_update_id": "final_update_id"}
    for f in records.DepthSnapshot._fields[:-2]:
        assert renamed.get(f, f) in depth, f
    # DepthHeader (what the appliers applied): depth columns, then counts.
    for f in records.DepthHeader._fields:
        assert f in depth or f in ("n_bids", "n_asks", "is_snapshot"), f


def test_fixed_point_columns_are_int64_columns():
    cols = {(c.name, c.dtype) for t in TABLES.values() for c in t}
    for name in schema.FIXED_POINT:
        assert (name, "<i8") in cols, name


def test_time_units_and_markets():
    assert schema.time_multiplier("ms") == 1_000_000
    assert schema.time_multiplier("us") == 1_000
    for bad in ("s", "ns", None, ["ms"]):
        with pytest.raises(ValueError, match="time_unit"):
            schema.time_multiplier(bad)
    assert schema.check_market("usdm") == "usdm"
    with pytest.raises(ValueError, match="market"):
        schema.check_market("coinm")
    assert schema.SCALE == 10**schema.DECIMALS == 100_000_000


def _tiles(fields, length):
    at = 0
    for f in fields:
        assert f.offset == at, f.name
        at += SBE_TYPES[f.type][1]
    return at == length


def test_sbe_layout_is_consistent():
    assert _tiles(schema.SBE_HEADER, 8)
    assert sorted(SBE_TEMPLATES) == [10000, 10001, 10002, 10003]
    for tid, t in SBE_TEMPLATES.items():
        assert t.template_id == tid
        assert _tiles(t.block, t.block_length), t.name
        columns = {c.name for c in TABLES[t.table]}
        for f in t.block:
            assert f.column == "" or f.column in columns, (t.name, f.name)
        for g in t.groups:
            assert _tiles(g.entry, g.entry_length), (t.name, g.name)
            assert [f.name for f in g.dimension] == ["blockLength", "numInGroup"]
            for f in g.entry:
                assert f.column == "" or f.column in columns, (t.name, g.name, f.name)


def test_sbe_block_lengths_are_the_ones_on_the_wire():
    # Schema 1 v0, written out by hand from stream_1_0.xml.
    want = {10000: (18, [25]), 10001: (50, []), 10002: (18, [16, 16]), 10003: (26, [16, 16])}
    got = {tid: (t.block_length, [g.entry_length for g in t.groups])
           for tid, t in SBE_TEMPLATES.items()}  # fmt: skip
    assert got == want


def _field_values(msg: bytes):
    """Every root-block field of an encoded message, read with the schema's offsets."""
    length, tid, sid, version = struct.unpack_from("<HHHH", msg)
    t = SBE_TEMPLATES[tid]
    assert (length, sid, version) == (t.block_length, 1, 0)
    return t, {
        f.name: struct.unpack_from("<" + SBE_TYPES[f.type][0], msg, 8 + f.offset)[0]
        for f in t.block
    }


def test_encoder_writes_each_field_where_the_schema_says():
    bba = sbe_encode.encode_best_bid_ask(1_700_000_000_000_123, 77, "BTCUSDT",
                                         43_250_01000000, 5_00000000, 43_250_02000000,
                                         7_00000000, -2, -3)  # fmt: skip
    t, v = _field_values(bba)
    assert v == {
        "eventTime": 1_700_000_000_000_123,
        "bookUpdateId": 77,
        "priceExponent": -2,
        "qtyExponent": -3,
        "bidPrice": 4_325_001,
        "bidQty": 5_000,
        "askPrice": 4_325_002,
        "askQty": 7_000,
    }
    # ... and the decoder puts them in the columns the schema names.
    row = decode_many_sbe([bba])[t.table][0]
    assert row["event_time"] == v["eventTime"] * 1000
    assert row["update_id"] == 77
    assert row["bid_price"] == 43_250_01000000 and row["ask_qty"] == 7_00000000

    diff = sbe_encode.encode_depth_diff(5, 10, 12, "ETHUSDT", [(1 * 10**8, 2 * 10**8)], [])
    t, v = _field_values(diff)
    assert (t.table, v["firstBookUpdateId"], v["lastBookUpdateId"]) == ("depth", 10, 12)

    trades = sbe_encode.encode_trades(5, 4, "BNBUSDT", [(9, 3 * 10**8, 10**8, True)])
    t, v = _field_values(trades)
    assert (v["eventTime"], v["transactTime"]) == (5, 4)
    (trade,) = decode_sbe(trades)
    assert trade == records.Trade(5000, 4000, "BNBUSDT", 9, 3 * 10**8, 10**8, True, -1, -1)
