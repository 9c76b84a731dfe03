"""A raw-TCP WebSocket server for the tests: the HTTP upgrade, then hand-built bytes.

The frames a test sends are written byte-exactly by :func:`frame` (so a test can send what
no real server library would: masked frames, reserved bits, bad lengths), and the client's
frames are read back and unmasked by :func:`read_frame` to check pongs and close frames.
Written from RFC 6455, independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length=None):
    """One frame: ``length`` overrides the encoded payload length (any int, for bad ones)."""
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if mask is not None:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_frame(code=None, reason=b""):
    return frame(0x8, b"" if code is None else struct.pack("!H", code) + reason)


def recv_exact(conn, n):
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise EOFError(f"peer closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def read_frame(conn):
    """A client frame: (fin, opcode, payload), checking the client masked it."""
    b0, b1 = recv_exact(conn, 2)
    assert b1 & 0x80, "client frame not masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(conn, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(conn, 8))[0]
    mask = recv_exact(conn, 4)
    data = recv_exact(conn, n)
    return bool(b0 & 0x80), b0 & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def read_close(conn):
    """The client's next close frame (skipping pongs): (code or None, reason bytes)."""
    while True:
        _, opcode, payload = read_frame(conn)
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            return code, payload[2:]


class RawServer:
    """One-connection WebSocket server on loopback running ``script(conn)`` after the
    upgrade in a thread; ``first`` bytes go out in the same send as the 101 response.

    Use as a context manager; the thread's exception (if any) is re-raised on exit, and
    everything is closed with timeouts.
    """

    def __init__(self, script, first=b"", nodelay=True):
        self.script = script
        self.first = first
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/test"
        self.conn = None
        self.error = None
        self.request = b""
        self.nodelay = nodelay
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            conn, _ = self.listener.accept()
            self.conn = conn
            conn.settimeout(10)
            if self.nodelay:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while b"\r\n\r\n" not in self.request:
                chunk = conn.recv(4096)
                if not chunk:
                    raise EOFError("client closed during the handshake")
                self.request += chunk
            key = next(
                line.split(b":", 1)[1].strip()
                for line in self.request.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + self.first
            )
            self.script(conn)
        except BaseException as exc:  # reported to the test on exit
            self.error = exc

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.thread.join(10)
        alive = self.thread.is_alive()
        if self.conn is not None:
            self.conn.close()
        self.listener.close()
        self.thread.join(5)
        if exc[0] is None:
            assert not alive, "server script did not finish"
            if self.error is not None:
                raise self.error
        return False
