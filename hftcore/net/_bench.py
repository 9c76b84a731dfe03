"""Throughput of the WebSocket receive path on loopback (a script, not a test).

A sender process accepts one WebSocket connection and writes pre-framed text frames
(default 200-byte payloads) as fast as the socket takes them; the receiver counts them.
Receivers, side by side in the same run:

- ``hftcore``: :meth:`hftcore.net.ws.WebSocket.pump` with the base ``Consumer`` (the
  receive path alone: receive call, framing, UTF-8 check, hand-off);
- ``raw``: a ``socket.recv_into`` loop into a preallocated buffer, counting bytes (the
  floor: no framing at all);
- ``websocket-client``: its ``recv()`` loop, with and without ``skip_utf8_validation``.

Run::

    python -m hftcore.net._bench --frames 3000000 --runs 3 [--json out.json]

``hftcore feed bench --rate 0`` reuses :func:`run_throughput`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing as mp
import os
import socket
import statistics
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLIENTS = ("hftcore", "raw", "websocket-client", "websocket-client-skip-utf8")
#: Also available: hftcore without kernel timestamps, and without the UTF-8 check.
EXTRA_CLIENTS = ("hftcore-no-kernel-stamps", "hftcore-no-utf8-check")


def text_frame(payload: bytes) -> bytes:
    """One unmasked server-to-client text frame (RFC 6455)."""
    n = len(payload)
    if n < 126:
        return bytes([0x81, n]) + payload
    if n < 65536:
        return bytes([0x81, 126]) + n.to_bytes(2, "big") + payload
    return bytes([0x81, 127]) + n.to_bytes(8, "big") + payload


def _accept_upgrade(conn: socket.socket) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("client left during the handshake")
        request += chunk
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    conn.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def _sender(listener: socket.socket, frames: int, size: int) -> None:
    listener.settimeout(60)
    conn, _ = listener.accept()
    conn.settimeout(120)
    try:
        _accept_upgrade(conn)
        one = text_frame(b"x" * size)
        per_block = max(1, (256 * 1024) // len(one))
        block = one * per_block
        sent = 0
        while sent + per_block <= frames:
            conn.sendall(block)
            sent += per_block
        if frames > sent:
            conn.sendall(one * (frames - sent))
        # Wait for the client to finish reading (it closes), so no byte is lost to a RST.
        try:
            conn.recv(1)
        except OSError:
            pass
    finally:
        conn.close()
        listener.close()


def _start_sender(frames: int, size: int):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
    proc = ctx.Process(target=_sender, args=(listener, frames, size), daemon=True)
    proc.start()
    listener.close()  # the child has its copy
    return proc, f"ws://127.0.0.1:{port}/bench", port


def _recv_hftcore(url, frames, size, kernel_stamps=True, validate_utf8=True):
    from hftcore.net import ws
    from hftcore.net.consumer import Consumer

    consumer = Consumer()
    conn = ws.connect(url, timeout=30, kernel_stamps=kernel_stamps, validate_utf8=validate_utf8)
    t0 = time.perf_counter()
    got = 0
    while got < frames:
        got += conn.pump(consumer, timeout=1.0)
    elapsed = time.perf_counter() - t0
    calls = conn.recv_calls
    conn.client.shutdown()
    return elapsed, {"recv_calls": calls}


def _recv_raw(port, frames, size):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /bench HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    total = frames * len(text_frame(b"x" * size))
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    t0 = time.perf_counter()
    got = 0
    calls = 0
    while got < total:
        n = sock.recv_into(view)
        if n == 0:
            raise ConnectionError("sender closed early")
        got += n
        calls += 1
    elapsed = time.perf_counter() - t0
    sock.close()
    return elapsed, {"recv_calls": calls}


def _recv_websocket_client(url, frames, size, skip):
    import websocket

    conn = websocket.create_connection(url, timeout=30, skip_utf8_validation=skip)
    t0 = time.perf_counter()
    for _ in range(frames):
        conn.recv()
    elapsed = time.perf_counter() - t0
    conn.shutdown()
    return elapsed, {}


def run_once(client: str, frames: int, size: int = 200) -> dict:
    """One run of one receiver: ``{"frames", "seconds", "frames_per_s", ...}``."""
    proc, url, port = _start_sender(frames, size)
    try:
        if client == "hftcore":
            elapsed, extra = _recv_hftcore(url, frames, size)
        elif client == "hftcore-no-kernel-stamps":
            elapsed, extra = _recv_hftcore(url, frames, size, kernel_stamps=False)
        elif client == "hftcore-no-utf8-check":
            elapsed, extra = _recv_hftcore(url, frames, size, validate_utf8=False)
        elif client == "raw":
            elapsed, extra = _recv_raw(port, frames, size)
        elif client == "websocket-client":
            elapsed, extra = _recv_websocket_client(url, frames, size, False)
        elif client == "websocket-client-skip-utf8":
            elapsed, extra = _recv_websocket_client(url, frames, size, True)
        else:
            raise ValueError(f"unknown client {client!r}; one of {CLIENTS + EXTRA_CLIENTS}")
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
    return {"frames": frames, "seconds": elapsed, "frames_per_s": frames / elapsed, **extra}


def run_throughput(
    frames: int = 3_000_000,
    size: int = 200,
    runs: int = 3,
    clients=CLIENTS,
    slow_frames: int = 100_000,
) -> dict:
    """Median frames/s of each receiver over ``runs`` runs (runs interleaved).

    websocket-client receives ``slow_frames`` frames per run (it is ~100x slower).
    """
    results = {c: [] for c in clients}
    for _ in range(runs):
        for c in clients:
            n = slow_frames if c.startswith("websocket-client") else frames
            results[c].append(run_once(c, n, size))
    out = {}
    for c, rs in results.items():
        rates = [r["frames_per_s"] for r in rs]
        out[c] = {"messages_per_s": statistics.median(rates), "runs": rates,
                  "frames": rs[0]["frames"]}  # fmt: skip
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=3_000_000, help="frames per run (fast clients)")
    p.add_argument("--slow-frames", type=int, default=100_000,
                   help="frames per run for websocket-client")  # fmt: skip
    p.add_argument("--size", type=int, default=200, help="payload bytes per frame")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--client", action="append", choices=CLIENTS + EXTRA_CLIENTS,
                   help=f"default: {', '.join(CLIENTS)}")  # fmt: skip
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args(argv)
    res = run_throughput(args.frames, args.size, args.runs, tuple(args.client or CLIENTS),
                         args.slow_frames)  # fmt: skip
    floor = res.get("raw", {}).get("messages_per_s")
    print(f"{args.size}-byte text frames on loopback, median of {args.runs} runs")
    for c, r in res.items():
        ratio = f"  {r['messages_per_s'] / floor:5.2f} x raw" if floor else ""
        runs = ", ".join(f"{x / 1e6:.2f}" for x in r["runs"])
        print(f"  {c:28s} {r['messages_per_s'] / 1e6:8.3f} M frames/s{ratio}   runs: {runs}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"clients": res}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
