"""``hftcore feed capture-info | to-ndjson`` (hftcore/cli/capture.py), end to end.

The commands are built with the same ``CommandLine`` builder as ``hftcore``'s parser, so
the tests run whether or not ``hftcore.cli.capture`` is in the command table yet.
"""

from __future__ import annotations

import argparse
import json

import pytest

from hftcore import binance
from hftcore.cli import CommandLine
from hftcore.cli import capture as cli_capture
from hftcore.feed.capture import CaptureWriter
from hftcore.net.consumer import KIND_BINARY, KIND_TEXT


def run(argv):
    parser = argparse.ArgumentParser(prog="hftcore")
    cli_capture.register(CommandLine(parser))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def capture_file(tmp_path, sim_binance):
    msgs = sim_binance.messages(50, seed=2)
    path = tmp_path / "feed.cap"
    with CaptureWriter(path, metadata={"url": "ws://127.0.0.1:9/ws"}) as w:
        for i, m in enumerate(msgs):
            w.append(m, KIND_TEXT, (1_700_000_000_000_000_000 + i * 1000, i, 0))
        w.append(b"\x01\x02", KIND_BINARY, (1_700_000_000_000_050_000, 99, 0))
    # A crash cut the last record short.
    path.write_bytes(path.read_bytes()[:-3])
    return path, msgs


def test_capture_info_json(capture_file, capsys):
    path, msgs = capture_file
    assert run(["feed", "capture-info", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["records"] == len(msgs)
    assert out["kinds"] == {"text": len(msgs)}
    assert out["metadata"] == {"url": "ws://127.0.0.1:9/ws"}
    assert out["torn_records"] == 1
    assert out["first_realtime_ns"] == 1_700_000_000_000_000_000
    assert out["last_realtime_ns"] == 1_700_000_000_000_000_000 + (len(msgs) - 1) * 1000


def test_capture_info_text(capture_file, capsys):
    path, msgs = capture_file
    assert run(["feed", "capture-info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"records    {len(msgs)} (" in out
    assert "2023-11-14T22:13:20.000000+00:00" in out  # first stamp, UTC
    assert "torn tail  1 record" in out


def test_to_ndjson(capture_file, tmp_path, capsys):
    path, msgs = capture_file
    out = tmp_path / "feed.ndjson"
    assert run(["feed", "to-ndjson", str(path), str(out)]) == 0
    assert out.read_bytes() == b"".join(m + b"\n" for m in msgs)
    assert binance.read_file(out).counts == binance.decode_many(b"\n".join(msgs)).counts
    assert "torn tail skipped" in capsys.readouterr().err


def test_help_teaches(capsys):
    with pytest.raises(SystemExit):
        run(["feed", "capture-info", "--help"])
    assert "torn tail" in capsys.readouterr().out
