#!/usr/bin/env python
"""Live Binance depth feeds on loopback: hftcore ``binance.Feed`` beside the stacks users
assemble today, against the local exchange, with the raw-socket floor of the same run.

Stacks (each keeps the books of BTCUSDT, ETHUSDT and BNBUSDT from one combined
``<s>@depth@100ms`` connection, ``timeUnit=MICROSECOND``, by Binance's procedure: buffer
the diffs, REST snapshot (limit 5000) from the exchange, drop ``u <= lastUpdateId``, then
``U == last u + 1`` or resync):

hftcore           ``hftcore.binance.Feed`` (pinned feed thread, nogil parse and apply into
                  ``L2Book``); its own stage histograms (``Feed.latency_report()``).
websocket-client  websocket-client (``skip_utf8_validation=True``, its fast setting) +
                  orjson + the ``order-book`` package (``OrderBook``, Decimal keys), one
                  blocking thread.
websockets        websockets (asyncio client) + orjson into plain dicts (Decimal keys;
                  unsorted, which flatters it: nothing is kept in order).
floor             beside every stack, in the same exchange run: a plain ``socket`` doing
                  the WebSocket upgrade by hand, ``recv_into`` a preallocated buffer, each
                  frame's header and ``"E":`` read by a minimal parser. It keeps no book.

Per depth diff, in nanoseconds: ``event_to_recv`` (the exchange's ``E``, CLOCK_REALTIME at
render, µs -> the receive call returned, CLOCK_REALTIME), ``recv_to_applied`` (receive
returned -> the diff is in the book; CLOCK_MONOTONIC / ``perf_counter_ns``) and
``event_to_applied``. hftcore's "recv" is the ``recv`` system call returning; the Python
stacks have no access to it: their "recv" is the message handed to user code (their
framing is inside it, so their ``recv_to_applied`` is the decode and the book only).
Compare ``event_to_applied`` across stacks, each against its own run's floor.

One run of a stack: a fresh :class:`hftcore.sim.binance_exchange.BinanceExchange` (seed
fixed, pings off, ``pregenerate`` covering the run, so Python rendering and sending is the
only limit of its rate) in this process; the stack and the floor each in a child process.
The books sync at a low rate; the exchange pauses, the children drain and reset their
figures; the exchange runs at ``2 x --rate`` events/s (about half are depth diffs; trades
and tickers go to nobody) for ``--seconds``; it pauses; the children drain and report.
Every book is compared whole with ``ex.book_at(symbol, last_update_id)``. Kept = books
right, no gap or resync, the exchange dropped no slow consumer, the stack applied every
diff the exchange sent, and it kept up: its event->applied p99 at most 50 ms above the
floor's event->recv p99 of the same run (when the exchange itself falls behind, the floor
shows it, and the stack is not blamed for it). The rate the exchange delivered (diffs
over the span of their ``E`` times, as the floor saw them) is reported beside the rate
asked: above about 20,000 diffs/s the Python exchange is the limit on this machine.

How to run (peers in their venv, hftcore from this checkout)::

    python setup.py build_ext --inplace
    python asv_benchmarks/peers/binance_live.py --rate 10000 --seconds 5 --runs 3 \\
        --json /tmp/binance_live.json
    python asv_benchmarks/peers/binance_live.py --ramp 5000,10000,20000,40000 --runs 3

``--peers-python`` (default /work/venvs/peers/bin/python when it exists, else this
interpreter) runs the peer stacks with this checkout on PYTHONPATH; a stack whose
libraries are missing is reported as such. ``--stacks`` picks stacks.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
STACKS = ("hftcore", "websocket-client", "websockets")
STAGES = ("event_to_recv", "recv_to_applied", "event_to_applied")
SYNC_RATE = 400  # events/s while the books sync
PEERS_PYTHON = "/work/venvs/peers/bin/python"
FELL_BEHIND_NS = 50_000_000  # event->applied p99 more than this above the floor's


def stream_path(symbols=SYMBOLS) -> str:
    names = "/".join(f"{s.lower()}@depth@100ms" for s in symbols)
    return f"/stream?streams={names}&timeUnit=MICROSECOND"


# -- child side: figures ---------------------------------------------------------------


class Figures:
    """Per-diff stamps of a Python stack (or the floor), kept in arrays."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.e2r = array("q")
        self.r2a = array("q")
        self.e2a = array("q")
        self.first_e = self.last_e = 0
        self.diffs = 0

    def summary(self) -> dict:
        import numpy as np

        out = {}
        for name, arr in (("event_to_recv", self.e2r), ("recv_to_applied", self.r2a),
                          ("event_to_applied", self.e2a)):  # fmt: skip
            if not arr:
                continue
            a = np.frombuffer(arr, dtype=np.int64)
            p = np.percentile(a, [50, 90, 99, 99.9]).round().astype(np.int64).tolist()
            out[name] = {"count": int(a.size), "p50": p[0], "p90": p[1], "p99": p[2],
                         "p999": p[3], "max": int(a.max())}  # fmt: skip
        return out


def _handshake(sock, host, port, path) -> bytes:
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (path.encode(), host.encode(), port, key)
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the exchange closed during the handshake")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    if not head.startswith(b"HTTP/1.1 101") or accept not in head:
        raise ConnectionError(f"handshake refused: {head[:120]!r}")
    return rest


class FloorClient:
    """``recv_into`` a preallocated buffer; per frame: header, then the ``"E":`` digits."""

    def __init__(self, ws_url):
        host, port = ws_url.split("//")[1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        rest = _handshake(self.sock, host, int(port), stream_path())
        self.buf = bytearray(4 << 20)
        self.view = memoryview(self.buf)
        self.buf[: len(rest)] = rest
        self.fill = len(rest)
        self.sock.settimeout(0.5)
        self.fig = Figures()
        self.last_msg = time.monotonic()
        self.frames = 0
        self.recvs = 0
        self.closed = False

    def book_report(self):
        return {}

    def run(self, stop):
        buf, view, fig = self.buf, self.view, self.fig
        while not stop.is_set():
            try:
                n = self.sock.recv_into(view[self.fill :])
            except TimeoutError:
                continue
            now = time.time_ns()
            if n == 0:
                self.closed = True
                return
            self.last_msg = time.monotonic()
            self.recvs += 1
            end = self.fill + n
            pos = 0
            while end - pos >= 2:
                b1 = buf[pos + 1] & 0x7F
                if b1 < 126:
                    hdr, size = 2, b1
                elif b1 == 126:
                    if end - pos < 4:
                        break
                    hdr, size = 4, int.from_bytes(buf[pos + 2 : pos + 4], "big")
                else:
                    if end - pos < 10:
                        break
                    hdr, size = 10, int.from_bytes(buf[pos + 2 : pos + 10], "big")
                if end - pos < hdr + size:
                    break
                start = pos + hdr
                pos = start + size
                if buf[start - hdr] & 0x0F != 1:
                    continue  # not a text frame (no pings: the exchange sends none)
                i = buf.find(b'"E":', start, pos)
                if i < 0:
                    continue
                j = buf.find(b",", i, pos)
                e_us = int(buf[i + 4 : j])
                self.frames += 1
                fig.diffs += 1
                if not fig.first_e:
                    fig.first_e = e_us
                fig.last_e = e_us
                fig.e2r.append(now - e_us * 1000)
            left = end - pos
            if pos:
                buf[:left] = buf[pos:end]
            self.fill = left

    def count(self):
        return self.frames

    def reset(self):
        self.fig.reset()
        self.frames = 0
        self.recvs = 0


def _e8(d) -> int:
    return int(d.scaleb(8))


class PyStack:
    """Binance's local-book procedure in Python, the book an ``order-book`` OrderBook or
    two dicts; ``fetch(symbol)`` returns the REST snapshot's bytes."""

    def __init__(self, rest_url, book_kind):
        from decimal import Decimal

        import orjson

        self.loads = orjson.loads
        self.D = Decimal
        self.rest_url = rest_url
        self.kind = book_kind
        self.fig = Figures()
        self.books = {}
        self.lid = {}  # symbol -> last applied u (None: not synced)
        self.held = {s: [] for s in SYMBOLS}
        self.gaps = 0
        self.resyncs = 0
        self.snapshots = 0
        self.applied = 0
        self.last_msg = time.monotonic()
        for s in SYMBOLS:
            self.lid[s] = None
            self.books[s] = self._new_book()

    def _new_book(self):
        if self.kind == "order-book":
            from order_book import OrderBook

            ob = OrderBook()
            return (ob.bids, ob.asks)
        return ({}, {})

    def fetch(self, symbol) -> bytes:
        import urllib.request

        url = f"{self.rest_url}/api/v3/depth?symbol={symbol}&limit=5000"
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read()

    def install(self, symbol, body: bytes):
        """A snapshot, then the held diffs after it (the documented procedure)."""
        D = self.D
        snap = self.loads(body)
        lid = snap["lastUpdateId"]
        held = self.held[symbol]
        if held and lid < held[0]["U"] - 1:
            return False  # older than the first held diff: fetch again
        self.snapshots += 1
        bids, asks = self.books[symbol] = self._new_book()
        for p, q in snap["bids"]:
            bids[D(p)] = D(q)
        for p, q in snap["asks"]:
            asks[D(p)] = D(q)
        self.lid[symbol] = lid
        self.held[symbol] = []
        first = True
        for d in held:
            if d["u"] <= lid:
                continue
            if first and not d["U"] <= lid + 1 <= d["u"]:
                self._gap(symbol)
                return True
            first = False
            self._apply(symbol, d)
        return True

    def _gap(self, symbol):
        self.gaps += 1
        self.resyncs += 1
        self.lid[symbol] = None
        self.held[symbol] = []

    def _apply(self, symbol, d):
        D = self.D
        bids, asks = self.books[symbol]
        for side, levels in ((bids, d["b"]), (asks, d["a"])):
            for p, q in levels:
                dq = D(q)
                dp = D(p)
                if dq:
                    side[dp] = dq
                elif dp in side:
                    del side[dp]
        self.lid[symbol] = d["u"]
        self.applied += 1

    def on_message(self, raw, t_real, t_mono):
        """One combined-stream message; True when a snapshot is wanted for its symbol."""
        self.last_msg = time.monotonic()
        d = self.loads(raw)["data"]
        sym = d["s"]
        lid = self.lid[sym]
        fig = self.fig
        want = False
        if lid is None:
            self.held[sym].append(d)
            want = True
        elif d["u"] <= lid:
            pass
        elif d["U"] != lid + 1:
            self._gap(sym)
            self.held[sym].append(d)
            want = True
        else:
            self._apply(sym, d)
        e_ns = d["E"] * 1000
        applied = t_real + (time.perf_counter_ns() - t_mono)
        fig.diffs += 1
        if not fig.first_e:
            fig.first_e = d["E"]
        fig.last_e = d["E"]
        fig.e2r.append(t_real - e_ns)
        if not want:
            fig.r2a.append(applied - t_real)
            fig.e2a.append(applied - e_ns)
        return want

    def synced(self):
        return all(v is not None for v in self.lid.values())

    def reset(self):
        self.fig.reset()
        self.gaps = self.resyncs = self.snapshots = self.applied = 0

    def count(self):
        return self.fig.diffs

    def book_report(self):
        out = {}
        for s in SYMBOLS:
            bids, asks = self.books[s]
            if self.kind == "order-book":
                bids, asks = bids.to_dict(), asks.to_dict()
            b = sorted(((_e8(p), _e8(q)) for p, q in bids.items()), reverse=True)
            a = sorted((_e8(p), _e8(q)) for p, q in asks.items())
            out[s] = {"last_update_id": self.lid[s], "bids": b, "asks": a}
        return out

    def counters(self):
        return {"gaps": self.gaps, "resyncs": self.resyncs, "snapshots": self.snapshots,
                "applied": self.applied}  # fmt: skip


class WebsocketClientStack(PyStack):
    def __init__(self, ws_url, rest_url):
        import websocket

        super().__init__(rest_url, "order-book")
        self.ws = websocket.create_connection(ws_url + stream_path(), timeout=0.5,
                                              skip_utf8_validation=True)  # fmt: skip

    def run(self, stop):
        import websocket

        ws = self.ws
        perf, now_ns = time.perf_counter_ns, time.time_ns
        while not stop.is_set():
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            t_real, t_mono = now_ns(), perf()
            if self.on_message(raw, t_real, t_mono):
                sym = self.loads(raw)["data"]["s"]
                # Blocking, as this stack is: the socket holds the diffs meanwhile.
                while not self.install(sym, self.fetch(sym)):
                    pass


class WebsocketsStack(PyStack):
    def __init__(self, ws_url, rest_url):
        super().__init__(rest_url, "dict")
        self.url = ws_url + stream_path()

    def run(self, stop):
        import asyncio

        asyncio.run(self._main(stop))

    async def _main(self, stop):
        import asyncio

        from websockets.asyncio.client import connect

        perf, now_ns = time.perf_counter_ns, time.time_ns
        fetching = set()

        async def snapshot(sym):
            try:
                while True:
                    body = await asyncio.to_thread(self.fetch, sym)
                    if self.install(sym, body):
                        return
            finally:
                fetching.discard(sym)

        async with connect(self.url, max_size=None, compression=None,
                           ping_interval=None) as ws:  # fmt: skip
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except asyncio.TimeoutError:
                    continue
                t_real, t_mono = now_ns(), perf()
                if self.on_message(raw, t_real, t_mono):
                    sym = self.loads(raw)["data"]["s"]
                    if sym not in fetching:
                        fetching.add(sym)
                        asyncio.get_running_loop().create_task(snapshot(sym))


class HftcoreStack:
    def __init__(self, ws_url, rest_url, spin=False):
        from hftcore.binance import Feed

        self.feed = Feed(list(SYMBOLS), "spot", streams=("depth",), url=ws_url,
                         rest_url=rest_url, spin=spin)  # fmt: skip
        self.feed.start()
        self.base = 0
        self.base_counters = {}
        self.last_count = -1
        self.last_msg = time.monotonic()

    def run(self, stop):
        while not stop.wait(0.02):
            n = self.feed.consumer.messages
            if n != self.last_count:
                self.last_count = n
                self.last_msg = time.monotonic()
        self.feed.stop()

    def synced(self):
        return self.feed.wait_synced(0.01)

    def reset(self):
        self.feed.consumer.stages.reset()
        self.base = self.feed.consumer.messages
        self.base_counters = self._counts()

    def count(self):
        return self.feed.consumer.messages - self.base

    def summary(self):
        d = self.feed.latency_report().as_dict()
        return {k: d[k] for k in STAGES + ("recv_to_decoded", "kernel_to_recv") if k in d}

    def book_report(self):
        out = {}
        for s in SYMBOLS:
            b, a = self.feed.books[s].depth()
            st = self.feed.consumer.symbol_stats(s)
            out[s] = {"last_update_id": st["last_update_id"], "bids": b.tolist(),
                      "asks": a.tolist()}  # fmt: skip
        return out

    def _counts(self):
        c = {"gaps": 0, "resyncs": 0, "stale": 0, "decode_errors": self.feed.consumer.decode_errors,
             "drops": self.feed.counters["drops"]}  # fmt: skip
        for s in SYMBOLS:
            st = self.feed.consumer.symbol_stats(s)
            for k in ("gaps", "resyncs", "stale"):
                c[k] += st[k]
        return c

    def counters(self):
        """Counters of the measured phase (since :meth:`reset`)."""
        now = self._counts()
        c = {k: v - self.base_counters.get(k, 0) for k, v in now.items()}
        c["cpu"] = self.feed.thread.stats().get("cpu") if self.feed.thread else None
        return c


def _wait_idle(client, quiet=0.3, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if time.monotonic() - client.last_msg > quiet:
            return True
        time.sleep(0.05)
    return False


def _busy(stop):
    """Python work holding the GIL (a strategy in the same process), until ``stop``."""
    while not stop.is_set():
        sum(range(2000))


def child_main(kind, ws_url, rest_url, busy=False, spin=False):
    """A stack (or the floor) in this process, driven by lines on stdin; ``busy`` adds a
    thread of pure-Python work beside it; ``spin``: hftcore's feed thread busy-polls."""
    out = sys.stdout

    def say(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    cls = {"floor": FloorClient, "hftcore": HftcoreStack,
           "websocket-client": WebsocketClientStack, "websockets": WebsocketsStack}[kind]  # fmt: skip
    try:
        if kind == "floor":
            client = cls(ws_url)
        elif kind == "hftcore":
            client = cls(ws_url, rest_url, spin)
        else:
            client = cls(ws_url, rest_url)
    except ImportError as exc:
        say({"error": f"not installed: {exc}"})
        return
    stop = threading.Event()
    worker = threading.Thread(target=client.run, args=(stop,), daemon=True)
    worker.start()
    if busy:
        threading.Thread(target=_busy, args=(stop,), daemon=True).start()
    deadline = time.monotonic() + 60
    while kind != "floor" and not client.synced():
        if time.monotonic() > deadline or not worker.is_alive():
            say({"error": "books did not sync"})
            stop.set()
            return
        time.sleep(0.02)
    say({"ready": True})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "reset":
            idle = _wait_idle(client)
            client.reset()
            say({"reset": True, "idle": idle})
        elif cmd == "report":
            idle = _wait_idle(client)
            if isinstance(client, HftcoreStack):
                stages = client.summary()
            else:
                stages = client.fig.summary()
            rep = {
                "stages": stages,
                "messages": client.count(),
                "drained": idle,
                "books": client.book_report(),
                "alive": worker.is_alive(),
            }
            if kind != "floor":
                rep["counters"] = client.counters()
            else:
                rep["span_us"] = [client.fig.first_e, client.fig.last_e]
                rep["closed"] = client.closed
                rep["frames_per_recv"] = client.frames / max(1, client.recvs)
            say(rep)
        elif cmd == "quit":
            break
    stop.set()
    worker.join(10)


# -- parent side -----------------------------------------------------------------------


class Child:
    def __init__(self, kind, python, ws_url, rest_url, flags=(), pythonpath=None):
        env = dict(os.environ)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
        self.kind = kind
        self.proc = subprocess.Popen(
            [python, __file__, "--child", kind, "--ws-url", ws_url, "--rest-url", rest_url]
            + list(flags),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self._lines = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cv:
                self._lines.append(line)
                self._cv.notify_all()
        with self._cv:
            self._lines.append(None)
            self._cv.notify_all()

    def expect(self, timeout=90.0) -> dict:
        with self._cv:
            if not self._cv.wait_for(lambda: self._lines, timeout):
                raise TimeoutError(f"{self.kind}: no answer in {timeout} s")
            line = self._lines.pop(0)
        if line is None:
            raise RuntimeError(f"{self.kind}: the child process ended (rc {self.proc.wait()})")
        return json.loads(line)

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def close(self):
        try:
            self.send("quit")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def check_books(ex, books) -> dict:
    """Each book against the exchange's at the stack's last update id."""
    out = {}
    for sym, b in books.items():
        lid = b["last_update_id"]
        if lid is None:
            out[sym] = "not synced"
            continue
        x_lid, bids, asks = ex.book_at(sym, lid)
        bids = [list(x) for x in bids]
        asks = [list(x) for x in asks]
        if x_lid != lid:
            out[sym] = f"update id {lid}, exchange {x_lid}"
        elif bids != b["bids"] or asks != b["asks"]:
            nb = sum(1 for x, y in zip(bids, b["bids"], strict=False) if x == y)
            na = sum(1 for x, y in zip(asks, b["asks"], strict=False) if x == y)
            out[sym] = (f"differs: bids {len(b['bids'])} levels (exchange {len(bids)}, "
                        f"{nb} equal in place), asks {len(b['asks'])} ({len(asks)}, "
                        f"{na})")  # fmt: skip
        else:
            out[sym] = "ok"
    return out


def run_once(stack, rate, seconds, seed, python, busy=False, pythonpath=str(REPO),
             spin=False) -> dict:  # fmt: skip
    """One run of ``stack`` (and the floor) at ``rate`` diffs/s; ``pythonpath`` is put
    first on the children's PYTHONPATH (None: the children import what this
    interpreter's environment has installed)."""
    from hftcore.sim.binance_exchange import BinanceExchange

    events = int(2 * rate * seconds * 1.1) + SYNC_RATE * 20
    ex = BinanceExchange(SYMBOLS, rate=SYNC_RATE, seed=seed, ping_interval=0,
                         pregenerate=events, history=max(20_000, events))  # fmt: skip
    t_gen = time.perf_counter()
    ex.start(timeout=60)
    t_gen = time.perf_counter() - t_gen
    children = []
    res = {"stack": stack, "rate_asked": rate, "seconds": seconds, "seed": seed,
           "pregenerated": events, "pregenerate_s": round(t_gen, 2), "busy_thread": busy,
           "spin": spin}  # fmt: skip
    try:
        floor = Child("floor", sys.executable, ex.ws_url, ex.rest_url, pythonpath=pythonpath)
        children.append(floor)
        main = Child(stack, sys.executable if stack == "hftcore" else python, ex.ws_url,
                     ex.rest_url, ["--busy-thread"] * busy + ["--spin"] * spin,
                     pythonpath)  # fmt: skip
        children.append(main)
        for c in children:
            r = c.expect()
            if "error" in r:
                res["error"] = f"{c.kind}: {r['error']}"
                return res
        ex.rate = 0
        time.sleep(0.2)
        for c in children:
            c.send("reset")
        for c in children:
            c.expect()
        s0 = ex.stats()
        t0 = time.monotonic()
        ex.rate = 2 * rate
        time.sleep(seconds)
        ex.rate = 0
        elapsed = time.monotonic() - t0
        s1 = ex.stats()
        for c in children:
            c.send("report")
        reps = {c.kind: c.expect(120) for c in children}
        fl = reps["floor"]
        st = reps[stack]
        diffs_sent = s1["depth"] - s0["depth"]
        first_e, last_e = fl["span_us"]
        res.update({
            "exchange": {"depth_sent": diffs_sent, "events_sent": s1["events"] - s0["events"],
                         "depth_per_s": diffs_sent / elapsed,
                         "slow_consumers": s1["slow_consumers"],
                         "open_connections": s1["open_connections"],
                         "gaps": s1["gaps"]},
            "floor": {"stages": fl["stages"], "messages": fl["messages"],
                      "frames_per_recv": fl["frames_per_recv"],
                      "delivered_per_s": (fl["messages"] - 1) / ((last_e - first_e) / 1e6)
                      if last_e > first_e else None},
            "stages": st["stages"], "messages": st["messages"], "counters": st["counters"],
            "drained": st["drained"], "alive": st["alive"],
            "books": check_books(ex, st["books"]),
        })  # fmt: skip
        res["kept"] = kept(res)
        return res
    finally:
        for c in children:
            c.close()
        ex.stop()


def kept(r) -> bool:
    c = r["counters"]
    e2a = r["stages"].get("event_to_applied") or {}
    floor_p99 = (r["floor"]["stages"].get("event_to_recv") or {}).get("p99") or 0
    return (all(v == "ok" for v in r["books"].values())
            and c["gaps"] == 0 and c["resyncs"] == 0
            and r["exchange"]["slow_consumers"] == 0 and r["exchange"]["open_connections"] >= 2
            and r["drained"] and r["alive"]
            and r["messages"] >= r["exchange"]["depth_sent"]
            and (e2a.get("p99") or 0) <= floor_p99 + FELL_BEHIND_NS)  # fmt: skip


def median_of(runs, path):
    vals = []
    for r in runs:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
            if v is None:
                break
        if v is not None:
            vals.append(v)
    return statistics.median(vals) if vals else None


def summarize(runs) -> dict:
    ok = [r for r in runs if "error" not in r]
    s = {"runs": len(runs), "kept_runs": sum(1 for r in ok if r.get("kept"))}
    if not ok:
        s["error"] = runs[0].get("error") if runs else "no runs"
        return s
    for stage in STAGES:
        for p in ("p50", "p99"):
            s[f"{stage}_{p}"] = median_of(ok, ("stages", stage, p))
    for p in ("p50", "p99"):
        s[f"floor_event_to_recv_{p}"] = median_of(ok, ("floor", "stages", "event_to_recv", p))
    s["delivered_per_s"] = median_of(ok, ("floor", "delivered_per_s"))
    s["exchange_depth_per_s"] = median_of(ok, ("exchange", "depth_per_s"))
    ratios = []
    for r in ok:
        a = (r["stages"].get("event_to_applied") or {}).get("p50")
        f = (r["floor"]["stages"].get("event_to_recv") or {}).get("p50")
        if a and f:
            ratios.append(a / f)
    s["event_to_applied_p50_over_floor"] = statistics.median(ratios) if ratios else None
    s["books_ok_runs"] = sum(1 for r in ok if all(v == "ok" for v in r["books"].values()))
    return s


def fmt_us(v):
    return "-" if v is None else f"{v / 1000:.1f}"


def table(results) -> str:
    lines = ["| diffs/s asked | delivered | stack | recv→applied p50 / p99 µs | "
             "event→applied p50 / p99 µs | floor event→recv p50 / p99 µs | ratio p50 | "
             "books ok | kept |", "|" + "---|" * 9]  # fmt: skip
    for rate, stacks in results.items():
        for stack, s in stacks.items():
            if "error" in s:
                lines.append(f"| {rate} | | {stack} | {s['error']} | | | | | |")
                continue
            ratio = s["event_to_applied_p50_over_floor"]
            lines.append(
                f"| {rate} | {s['delivered_per_s'] or 0:,.0f} | {stack} | "
                f"{fmt_us(s['recv_to_applied_p50'])} / {fmt_us(s['recv_to_applied_p99'])} | "
                f"{fmt_us(s['event_to_applied_p50'])} / {fmt_us(s['event_to_applied_p99'])} | "
                f"{fmt_us(s['floor_event_to_recv_p50'])} / {fmt_us(s['floor_event_to_recv_p99'])} | "
                f"{'-' if ratio is None else f'{ratio:.2f}'} | {s['books_ok_runs']}/{s['runs']} | "
                f"{s['kept_runs']}/{s['runs']} |"
            )  # fmt: skip
    return "\n".join(lines)


def levels_per_diff(n=20000, seed=1) -> float:
    from hftcore.sim.binance import iter_events

    tot = cnt = 0
    for ev in iter_events(seed, SYMBOLS, "spot"):
        if ev.kind == "depth":
            tot += len(ev.bids) + len(ev.asks)
            cnt += 1
            if cnt >= n:
                break
    return tot / cnt


def from_json(paths) -> int:
    """Print the table of the runs in earlier ``--json`` files (grouped by rate and stack)."""
    groups: dict = {}
    for p in paths:
        d = json.loads(Path(p).read_text())
        print(f"# {p}: {d['meta']['date']}, load {d['meta']['load_before']} -> "
              f"{d['meta'].get('load_after')}, busy thread {d['meta'].get('busy_thread')}, "
              f"spin {d['meta'].get('spin')}")  # fmt: skip
        for r in d["runs"]:
            if "error" not in r:
                r["kept"] = kept(r)
            groups.setdefault(int(r["rate_asked"]), {}).setdefault(r["stack"], []).append(r)
    results = {rate: {st: summarize(runs) for st, runs in by.items()}
               for rate, by in sorted(groups.items())}  # fmt: skip
    print(table(results))
    for stack in STACKS:
        best = [r for r in results if stack in results[r]
                and results[r][stack]["kept_runs"] == results[r][stack]["runs"]]  # fmt: skip
        print(f"{stack}: highest rate kept in every run: {max(best) if best else None}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])  # fmt: skip
    ap.add_argument("--rate", type=float, default=10_000, help="depth diffs per second")
    ap.add_argument("--ramp", help="comma-separated diff rates, e.g. 5000,10000,20000")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    ap.add_argument("--runs", type=int, default=3, help="runs per rate and stack (medians)")
    ap.add_argument("--seed", type=int, default=1, help="the exchange's event sequence")
    ap.add_argument(
        "--stacks", default=",".join(STACKS), help=f"comma-separated, of {', '.join(STACKS)}"
    )
    ap.add_argument(
        "--stop-after-fail",
        action="store_true",
        help="in a ramp, stop a stack at its first rate not kept in every run",
    )
    ap.add_argument(
        "--peers-python",
        default=PEERS_PYTHON if os.path.exists(PEERS_PYTHON) else sys.executable,
        help="interpreter of the peer stacks (this checkout goes on its PYTHONPATH)",
    )
    ap.add_argument(
        "--spin",
        action="store_true",
        help="hftcore's feed thread busy-polls its socket (Feed(spin=True); a core at 100%%)",
    )
    ap.add_argument(
        "--busy-thread",
        action="store_true",
        help="run a thread of pure-Python work in each stack's process (a "
        "strategy beside the feed: the GIL is contended)",
    )
    ap.add_argument("--json", help="write every run and the summary here")
    ap.add_argument(
        "--from-json",
        nargs="+",
        metavar="FILE",
        help="no runs: the table (and kept, recomputed) from earlier --json files",
    )
    ap.add_argument("--child", choices=("floor",) + STACKS, help=argparse.SUPPRESS)
    ap.add_argument("--ws-url", help=argparse.SUPPRESS)
    ap.add_argument("--rest-url", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child_main(a.child, a.ws_url, a.rest_url, a.busy_thread, a.spin)
    sys.path.insert(0, str(REPO))
    if a.from_json:
        return from_json(a.from_json)
    rates = [float(x) for x in a.ramp.split(",")] if a.ramp else [a.rate]
    stacks = [s for s in a.stacks.split(",") if s]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": platform.platform(),
            "cpus": os.cpu_count(), "load_before": os.getloadavg(), "python": sys.version.split()[0],
            "peers_python": a.peers_python, "levels_per_diff": levels_per_diff(),
            "busy_thread": a.busy_thread, "spin": a.spin, "argv": sys.argv}  # fmt: skip
    print(f"# {meta['date']}  load {meta['load_before']}  mean levels per diff "
          f"{meta['levels_per_diff']:.1f}", flush=True)  # fmt: skip
    all_runs, results = [], {}
    failed = set()
    for rate in rates:
        results[int(rate)] = {}
        for stack in stacks:
            if stack in failed:
                continue
            runs = []
            for _ in range(a.runs):
                r = run_once(stack, rate, a.seconds, a.seed, a.peers_python, a.busy_thread,
                             spin=a.spin)  # fmt: skip
                r["load"] = os.getloadavg()
                runs.append(r)
                all_runs.append(r)
                print(json.dumps({k: r.get(k) for k in ("stack", "rate_asked", "kept", "error",
                                                        "books", "counters", "load")}),
                      file=sys.stderr, flush=True)  # fmt: skip
                if "error" in r:
                    break
            s = summarize(runs)
            results[int(rate)][stack] = s
            if a.stop_after_fail and s.get("kept_runs", 0) < len(runs):
                failed.add(stack)
    meta["load_after"] = os.getloadavg()
    print(table(results))
    for stack in stacks:
        best = max((r for r in results if results[r].get(stack, {}).get("kept_runs")
                    == results[r].get(stack, {}).get("runs", -1)), default=None)  # fmt: skip
        if len(rates) > 1:
            print(f"{stack}: highest rate kept in every run: {best}")
    if a.json:
        Path(a.json).write_text(json.dumps({"meta": meta, "summary": results, "runs": all_runs},
                                           indent=1, default=str))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
