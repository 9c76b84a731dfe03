"""``hftcore itch serve`` / ``hftcore itch listen`` end to end over loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from hftcore import itch
from hftcore.cli import main
from hftcore.sim import itch as simitch
from hftcore.sim import itch_exchange as ex

DAY = simitch.generate(messages=30_000, symbols=15, seed=8)


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def reference_books(levels):
    book = itch.OrderBook(max_orders=100_000, max_levels=20_000)
    book.apply(DAY)
    out = {}
    for sym in sorted(book.symbols):
        d = book.depth(sym, levels)
        if len(d):
            out[sym] = {
                "bids": [[int(r["price"]), int(r["shares"]), int(r["orders"])]
                         for r in d if r["side"] == b"B"],
                "asks": [[int(r["price"]), int(r["shares"]), int(r["orders"])]
                         for r in d if r["side"] == b"S"],
            }  # fmt: skip
    return out


def test_listen_moldudp64_writes_the_documented_json(tmp_path, capsys):
    port = free_port()
    out = tmp_path / "out.json"
    srv = ex.MoldUDP64Server(
        DAY,
        ("127.0.0.1", port),
        rate=300_000,
        drop=0.02,
        seed=2,
        start_delay=0.3,
        heartbeat_interval=0.05,
    )
    host, rport = srv.rerequest_address
    with srv:
        rc = main(["itch", "listen", "--moldudp64", f"127.0.0.1:{port}", "--rerequest",
                   f"{host}:{rport}", "--json", str(out), "--levels", "3", "--duration",
                   "30", "--max-orders", "100000", "--max-levels", "20000", "--quiet"])  # fmt: skip
    assert rc == 0
    doc = json.loads(out.read_text())
    assert set(doc) == {"messages", "gaps", "recovered", "unrecovered", "duplicates",
                        "books", "latency_ns"}  # fmt: skip
    assert doc["messages"] == len(ex.message_offsets(DAY)) - 1
    assert doc["gaps"] > 0 and doc["recovered"] > 0 and doc["unrecovered"] == 0
    assert doc["books"] == reference_books(3)
    for stats in doc["latency_ns"].values():
        assert set(stats) == {"count", "p50", "p90", "p99", "p999", "max"}
    text = capsys.readouterr().out
    assert "loss report:" in text and "recv_to_applied" in text


def test_serve_soupbintcp_process_and_listen_with_symbol(tmp_path):
    day = tmp_path / "day.itch"
    day.write_bytes(DAY)
    port = free_port(socket.SOCK_STREAM)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hftcore", "itch", "serve", str(day), "--soupbintcp", str(port),
         "--user", "me", "--password", "pw"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline().decode()
        assert "SoupBinTCP" in line, line
        sym = sorted(reference_books(1))[0]
        out = tmp_path / "o.json"
        rc = main(["itch", "listen", "--soupbintcp", f"127.0.0.1:{port}", "--user", "me",
                   "--password", "pw", "--symbol", sym, "--json", str(out), "--duration", "30",
                   "--quiet", "--max-orders", "100000", "--max-levels", "20000"])  # fmt: skip
        assert rc == 0
        doc = json.loads(out.read_text())
        assert list(doc["books"]) == [sym]
        assert doc["books"][sym] == reference_books(5)[sym]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_listen_needs_one_transport(capsys):
    assert main(["itch", "listen"]) == 2
    assert "give one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["itch", "serve", "generate:x", "--moldudp64", "127.0.0.1:1"])
