"""``hftcore feed bench``: the frames on the wire, the loopback server against
websocket-client, the clients' results and the JSON shape."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import time

import pytest

from hftcore.cli import main
from hftcore.feed import bench
from hftcore.feed.bench import BenchServer, build_frame, rfc3550_jitter


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (19, b"\x81\x13"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (200, b"\x81\x7e\x00\xc8"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f" + (65536).to_bytes(8, "big")),
    ],
)
def test_frame_bytes(size, header):
    # RFC 6455 5.2: FIN + text opcode, no mask, 7-bit / 16-bit / 64-bit lengths.
    frame = build_frame(size, 1_764_000_000_123_456_789)
    assert frame[: len(header)] == header
    payload = frame[len(header) :]
    assert len(payload) == size
    assert payload[:19] == b"1764000000123456789"
    assert set(payload[19:]) <= {ord(".")}


def test_frame_too_small():
    with pytest.raises(ValueError, match="at least 19"):
        build_frame(18)


def test_rfc3550_jitter():
    # By hand: transits 10, 14, 11, 11 -> |D| = 4, 3, 0;
    # J = 4/16 = 0.25; J = 0.25 + (3 - 0.25)/16 = 0.421875; J = 0.421875 - 0.421875/16.
    j = 0.25
    j += (3 - j) / 16
    j += (0 - j) / 16
    assert rfc3550_jitter([10, 14, 11, 11]) == pytest.approx(j)
    assert rfc3550_jitter([5]) == 0.0


def test_server_speaks_websocket_to_websocket_client():
    import websocket

    with BenchServer() as server:
        server.serve(500, 130, 0)
        before = time.clock_gettime_ns(time.CLOCK_REALTIME)
        ws = websocket.create_connection(server.url, timeout=10)
        try:
            stamps = []
            for _ in range(500):
                op, data = ws.recv_data()
                assert op == websocket.ABNF.OPCODE_TEXT and len(data) == 130
                stamps.append(int(data[:19]))
            frame = ws.recv_frame()
            assert frame.opcode == websocket.ABNF.OPCODE_CLOSE
            assert struct.unpack(">H", frame.data[:2])[0] == 1000
        finally:
            ws.shutdown()
        after = time.clock_gettime_ns(time.CLOCK_REALTIME)
        assert server.result(30)["sent"] == 500
    assert stamps == sorted(stamps) and before <= stamps[0] <= stamps[-1] <= after


def test_server_refuses_a_request_without_a_key():
    with BenchServer() as server:
        server.serve(10, 20, 0)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 400")
        assert "no Sec-WebSocket-Key" in server.result(30)["error"]


def _check_shape(client, messages, stages):
    assert set(client["stages"]) == set(stages)
    for st in client["stages"].values():
        assert set(st) == {"count", "p50", "p90", "p99", "p999", "max"}
        assert 0 < st["p50"] <= st["p90"] <= st["p99"] <= st["p999"] <= st["max"]
    assert client["frames"] == messages
    assert client["messages_per_s"] > 0


@pytest.mark.parametrize("rate", [0, 5000])
def test_run_bench_raw_and_websocket_client(rate):
    n = 3000
    result = bench.run_bench(["raw", "websocket-client"], messages=n, size=200, rate=rate)
    if rate == 0:  # enough bytes for several receive calls
        result["clients"]["raw"] = bench.run_bench(["raw"], messages=50 * n, rate=0)["clients"][
            "raw"
        ]
        n_raw = 50 * n
    else:
        n_raw = n
    raw, wsc = result["clients"]["raw"], result["clients"]["websocket-client"]
    raw = result["clients"]["raw"]
    _check_shape(raw, n_raw, ["send_to_recv", "send_to_frame"])
    _check_shape(wsc, n, ["send_to_frame"])
    assert wsc["stages"]["send_to_frame"]["count"] == n
    if rate:
        assert raw["stages"]["send_to_recv"]["count"] == n  # every frame stamped
        assert raw["messages_per_s"] < rate * 3  # paced, not a burst
    else:
        assert raw["stages"]["send_to_recv"]["count"] < n_raw  # one stamp per recv call
    assert result["config"]["client_cpu"] in result["config"]["allowed_cpus"]
    text = bench.format_table(result)
    assert "raw (floor)" in text and "websocket-client" in text
    assert "send_to_frame p50/floor" in text


def test_spin_mode_raw():
    result = bench.run_bench(["raw"], messages=200_000, size=64, rate=0, spin=True)
    _check_shape(result["clients"]["raw"], 200_000, ["send_to_recv", "send_to_frame"])


def test_cli_bench_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["feed", "bench", "--messages", "1500", "--rate", "0", "--client", "raw",
               "--client", "websocket-client", "--json", str(out)])  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "1,500 text frames of 200 bytes as fast as possible" in text
    data = json.loads(out.read_text())
    assert list(data["clients"]) == ["raw", "websocket-client"]
    assert data["clients"]["raw"]["stages"]["send_to_frame"]["count"] >= 1


def test_cli_bench_help_and_bad_client():
    out = subprocess.run([sys.executable, "-m", "hftcore", "feed", "bench", "--help"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0
    for word in ("--rate N", "--spin", "--client", "send_to_recv", "recv_to_frame", "floor"):
        assert word in out.stdout
    with pytest.raises(SystemExit):
        main(["feed", "bench", "--client", "curl"])
