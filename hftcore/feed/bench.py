"""``hftcore feed bench``: receive-path latency and throughput over loopback, hftcore's
WebSocket reader beside websocket-client, picows and a raw ``recv_into`` loop (the floor).

A server process on loopback accepts one client at a time, answers the WebSocket opening
handshake and sends pre-framed, unmasked text frames of ``size`` payload bytes whose first
19 bytes are the sender's ``CLOCK_REALTIME`` in nanoseconds at send time (ASCII digits;
the rest is filler), at ``rate`` frames per second, or as fast as the socket takes them
with ``rate=0`` (then frames go out in batches of about 64 KiB, every frame of a batch
stamped with the batch's send time). After the last frame it sends a close frame.

Each client receives the same byte stream on a :class:`~hftcore.feed.PinnedThread`, one
after the other, and records per frame, in nanoseconds:

- ``send_to_recv``: sender's clock -> the receive call returned (``CLOCK_REALTIME``;
  clients that do not expose the receive call have none);
- ``recv_to_frame``: receive call returned -> the frame handed to the consumer
  (``CLOCK_MONOTONIC``; hftcore only);
- ``send_to_frame``: sender's clock -> the frame available to user code.

plus messages per second (frames over the time from the first to the last frame received)
and the RFC 3550 interarrival jitter of the ``send_to_frame`` transit times. The raw client
is the floor: ``recv_into`` a preallocated buffer with no framing; frames are known by
their fixed length. With ``rate=0`` it stamps the last complete frame of each receive call
only (stamping each would make the floor a Python loop).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import multiprocessing as mp
import os
import select
import socket
import struct
import time
from array import array

import numpy as np

from hftcore.feed.cpus import allowed_cpus, choose_cpu
from hftcore.feed.thread import PinnedThread

__all__ = ["CLIENTS", "available_clients", "build_frame", "run_bench", "format_table"]

log = logging.getLogger("hftcore.feed")

STAGES = ("send_to_recv", "recv_to_frame", "send_to_frame")
CLIENTS = ("raw", "hftcore", "websocket-client", "picows")
STAMP_DIGITS = 19  # CLOCK_REALTIME ns fits 19 decimal digits until the year 2286
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
_BATCH_BYTES = 64 * 1024


# -- the frames ------------------------------------------------------------------------
def frame_header(size: int) -> bytes:
    """RFC 6455 header of an unmasked, final text frame with ``size`` payload bytes."""
    if size <= 125:
        return bytes((0x81, size))
    if size <= 0xFFFF:
        return bytes((0x81, 126)) + struct.pack(">H", size)
    return bytes((0x81, 127)) + struct.pack(">Q", size)


def build_frame(size: int, stamp_ns: int = 0) -> bytes:
    """One bench frame: header, then ``size`` payload bytes starting with the 19-digit
    send time."""
    if size < STAMP_DIGITS:
        raise ValueError(f"--size must be at least {STAMP_DIGITS} bytes (the send time)")
    payload = b"%019d" % stamp_ns + b"." * (size - STAMP_DIGITS)
    return frame_header(size) + payload


def _accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key.strip() + _GUID).digest())


def _read_request(sock, limit=16384) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("client closed before the end of its handshake")
        data += chunk
        if len(data) > limit:
            raise ConnectionError("handshake request over 16 KiB")
    return data


def _handshake_server(sock) -> None:
    request = _read_request(sock)
    key = None
    for line in request.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if key is None:
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        raise ConnectionError("no Sec-WebSocket-Key in the client's request")
    sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + _accept_key(key) + b"\r\n\r\n"
    )


def _handshake_client(sock, host, port) -> bytes:
    """The raw client's opening handshake; returns bytes read past the response."""
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (host.encode(), port, key)
    )
    data = _read_request(sock)
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101") or _accept_key(key) not in head:
        raise ConnectionError(f"bench server refused the handshake: {head[:80]!r}")
    return rest


# -- the server process ----------------------------------------------------------------
def _send_frames(sock, messages: int, size: int, rate: float) -> None:
    frame = bytearray(build_frame(size))
    hdr = len(frame) - size
    flen = len(frame)
    clock = time.clock_gettime_ns
    RT = time.CLOCK_REALTIME
    if rate <= 0:
        per_batch = max(1, _BATCH_BYTES // flen)
        batch = np.tile(np.frombuffer(bytes(frame), dtype=np.uint8), (per_batch, 1))
        sent = 0
        while sent < messages:
            k = min(per_batch, messages - sent)
            digits = np.frombuffer(b"%019d" % clock(RT), dtype=np.uint8)
            batch[:k, hdr : hdr + STAMP_DIGITS] = digits
            sock.sendall(batch[:k])
            sent += k
        return
    interval = 1e9 / rate
    mono = time.monotonic_ns
    start = mono()
    sent = 0
    out = bytearray()
    while sent < messages:
        now = mono()
        due_at = start + sent * interval
        if now < due_at:
            wait = due_at - now
            if wait > 300_000:  # sleep most of a long wait, spin the end of it
                time.sleep((wait - 200_000) / 1e9)
            continue
        # Frames due now (more than one when behind: sent together, as a feed catches up).
        due = min(messages - sent, 1 + int((now - due_at) // interval))
        stamp = b"%019d" % clock(RT)
        if due == 1:
            frame[hdr : hdr + STAMP_DIGITS] = stamp
            sock.sendall(frame)
        else:
            frame[hdr : hdr + STAMP_DIGITS] = stamp
            out[:] = frame * due
            sock.sendall(out)
        sent += due


def _serve(pipe, avoid_cpu) -> None:
    """The server process: one connection per command received on ``pipe``."""
    others = allowed_cpus() - {avoid_cpu}
    if others:
        os.sched_setaffinity(0, others)
    listener = socket.create_server(("127.0.0.1", 0))
    pipe.send(listener.getsockname()[1])
    try:
        while True:
            cmd = pipe.recv()
            if cmd is None:
                return
            listener.settimeout(30)
            try:
                sock, _ = listener.accept()
            except OSError as e:
                pipe.send({"error": f"no client connected: {e}"})
                continue
            try:
                sock.settimeout(30)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                _handshake_server(sock)
                t0 = time.perf_counter()
                _send_frames(sock, cmd["messages"], cmd["size"], cmd["rate"])
                seconds = time.perf_counter() - t0
                sock.sendall(b"\x88\x02\x03\xe8")  # close, 1000
                # Wait (bounded) for the client to finish reading and close.
                sock.settimeout(10)
                try:
                    while sock.recv(65536):
                        pass
                except OSError:
                    pass
                pipe.send({"sent": cmd["messages"], "seconds": seconds})
            except OSError as e:
                pipe.send({"error": f"server: {e!r}"})
            finally:
                sock.close()
    finally:
        listener.close()


class BenchServer:
    """The server process, started and stopped by the bench (a context manager)."""

    def __init__(self, avoid_cpu=None):
        ctx = mp.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, avoid_cpu), daemon=True,
                                 name="hftcore-bench-server")  # fmt: skip
        self._proc.start()
        child.close()
        if not self._pipe.poll(60):
            self.close()
            raise RuntimeError("the bench server did not start within 60 s")
        self.port = self._pipe.recv()
        self.url = f"ws://127.0.0.1:{self.port}/"

    def serve(self, messages, size, rate):
        """Ask for one connection's worth of frames (the client connects next)."""
        self._pipe.send({"messages": messages, "size": size, "rate": rate})

    def result(self, timeout=120) -> dict:
        if not self._pipe.poll(timeout):
            raise RuntimeError(f"the bench server sent no result within {timeout} s")
        return self._pipe.recv()

    def close(self):
        try:
            self._pipe.send(None)
        except OSError:
            pass
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- recording in Python ----------------------------------------------------------------
class Samples:
    """Per-frame times recorded by a Python client; summarized with exact percentiles."""

    def __init__(self):
        self.send = array("q")  # sender's CLOCK_REALTIME
        self.recv = array("q")  # CLOCK_REALTIME when the receive call returned (0: none)
        self.frame = array("q")  # CLOCK_REALTIME when the frame was handed on
        self.frames = 0
        self.first_ns = 0  # CLOCK_MONOTONIC of the first and last receive with frames
        self.last_ns = 0
        self.first_batch = 0  # frames completed by the first receive (not in the rate)

    def summary(self) -> dict:
        out = {"stages": {}}
        send = np.frombuffer(self.send, dtype=np.int64)
        recv = np.frombuffer(self.recv, dtype=np.int64)
        frame = np.frombuffer(self.frame, dtype=np.int64)
        if len(send):
            if recv.any():
                out["stages"]["send_to_recv"] = _summarize(recv - send)
            if frame.any():
                out["stages"]["send_to_frame"] = _summarize(frame - send)
                out["jitter_ns"] = rfc3550_jitter(frame - send)
        span = (self.last_ns - self.first_ns) / 1e9
        out["frames"] = self.frames
        # Frames after the first receive, over the time from it to the last one.
        later = self.frames - self.first_batch
        out["messages_per_s"] = later / span if span > 0 and later > 0 else 0.0
        return out


def _summarize(values) -> dict:
    v = np.asarray(values, dtype=np.int64)
    if not len(v):
        return {"count": 0}
    p = np.percentile(v, [50, 90, 99, 99.9], method="higher")
    return {"count": int(len(v)), "p50": int(p[0]), "p90": int(p[1]), "p99": int(p[2]),
            "p999": int(p[3]), "max": int(v.max())}  # fmt: skip


def rfc3550_jitter(transit) -> float:
    """RFC 3550 section 6.4.1 interarrival jitter of a sequence of transit times (ns):
    ``J += (|D| - J) / 16`` with ``D`` the change in transit between consecutive frames."""
    t = np.asarray(transit, dtype=np.float64)
    j = 0.0
    for d in np.abs(np.diff(t)):
        j += (d - j) / 16.0
    return j


def _stamp_of(buf, offset) -> int:
    return int(bytes(buf[offset : offset + STAMP_DIGITS]))


# -- clients ---------------------------------------------------------------------------
class _Client:
    name = ""

    def __init__(self, url, messages, size, rate, spin, poll):
        self.url, self.messages, self.size, self.rate = url, messages, size, rate
        self.spin, self.poll = spin, poll
        host, _, port = url.split("//")[1].rstrip("/").partition(":")
        self.host, self.port = host, int(port)
        self.samples = Samples()

    def connect(self):  # on the caller's thread
        raise NotImplementedError

    def step(self):  # on the pinned thread; true when done
        raise NotImplementedError

    def close(self):
        pass

    def results(self) -> dict:
        return self.samples.summary()


class RawClient(_Client):
    """``recv_into`` a preallocated buffer: the floor (no framing, fixed-length frames)."""

    name = "raw"

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), timeout=10)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rest = _handshake_client(self.sock, self.host, self.port)
        self.flen = len(frame_header(self.size)) + self.size
        self.hdr = self.flen - self.size
        self.buf = bytearray(max(1 << 20, 4 * self.flen))
        self.view = memoryview(self.buf)
        self.buf[: len(rest)] = rest
        self.fill = len(rest)
        self.total_frames = self.messages
        self.sock.settimeout(0.0 if self.spin else self.poll)
        self.per_frame = self.rate > 0

    def step(self):
        s = self.samples
        try:
            n = self.sock.recv_into(self.view[self.fill :])
        except (BlockingIOError, TimeoutError):
            return False
        if n == 0:
            return True
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        mono = time.monotonic_ns()
        self.fill += n
        flen = self.flen
        complete = self.fill // flen
        if complete:
            take = min(complete, self.total_frames - s.frames)
            first = 0 if self.per_frame else take - 1
            for i in range(first, take):
                stamp = _stamp_of(self.buf, i * flen + self.hdr)
                s.send.append(stamp)
                s.recv.append(now)
                s.frame.append(now)  # the floor hands nothing on: available at recv
            if s.frames == 0:
                s.first_ns, s.first_batch = mono, take
            s.last_ns = mono
            s.frames += take
            used = complete * flen
            left = self.fill - used
            self.buf[:left] = self.buf[used : self.fill]
            self.fill = left
        return s.frames >= self.total_frames

    def close(self):
        self.sock.close()


class WebsocketClientClient(_Client):
    """websocket-client's ``recv()`` loop (UTF-8 validation on, its default)."""

    name = "websocket-client"

    def connect(self):
        import websocket

        self.ws = websocket.create_connection(self.url, timeout=10)
        self.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._exc = websocket.WebSocketConnectionClosedException

    def step(self):
        s = self.samples
        sock = self.ws.sock
        if not self.spin:  # wait at most `poll` for the next frame, then come back
            r, _, _ = select.select([sock], [], [], self.poll)
            if not r:
                return False
        try:
            msg = self.ws.recv()
        except self._exc:
            return True
        now = time.clock_gettime_ns(time.CLOCK_REALTIME)
        mono = time.monotonic_ns()
        if not msg:  # the close frame
            return True
        if s.frames == 0:
            s.first_ns, s.first_batch = mono, 1
        s.last_ns = mono
        s.send.append(int(msg[:STAMP_DIGITS]))
        s.frame.append(now)
        s.frames += 1
        return s.frames >= self.messages

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:  # the server may have gone already
            self.ws.shutdown()


def _hftcore_available() -> bool:
    try:
        import hftcore.feed._bench  # noqa: F401
        import hftcore.net.ws  # noqa: F401
    except ImportError:
        return False
    return True


def _picows_available() -> bool:
    try:
        import picows  # noqa: F401
    except ImportError:
        return False
    return True


def available_clients() -> dict[str, bool]:
    """Which clients this installation can run."""
    return {
        "raw": True,
        "hftcore": _hftcore_available(),
        "websocket-client": True,
        "picows": _picows_available(),
    }


_CLIENT_CLASSES = {"raw": RawClient, "websocket-client": WebsocketClientClient}


def _client_class(name):
    if name == "hftcore":
        from hftcore.feed._benchclients import HftcoreClient

        return HftcoreClient
    if name == "picows":
        from hftcore.feed._benchclients import PicowsClient

        return PicowsClient
    return _CLIENT_CLASSES[name]


def run_client(server, name, messages, size, rate, spin, cpu, poll=0.05) -> dict:
    """One client against the server: connect, receive every frame on a pinned thread."""
    client = _client_class(name)(server.url, messages, size, rate, spin, poll)
    server.serve(messages, size, rate)
    client.connect()
    thread = PinnedThread(client.step, cpu=cpu, name=f"bench-{name}"[:15], poll_interval=poll)
    try:
        thread.start()
        # Bounded: at the slowest the frames take messages/rate seconds, plus slack.
        limit = 60 + (messages / rate if rate > 0 else 0) * 2
        if not thread.join(timeout=limit):
            thread.stop(timeout=2)
            raise RuntimeError(f"{name}: not done within {limit:.0f} s")
        stats = thread.stats()
    finally:
        try:
            thread.stop(timeout=2)
        finally:
            client.close()
    sent = server.result()
    if "error" in sent:
        raise RuntimeError(sent["error"])
    out = client.results()
    out["thread"] = {k: stats.get(k) for k in ("cpu", "steps", "seconds")}
    return out


def run_bench(
    clients=None,
    messages=50_000,
    size=200,
    rate=10_000.0,
    spin=False,
    cpu=None,
    poll=0.05,
) -> dict:
    """Run the bench (see the module's text); the dict ``--json`` writes.

    Returns
    -------
    dict
        ``{"config": {...}, "clients": {NAME: {"stages": {STAGE: {"count", "p50", "p90",
        "p99", "p999", "max"}}, "messages_per_s": float, "jitter_ns": float, ...}},
        "skipped": {NAME: reason}}``; times in nanoseconds.
    """
    build_frame(size)  # checks the size
    avail = available_clients()
    if clients is None:
        clients = [c for c in CLIENTS if avail[c]]
    skipped = {}
    cpu = choose_cpu(cpu)
    result = {
        "config": {"messages": messages, "size": size, "rate": rate, "spin": spin,
                   "client_cpu": cpu, "allowed_cpus": sorted(allowed_cpus())},
        "clients": {},
        "skipped": skipped,
    }  # fmt: skip
    with BenchServer(avoid_cpu=cpu) as server:
        for name in clients:
            if not avail.get(name, False):
                skipped[name] = (
                    "not importable here (pip install picows)" if name == "picows"
                    else "hftcore.net.ws / hftcore.feed._bench not built"
                )  # fmt: skip
                continue
            result["clients"][name] = run_client(server, name, messages, size, rate, spin,
                                                 cpu, poll)  # fmt: skip
    return result


def format_table(result) -> str:
    """Side-by-side text table of :func:`run_bench`'s result."""
    cfg = result["config"]
    names = list(result["clients"])
    rate = f"at {cfg['rate']:,.0f}/s" if cfg["rate"] > 0 else "as fast as possible"
    lines = [
        f"{cfg['messages']:,} text frames of {cfg['size']} bytes {rate} over loopback; "
        f"client thread on core {cfg['client_cpu']}, {'busy-poll' if cfg['spin'] else 'blocking'}"
    ]
    label = {"raw": "raw (floor)"}
    width = max(14, *(len(label.get(n, n)) + 2 for n in names)) if names else 14
    lines.append(f"{'':<22}" + "".join(f"{label.get(n, n):>{width}}" for n in names))

    def fmt_ns(v):
        if v is None:
            return "-"
        return f"{v / 1000:,.1f} µs" if v >= 1000 else f"{v:,.0f} ns"

    for stage in STAGES:
        for key in ("p50", "p90", "p99", "p999", "max"):
            row = []
            for n in names:
                st = result["clients"][n]["stages"].get(stage)
                row.append(fmt_ns(st.get(key)) if st and st.get("count") else "-")
            if all(x == "-" for x in row):
                continue
            lines.append(f"{stage + ' ' + key:<22}" + "".join(f"{x:>{width}}" for x in row))
    row = [result["clients"][n].get("jitter_ns") for n in names]
    lines.append(f"{'jitter (RFC 3550)':<22}" + "".join(f"{fmt_ns(x):>{width}}" for x in row))
    row = [result["clients"][n]["messages_per_s"] for n in names]
    lines.append(f"{'messages/s':<22}" + "".join(f"{x:>{width},.0f}" for x in row))
    if "raw" in names:
        floor = result["clients"]["raw"]["stages"].get("send_to_frame", {}).get("p50")
        if floor:
            row = []
            for n in names:
                p50 = result["clients"][n]["stages"].get("send_to_frame", {}).get("p50")
                row.append(f"{p50 / floor:.2f}x" if p50 else "-")
            lines.append(f"{'send_to_frame p50/floor':<22}" + "".join(f"{x:>{width}}" for x in row))
    for n, why in result.get("skipped", {}).items():
        lines.append(f"skipped {n}: {why}")
    if cfg["rate"] <= 0 and "raw" in names:
        lines.append("(rate 0: the raw floor stamps one frame per recv call; latencies are "
                     "queueing, throughput is the figure)")  # fmt: skip
    return "\n".join(lines)
