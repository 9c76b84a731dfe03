"""Recorded Binance streams on disk (hftcore.binance.files) and `hftcore binance`,
checked against decode_many of the whole file in memory and against json.loads."""

import gzip
import json
from collections import Counter

import numpy as np
import pytest

from hftcore import DecodeError, binance
from hftcore.binance import files
from hftcore.cli import main
from hftcore.sim import binance as sim

MESSAGES = sim.generate_messages(3000, seed=21)


def assert_tables_equal(got, want):
    assert got.counts == want.counts
    np.testing.assert_array_equal(got.kinds, want.kinds)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("chunk", [1, 97, 4096, 1 << 26])
def test_chunks_join_to_the_whole_file(write_file, gz, chunk):
    data = b"\n".join(MESSAGES) + b"\n"
    path = write_file("rec.ndjson", data, gz=gz)
    want = binance.decode_many(data)
    chunks = list(files.iter_file(path, chunk_bytes=chunk))
    assert sum(c.n_messages for c in chunks) == len(MESSAGES)
    assert sum(c.consumed for c in chunks) == len(data)
    assert_tables_equal(files.concat_tables(chunks), want)
    assert_tables_equal(files.read_file(path), want)


def test_line_endings_blank_lines_and_no_final_newline(write_file):
    data = b"\r\n".join(MESSAGES[:50]) + b"\r\n\n\n" + b"\n".join(MESSAGES[50:100])
    path = write_file("rec.ndjson", data)
    want = binance.decode_many(b"\n".join(MESSAGES[:100]))
    assert_tables_equal(files.concat_tables(files.iter_file(path, chunk_bytes=300)), want)
    assert_tables_equal(files.read_file(path), want)


@pytest.mark.parametrize("data", [b"", b"\n\n  \n"])
def test_empty_recordings(write_file, data):
    path = write_file("rec.ndjson", data)
    assert list(files.iter_file(path)) == []
    assert files.read_file(path).n_messages == 0
    assert files.concat_tables([]).n_messages == 0


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("chunk", [64, 5000, 1 << 26])
def test_error_names_the_file_message_and_offset(write_file, gz, chunk):
    lines = list(MESSAGES[:400])
    bad = 333
    lines[bad] = lines[bad].replace(b'"E":', b'"E":-x', 1)
    data = b"\n".join(lines) + b"\n"
    with pytest.raises(DecodeError) as whole:
        binance.decode_many(data)
    path = write_file("rec.ndjson", data, gz=gz)
    for run in (lambda: list(files.iter_file(path, chunk_bytes=chunk)),
                lambda: files.read_file(path)):  # fmt: skip
        with pytest.raises(DecodeError) as ei:
            run()
        assert ei.value.offset == whole.value.offset
        assert ei.value.reason == whole.value.reason
        assert ei.value.source == f"{path}: message {bad}"
        assert data.rfind(b"\n", 0, ei.value.offset) + 1 == sum(len(m) + 1 for m in lines[:bad])


def test_skip_errors_are_rebased(write_file):
    lines = list(MESSAGES[:600])
    for k in (10, 250, 599):
        lines[k] = lines[k][:-3]  # cut: malformed
    data = b"\n".join(lines) + b"\n"
    want = binance.decode_many(data, errors="skip")
    path = write_file("rec.ndjson", data)
    got = files.concat_tables(files.iter_file(path, chunk_bytes=2000, errors="skip"))
    assert got.counts["invalid"] == 3
    assert_tables_equal(got, want)
    assert [(e.offset, e.reason) for e in got.errors] == [(e.offset, e.reason) for e in want.errors]
    assert [e.source for e in got.errors] == [f"{path}: {e.source}" for e in want.errors]


def test_line_longer_than_the_chunk(write_file):
    big = sim.generate_messages(200, seed=3)
    data = b"\n".join(big)
    path = write_file("rec.ndjson", data)
    chunks = list(files.iter_file(path, chunk_bytes=16))  # far below one message
    assert_tables_equal(files.concat_tables(chunks), binance.decode_many(data))


def test_corrupt_gzip(tmp_path):
    comp = bytearray(gzip.compress(b"\n".join(MESSAGES[:500])))
    comp[len(comp) // 2] ^= 0xFF
    path = tmp_path / "rec.ndjson.gz"
    path.write_bytes(bytes(comp))
    with pytest.raises(DecodeError) as ei:
        files.read_file(path)
    assert str(path) in str(ei.value)


def test_bad_arguments(write_file):
    path = write_file("rec.ndjson", MESSAGES[0])
    with pytest.raises(ValueError):
        list(files.iter_file(path, chunk_bytes=0))
    with pytest.raises(ValueError):
        files.read_file(path, time_unit="s")


# -- hftcore binance simulate | stats -----------------------------------------------------


@pytest.mark.parametrize("name", ["rec.ndjson", "rec.ndjson.gz"])
def test_cli_simulate_then_stats(tmp_path, capsys, name):
    path = tmp_path / name
    assert main(["binance", "simulate", str(path), "--messages", "2000", "--seed", "4"]) == 0
    capsys.readouterr()
    raw = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
    objs = [json.loads(line) for line in raw.splitlines() if line.strip()]
    assert len(objs) == 2000
    assert main(["binance", "stats", str(path), "--json", "--chunk-mb", "0.01"]) == 0
    out = json.loads(capsys.readouterr().out)
    kinds = Counter(o.get("e", "bookTicker") for o in objs)
    assert out["messages"] == 2000
    assert out["bytes"] == len(raw)
    assert {k: v for k, v in out["counts"].items() if v} == {
        "trade": kinds["trade"],
        "depthUpdate": kinds["depthUpdate"],
        "bookTicker": kinds["bookTicker"],
    }
    assert out["symbols"] == dict(Counter(o["s"] for o in objs))
    diffs = [o for o in objs if o.get("e") == "depthUpdate"]
    assert out["depth_levels"] == sum(len(o["b"]) + len(o["a"]) for o in diffs)
    times = [o["E"] for o in objs if "E" in o]
    assert out["first_event_time_ns"] == min(times) * 1_000_000
    assert out["last_event_time_ns"] == max(times) * 1_000_000
    assert main(["binance", "stats", str(path)]) == 0
    text = capsys.readouterr().out
    assert "messages    2,000" in text and "depthUpdate" in text


def test_cli_stats_errors(write_file, tmp_path, capsys):
    lines = list(MESSAGES[:100])
    lines[40] = b'{"e":"trade","E":1,"s":"X","p":"1.2.3"}'
    path = write_file("rec.ndjson", b"\n".join(lines))
    assert main(["binance", "stats", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: message 40" in err
    assert main(["binance", "stats", str(path), "--skip-errors", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["invalid"] == 1 and out["messages"] == 100
    assert len(out["errors"]) == 1 and "message 40" in out["errors"][0]
    assert main(["binance", "stats", str(tmp_path / "missing.ndjson")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_small_gz_allocates_a_small_buffer_and_large_ones_grow(tmp_path):
    import tracemalloc

    from hftcore._core.files import FIRST_BUFFER

    msgs = sim.generate_messages(30_000, seed=4)
    data = b"\n".join(msgs) + b"\n"
    assert len(data) > 2 * FIRST_BUFFER  # the grow path runs
    p = tmp_path / "rec.ndjson.gz"
    p.write_bytes(gzip.compress(data))
    got, want = binance.read_file(p), binance.decode_many(data)
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    small = tmp_path / "one.ndjson.gz"
    small.write_bytes(gzip.compress(msgs[0] + b"\n"))
    tracemalloc.start()
    binance.read_file(small)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # (the ITCH decoder's own scratch index is ~7 MiB, not zeroed); 64 MiB before
    assert peak < 16 * FIRST_BUFFER
