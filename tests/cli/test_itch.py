"""``hftcore itch simulate | stats | dump`` and ``hftcore demo``, end to end."""

import csv
import io
import json
import os
import struct
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import hftcore
from hftcore.cli import main

NS = 1_000_000_000
SPEC_LENGTHS = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
    "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
    "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48,
}  # fmt: skip


def independent_summary(buf):
    """Counts per type, first and last timestamp, by walking the framing with struct."""
    counts = Counter()
    stamps = []
    pos = 0
    while pos < len(buf):
        (n,) = struct.unpack_from(">H", buf, pos)
        t = chr(buf[pos + 2])
        assert n == SPEC_LENGTHS[t]
        counts[t] += 1
        stamps.append(int.from_bytes(buf[pos + 7 : pos + 13], "big"))
        pos += 2 + n
    return counts, stamps[0], stamps[-1]


def header(type_, locate, ts):
    return struct.pack(">cHH", type_.encode(), locate, 0) + ts.to_bytes(6, "big")


def frame(body):
    return struct.pack(">H", len(body)) + body


def msg_r(locate, stock, ts):
    body = header("R", locate, ts) + struct.pack(
        ">8sccIcc2scccccIc", stock.ljust(8), b"Q", b"N", 100, b"N", b"C", b"Z ", b"P", b"N",
        b" ", b"1", b"N", 0, b"N",
    )  # fmt: skip
    return frame(body)


def msg_a(locate, stock, ts, ref, side, shares, price):
    return frame(header("A", locate, ts) + struct.pack(">QcI8sI", ref, side, shares,
                                                       stock.ljust(8), price))  # fmt: skip


def msg_d(locate, ts, ref):
    return frame(header("D", locate, ts) + struct.pack(">Q", ref))


def msg_v(ts, l1, l2, l3):
    return frame(header("V", 0, ts) + struct.pack(">QQQ", l1, l2, l3))


T_OPEN = (9 * 3600 + 30 * 60) * NS  # 09:30:00


@pytest.fixture
def tiny(write_file):
    """A hand-built file: two stocks, one add and one delete each, a V message."""
    buf = (
        msg_v(4 * 3600 * NS, 418_500_000_000, 391_512_345_678, 360_000_000_001)
        + msg_r(1, b"AAPL", 4 * 3600 * NS + 1)
        + msg_r(2, b"MSFT", 4 * 3600 * NS + 2)
        + msg_a(1, b"AAPL", T_OPEN + 1, 42, b"B", 100, 1_892_500)
        + msg_a(2, b"MSFT", T_OPEN + 5, 43, b"S", 7, 4_105_001)
        + msg_d(2, T_OPEN + 123_456_789, 43)
        + msg_d(1, 13 * 3600 * NS + 59 * 60 * NS + 7 * NS + 5, 42)
    )
    return write_file("tiny.itch", buf)


@pytest.fixture(scope="module")
def day(tmp_path_factory, itch_day):
    path = tmp_path_factory.mktemp("day") / "day.itch"
    path.write_bytes(itch_day(messages=30_000, symbols=120, seed=11))
    return path


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_stats_json_matches_independent_count(day, capsys):
    rc, out, _ = run(capsys, "itch", "stats", day, "--json", "--chunk-mb", "0.25")
    assert rc == 0
    got = json.loads(out)
    counts, first, last = independent_summary(day.read_bytes())
    assert {t: v["count"] for t, v in got["counts"].items() if v["count"]} == dict(counts)
    assert got["counts"]["A"]["name"] == "add_order"
    assert got["messages"] == sum(counts.values()) == 30_000
    assert got["bytes"] == day.stat().st_size
    assert got["symbols"] == counts["R"] == 120
    assert (got["first_timestamp"], got["last_timestamp"]) == (first, last)
    assert got["first_time"] == "03:58:00.000000000" and got["last_time"] == "20:05:00.000000000"


def test_stats_text_and_gz(day, write_file, capsys):
    gz = write_file("day.itch.gz", day.read_bytes())
    counts, _, _ = independent_summary(day.read_bytes())
    rc, out, _ = run(capsys, "itch", "stats", gz)
    assert rc == 0
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["D"][1] == "order_delete" and lines["D"][2] == f"{counts['D']:,}"
    assert lines["messages"][1] == "30,000"
    assert "msg/s" in out and "MB/s" in out


def test_dump_hand_built_rows(tiny, capsys):
    rc, out, _ = run(capsys, "itch", "dump", tiny, "--type", "A", "--limit", "1")
    assert rc == 0
    assert out.splitlines() == [
        "         3  09:30:00.000000001  A  add_order                     stock_locate=1 "
        "tracking_number=0 order_ref=42 side=B shares=100 stock=AAPL price=189.2500"
    ]
    rc, out, _ = run(capsys, "itch", "dump", tiny, "--type", "V")
    assert out.split()[-3:] == ["level1=4185.00000000", "level2=3915.12345678",
                                "level3=3600.00000001"]  # fmt: skip


def test_dump_symbol_filter_uses_directory_locate(tiny, capsys):
    rc, out, _ = run(capsys, "itch", "dump", tiny, "--symbol", "MSFT")
    rows = [line.split() for line in out.splitlines()]
    assert [r[0] for r in rows] == ["2", "4", "5"]  # R, A and D (by stock_locate 2)
    assert rows[1][-1] == "price=410.5001" and rows[1][-3] == "shares=7"
    assert rows[2][1] == "09:30:00.123456789" and rows[2][-1] == "order_ref=43"
    rc, out, _ = run(capsys, "itch", "dump", tiny, "--symbol", "AAPL", "--type", "D")
    assert [line.split()[1] for line in out.splitlines()] == ["13:59:07.000000005"]


def test_dump_csv(tiny, capsys):
    rc, out, _ = run(capsys, "itch", "dump", tiny, "--type", "A,D", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["type"] for r in rows] == ["A", "A", "D", "D"]
    assert rows[0]["price"] == "189.2500" and rows[0]["timestamp"] == "09:30:00.000000001"
    assert rows[2]["order_ref"] == "43" and rows[2]["price"] == ""
    rc, out, _ = run(capsys, "itch", "dump", tiny, "--limit", "2", "--csv")
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2


def test_dump_limit_zero_prints_all(day, capsys):
    counts, _, _ = independent_summary(day.read_bytes())
    rc, out, _ = run(capsys, "itch", "dump", day, "--type", "X", "--limit", "0")
    assert len(out.splitlines()) == counts["X"]


def test_errors_name_path_and_offset(tiny, tmp_path, capsys):
    missing = tmp_path / "nope.itch"
    rc, _, err = run(capsys, "itch", "stats", missing)
    assert rc == 1 and err.startswith("hftcore: error:") and str(missing) in err
    # cut the last message (the D at byte offset 37 + 2 * 41 + 2 * 38 + 21 = 216) in half
    buf = tiny.read_bytes()
    cut = tmp_path / "cut.itch"
    cut.write_bytes(buf[:-10])
    offset = len(buf) - 21
    assert offset == 216
    for cmd in ("stats", "dump"):
        rc, _, err = run(capsys, "itch", cmd, cut)
        assert rc == 1, cmd
        assert str(cut) in err and f"byte offset {offset}" in err, err
    bad = tmp_path / "bad.itch"
    bad.write_bytes(buf[:37] + struct.pack(">H", 30) + buf[39:])  # R's length is not 39
    rc, _, err = run(capsys, "itch", "stats", bad)
    assert rc == 1 and str(bad) in err and "byte offset 37" in err, err
    rc, _, err = run(capsys, "itch", "dump", tiny, "--type", "Z")
    assert rc == 1 and "unknown ITCH message type 'Z'" in err


def test_simulate_writes_the_generated_day(tmp_path, capsys, itch_day):
    out = tmp_path / "sim.itch"
    rc, text, _ = run(capsys, "itch", "simulate", out, "--messages", "5000", "--symbols", "20",
                      "--seed", "3")  # fmt: skip
    assert rc == 0 and "5,000 messages" in text
    assert out.read_bytes() == itch_day(messages=5000, symbols=20, seed=3)


def test_help_teaches(capsys):
    for cmd in ("simulate", "stats", "dump"):
        with pytest.raises(SystemExit) as e:
            main(["itch", cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "example" in out and "hftcore itch " + cmd in out
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "offline" in capsys.readouterr().out


def test_demo_file_tour_runs(capsys):
    rc, out, _ = run(capsys, "demo", "--itch", "--messages", "20000", "--symbols", "100",
                     "--seconds", "2", "--rate", "1000")  # fmt: skip
    assert rc == 0
    assert "[file 1/3]" in out and "20,000" in out and "[4/4]" in out and "done in" in out


def test_console_script(day):
    root = Path(hftcore.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), HFTCORE_NO_PROGRESS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "hftcore", "itch", "stats", str(day), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
        cwd=day.parent,  # `-m` puts the cwd first on sys.path: keep a source tree out
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["messages"] == 30_000


def test_bad_arguments_are_usage_errors(tmp_path, capsys):
    for argv in (
        ["itch", "simulate", str(tmp_path / "x.itch"), "--symbols", "0"],
        ["itch", "simulate", str(tmp_path / "x.itch"), "--messages", "-5"],
        ["itch", "dump", str(tmp_path / "x.itch"), "--limit", "many"],
        ["demo", "--symbols", "70000"],
    ):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2, argv
        assert "error: argument" in capsys.readouterr().err
    assert not (tmp_path / "x.itch").exists()
