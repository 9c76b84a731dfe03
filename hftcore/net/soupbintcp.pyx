# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""SoupBinTCP 3.00: the packet framer (a Consumer of TCP chunks, nogil), the packet
encoders, and :class:`SoupBinTCPSession`, a client that logs in, sends heartbeats and
resumes at the next sequence number after a reconnect (see soupbintcp.pxd).
"""

import socket
import struct
import time

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from hftcore._core.bytes cimport load_be16
from hftcore.net.consumer cimport (
    CONSUME_ERROR,
    CONSUME_OK,
    CONSUME_STOP,
    KIND_BINARY,
    KIND_STREAM,
    Consumer,
    RecvStamp,
    stamp_now,
)

from hftcore.errors import ConnectionClosed, HftcoreError, ProtocolError, SequenceGap

__all__ = [
    "SoupBinTCPFramer",
    "SoupBinTCPSession",
    "LoginRejected",
    "parse_packets",
    "encode_packet",
    "encode_login_request",
    "encode_login_accepted",
    "encode_login_rejected",
    "encode_sequenced",
    "encode_unsequenced",
    "encode_debug",
    "SERVER_HEARTBEAT",
    "CLIENT_HEARTBEAT",
    "END_OF_SESSION",
    "LOGOUT_REQUEST",
    "HEARTBEAT_INTERVAL",
    "HEARTBEAT_TIMEOUT",
]

#: Seconds of silence after which either side sends a heartbeat (SoupBinTCP 3.00).
HEARTBEAT_INTERVAL = 1.0
#: Seconds without any packet after which the link is taken as lost (the spec's
#: customary 15 s).
HEARTBEAT_TIMEOUT = 15.0

_REASONS = {
    SOUP_ZERO_LENGTH: "SoupBinTCP packet of length 0 (no packet type)",
    SOUP_UNKNOWN_TYPE: "SoupBinTCP packet of a type a server does not send",
    SOUP_BAD_LOGIN: "SoupBinTCP login answer of the wrong length or content",
    SOUP_NOT_LOGGED_IN: "SoupBinTCP sequenced data before login accepted",
    SOUP_AFTER_END: "SoupBinTCP packet after end of session",
    SOUP_NO_MEMORY: "out of memory buffering a SoupBinTCP packet",
}
_REJECT_REASONS = {ord("A"): "not authorized", ord("S"): "session not available"}


class LoginRejected(HftcoreError, ConnectionError):
    """The server rejected the login: ``reason`` is 'A' (not authorized) or 'S' (session
    not available)."""

    def __init__(self, reason):
        self.reason = reason
        words = _REJECT_REASONS.get(ord(reason) if reason else 0, "unknown reason")
        super().__init__(f"SoupBinTCP login rejected: {reason!r} ({words})")

    def __reduce__(self):
        return (type(self), (self.reason,))


# ---------------------------------------------------------------- encoders (slow path)

def encode_packet(packet_type, payload=b""):
    """One logical packet: 2-byte big-endian length, the type byte, the payload."""
    if isinstance(packet_type, str):
        packet_type = packet_type.encode("ascii")
    payload = bytes(payload)
    if len(packet_type) != 1:
        raise ValueError(f"packet type must be one byte, not {packet_type!r}")
    if len(payload) > 0xFFFE:
        raise ValueError(f"SoupBinTCP payload of {len(payload)} bytes is over 65534")
    return struct.pack(">H", len(payload) + 1) + packet_type + payload


def _alpha(value, width, what, right_pad=True):
    if isinstance(value, str):
        value = value.encode("ascii")
    value = bytes(value)
    if len(value) > width:
        raise ValueError(f"SoupBinTCP {what} {value!r} is longer than {width} characters")
    return value.ljust(width, b" ") if right_pad else value.rjust(width, b" ")


def _numeric(value, width):
    text = str(int(value)).encode("ascii")
    if int(value) < 0 or len(text) > width:
        raise ValueError(f"SoupBinTCP sequence number {value} does not fit {width} digits")
    return text.rjust(width, b" ")


def encode_login_request(username, password, session=b"", uint64_t seq=0):
    """'L': username (6), password (10), requested session (10, blank: the current one),
    requested sequence number (20; 0: from the most recent message)."""
    return encode_packet(b"L", _alpha(username, 6, "username") + _alpha(password, 10, "password")
                         + _alpha(session, SOUP_SESSION_LEN, "session", False)
                         + _numeric(seq, SOUP_SEQ_LEN))


def encode_login_accepted(session, uint64_t seq):
    """'A': the session (10, left padded) and the next sequence number (20)."""
    return encode_packet(b"A", _alpha(session, SOUP_SESSION_LEN, "session", False)
                         + _numeric(seq, SOUP_SEQ_LEN))


def encode_login_rejected(reason):
    """'J' with the reason code 'A' (not authorized) or 'S' (session not available)."""
    return encode_packet(b"J", _alpha(reason, 1, "reject reason"))


def encode_sequenced(message):
    """'S' sequenced data."""
    return encode_packet(b"S", message)


def encode_unsequenced(message):
    """'U' unsequenced data (either direction)."""
    return encode_packet(b"U", message)


def encode_debug(text):
    """'+' debug text."""
    return encode_packet(b"+", text.encode() if isinstance(text, str) else text)


#: Packets without payload.
SERVER_HEARTBEAT = encode_packet(b"H")
CLIENT_HEARTBEAT = encode_packet(b"R")
END_OF_SESSION = encode_packet(b"Z")
LOGOUT_REQUEST = encode_packet(b"O")


def parse_packets(data):
    """Split a byte stream into ``[(type: str, payload: bytes)]`` and the unused tail.

    Returns
    -------
    tuple
        ``(packets, rest)``: ``rest`` is an incomplete last packet (bytes, maybe empty).

    Raises
    ------
    ProtocolError
        A packet of length 0, with its offset.
    """
    data = bytes(data)
    out = []
    pos = 0
    while len(data) - pos >= 2:
        n = struct.unpack_from(">H", data, pos)[0]
        if n == 0:
            raise ProtocolError(_REASONS[SOUP_ZERO_LENGTH], pos, "SoupBinTCP")
        if len(data) - pos - 2 < n:
            break
        out.append((chr(data[pos + 2]), data[pos + 3:pos + 2 + n]))
        pos += 2 + n
    return out, data[pos:]


# ---------------------------------------------------------------- the framer (nogil)

cdef class SoupBinTCPFramer(Consumer):
    """Splits a SoupBinTCP byte stream (``KIND_STREAM`` chunks) into packets, nogil.

    Sequenced messages go to ``inner`` as ``KIND_BINARY``, in order, each once: after a
    reconnect that resumes earlier than wanted, the messages already handed on are
    dropped (``duplicates``); a resume later than wanted is a :class:`SequenceGap`.

    Parameters
    ----------
    inner : Consumer
        Receives the sequenced messages.
    next_seq : int, default 1
        Sequence number of the first message wanted (0: whatever the login answer says).
    unsequenced : Consumer, optional
        Receives unsequenced ('U') messages; without it they are counted only.

    Notes
    -----
    Login accepted, login rejected and end of session update the state
    (:attr:`logged_in`, :attr:`rejected`, :attr:`ended`); the last two stop the reader's
    loop (``CONSUME_STOP``). A packet type a server never sends, a zero length or
    sequenced data before login are protocol errors (:meth:`check` raises
    :class:`hftcore.ProtocolError` with the stream offset).
    """

    def __cinit__(self):
        self.pending = NULL

    def __init__(self, Consumer inner not None, uint64_t next_seq=1,
                 Consumer unsequenced=None):
        self.inner = inner
        self.unsequenced_inner = unsequenced
        self.next_seq = next_seq
        self.pending_cap = 2 * SOUP_MAX_PACKET
        self.pending = <uint8_t *>malloc(self.pending_cap)
        if self.pending == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.pending)

    cdef int fail(self, int err, uint64_t offset, int t) noexcept nogil:
        self.err = err
        self.err_offset = offset
        self.err_type = t
        return CONSUME_ERROR

    cdef int append(self, const uint8_t *data, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t want = self.pending_n + n + SOUP_MAX_PACKET
        cdef uint8_t *p
        if n <= 0:
            return 0
        if want > self.pending_cap:
            p = <uint8_t *>realloc(self.pending, want)
            if p == NULL:
                return -1
            self.pending = p
            self.pending_cap = want
        memcpy(self.pending + self.pending_n, data, n)
        self.pending_n += n
        return 0

    cdef int packet(self, const uint8_t *p, Py_ssize_t n, uint64_t offset,
                    const RecvStamp *stamp) noexcept nogil:
        cdef uint8_t t, c
        cdef const uint8_t *payload = p + 3
        cdef Py_ssize_t plen = n - 3
        cdef uint64_t s
        cdef int rc, i
        self.packets += 1
        self.last_rx_ns = stamp.monotonic_ns
        if n < 3:
            return self.fail(SOUP_ZERO_LENGTH, offset, 0)
        t = p[2]
        if self.ended:
            return self.fail(SOUP_AFTER_END, offset, t)
        if t == b'S':
            if not self.logged_in:
                return self.fail(SOUP_NOT_LOGGED_IN, offset, t)
            s = self.packet_seq
            self.packet_seq += 1
            if s < self.next_seq:
                self.duplicates += 1
                return CONSUME_OK
            self.next_seq = s + 1
            self.messages += 1
            rc = self.inner.on_message(payload, plen, KIND_BINARY, stamp)
            if rc == CONSUME_ERROR:
                self.inner_error = True
            return rc
        if t == b'H':
            self.heartbeats += 1
            return CONSUME_OK
        if t == b'U':
            self.unsequenced += 1
            if self.unsequenced_inner is not None:
                rc = self.unsequenced_inner.on_message(payload, plen, KIND_BINARY, stamp)
                if rc == CONSUME_ERROR:
                    self.inner_error = True
                return rc
            return CONSUME_OK
        if t == b'A':
            if plen != SOUP_SESSION_LEN + SOUP_SEQ_LEN:
                return self.fail(SOUP_BAD_LOGIN, offset, t)
            s = 0
            for i in range(SOUP_SESSION_LEN, SOUP_SESSION_LEN + SOUP_SEQ_LEN):
                c = payload[i]
                if c == 32 and s == 0:   # left padding
                    continue
                if c < 48 or c > 57 or s > 1844674407370955160ULL:   # not '0'..'9'
                    return self.fail(SOUP_BAD_LOGIN, offset, t)
                s = s * 10 + <uint64_t>(c - 48)
            memcpy(self.session_id, payload, SOUP_SESSION_LEN)
            self.accepted_seq = s
            self.logins += 1
            self.logged_in = True
            if self.next_seq == 0:
                self.next_seq = s
            if s > self.next_seq:
                return self.fail(SOUP_SEQUENCE_GAP, offset, t)
            self.packet_seq = s
            return CONSUME_OK
        if t == b'J':
            if plen != 1:
                return self.fail(SOUP_BAD_LOGIN, offset, t)
            self.rejected = payload[0]
            return CONSUME_STOP
        if t == b'Z':
            self.ended = True
            return CONSUME_STOP
        if t == b'+':
            self.debug += 1
            return CONSUME_OK
        return self.fail(SOUP_UNKNOWN_TYPE, offset, t)

    cdef int on_message(self, const uint8_t *data, Py_ssize_t size, int kind,
                        const RecvStamp *stamp) noexcept nogil:
        cdef Py_ssize_t pos = 0, avail, need, take
        cdef const uint8_t *p
        cdef int rc
        if self.err:
            return CONSUME_ERROR
        self.bytes_in += size
        # First the bytes left from earlier calls (a split packet, or a stash after a stop).
        while self.pending_n > self.pending_off:
            avail = self.pending_n - self.pending_off
            if avail < 2:
                take = 2 - avail if 2 - avail < size - pos else size - pos
                if self.append(data + pos, take) < 0:
                    return self.fail(SOUP_NO_MEMORY, self.stream_pos, 0)
                pos += take
                if self.pending_n - self.pending_off < 2:
                    return CONSUME_OK
                continue
            need = 2 + load_be16(self.pending + self.pending_off)
            if avail < need:
                take = need - avail if need - avail < size - pos else size - pos
                if self.append(data + pos, take) < 0:
                    return self.fail(SOUP_NO_MEMORY, self.stream_pos, 0)
                pos += take
                if self.pending_n - self.pending_off < need:
                    return CONSUME_OK
            p = self.pending + self.pending_off
            self.pending_off += need
            if self.pending_off == self.pending_n:
                self.pending_off = 0
                self.pending_n = 0
            rc = self.packet(p, need, self.stream_pos, stamp)
            self.stream_pos += need
            if rc != CONSUME_OK:
                if self.append(data + pos, size - pos) < 0:
                    return self.fail(SOUP_NO_MEMORY, self.stream_pos, 0)
                return rc
        # The fast path: whole packets straight from the chunk.
        while size - pos >= 2:
            need = 2 + load_be16(data + pos)
            if size - pos < need:
                break
            rc = self.packet(data + pos, need, self.stream_pos, stamp)
            pos += need
            self.stream_pos += need
            if rc != CONSUME_OK:
                if rc != CONSUME_ERROR and self.append(data + pos, size - pos) < 0:
                    return self.fail(SOUP_NO_MEMORY, self.stream_pos, 0)
                return rc
        if self.append(data + pos, size - pos) < 0:
            return self.fail(SOUP_NO_MEMORY, self.stream_pos, 0)
        return CONSUME_OK

    cpdef check(self):
        """Raise the stored protocol error or sequence gap, or the inner consumer's."""
        cdef int err = self.err
        if err == SOUP_SEQUENCE_GAP:
            raise SequenceGap(self.next_seq, self.accepted_seq,
                              f"SoupBinTCP session {self.session!r}: login accepted at "
                              f"{self.accepted_seq}, messages from {self.next_seq} wanted")
        if err:
            raise ProtocolError(f"{_REASONS[err]} (type byte {self.err_type!r})",
                                self.err_offset, "SoupBinTCP")
        if self.inner_error:
            self.inner_error = False
            if self.unsequenced_inner is not None:
                self.unsequenced_inner.check()
            self.inner.check()

    def feed(self, const uint8_t[::1] chunk not None):
        """Hand a chunk of the byte stream to the framer (slow path: tests, tools).

        Returns ``CONSUME_OK`` (0) or ``CONSUME_STOP`` (1); raises what :meth:`check`
        raises.
        """
        cdef RecvStamp stamp
        cdef int rc
        cdef Py_ssize_t n = chunk.shape[0]
        cdef const uint8_t *p = &chunk[0] if n > 0 else <const uint8_t *>b""
        stamp_now(&stamp)
        with nogil:
            rc = self.on_message(p, n, KIND_STREAM, &stamp)
        if rc == CONSUME_ERROR:
            self.check()
        return rc

    def flush(self):
        """Process bytes kept after a stop (the reader has nothing new to hand on)."""
        return self.feed(b"")

    def reset_connection(self):
        """Forget the bytes of a connection that was closed (before a reconnect)."""
        self.pending_n = 0
        self.pending_off = 0
        self.logged_in = False
        self.rejected = 0
        if self.err != SOUP_SEQUENCE_GAP:
            self.err = 0

    @property
    def session(self):
        """The session of the last login accepted (bytes, as sent), or None."""
        if not self.logins:
            return None
        return PyBytes_FromStringAndSize(<const char *>self.session_id, SOUP_SESSION_LEN)

    @property
    def buffered_bytes(self):
        """Bytes kept for the next call (a split packet)."""
        return self.pending_n - self.pending_off

    def stats(self):
        return {
            "bytes": self.bytes_in, "packets": self.packets, "messages": self.messages,
            "unsequenced": self.unsequenced, "heartbeats": self.heartbeats,
            "debug": self.debug, "duplicates": self.duplicates, "logins": self.logins,
            "next_seq": self.next_seq, "logged_in": bool(self.logged_in),
            "ended": bool(self.ended),
        }


# ---------------------------------------------------------------- the client session

class SoupBinTCPSession:
    """A SoupBinTCP client: login, the receive step, client heartbeats, resume, logout.

    Parameters
    ----------
    host, port
        The server.
    username, password : str
        Up to 6 and 10 characters.
    inner : Consumer
        Receives every sequenced message once, in order (through a
        :class:`SoupBinTCPFramer`, without the GIL).
    session : str, default ""
        Session to log into (blank: the current one).
    next_seq : int, default 1
        First sequence number wanted (1: the whole session; 0: from now on).
    heartbeat_interval : float, default 1.0
        Seconds of silence before a client heartbeat (the spec's cadence).
    timeout : float, default 15.0
        Seconds without any packet from the server before the link is taken as lost.
    reconnect : int, default 0
        Reconnections allowed after a lost link; each logs into the same session at the
        next sequence number wanted, so nothing is lost or handed on twice.
    connect_timeout : float, default 5.0
    reader_factory : callable, optional
        ``reader_factory(sock)`` -> a reader with ``pump(consumer, timeout, spin)``
        (default :class:`hftcore.net.tcp.TcpReader`).

    Examples
    --------
    >>> s = SoupBinTCPSession("127.0.0.1", 26400, "user", "pass", consumer)  # doctest: +SKIP
    >>> s.connect()                                                         # doctest: +SKIP
    >>> while s.step() >= 0: pass                                           # doctest: +SKIP
    """

    def __init__(self, host, port, username, password, Consumer inner, session="",
                 next_seq=1, heartbeat_interval=HEARTBEAT_INTERVAL,
                 timeout=HEARTBEAT_TIMEOUT, reconnect=0, connect_timeout=5.0,
                 reader_factory=None, unsequenced=None):
        _alpha(username, 6, "username")
        _alpha(password, 10, "password")
        self.address = (host, int(port))
        self.username = username
        self.password = password
        self.requested_session = session
        self.framer = SoupBinTCPFramer(inner, next_seq, unsequenced)
        self.heartbeat_interval = heartbeat_interval
        self.timeout = timeout
        self.reconnects_left = reconnect
        self.reconnects = 0
        self.connect_timeout = connect_timeout
        if reader_factory is None:
            from hftcore.net.tcp import TcpReader as reader_factory
        self.reader_factory = reader_factory
        self.sock = None
        self.reader = None
        self.last_sent = 0.0
        self.client_heartbeats = 0

    # -------------------------------------------------------- connection

    def connect(self):
        """Connect and log in; returns the sequence number the server starts at.

        Raises
        ------
        LoginRejected
            The server said no.
        TimeoutError
            No answer within ``connect_timeout``.
        """
        f = self.framer
        sock = socket.create_connection(self.address, timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock
        self.reader = self.reader_factory(sock)
        f.reset_connection()
        session = self.requested_session
        if f.session is not None:
            session = f.session.strip()
        self._send(encode_login_request(self.username, self.password, session, f.next_seq))
        deadline = time.monotonic() + self.connect_timeout
        while not f.logged_in:
            if f.rejected:
                reason = chr(f.rejected)
                self.close()
                raise LoginRejected(reason)
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(f"SoupBinTCP {self.address}: no login answer within "
                                   f"{self.connect_timeout} s")
            self.reader.pump(f, 0.05)
        self.last_rx = time.monotonic()
        return f.accepted_seq

    def _send(self, data):
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)
        self.last_sent = time.monotonic()

    def step(self, timeout=0.05, spin=False):
        """One receive step: the chunks handed on (0: idle), -1 at the end of the session.

        Sends a client heartbeat when due; reconnects (if allowed) after a lost link.

        Raises
        ------
        ConnectionClosed
            The link was lost and no reconnection is left.
        LoginRejected
            A reconnection was refused.
        """
        f = self.framer
        if f.ended:
            return -1
        try:
            n = self.reader.pump(f, timeout, spin)
        except OSError as e:  # ConnectionClosed (end of stream) or a reset
            if f.ended:
                return -1
            return self._lost(f"the connection was lost ({e})")
        now = time.monotonic()
        if n:
            self.last_rx = now
        if f.ended:
            return -1
        if f.rejected:
            raise LoginRejected(chr(f.rejected))
        if now - self.last_sent >= self.heartbeat_interval:
            try:
                self._send(CLIENT_HEARTBEAT)
                self.client_heartbeats += 1
            except OSError:
                return self._lost("sending a heartbeat failed")
        if now - self.last_rx > self.timeout:
            return self._lost(f"nothing received for {self.timeout} s")
        return n

    def _lost(self, why):
        self.close()
        if self.reconnects_left <= 0:
            raise ConnectionClosed(1006, why, f"SoupBinTCP {self.address}")
        self.reconnects_left -= 1
        self.reconnects += 1
        self.connect()
        return 0

    def send_unsequenced(self, message):
        """Send an unsequenced message to the server."""
        self._send(encode_unsequenced(message))

    def logout(self):
        """Send a logout request and close."""
        if self.sock is not None:
            try:
                self._send(LOGOUT_REQUEST)
            except OSError:
                pass
        self.close()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def fileno(self):
        return self.sock.fileno() if self.sock is not None else -1

    @property
    def next_seq(self):
        """Sequence number of the next message wanted."""
        return self.framer.next_seq

    def stats(self):
        out = self.framer.stats()
        out.update(reconnects=self.reconnects, client_heartbeats=self.client_heartbeats)
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
