"""hftcore itch to-parquet / hftcore binance to-parquet (issue 11)."""

from __future__ import annotations

import gzip

import pytest

pytest.importorskip("pyarrow")
import pyarrow.dataset as pads  # noqa: E402

from hftcore import binance, itch  # noqa: E402
from hftcore.cli import main  # noqa: E402
from hftcore.sim import itch as simitch  # noqa: E402


@pytest.fixture(scope="module")
def day():
    return simitch.generate(messages=40_000, symbols=20, seed=31)


def test_itch_to_parquet_many_days_one_corrupt(tmp_path, day, capsys):
    good = tmp_path / "03022020.NASDAQ_ITCH50.gz"
    good.write_bytes(gzip.compress(day, compresslevel=1))
    plain = tmp_path / "sim.itch"
    plain.write_bytes(day)
    bad = tmp_path / "03032020.NASDAQ_ITCH50.gz"
    comp = bytearray(gzip.compress(day, compresslevel=1))
    bad.write_bytes(bytes(comp[: len(comp) // 2]))  # truncated
    out = tmp_path / "out"
    rc = main(["itch", "to-parquet", str(good), str(bad), str(plain), str(out),
               "--types", "A,P", "--types", "D", "--compression", "snappy"])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 1
    assert "FAILED 03032020.NASDAQ_ITCH50.gz" in cap.err and "offset" in cap.err
    assert "2 of 3 file(s) converted" in cap.out
    want = itch.decode(day)
    for label in ("2020-03-02", "sim"):
        for t in "APD":
            n = pads.dataset(out / t / f"day={label}").count_rows()
            assert n == len(want[t])
    assert not (out / "A" / "day=2020-03-03").exists()
    assert sorted(p.name for p in out.iterdir()) == ["A", "D", "P", "_hftcore"]
    # A rerun skips the complete days and tries the failed one again.
    rc = main(["itch", "to-parquet", str(good), str(plain), str(out), "--types", "DPA",
               "--compression", "snappy"])  # fmt: skip
    assert rc == 0 and capsys.readouterr().out.count("skip") == 2


def test_itch_to_parquet_argument_errors(tmp_path, day, capsys):
    p = tmp_path / "a.itch"
    p.write_bytes(day)
    assert main(["itch", "to-parquet", str(p)]) == 1
    assert "output directory" in capsys.readouterr().err
    assert main(["itch", "to-parquet", str(p), str(p), str(tmp_path / "o"), "--date",
                 "2020-01-01"]) == 1  # fmt: skip
    assert "single file" in capsys.readouterr().err
    assert main(["itch", "to-parquet", str(p), str(tmp_path / "o"), "--types", "Z"]) == 1
    assert "'Z' is not an ITCH 5.0 message type" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["itch", "to-parquet", str(p), "o", "--workers", "1", "--scheduler", "x"])


def test_itch_to_parquet_date_option(tmp_path, day):
    p = tmp_path / "a.itch"
    p.write_bytes(day)
    out = tmp_path / "out"
    assert main(["itch", "to-parquet", str(p), str(out), "--types", "P", "--date",
                 "2021-06-01"]) == 0  # fmt: skip
    t = pads.dataset(out / "P", partitioning="hive").to_table()
    assert "time" in t.column_names and set(t.column("day").to_pylist()) == {"2021-06-01"}


def test_binance_to_parquet_cli(tmp_path, capsys):
    from hftcore.sim import binance as simb

    rec = tmp_path / "rec.ndjson"
    rec.write_bytes(b"\n".join(simb.generate_messages(1500, seed=8)))
    out = tmp_path / "out"
    assert main(["binance", "to-parquet", str(rec), str(out)]) == 0
    want = binance.read_file(rec)
    for kind in want:
        if len(want[kind]):
            assert pads.dataset(out / kind, partitioning="hive").count_rows() == len(want[kind])
    assert "1 of 1 file(s) converted" in capsys.readouterr().out
