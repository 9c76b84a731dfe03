"""A local ITCH exchange: a day replayed as MoldUDP64 (with a re-request server) or
served over SoupBinTCP (login, resume), for tests, demos and benchmarks.

:class:`MoldUDP64Server` sends the day's messages in MoldUDP64 packets (payloads of at
most ``max_payload`` bytes) to a unicast or multicast address, at a given message rate, as
fast as possible, or paced by the messages' own timestamps (optionally sped up), with
drops, reordering and duplicates on demand (seeded probabilities, per packet). Its
re-request server answers requests from a bounded history. After the last message it
sends end-of-session packets, then goes on answering requests until it is stopped.

:class:`SoupBinTCPServer` serves the day as one SoupBinTCP session: login with user and
password, resume at any sequence number, server heartbeats, end of session; optionally it
drops connections after given message counts (to test resuming).

Both run on their own threads; ``stop()`` (or leaving the ``with`` block) ends them.
"""

from __future__ import annotations

import os
import random
import select
import socket
import struct
import threading
import time

import numpy as np

from hftcore.net import moldudp64 as mold
from hftcore.net import soupbintcp as soup

__all__ = ["message_offsets", "load_day", "MoldUDP64Server", "SoupBinTCPServer"]

#: MoldUDP64 payload bound commonly used on Ethernet (IP + UDP headers fit in 1500).
MAX_PAYLOAD = 1400
_TS = struct.Struct(">H")


def message_offsets(day) -> np.ndarray:
    """Byte offsets of each message's length prefix in a BinaryFILE-framed ``day``, plus
    the end (``n + 1`` offsets). Stops at a zero-length end marker or a truncated tail.
    """
    mv = memoryview(day)
    n = len(mv)
    out = []
    pos = 0
    while n - pos >= 2:
        length = (mv[pos] << 8) | mv[pos + 1]
        if length == 0 or n - pos - 2 < length:
            break
        out.append(pos)
        pos += 2 + length
    out.append(pos)
    return np.asarray(out, dtype=np.int64)


def load_day(source) -> bytes:
    """A day as bytes: ``source`` is bytes, a path (``.gz`` read through the project's
    reader), or ``("generate", messages, symbols, seed)``."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, tuple) and source and source[0] == "generate":
        from hftcore.sim import itch as simitch

        return simitch.generate(*source[1:])
    from hftcore._core.files import open_stream

    with open_stream(os.fspath(source)) as (reader, _raw, _compressed):
        return reader.read()


def _packet_bounds(offsets: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Greedy runs of messages ``[i, j)`` whose framed bytes fit ``budget``."""
    n = len(offsets) - 1
    runs = []
    i = 0
    while i < n:
        j = int(np.searchsorted(offsets, offsets[i] + budget, side="right")) - 1
        j = min(max(j, i + 1), n, i + 0xFFFE)
        runs.append((i, j))
        i = j
    return runs


class MoldUDP64Server:
    """Replays a day as MoldUDP64 with a re-request server.

    Parameters
    ----------
    day : bytes, path or ("generate", messages, symbols, seed)
        BinaryFILE-framed ITCH (or any messages framed the same way).
    dest : (host, port)
        Where packets go: a unicast address, or a multicast group.
    rerequest : (host, port), default ("127.0.0.1", 0)
        Address the re-request server binds (port 0: any; see :attr:`rerequest_address`).
    session : str, default "HFTCORE001"
    rate : float, optional
        Messages per second; default as fast as possible.
    pace : {"rate", "timestamps"}, default "rate"
        "timestamps": packets leave at the messages' own timestamps (the ITCH timestamp at
        bytes 7-12 of each message), divided by ``speed``.
    speed : float, default 1.0
    drop, reorder, dup : float, default 0
        Per-packet probabilities: not sent (still in the history), sent after the next
        packet, sent twice.
    seed : int, default 0
    history : int, optional
        Messages the re-request server keeps (the newest sent); default all. Requests for
        older messages go unanswered (``unanswered`` counts them).
    max_payload : int, default 1400
    heartbeat_interval : float, default 1.0
        Heartbeats when idle (before the start, and after the end-of-session packets).
    end_packets : int, default 3
        End-of-session packets sent after the last message, ``end_interval`` apart.
    start_delay : float, default 0.0
        Seconds of heartbeats before the first message (receivers get ready).
    interface : str, optional
        Local address multicast leaves from (``IP_MULTICAST_IF``).
    ttl : int, default 1
        Multicast TTL.
    """

    def __init__(
        self,
        day,
        dest,
        rerequest=("127.0.0.1", 0),
        session="HFTCORE001",
        rate=None,
        pace="rate",
        speed=1.0,
        drop=0.0,
        reorder=0.0,
        dup=0.0,
        seed=0,
        history=None,
        max_payload=MAX_PAYLOAD,
        heartbeat_interval=1.0,
        end_packets=3,
        end_interval=0.05,
        start_delay=0.0,
        interface=None,
        ttl=1,
    ):
        if not mold.HEADER_LENGTH + 3 <= max_payload <= 65507:
            raise ValueError(f"max_payload must be in [23, 65507], got {max_payload}")
        if pace not in ("rate", "timestamps"):
            raise ValueError(f"pace must be 'rate' or 'timestamps', not {pace!r}")
        for name, p in (("drop", drop), ("reorder", reorder), ("dup", dup)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1), got {p}")
        if rate is not None and rate <= 0:
            raise ValueError(f"rate must be > 0 messages/s, got {rate}")
        self.day = load_day(day)
        self.offsets = message_offsets(self.day)
        self.n = len(self.offsets) - 1
        self.session = mold._session_bytes(session)
        self.dest = (dest[0], int(dest[1]))
        self.rate, self.pace, self.speed = rate, pace, speed
        self.drop, self.reorder, self.dup = drop, reorder, dup
        self.rng = random.Random(seed)
        self.history = history
        self.max_payload = max_payload
        self.heartbeat_interval = heartbeat_interval
        self.end_packets = end_packets
        self.end_interval = end_interval
        self.start_delay = start_delay
        self.runs = _packet_bounds(self.offsets, max_payload - mold.HEADER_LENGTH)
        # Built up front: the send loop does one sendto per packet and nothing else.
        self._packets = [self._packet(i, j) for i, j in self.runs]
        self.counters = dict(
            packets=0,
            messages=0,
            dropped=0,
            reordered=0,
            duplicated=0,
            heartbeats=0,
            requests=0,
            answered=0,
            unanswered=0,
            retransmitted_packets=0,
            bad_requests=0,
        )
        self.sent_upto = 1  # the next sequence number to be sent (1-based)
        self.send_started = self.send_ended = None  # monotonic times of the first/last
        self.done = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        multicast = ipaddr_is_multicast(self.dest[0])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        if multicast:
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
            self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            if interface:
                self.sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface)
                )
        self.rsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rsock.bind(rerequest)
        self.rsock.settimeout(0.05)
        self._threads = []

    # -------------------------------------------------------- packets

    @property
    def rerequest_address(self):
        """(host, port) the re-request server listens on."""
        return self.rsock.getsockname()

    def _packet(self, i: int, j: int) -> bytes:
        """Messages [i, j) (0-based) as one packet: header + the framed bytes as they are
        (the BinaryFILE framing is the MoldUDP64 message-block framing)."""
        o = self.offsets
        return (self.session + struct.pack(">QH", i + 1, j - i)
                + self.day[o[i]:o[j]])  # fmt: skip

    def _timestamp(self, i: int) -> int:
        p = int(self.offsets[i]) + 2 + 5
        return int.from_bytes(self.day[p : p + 6], "big")

    # -------------------------------------------------------- threads

    def start(self):
        """Start sending and answering requests."""
        for target, name in ((self._send_loop, "mold-send"), (self._rerequest_loop, "mold-rr")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout=5.0):
        """Stop both threads and close the sockets."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        self.sock.close()
        self.rsock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait(self, timeout=None) -> bool:
        """Wait until the last message and the end-of-session packets were sent."""
        return self.done.wait(timeout)

    def _send(self, data):
        try:
            self.sock.sendto(data, self.dest)
        except OSError:  # e.g. ENOBUFS under load: the packet is lost, like on a wire
            with self._lock:
                self.counters["dropped"] += 1

    def _send_loop(self):
        c = self.counters
        hb_at = time.monotonic()
        begin = time.monotonic() + self.start_delay
        while time.monotonic() < begin:
            if self._stop.is_set():
                return
            if time.monotonic() >= hb_at:
                self._send(mold.encode_heartbeat(self.session, 1))
                c["heartbeats"] += 1
                hb_at += self.heartbeat_interval
            time.sleep(min(0.01, max(0.0, begin - time.monotonic())))
        packets = self._packets
        t0 = self.send_started = time.monotonic()
        ts0 = self._timestamp(0) if self.n and self.pace == "timestamps" else 0
        held = None  # a packet being reordered: sent after the next one
        rng = self.rng
        faults = self.drop or self.reorder or self.dup
        for k, (i, j) in enumerate(self.runs):
            if self._stop.is_set():
                return
            if self.pace == "timestamps":
                due = t0 + (self._timestamp(i) - ts0) / 1e9 / self.speed
            elif self.rate:
                due = t0 + i / self.rate
            else:
                due = 0.0
            if due:
                delay = due - time.monotonic()
                if delay > 0.0005:
                    time.sleep(delay)
            data = packets[k]
            self.sent_upto = j + 1
            c["packets"] += 1
            c["messages"] += j - i
            if faults:
                r = rng.random()
                if r < self.drop:
                    c["dropped"] += 1
                    continue
                if held is None and k + 1 < len(self.runs) and rng.random() < self.reorder:
                    held = data
                    c["reordered"] += 1
                    continue
                self._send(data)
                if rng.random() < self.dup:
                    self._send(data)
                    c["duplicated"] += 1
                if held is not None:
                    self._send(held)
                    held = None
            else:
                self._send(data)
        if held is not None:
            self._send(held)
        self.send_ended = time.monotonic()
        end = self.n + 1
        for _ in range(self.end_packets):
            if self._stop.is_set():
                return
            self._send(mold.encode_end_of_session(self.session, end))
            time.sleep(self.end_interval)
        self.done.set()
        while not self._stop.wait(self.heartbeat_interval):
            self._send(mold.encode_end_of_session(self.session, end))

    def _rerequest_loop(self):
        c = self.counters
        budget = self.max_payload - mold.HEADER_LENGTH
        while not self._stop.is_set():
            try:
                data, addr = self.rsock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                session, seq, count = mold.parse_request(data)
            except ValueError:
                c["bad_requests"] += 1
                continue
            c["requests"] += 1
            if session != self.session or seq < 1 or count < 1:
                c["bad_requests"] += 1
                continue
            first = seq - 1
            end = min(first + count, self.sent_upto - 1, self.n)
            oldest = 0 if self.history is None else max(0, self.sent_upto - 1 - self.history)
            if first < oldest or first >= end:
                c["unanswered"] += 1
                continue
            c["answered"] += 1
            i = first
            while i < end:
                j = int(np.searchsorted(self.offsets, self.offsets[i] + budget, "right")) - 1
                j = min(max(j, i + 1), end)
                try:
                    self.rsock.sendto(self._packet(i, j), addr)
                except OSError:
                    break
                c["retransmitted_packets"] += 1
                i = j


def ipaddr_is_multicast(host: str) -> bool:
    """True for an IPv4 multicast address (224.0.0.0/4)."""
    try:
        return 224 <= socket.inet_aton(host)[0] <= 239
    except OSError:
        return False


class SoupBinTCPServer:
    """Serves a day as one SoupBinTCP session.

    Parameters
    ----------
    day : bytes, path or ("generate", messages, symbols, seed)
    address : (host, port), default ("127.0.0.1", 0)
    session : str, default "HFTCORE001"
    username, password : str, optional
        Required credentials (default: any login is accepted).
    rate : float, optional
        Messages per second made available from the server's start (default: all at
        once, a replay). Login with sequence number 0 starts at the newest.
    heartbeat_interval : float, default 1.0
        Server heartbeat after this much silence.
    client_timeout : float, default 15.0
        A client silent this long is disconnected.
    end_of_session : bool, default True
        Send end of session ('Z') after the last message.
    drop_after : sequence of int, optional
        Close the connection abruptly once, after each of these many messages sent in
        total (to test resuming).
    chunk_messages : int, default 2048
        Messages written per ``send`` call.
    """

    def __init__(
        self,
        day,
        address=("127.0.0.1", 0),
        session="HFTCORE001",
        username=None,
        password=None,
        rate=None,
        heartbeat_interval=1.0,
        client_timeout=15.0,
        end_of_session=True,
        drop_after=(),
        chunk_messages=2048,
    ):
        self.day = load_day(day)
        offsets = message_offsets(self.day)
        self.n = len(offsets) - 1
        # 'S' packets: length + 1, 'S', message; built once, sliced per client.
        lens = np.diff(offsets) - 2
        self.stream_offsets = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(lens + 3, out=self.stream_offsets[1:])
        out = bytearray(int(self.stream_offsets[-1]))
        mv = memoryview(self.day)
        for k in range(self.n):
            a, so, m = int(offsets[k]), int(self.stream_offsets[k]), int(lens[k])
            out[so : so + 2] = _TS.pack(m + 1)
            out[so + 2] = 0x53  # 'S'
            out[so + 3 : so + 3 + m] = mv[a + 2 : a + 2 + m]
        self.stream = bytes(out)
        self.session = session
        self.username, self.password = username, password
        self.rate = rate
        self.heartbeat_interval = heartbeat_interval
        self.client_timeout = client_timeout
        self.end_of_session = end_of_session
        self.drop_after = sorted(drop_after)
        self.chunk = chunk_messages
        self.counters = dict(
            logins=0,
            rejected=0,
            messages=0,
            heartbeats=0,
            client_heartbeats=0,
            logouts=0,
            dropped_connections=0,
            unsequenced=0,
        )
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(address)
        self.lsock.listen(8)
        self.lsock.settimeout(0.05)
        self._stop = threading.Event()
        self._threads = []
        self._lock = threading.Lock()
        self.t0 = None

    @property
    def address(self):
        return self.lsock.getsockname()

    def start(self):
        self.t0 = time.monotonic()
        t = threading.Thread(target=self._accept_loop, name="soup-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self, timeout=5.0):
        self._stop.set()
        for t in list(self._threads):
            t.join(timeout)
        self._threads = []
        self.lsock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _available(self) -> int:
        """Messages generated so far."""
        if self.rate is None:
            return self.n
        return min(self.n, int((time.monotonic() - self.t0) * self.rate))

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), name="soup-client", daemon=True)
            t.start()
            self._threads.append(t)

    def _read_login(self, conn, buf):
        deadline = time.monotonic() + self.client_timeout
        while True:
            packets, rest = soup.parse_packets(buf)
            if packets:
                return packets[0], buf[2 + 1 + len(packets[0][1]) :]
            if time.monotonic() > deadline or self._stop.is_set():
                return None, buf
            r, _, _ = select.select([conn], [], [], 0.05)
            if r:
                data = conn.recv(4096)
                if not data:
                    return None, buf
                buf += data

    def _serve(self, conn):
        try:
            self._serve_one(conn)
        except (OSError, ValueError):  # the client went away, or sent garbage
            pass
        finally:
            conn.close()

    def _serve_one(self, conn):
        c = self.counters
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        first, buf = self._read_login(conn, b"")
        if first is None or first[0] != "L" or len(first[1]) != 46:
            return
        p = first[1]
        user, password = p[:6].decode().rstrip(), p[6:16].decode().rstrip()
        session, seq = p[16:26].decode().strip(), int(p[26:46].decode().strip() or 0)
        if self.username is not None and (user != self.username or password != self.password):
            c["rejected"] += 1
            conn.sendall(soup.encode_login_rejected("A"))
            return
        if session and session != self.session:
            c["rejected"] += 1
            conn.sendall(soup.encode_login_rejected("S"))
            return
        avail = self._available()
        nxt = avail + 1 if seq == 0 else min(seq, avail + 1)
        conn.sendall(soup.encode_login_accepted(self.session, nxt))
        c["logins"] += 1
        last_sent = last_rx = time.monotonic()
        while not self._stop.is_set():
            avail = self._available()
            if nxt <= avail:
                end = min(avail + 1, nxt + self.chunk)
                with self._lock:
                    cut = None
                    for d in self.drop_after:
                        if c["messages"] < d <= c["messages"] + (end - nxt):
                            cut = d
                            break
                    if cut is not None:
                        self.drop_after.remove(cut)
                        end = nxt + (cut - c["messages"])
                    c["messages"] += end - nxt
                so = self.stream_offsets
                conn.sendall(self.stream[so[nxt - 1] : so[end - 1]])
                nxt = end
                last_sent = time.monotonic()
                if cut is not None:
                    c["dropped_connections"] += 1
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
            elif nxt > self.n and self.end_of_session:
                conn.sendall(soup.END_OF_SESSION)
                # Linger for the client's logout (or its close), then go.
                conn.settimeout(1.0)
                try:
                    conn.recv(4096)
                except OSError:
                    pass
                return
            now = time.monotonic()
            if now - last_sent >= self.heartbeat_interval:
                conn.sendall(soup.SERVER_HEARTBEAT)
                c["heartbeats"] += 1
                last_sent = now
            wait = 0.0 if nxt <= self._available() else 0.01
            r, _, _ = select.select([conn], [], [], wait)
            if r:
                data = conn.recv(65536)
                if not data:
                    return
                last_rx = now
                buf += data
                packets, buf = soup.parse_packets(buf)
                for t, _payload in packets:
                    if t == "R":
                        c["client_heartbeats"] += 1
                    elif t == "O":
                        c["logouts"] += 1
                        return
                    elif t == "U":
                        c["unsequenced"] += 1
            elif now - last_rx > self.client_timeout:
                return
