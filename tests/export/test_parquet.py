"""hftcore.export: Arrow tables and Parquet datasets read back against itch.decode
(issue 11)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import zoneinfo

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pads = pytest.importorskip("pyarrow.dataset")

from hftcore import binance, export, itch  # noqa: E402
from hftcore.errors import DecodeError  # noqa: E402
from hftcore.export import parquet as xparquet  # noqa: E402
from hftcore.itch import spec  # noqa: E402
from hftcore.sim import itch as simitch  # noqa: E402

DATE = dt.date(2020, 1, 30)


@pytest.fixture(scope="module")
def day_bytes():
    return simitch.generate(messages=100_000, symbols=40, seed=11)


def _write_day(tmp_path, data, name, compress):
    p = tmp_path / name
    p.write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return p


def _expected_strings(col):
    return [bytes(v).rstrip(b" ").decode() for v in col]


def _check_type(table: pa.Table, t: str, want: np.ndarray, date, sample=400):
    """Every column of a sample of rows equals the decoded numpy rows."""
    assert table.num_rows == len(want)
    if not len(want):
        return
    rng = np.random.default_rng(0)
    idx = np.unique(np.concatenate([[0, len(want) - 1], rng.integers(0, len(want), sample)]))
    got = table.take(pa.array(idx))
    rows = want[idx]
    for f in spec.BY_TYPE[t].all_fields:
        col = got.column(f.name)
        if f.kind in ("alpha", "enum"):
            assert col.to_pylist() == _expected_strings(rows[f.name]), (t, f.name)
        else:
            assert col.to_pylist() == rows[f.name].astype(object).tolist(), (t, f.name)
    assert got.column("seq").to_pylist() == rows["seq"].astype(object).tolist()
    if date is not None:
        # time = midnight in New York + ns since midnight (computed here by zoneinfo).
        midnight = dt.datetime(date.year, date.month, date.day,
                               tzinfo=zoneinfo.ZoneInfo("America/New_York"))  # fmt: skip
        want_ns = [int(midnight.timestamp()) * 10**9 + int(v) for v in rows["timestamp"]]
        got_ns = got.column("time").cast(pa.int64()).to_pylist()
        assert got_ns == want_ns


def test_to_arrow_types_and_metadata(day_bytes):
    tables = itch.decode(day_bytes)
    arrow = export.to_arrow(tables, date="2020-01-30")
    assert set(arrow) == set(spec.TYPES)
    a = arrow["A"]
    assert a.schema.field("price").type == pa.uint32()
    assert a.schema.field("price").metadata[b"decimals"] == b"4"
    assert a.schema.field("order_ref").type == pa.uint64()
    assert pa.types.is_dictionary(a.schema.field("stock").type)
    assert a.schema.field("timestamp").type == pa.int64()
    assert a.schema.field("time").type == pa.timestamp("ns", tz="America/New_York")
    assert arrow["V"].schema.field("level1").metadata[b"decimals"] == b"8"
    for t in spec.TYPES:
        _check_type(arrow[t], t, tables[t], DATE)
    undated = export.to_arrow(tables, types="P")
    assert list(undated) == ["P"] and "time" not in undated["P"].column_names


def test_date_from_name():
    assert export.date_from_name("/d/01302020.NASDAQ_ITCH50.gz") == DATE
    assert export.date_from_name("S083019-v50.txt") is None
    assert export.date_from_name("itch-2019-08-30.gz") == dt.date(2019, 8, 30)
    assert export.date_from_name("13302020.NASDAQ_ITCH50") is None  # month 13
    assert export.source_stem("01302020.NASDAQ_ITCH50.gz") == "01302020.NASDAQ_ITCH50"
    assert export.day_label("x/day1.itch.gz") == ("day1", None)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
def test_day_to_parquet_reads_back_equal(tmp_path, day_bytes, compress):
    p = _write_day(tmp_path, day_bytes, "01302020.NASDAQ_ITCH50" + (".gz" if compress else ""),
                   compress)  # fmt: skip
    out = tmp_path / "out"
    # Small chunks and row groups: many chunks per day and several row groups per file.
    res = export.itch_day_to_parquet(p, out, bbo=True, chunk_bytes=300_000,
                                     row_group_rows=20_000, progress=False)  # fmt: skip
    assert not res["skipped"] and res["day"] == "2020-01-30"
    want = itch.decode(day_bytes)
    assert res["messages"] == want.messages
    for t in spec.TYPES:
        d = pads.dataset(out / t, partitioning="hive") if (out / t).exists() else None
        if not len(want[t]):
            assert d is None
            continue
        table = d.to_table()
        assert table.column("day").unique().to_pylist() == ["2020-01-30"]
        assert res["rows"][t] == len(want[t])
        _check_type(table.drop_columns(["day"]), t, want[t], DATE)
    f = pq.ParquetFile(out / "A" / "day=2020-01-30" / "01302020.NASDAQ_ITCH50.parquet")
    assert f.metadata.num_row_groups == -(-len(want["A"]) // 20_000)
    assert f.schema_arrow.field("price").metadata[b"decimals"] == b"4"
    # BBO: every top-of-book change the order book reports, with its ticker.
    book = itch.OrderBook(bbo=True)
    book.apply(day_bytes)
    events = book.drain_bbo()
    names = {loc: t for t, loc in book.symbols.items()}
    bbo = pads.dataset(out / "bbo", partitioning="hive").to_table()
    assert bbo.num_rows == len(events) > 0
    assert bbo.column("seq").to_pylist() == events["seq"].astype(object).tolist()
    assert bbo.column("bid_price").to_pylist() == events["bid_price"].astype(object).tolist()
    assert bbo.column("ask_shares").to_pylist() == events["ask_shares"].astype(object).tolist()
    assert bbo.column("stock").to_pylist() == [names[int(x)] for x in events["stock_locate"]]
    # No temporary files are left; the manifest lists exactly the files on disk.
    files = sorted(str(q.relative_to(out)) for q in out.rglob("*.parquet"))
    assert files == res["files"]
    assert not [q for q in out.rglob("*") if q.name.endswith(".tmp")]


def test_types_filter_date_option_and_rerun_skips(tmp_path, day_bytes):
    p = _write_day(tmp_path, day_bytes, "day1.itch", False)
    out = tmp_path / "out"
    res = export.itch_day_to_parquet(p, out, types="AP", progress=False)
    assert sorted(os.listdir(out)) == ["A", "P", "_hftcore"]
    assert res["day"] == "day1"
    assert "time" not in pq.read_schema(next((out / "A" / "day=day1").iterdir())).names
    before = {q: q.stat().st_mtime_ns for q in out.rglob("*.parquet")}
    again = export.itch_day_to_parquet(p, out, types="AP", progress=False)
    assert again["skipped"]
    assert {q: q.stat().st_mtime_ns for q in out.rglob("*.parquet")} == before
    # Other options are a different conversion: the day is rewritten.
    dated = export.itch_day_to_parquet(p, out, types="A", date="2020-01-30", progress=False)
    assert not dated["skipped"] and dated["day"] == "2020-01-30"
    assert (out / "A" / "day=2020-01-30" / "day1.parquet").is_file()
    assert not (out / "A" / "day=day1").exists() or not any((out / "A" / "day=day1").iterdir())
    assert not (out / "P" / "day=day1" / "day1.parquet").exists()


def test_interrupted_write_leaves_no_complete_looking_file(tmp_path, day_bytes, monkeypatch):
    p = _write_day(tmp_path, day_bytes, "day2.itch", False)
    out = tmp_path / "out"

    real_add = xparquet._Parts.add
    calls = {"n": 0}

    def failing_add(self, *a):
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt  # as a Ctrl-C mid-day
        return real_add(self, *a)

    monkeypatch.setattr(xparquet._Parts, "add", failing_add)
    with pytest.raises(KeyboardInterrupt):
        export.itch_day_to_parquet(p, out, chunk_bytes=100_000, row_group_rows=5_000,
                                   progress=False)  # fmt: skip
    assert not list(out.rglob("*.parquet")) and not list(out.rglob("*.tmp"))
    assert not export.is_complete(out, "itch", p, {})
    monkeypatch.setattr(xparquet._Parts, "add", real_add)
    res = export.itch_day_to_parquet(p, out, progress=False)
    assert not res["skipped"] and res["rows"]["A"] == len(itch.decode(day_bytes)["A"])


def test_a_killed_process_leaves_only_hidden_temporaries(tmp_path, day_bytes):
    # A process killed mid-write (no cleanup at all) leaves only dot-named .tmp files,
    # which dataset readers skip, and no manifest: the rerun writes the day.
    p = _write_day(tmp_path, day_bytes, "day3.itch", False)
    out = tmp_path / "out"
    parts = xparquet._Parts(out, "day3", "zstd", 1000)
    rows = itch.decode(day_bytes, types="A")["A"]
    parts.add("A", "day3", export.to_arrow(itch.decode(day_bytes, types="A"))["A"])
    assert len(rows) > 1000
    parts.thread.finish()  # the row groups are on disk; nothing is closed or renamed
    leftovers = [q.name for q in out.rglob("*") if q.is_file()]
    assert leftovers and all(n.startswith(".") and n.endswith(".tmp") for n in leftovers)
    assert pads.dataset(out / "A", partitioning="hive").count_rows() == 0
    res = export.itch_day_to_parquet(p, out, types="A", progress=False)
    assert res["rows"]["A"] == len(rows)
    assert [q.name for q in out.rglob("*") if q.name.endswith(".tmp")] == []


def test_corrupt_gz_day_fails_with_file_and_offset(tmp_path, day_bytes):
    p = _write_day(tmp_path, day_bytes, "bad.itch.gz", True)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    out = tmp_path / "out"
    with pytest.raises(DecodeError) as info:
        export.itch_day_to_parquet(p, out, progress=False)
    assert info.value.source == str(p) and "compressed byte offset" in str(info.value)
    assert not list(out.rglob("*.parquet")) and not list(out.rglob("*.tmp"))


def test_binance_to_parquet_partitions_by_kind_and_utc_day(tmp_path, sim_binance):
    from hftcore.sim import binance as simb

    msgs = simb.generate_messages(3000, seed=4)
    rec = tmp_path / "rec.ndjson.gz"
    rec.write_bytes(gzip.compress(b"\n".join(msgs)))
    out = tmp_path / "out"
    res = export.binance_to_parquet(rec, out, chunk_bytes=50_000, progress=False)
    want = binance.read_file(rec)
    for kind in want:
        n = len(want[kind])
        assert res["rows"].get(kind, 0) == n
        if not n:
            continue
        table = pads.dataset(out / kind, partitioning="hive").to_table()
        # Rows of one message (depth levels) stay together in one day: order by
        # message, then by the level's side and price.
        keys = [k for k in ("msg_index", "side", "price") if k in table.column_names]
        table = table.sort_by([(k, "ascending") for k in keys])
        rows = np.sort(want[kind], order=keys, kind="stable")
        assert table.num_rows == n
        assert table.column("msg_index").to_pylist() == rows["msg_index"].tolist()
        for c in table.schema.names:
            if c == "day":
                continue
            got = table.column(c)
            if pa.types.is_timestamp(got.type):
                vals = [0 if v is None else v for v in got.cast(pa.int64()).to_pylist()]
                assert vals == rows[c].tolist(), (kind, c)
            elif pa.types.is_dictionary(got.type):
                assert got.to_pylist() == [bytes(v).rstrip(b"\0").decode() for v in rows[c]]
            else:
                assert got.to_pylist() == rows[c].tolist(), (kind, c)
        # The day partition is the UTC date of the event time.
        ev = rows["event_time"]
        days = {
            (dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(e) // 1000)).date().isoformat()
            for e in ev
            if e
        }
        assert set(table.column("day").unique().to_pylist()) <= days | {"undated"}
    assert export.binance_to_parquet(rec, out, progress=False)["skipped"]
    manifest = json.loads((out / "_hftcore" / "binance" / "rec.json").read_text())
    assert manifest["files"] == res["files"]
    with pytest.raises(TypeError, match="to_arrow takes"):
        export.to_arrow({"x": 1})


def test_a_write_error_in_the_writer_thread_fails_the_day(tmp_path, day_bytes, monkeypatch):
    # Parquet encoding runs in a helper thread: its error reaches the caller, the day's
    # temporary files are removed and no manifest is written.
    p = _write_day(tmp_path, day_bytes, "day4.itch", False)
    out = tmp_path / "out"

    def broken_write(self, head, n):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xparquet._PartWriter, "_write", broken_write)
    with pytest.raises(OSError, match="No space left"):
        export.itch_day_to_parquet(p, out, chunk_bytes=100_000, row_group_rows=2_000,
                                   progress=False)  # fmt: skip
    assert not [q for q in out.rglob("*") if q.is_file()]
    assert not any(t.name == "hftcore-parquet" for t in __import__("threading").enumerate())
