# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""MoldUDP64: packets, requests, and :class:`MoldUDP64Sequencer` (see moldudp64.pxd).

The sequencer is a :class:`~hftcore.net.consumer.Consumer` of datagrams. It hands every
message of one session to an inner consumer exactly once and strictly in sequence, without
the GIL: duplicates are dropped, messages that arrive ahead of a gap wait in a bounded
preallocated buffer, gaps are asked again of the re-request server (with a delay, a
timeout, retries and a request-size limit), and a gap the server cannot fill is reported
with its range and handled by the policy the user chose.
"""

import socket
import struct

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy, memset

from hftcore._core.bytes cimport load_be16, load_be64
from hftcore._core.clock cimport monotonic_ns
from hftcore.net.consumer cimport (
    CONSUME_ERROR,
    CONSUME_OK,
    CONSUME_STOP,
    KIND_BINARY,
    Consumer,
    RecvStamp,
    stamp_now,
)

from hftcore.errors import DecodeError, SequenceGap


cdef extern from *:
    """
    #include <sys/socket.h>
    /* sendto without blocking, the address as a packed sockaddr of addr_len bytes. */
    static inline ssize_t hft_sendto(int fd, const void *buf, size_t n, const void *addr,
                                     unsigned int addr_len) {
        return sendto(fd, buf, n, MSG_DONTWAIT, (const struct sockaddr *)addr,
                      (socklen_t)addr_len);
    }
    """
    ssize_t hft_sendto(int fd, const void *buf, size_t n, const void *addr,
                       unsigned int addr_len) noexcept nogil


__all__ = [
    "MoldUDP64Sequencer",
    "open_socket",
    "parse_packet",
    "encode_packet",
    "encode_heartbeat",
    "encode_end_of_session",
    "encode_request",
    "parse_request",
    "HEADER_LENGTH",
    "SESSION_LENGTH",
    "END_OF_SESSION",
]

#: Bytes of the downstream header (and of a request packet).
HEADER_LENGTH = MOLD_HEADER_LEN
#: Bytes of the session field.
SESSION_LENGTH = MOLD_SESSION_LEN
#: Message count of an end-of-session packet.
END_OF_SESSION = MOLD_END_COUNT

_REASONS = {
    BAD_SHORT_HEADER: "MoldUDP64 packet shorter than its 20-byte header",
    BAD_BLOCK_TRUNCATED: "MoldUDP64 message block runs past the end of the packet",
    BAD_TRAILING: "MoldUDP64 packet has bytes after its last message block",
    BAD_SEQUENCE_WRAP: "MoldUDP64 sequence number + message count overflows 64 bits",
}


# ---------------------------------------------------------------- parsing (nogil)

cdef int mold_parse(const uint8_t *data, Py_ssize_t size, MoldHeader *h) noexcept nogil:
    """Check a whole datagram; MOLD_DATA/HEARTBEAT/END, or MOLD_BAD with the fault."""
    cdef Py_ssize_t pos = MOLD_HEADER_LEN
    cdef uint32_t _i
    cdef uint16_t mlen
    if size < MOLD_HEADER_LEN:
        h.bad_offset = size
        h.bad_reason = BAD_SHORT_HEADER
        return MOLD_BAD
    h.session = data
    h.seq = load_be64(data + MOLD_SESSION_LEN)
    h.count = load_be16(data + MOLD_SESSION_LEN + 8)
    if h.count == MOLD_HEARTBEAT_COUNT or h.count == MOLD_END_COUNT:
        if size != MOLD_HEADER_LEN:
            h.bad_offset = MOLD_HEADER_LEN
            h.bad_reason = BAD_TRAILING
            return MOLD_BAD
        h.count = 0
        return MOLD_HEARTBEAT if load_be16(data + 18) == MOLD_HEARTBEAT_COUNT else MOLD_END
    if h.seq > <uint64_t>0xFFFFFFFFFFFFFFFF - h.count:
        h.bad_offset = MOLD_SESSION_LEN
        h.bad_reason = BAD_SEQUENCE_WRAP
        return MOLD_BAD
    for _i in range(h.count):
        if size - pos < 2:
            h.bad_offset = pos
            h.bad_reason = BAD_BLOCK_TRUNCATED
            return MOLD_BAD
        mlen = load_be16(data + pos)
        if size - pos - 2 < mlen:
            h.bad_offset = pos
            h.bad_reason = BAD_BLOCK_TRUNCATED
            return MOLD_BAD
        pos += 2 + mlen
    if pos != size:
        h.bad_offset = pos
        h.bad_reason = BAD_TRAILING
        return MOLD_BAD
    return MOLD_DATA


# ---------------------------------------------------------------- Python helpers

def _session_bytes(session):
    if isinstance(session, str):
        session = session.encode("ascii")
    session = bytes(session)
    if len(session) > MOLD_SESSION_LEN:
        raise ValueError(f"MoldUDP64 session {session!r} is longer than 10 bytes")
    return session.ljust(MOLD_SESSION_LEN, b" ")


def encode_packet(session, uint64_t seq, messages):
    """One downstream packet carrying ``messages`` (an iterable of bytes) from ``seq``.

    Parameters
    ----------
    session : str or bytes
        Up to 10 characters (padded with spaces).
    seq : int
        Sequence number of the first message.
    messages : iterable of bytes
        1 to 65534 messages of at most 65535 bytes each.

    Returns
    -------
    bytes
    """
    parts = [_session_bytes(session), struct.pack(">QH", seq, 0)]
    n = 0
    for m in messages:
        m = bytes(m)
        if len(m) > 0xFFFF:
            raise ValueError(f"MoldUDP64 message of {len(m)} bytes is over 65535")
        parts.append(struct.pack(">H", len(m)))
        parts.append(m)
        n += 1
    if not 1 <= n < MOLD_END_COUNT:
        raise ValueError(f"a MoldUDP64 packet carries 1 to 65534 messages, not {n}")
    parts[1] = struct.pack(">QH", seq, n)
    return b"".join(parts)


def encode_heartbeat(session, uint64_t next_seq):
    """A heartbeat: no message, ``next_seq`` the next sequence number to be sent."""
    return _session_bytes(session) + struct.pack(">QH", next_seq, MOLD_HEARTBEAT_COUNT)


def encode_end_of_session(session, uint64_t next_seq):
    """An end-of-session packet (message count 0xFFFF)."""
    return _session_bytes(session) + struct.pack(">QH", next_seq, MOLD_END_COUNT)


def encode_request(session, uint64_t seq, int count):
    """A request to the re-request server for ``count`` messages from ``seq``."""
    if not 0 < count <= 0xFFFF:
        raise ValueError(f"a MoldUDP64 request asks for 1 to 65535 messages, not {count}")
    return _session_bytes(session) + struct.pack(">QH", seq, count)


def parse_request(data):
    """``(session, seq, count)`` of a 20-byte request packet.

    Raises
    ------
    DecodeError
        Not 20 bytes.
    """
    data = bytes(data)
    if len(data) != MOLD_REQUEST_LEN:
        raise DecodeError(f"MoldUDP64 request of {len(data)} bytes (a request has 20)",
                          min(len(data), MOLD_REQUEST_LEN))
    seq, count = struct.unpack_from(">QH", data, MOLD_SESSION_LEN)
    return data[:MOLD_SESSION_LEN], seq, count


def parse_packet(const uint8_t[::1] data not None):
    """Parse one downstream packet (the slow path, for tools and tests).

    Returns
    -------
    tuple
        ``(session: bytes, seq: int, kind: str, messages: list[bytes])`` with ``kind``
        ``"data"``, ``"heartbeat"`` or ``"end"``; ``seq`` is the first message's sequence
        number (the next one for a heartbeat or an end of session).

    Raises
    ------
    DecodeError
        Malformed, with the offset of the fault.
    """
    cdef MoldHeader h
    cdef Py_ssize_t n = data.shape[0]
    cdef const uint8_t *p = &data[0] if n > 0 else <const uint8_t *>b""
    cdef int t = mold_parse(p, n, &h)
    cdef Py_ssize_t pos = MOLD_HEADER_LEN
    cdef uint16_t mlen
    if t == MOLD_BAD:
        raise DecodeError(_REASONS[h.bad_reason], h.bad_offset)
    session = PyBytes_FromStringAndSize(<const char *>p, MOLD_SESSION_LEN)
    messages = []
    for _ in range(h.count):
        mlen = load_be16(p + pos)
        messages.append(PyBytes_FromStringAndSize(<const char *>p + pos + 2, mlen))
        pos += 2 + mlen
    kind = "data" if t == MOLD_DATA else ("heartbeat" if t == MOLD_HEARTBEAT else "end")
    return session, h.seq, kind, messages


def _sockaddr(host, int port):
    """A packed ``struct sockaddr`` for (host, port), resolved now (IPv4 or IPv6)."""
    family, _, _, _, sa = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
    if family == socket.AF_INET:
        return struct.pack("=H", socket.AF_INET) + struct.pack(">H", port) + \
            socket.inet_aton(sa[0]) + bytes(8)
    if family == socket.AF_INET6:
        return (struct.pack("=H", socket.AF_INET6) + struct.pack(">HI", port, sa[2])
                + socket.inet_pton(socket.AF_INET6, sa[0]) + struct.pack("=I", sa[3]))
    raise ValueError(f"re-request server {host!r}: unsupported address family {family}")


_SO_RCVBUFFORCE = 33  # Linux; Python's socket module lacks the name


def open_socket(host, int port, interface=None, Py_ssize_t rcvbuf=64 << 20):
    """A UDP socket receiving a MoldUDP64 feed: unicast ``host:port`` or a multicast group.

    ``SO_REUSEADDR`` and ``SO_REUSEPORT`` are set (several listeners may share a group and
    port), the receive buffer is raised to ``rcvbuf`` (``SO_RCVBUFFORCE`` where permitted,
    else ``SO_RCVBUF`` within ``net.core.rmem_max``), and a multicast group is joined on
    ``interface`` (a local IPv4 address; default: the kernel's choice). The socket is
    bound to the group address itself, so it receives that group only.

    Returns
    -------
    socket.socket
        Bound; also the socket to send re-requests from (the answers come back to it).
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            s.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, rcvbuf)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        group = socket.inet_aton(socket.gethostbyname(host))
        if 224 <= group[0] <= 239:
            s.bind((host, port))
            local = socket.inet_aton(interface) if interface else bytes(4)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + local)
        else:
            s.bind((host, port))
    except BaseException:
        s.close()
        raise
    return s


# ---------------------------------------------------------------- the sequencer

_POLICIES = {"stop": GAP_STOP, "continue": GAP_CONTINUE}


cdef class MoldUDP64Sequencer(Consumer):
    """Hands every MoldUDP64 message to ``inner`` once, in sequence, recovering gaps.

    Give it to a UDP reader as its consumer (one datagram per ``on_message``); it calls
    ``inner.on_message(message, length, KIND_BINARY, stamp)`` for each message, without
    the GIL, with the stamp of the datagram that completed the sequence.

    Parameters
    ----------
    inner : Consumer
        Receives the messages.
    rerequest : (host, port), optional
        The re-request server. Without one, gaps are waited for (reordering) and then
        handled as unrecoverable.
    sock : socket.socket, optional
        The socket requests are sent from; the server answers to its address, so pass the
        socket the feed is read from (its answers then arrive in the same stream). Needed
        with ``rerequest``.
    session : str or bytes, optional
        Only this session; default: the first one seen.
    start_seq : int, default 1
        The first sequence number wanted; messages before it are ignored and a feed
        joined late asks for everything from it. 0: start at whatever arrives first.
    buffer_messages : int, default 65536
        Messages that can wait behind a gap (rounded up to a power of two). Messages
        further ahead are dropped, counted as ``overflow``, and asked again later.
    slot_bytes : int, default 64
        Largest message the buffer holds (ITCH's longest is 50 bytes); a longer message
        arriving ahead of a gap is dropped and asked again (in sequence it never waits).
    max_request : int, default 512
        Most messages asked for in one request packet (the request-size limit).
    request_delay : float, default 0.0
        Seconds between detecting a gap and asking for it (a moment for reordered
        packets to arrive on their own).
    retry_timeout : float, default 0.05
        Seconds without progress at the head of a gap before asking again.
    max_retries : int, default 10
        Requests repeated for the same gap before it is unrecoverable (the defaults
        give the re-request server half a second).
    heartbeat_timeout : float, default 3.0
        Seconds without any packet of the session before the feed is reported stale
        (MoldUDP64 servers send a heartbeat about once a second when idle).
    on_gap : {"stop", "continue"}, default "stop"
        An unrecoverable gap either stops the feed (:meth:`check` raises
        :class:`hftcore.SequenceGap` naming the range) or is skipped, counted in
        ``unrecovered`` and listed in :attr:`unrecovered_ranges`.

    Notes
    -----
    Counters (read-only attributes and :meth:`stats`): ``packets``, ``messages`` (handed
    on), ``heartbeats``, ``gaps`` (gaps detected), ``requests`` (request packets sent),
    ``requested`` (messages asked for), ``recovered`` (gap messages that arrived after
    being asked for), ``duplicates``, ``reordered`` (messages that waited in the buffer),
    ``unrecovered`` (messages skipped), ``unrecoverable_gaps``, ``stale_periods``,
    ``buffer_high_water``, ``overflow``, ``malformed`` (datagrams skipped),
    ``session_changes``, ``foreign_packets`` (of another session, ignored),
    ``request_errors`` (a request ``sendto`` failed).

    Timers run when a datagram arrives and on :meth:`poll`, which the receive loop calls
    when it is idle (a reader's ``pump`` that timed out).
    """

    def __cinit__(self):
        self.arena = NULL
        self.slot_len = NULL
        self.slot_seq = NULL
        self.fd = -1

    def __init__(self, Consumer inner not None, rerequest=None, sock=None, *, session=None,
                 uint64_t start_seq=1, Py_ssize_t buffer_messages=65536,
                 Py_ssize_t slot_bytes=64, Py_ssize_t max_request=512,
                 double request_delay=0.0, double retry_timeout=0.05, int max_retries=10,
                 double heartbeat_timeout=3.0, on_gap="stop"):
        cdef uint64_t cap = 1
        if buffer_messages < 1 or buffer_messages > (1 << 26):
            raise ValueError(f"buffer_messages must be in [1, {1 << 26}], got {buffer_messages}")
        if not 1 <= slot_bytes <= 0xFFFF:
            raise ValueError(f"slot_bytes must be in [1, 65535], got {slot_bytes}")
        if not 1 <= max_request <= 0xFFFF:
            raise ValueError(f"max_request must be in [1, 65535], got {max_request}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if on_gap not in _POLICIES:
            raise ValueError(f"on_gap must be 'stop' or 'continue', not {on_gap!r}")
        if rerequest is not None and sock is None:
            raise ValueError("rerequest= needs sock=, the socket the requests are sent from")
        while cap < <uint64_t>buffer_messages:
            cap <<= 1
        self.inner = inner
        self.cap = cap
        self.mask = cap - 1
        self.slot_bytes = slot_bytes
        self.arena = <uint8_t *>malloc(cap * slot_bytes)
        self.slot_len = <int32_t *>malloc(cap * sizeof(int32_t))
        self.slot_seq = <uint64_t *>malloc(cap * sizeof(uint64_t))
        if self.arena == NULL or self.slot_len == NULL or self.slot_seq == NULL:
            raise MemoryError("cannot allocate the MoldUDP64 reorder buffer")
        memset(self.slot_len, 0xFF, cap * sizeof(int32_t))   # every slot empty (-1)
        self.start_seq = start_seq
        self.next_seq = start_seq
        self.high = start_seq
        if session is not None:
            memcpy(self.session_id, PyBytes_AS_STRING(_session_bytes(session)),
                   MOLD_SESSION_LEN)
            self.has_session = True
            self.pinned_session = True
        self.max_request = max_request
        self.max_round = 64 * <uint64_t>max_request
        self.request_delay = <int64_t>(request_delay * 1e9)
        self.retry_timeout = <int64_t>(retry_timeout * 1e9)
        self.heartbeat_timeout = <int64_t>(heartbeat_timeout * 1e9)
        self.max_retries = max_retries
        self.policy = _POLICIES[on_gap]
        if rerequest is not None:
            addr = _sockaddr(rerequest[0], int(rerequest[1]))
            memcpy(self.addr, PyBytes_AS_STRING(addr), len(addr))
            self.addr_len = len(addr)
            self.sock = sock
            self.fd = sock.fileno()

    def __dealloc__(self):
        free(self.arena)
        free(self.slot_len)
        free(self.slot_seq)

    # ------------------------------------------------------------ buffer

    cdef inline bint present(self, uint64_t s) noexcept nogil:
        cdef uint64_t i = s & self.mask
        return self.slot_len[i] >= 0 and self.slot_seq[i] == s

    cdef inline void store(self, uint64_t s, const uint8_t *m, uint16_t mlen) noexcept nogil:
        cdef uint64_t i = s & self.mask
        if s - self.next_seq >= self.cap or mlen > self.slot_bytes:
            self.overflow += 1   # asked again when the gap before it is filled
            return
        if self.slot_len[i] >= 0:
            self.duplicates += 1   # (slot_seq[i] == s: the window holds one seq per slot)
            return
        memcpy(self.arena + i * self.slot_bytes, m, mlen)
        self.slot_len[i] = mlen
        self.slot_seq[i] = s
        self.buffered += 1
        self.reordered += 1
        if self.buffered > self.buffer_high_water:
            self.buffer_high_water = self.buffered

    cdef void clear_buffer(self) noexcept nogil:
        memset(self.slot_len, 0xFF, self.cap * sizeof(int32_t))
        self.buffered = 0

    # ------------------------------------------------------------ delivery

    cdef inline int deliver(self, const uint8_t *m, Py_ssize_t mlen,
                            const RecvStamp *stamp) noexcept nogil:
        cdef int rc = self.inner.on_message(m, mlen, KIND_BINARY, stamp)
        self.next_seq += 1
        self.messages += 1
        if rc != CONSUME_OK:
            self.halted = True
            if rc == CONSUME_ERROR:
                self.inner_error = True
        return rc

    cdef int drain(self, const RecvStamp *stamp) noexcept nogil:
        """Hand on the buffered messages that are now in sequence."""
        cdef uint64_t i
        cdef int rc = CONSUME_OK
        while self.buffered and not self.halted:
            i = self.next_seq & self.mask
            if self.slot_len[i] < 0 or self.slot_seq[i] != self.next_seq:
                break
            self.buffered -= 1
            rc = self.deliver(self.arena + i * self.slot_bytes, self.slot_len[i], stamp)
            self.slot_len[i] = -1
        return rc

    # ------------------------------------------------------------ requests

    cdef void send_request(self, uint64_t seq, uint64_t count) noexcept nogil:
        cdef uint8_t buf[MOLD_REQUEST_LEN]
        cdef int k
        if self.fd < 0:
            return
        memcpy(buf, self.session_id, MOLD_SESSION_LEN)
        for k in range(8):
            buf[MOLD_SESSION_LEN + k] = (seq >> (56 - 8 * k)) & 0xFF
        buf[18] = (count >> 8) & 0xFF
        buf[19] = count & 0xFF
        if hft_sendto(self.fd, buf, MOLD_REQUEST_LEN, self.addr, self.addr_len) < 0:
            self.request_errors += 1
            return
        self.requests += 1
        self.requested += count

    cdef void request_range(self, uint64_t lo, uint64_t hi) noexcept nogil:
        """Ask for every missing message in [lo, hi) within the buffer's window."""
        cdef uint64_t s, e, n
        cdef uint64_t budget = self.max_round
        cdef uint64_t window_end = self.next_seq + self.cap
        if lo < self.next_seq:
            lo = self.next_seq
        if hi > window_end:
            hi = window_end
        s = lo
        while s < hi and budget > 0:
            if self.present(s):
                s += 1
                continue
            e = s + 1
            while e < hi and e - s < self.max_request and e - s < budget \
                    and not self.present(e):
                e += 1
            n = e - s
            self.send_request(s, n)
            budget -= n
            s = e
        if s > self.requested_hi:
            self.requested_hi = s

    # ------------------------------------------------------------ timers

    cdef int tick(self, int64_t now, const RecvStamp *stamp) noexcept nogil:
        """Requests due, retries, unrecoverable gaps, staleness, end of session."""
        cdef uint64_t e
        cdef int rc = CONSUME_OK
        if self.last_packet_at and not self.stale \
                and now - self.last_packet_at > self.heartbeat_timeout:
            self.stale = True
            self.stale_periods += 1
        if self.halted or self.failed or not self.started:
            return CONSUME_OK
        if self.next_seq < self.high and not self.present(self.next_seq):
            if self.next_seq != self.round_next_seq:
                # The head of the sequence is blocked here for the first time.
                self.round_next_seq = self.next_seq
                self.round_at = now
                self.retries = 0
                if self.next_seq >= self.requested_hi and not self.pending:
                    self.pending = True
                    self.pending_from = self.next_seq
                    self.pending_at = now
            elif now - self.round_at >= self.retry_timeout:
                if self.retries >= self.max_retries:
                    # Unrecoverable: the run of missing messages at the head.
                    e = self.next_seq + 1
                    while e < self.high and e - self.next_seq < self.cap \
                            and not self.present(e):
                        e += 1
                    if e - self.next_seq >= self.cap:
                        e = self.high
                    if self.unrecoverable_gaps < MAX_GAP_RECORDS:
                        self.gap_first[self.unrecoverable_gaps] = self.next_seq
                        self.gap_end[self.unrecoverable_gaps] = e
                    self.unrecoverable_gaps += 1
                    if self.policy == GAP_STOP:
                        self.failed = True
                        return CONSUME_ERROR
                    self.unrecovered += e - self.next_seq
                    self.next_seq = e
                    self.pending = False
                    rc = self.drain(stamp)
                    if rc != CONSUME_OK:
                        return rc
                    return self.tick(now, stamp)
                self.retries += 1
                self.round_at = now
                self.request_range(self.next_seq, self.high)
        if self.pending and now - self.pending_at >= self.request_delay:
            self.pending = False
            self.request_range(self.pending_from, self.high)
        if self.end_seq and not self.ended and self.next_seq >= self.end_seq:
            self.ended = True
            return CONSUME_STOP
        return rc

    # ------------------------------------------------------------ packets

    cdef void adopt(self, const MoldHeader *h) noexcept nogil:
        """Follow the session of ``h`` from its start (or from ``h`` if start_seq=0)."""
        if self.has_session:
            self.session_changes += 1
        memcpy(self.session_id, h.session, MOLD_SESSION_LEN)
        self.has_session = True
        self.started = False
        self.clear_buffer()
        self.next_seq = self.start_seq
        self.high = self.start_seq
        self.end_seq = 0
        self.ended = False
        self.pending = False
        self.requested_hi = 0
        self.round_next_seq = 0
        self.retries = 0

    cdef int on_message(self, const uint8_t *data, Py_ssize_t size, int kind,
                        const RecvStamp *stamp) noexcept nogil:
        cdef MoldHeader h
        cdef int t, rc = CONSUME_OK, r
        cdef uint64_t s, old_high
        cdef uint32_t _i
        cdef uint16_t mlen
        cdef Py_ssize_t pos
        cdef const uint8_t *m
        cdef int64_t now = stamp.monotonic_ns if stamp.monotonic_ns else monotonic_ns()
        self.halted = False
        if self.failed:
            return CONSUME_ERROR
        self.packets += 1
        t = mold_parse(data, size, &h)
        if t == MOLD_BAD:
            self.malformed += 1
            return self.tick(now, stamp)
        if not self.has_session:
            self.adopt(&h)
        elif memcmp(h.session, self.session_id, MOLD_SESSION_LEN):
            if self.pinned_session or not (self.ended or self.stale or not self.started):
                self.foreign_packets += 1
                return self.tick(now, stamp)
            self.adopt(&h)
        if not self.started:
            self.started = True
            if self.start_seq == 0:
                self.next_seq = h.seq
                self.high = h.seq
        self.last_packet_at = now
        self.stale = False
        if self.ended:
            if t == MOLD_DATA:
                self.duplicates += h.count
            else:
                self.heartbeats += 1
            return CONSUME_OK
        rc = self.drain(stamp)
        old_high = self.high
        if t == MOLD_DATA:
            if h.seq > old_high:
                self.gaps += 1
                if not self.pending:
                    self.pending = True
                    self.pending_from = old_high
                    self.pending_at = now
            s = h.seq
            pos = MOLD_HEADER_LEN
            for _i in range(h.count):
                mlen = load_be16(data + pos)
                m = data + pos + 2
                pos += 2 + mlen
                if s < self.next_seq:
                    self.duplicates += 1
                elif s == self.next_seq and not self.halted:
                    if s < old_high and s < self.requested_hi:
                        self.recovered += 1
                    r = self.deliver(m, mlen, stamp)
                    if r != CONSUME_OK and rc != CONSUME_ERROR:
                        rc = r
                    if self.buffered:
                        r = self.drain(stamp)
                        if r != CONSUME_OK and rc != CONSUME_ERROR:
                            rc = r
                else:
                    if s < old_high and s < self.requested_hi and not self.present(s):
                        self.recovered += 1
                    self.store(s, m, mlen)
                s += 1
            if h.seq + h.count > self.high:
                self.high = h.seq + h.count
        else:
            self.heartbeats += 1
            if h.seq > old_high:
                self.gaps += 1
                self.high = h.seq
                if not self.pending:
                    self.pending = True
                    self.pending_from = old_high
                    self.pending_at = now
            if t == MOLD_END:
                self.end_seq = h.seq if h.seq > self.start_seq else self.start_seq
                if self.end_seq < self.high:
                    self.end_seq = self.high
        r = self.tick(now, stamp)
        if r != CONSUME_OK and rc != CONSUME_ERROR:
            rc = r
        return rc

    cpdef check(self):
        """Raise the stored error: an unrecoverable gap (policy "stop"), or the inner's."""
        cdef uint64_t k
        if self.failed:
            k = self.unrecoverable_gaps - 1
            first = self.gap_first[k] if k < MAX_GAP_RECORDS else self.next_seq
            end = self.gap_end[k] if k < MAX_GAP_RECORDS else self.high
            raise SequenceGap(
                first, end,
                f"MoldUDP64 session {self.session!r}: messages {first} to {end - 1} "
                f"unrecoverable after {self.max_retries} retries (on_gap='stop')",
            )
        if self.inner_error:
            self.inner_error = False
            self.inner.check()

    # ------------------------------------------------------------ Python face

    def feed(self, const uint8_t[::1] datagram not None):
        """Hand one datagram to the sequencer (the slow path: scripts and tests).

        Returns
        -------
        int
            ``CONSUME_OK`` (0) or ``CONSUME_STOP`` (1: end of session reached, or the
            inner consumer asked to stop).

        Raises
        ------
        SequenceGap
            An unrecoverable gap under ``on_gap="stop"``.
        """
        cdef RecvStamp stamp
        cdef int rc
        cdef Py_ssize_t n = datagram.shape[0]
        cdef const uint8_t *p = &datagram[0] if n > 0 else <const uint8_t *>b""
        stamp_now(&stamp)
        with nogil:
            rc = self.on_message(p, n, 17, &stamp)
        if rc == CONSUME_ERROR:
            self.check()
        return rc

    def poll(self):
        """Run the timers (requests, retries, gap verdicts, staleness) now.

        Call it when the receive loop is idle. Returns like :meth:`feed`.
        """
        cdef RecvStamp stamp
        cdef int rc
        stamp_now(&stamp)
        with nogil:
            self.halted = False
            rc = self.drain(&stamp)
            if rc == CONSUME_OK:
                rc = self.tick(stamp.monotonic_ns, &stamp)
        if rc == CONSUME_ERROR:
            self.check()
        return rc

    @property
    def session(self):
        """The session followed (bytes, space padded), or None before the first packet."""
        if not self.has_session:
            return None
        return PyBytes_FromStringAndSize(<const char *>self.session_id, MOLD_SESSION_LEN)

    @property
    def highest_seen(self):
        """One past the highest sequence number seen (heartbeats included)."""
        return self.high

    @property
    def unrecovered_ranges(self):
        """``[(first, end), ...]`` of the unrecoverable gaps (end excluded; first 64)."""
        cdef Py_ssize_t k
        return [(self.gap_first[k], self.gap_end[k])
                for k in range(min(self.unrecoverable_gaps, MAX_GAP_RECORDS))]

    def stats(self):
        """Every counter, the position and the state, as a dict."""
        return {
            "session": self.session,
            "next_seq": self.next_seq,
            "packets": self.packets,
            "messages": self.messages,
            "heartbeats": self.heartbeats,
            "gaps": self.gaps,
            "requests": self.requests,
            "requested": self.requested,
            "recovered": self.recovered,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
            "unrecovered": self.unrecovered,
            "unrecoverable_gaps": self.unrecoverable_gaps,
            "unrecovered_ranges": self.unrecovered_ranges,
            "stale": bool(self.stale),
            "stale_periods": self.stale_periods,
            "buffered": self.buffered,
            "buffer_high_water": self.buffer_high_water,
            "buffer_capacity": self.cap,
            "overflow": self.overflow,
            "malformed": self.malformed,
            "session_changes": self.session_changes,
            "foreign_packets": self.foreign_packets,
            "request_errors": self.request_errors,
            "ended": bool(self.ended),
        }
