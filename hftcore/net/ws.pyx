# cython: language_level=3
"""A WebSocket client whose receive path is hftcore's (RFC 6455, client side).

websocket-client does the opening handshake (``ws://``, ``wss://`` with certificate
verification, proxies, headers, subprotocols) and the sending (frames masked as a client
must, under a lock, so another thread may send while the feed thread receives). Receiving
is done here: one receive call fills a preallocated buffer with as many frames as have
arrived, and :class:`FrameParser` splits it without the GIL, handing each complete message
to a :class:`~hftcore.net.consumer.Consumer` as a pointer into the buffer (no copy, no
allocation per frame). Fragmented messages, and frames larger than the receive buffer, are
assembled in a preallocated reassembly buffer of ``max_message`` bytes.

Timestamps: every receive call is stamped by :c:func:`hftcore.net.sockio.recv_stamped`
(CLOCK_REALTIME and CLOCK_MONOTONIC when it returns, and the kernel's receive time from
``SO_TIMESTAMPNS``). On ``wss://`` the default (``tls_memory_bio=True``) runs TLS through
``ssl.MemoryBIO`` over the plain socket: the ciphertext is received the same way (kernel
time included, no GIL), then decrypted with the GIL (one call per receive, not per frame)
into the buffer the parser reads. With ``tls_memory_bio=False``, or through a proxy, the
bytes come through Python's ``ssl.SSLSocket``, which has no ``recvmsg``: realtime and
monotonic are taken when its ``recv_into`` returns, ``kernel_ns`` is 0, and the receive
call holds the GIL (the framing after it does not).

websocket-client reads the handshake response one byte at a time (``recv_line``), so no
frame bytes are left in its hands when :func:`connect` returns; frames that arrive with the
response are read by the first :meth:`WebSocket.pump`.
"""

import os
import struct
from socket import SOL_SOCKET
import threading

from cpython.buffer cimport PyBUF_WRITE
from cpython.memoryview cimport PyMemoryView_FromMemory
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memmove

from hftcore.errors import ConnectionClosed, ProtocolError

from hftcore._core.clock cimport monotonic_ns
from hftcore.net.consumer cimport (
    CONSUME_ERROR,
    CONSUME_STOP,
    Consumer,
    RecvStamp,
    stamp_now,
)
from hftcore.net.sockio cimport HFT_SO_TIMESTAMPNS, recv_wait, wait_readable

from hftcore.net.sockio import enable_kernel_timestamps

__all__ = ["connect", "WebSocket", "FrameParser", "OPCODES", "CLOSE_CODES"]

DEF OP_CONT = 0x0
DEF OP_TEXT = 0x1
DEF OP_BINARY = 0x2
DEF OP_CLOSE = 0x8
DEF OP_PING = 0x9
DEF OP_PONG = 0xA

#: Opcode -> name (RFC 6455 section 5.2).
OPCODES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
#: The close codes this module sends on a protocol error.
CLOSE_CODES = {1000: "normal", 1002: "protocol error", 1007: "invalid payload data",
               1009: "message too big"}

# Protocol errors (FrameParser.err).
cdef enum ParseError:
    PE_NONE = 0
    PE_RSV = 1               # a reserved bit set (a = the bits), no extension agreed
    PE_OPCODE = 2            # a reserved opcode (a = it)
    PE_MASKED = 3            # a masked frame from the server
    PE_LENGTH = 4            # a 64-bit length with the top bit set (a = the high word)
    PE_CONTROL_LONG = 5      # a control frame payload over 125 bytes (a = length)
    PE_CONTROL_FRAG = 6      # a fragmented control frame (a = opcode)
    PE_CONTINUATION = 7      # a continuation frame with no message started
    PE_INTERLEAVED = 8       # a new data message while a fragmented one is unfinished
    PE_TOO_BIG = 9           # a message over max_message (a = its size so far)
    PE_UTF8 = 10             # invalid UTF-8 in a text message (a = index in the message)


cdef str _reason(FrameParser p):
    cdef int e = p.err
    if e == PE_RSV:
        return f"reserved bits 0x{p.err_a:02x} set in a frame header (no extension agreed)"
    if e == PE_OPCODE:
        return f"reserved opcode 0x{p.err_a:x}"
    if e == PE_MASKED:
        return "masked frame from the server (a server must not mask)"
    if e == PE_LENGTH:
        return "64-bit payload length with the most significant bit set"
    if e == PE_CONTROL_LONG:
        return f"control frame with a {p.err_a}-byte payload (at most 125)"
    if e == PE_CONTROL_FRAG:
        return f"fragmented control frame (opcode 0x{p.err_a:x})"
    if e == PE_CONTINUATION:
        return "continuation frame without a message started"
    if e == PE_INTERLEAVED:
        return "new data frame before the fragmented message ended"
    if e == PE_TOO_BIG:
        return (f"message of at least {p.err_a} bytes over max_message="
                f"{p.max_message}")
    if e == PE_UTF8:
        return f"invalid UTF-8 at byte {p.err_a} of a text message"
    return f"protocol error {e}"


cdef extern from * nogil:
    """
    /* Length of the ASCII prefix of s[:n]. SSE2 (every x86-64): 64 bytes per step;
       elsewhere, and in the debug build (HFTCORE_NO_SIMD), four 8-byte words per step. */
    #if defined(__SSE2__) && !defined(HFTCORE_NO_SIMD)
    #include <emmintrin.h>
    static inline Py_ssize_t hft_ascii_run(const uint8_t *s, Py_ssize_t n) {
        Py_ssize_t i = 0;
        while (i + 64 <= n) {
            __m128i a = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(s + i + 16));
            __m128i c = _mm_loadu_si128((const __m128i *)(s + i + 32));
            __m128i d = _mm_loadu_si128((const __m128i *)(s + i + 48));
            if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d))))
                break;
            i += 64;
        }
        while (i + 16 <= n) {
            if (_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + i)))) break;
            i += 16;
        }
        /* The last 1-15 bytes: one load of the final 16 (overlapping what is checked). */
        if (i < n && n >= 16 && i + 16 > n
                && !_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + n - 16))))
            return n;
        while (i < n && s[i] < 0x80) i++;
        return i;
    }
    #else
    static inline Py_ssize_t hft_ascii_run(const uint8_t *s, Py_ssize_t n) {
        Py_ssize_t i = 0;
        uint64_t a, b, c, d;
        const uint64_t high = 0x8080808080808080ULL;
        while (i + 32 <= n) {
            memcpy(&a, s + i, 8); memcpy(&b, s + i + 8, 8);
            memcpy(&c, s + i + 16, 8); memcpy(&d, s + i + 24, 8);
            if ((a | b | c | d) & high) break;
            i += 32;
        }
        while (i + 8 <= n) {
            memcpy(&a, s + i, 8);
            if (a & high) break;
            i += 8;
        }
        while (i < n && s[i] < 0x80) i++;
        return i;
    }
    #endif
    """
    Py_ssize_t ascii_run "hft_ascii_run"(const uint8_t* s, Py_ssize_t n)


cdef bint utf8_valid(const uint8_t* s, Py_ssize_t n, Py_ssize_t* bad) noexcept nogil:
    """Whether ``s[:n]`` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates,
    nothing above U+10FFFF, no truncated sequence). ASCII runs go 64 bytes at a time
    (SSE2; 32 with the portable code).
    On failure ``bad[0]`` is the index of the first byte of the bad sequence."""
    cdef Py_ssize_t i = ascii_run(s, n)
    cdef uint8_t c, c1
    while i < n:
        c = s[i]
        if c < 0x80:
            i += ascii_run(s + i, n - i)
            continue
        if c < 0xC2:                       # continuation byte or overlong 2-byte lead
            bad[0] = i
            return False
        if c < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                bad[0] = i
                return False
            i += 2
            continue
        if c < 0xF0:
            if i + 2 >= n:
                bad[0] = i
                return False
            c1 = s[i + 1]
            if ((c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (c == 0xE0 and c1 < 0xA0)       # overlong
                    or (c == 0xED and c1 >= 0xA0)):    # UTF-16 surrogate
                bad[0] = i
                return False
            i += 3
            continue
        if c < 0xF5:
            if i + 3 >= n:
                bad[0] = i
                return False
            c1 = s[i + 1]
            if ((c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80
                    or (s[i + 3] & 0xC0) != 0x80
                    or (c == 0xF0 and c1 < 0x90)       # overlong
                    or (c == 0xF4 and c1 >= 0x90)):    # above U+10FFFF
                bad[0] = i
                return False
            i += 4
            continue
        bad[0] = i
        return False
    return True


def utf8_check(data):
    """The index of the first invalid UTF-8 sequence in ``data``, or -1 (the validator
    the reader uses, exposed for tests)."""
    cdef const uint8_t[::1] v = data
    cdef Py_ssize_t bad = -1
    if v.shape[0] == 0:
        return -1
    if utf8_valid(&v[0], v.shape[0], &bad):
        return -1
    return bad


cdef class FrameParser:
    """The RFC 6455 frame parser of :class:`WebSocket` (server-to-client direction).

    Parameters
    ----------
    buffer_size : int
        Receive buffer bytes (at least 256).
    max_message : int
        Largest message accepted; the reassembly buffer's size. A larger one is a
        protocol error (close code 1009).
    validate_utf8 : bool
        Check text messages are UTF-8 (close code 1007 otherwise). Default True; turning
        it off is a deliberate choice the caller makes (the consumer then sees whatever
        bytes the server sent in text messages).
    """

    def __cinit__(self):
        self.buf = NULL
        self.msg = NULL

    def __init__(self, Py_ssize_t buffer_size=1 << 18, Py_ssize_t max_message=1 << 24,
                 bint validate_utf8=True):
        if buffer_size < 256:
            raise ValueError(f"buffer_size must be >= 256, got {buffer_size}")
        if max_message < 125:
            raise ValueError(f"max_message must be >= 125, got {max_message}")
        self.buf = <uint8_t*>malloc(buffer_size)
        self.msg = <uint8_t*>malloc(max_message)
        if self.buf == NULL or self.msg == NULL:
            raise MemoryError(f"cannot allocate a {buffer_size}-byte receive buffer and "
                              f"a {max_message}-byte reassembly buffer")
        self.cap = buffer_size
        self.max_message = max_message
        self.validate_utf8 = validate_utf8

    def __dealloc__(self):
        free(self.buf)
        free(self.msg)

    cdef Py_ssize_t prepare(self) noexcept nogil:
        """Move the unparsed tail to the buffer's start; return the free bytes after it
        (where the next receive writes, at ``buf + end``)."""
        cdef Py_ssize_t keep = self.end - self.start
        if self.start > 0:
            if keep > 0:
                memmove(self.buf, self.buf + self.start, keep)
            self.base += self.start
            self.start = 0
            self.end = keep
        return self.cap - self.end

    cdef int _fail(self, int err, int64_t offset, int close, int64_t a) noexcept nogil:
        self.err = err
        self.err_offset = offset
        self.err_close = close
        self.err_a = a
        return EV_ERROR

    cdef int _deliver(self, Consumer consumer, const RecvStamp* stamp) noexcept nogil:
        # The reassembled message is complete: check it and hand it on.
        cdef Py_ssize_t bad = 0
        cdef int kind = self.msg_opcode
        cdef int res
        self.msg_opcode = 0
        if kind == OP_TEXT and self.validate_utf8 and \
                not utf8_valid(self.msg, self.msg_len, &bad):
            return self._fail(PE_UTF8, self.msg_offset, 1007, bad)
        self.messages += 1
        self.delivered += 1
        res = consumer.on_message(self.msg, self.msg_len, kind, stamp)
        self.msg_len = 0
        if res == CONSUME_STOP:
            return EV_STOP
        if res == CONSUME_ERROR:
            return EV_CONSUMER_ERROR
        return EV_MORE

    cdef int parse(self, Consumer consumer, const RecvStamp* stamp) noexcept nogil:
        """Handle every complete frame in ``buf[start:end]``; see ParseEvent."""
        cdef const uint8_t* p
        cdef Py_ssize_t avail, hdr, take, bad = 0
        cdef uint64_t plen
        cdef int64_t off
        cdef int opcode, res
        cdef uint8_t b0, b1
        cdef bint fin
        if self.err:
            return EV_ERROR
        while True:
            avail = self.end - self.start
            if self.remaining > 0:
                # Payload of a frame larger than the buffer: straight into msg.
                if avail == 0:
                    return EV_MORE
                take = <Py_ssize_t>self.remaining if self.remaining < <uint64_t>avail \
                    else avail
                memcpy(self.msg + self.msg_len, self.buf + self.start, take)
                self.msg_len += take
                self.start += take
                self.remaining -= take
                if self.remaining > 0:
                    return EV_MORE
                if self.frame_fin:
                    res = self._deliver(consumer, stamp)
                    if res != EV_MORE:
                        return res
                continue
            if avail < 2:
                return EV_MORE
            p = self.buf + self.start
            off = self.base + self.start
            b0 = p[0]
            b1 = p[1]
            fin = (b0 & 0x80) != 0
            opcode = b0 & 0x0F
            if b0 & 0x70:
                return self._fail(PE_RSV, off, 1002, b0 & 0x70)
            if (opcode > OP_BINARY and opcode < OP_CLOSE) or opcode > OP_PONG:
                return self._fail(PE_OPCODE, off, 1002, opcode)
            if b1 & 0x80:
                return self._fail(PE_MASKED, off, 1002, 0)
            plen = b1 & 0x7F
            hdr = 2
            if plen == 126:
                if avail < 4:
                    return EV_MORE
                plen = (<uint64_t>p[2] << 8) | p[3]
                hdr = 4
            elif plen == 127:
                if avail < 10:
                    return EV_MORE
                plen = ((<uint64_t>p[2] << 56) | (<uint64_t>p[3] << 48)
                        | (<uint64_t>p[4] << 40) | (<uint64_t>p[5] << 32)
                        | (<uint64_t>p[6] << 24) | (<uint64_t>p[7] << 16)
                        | (<uint64_t>p[8] << 8) | <uint64_t>p[9])
                if plen >> 63:
                    return self._fail(PE_LENGTH, off, 1002, <int64_t>(plen >> 32))
                hdr = 10
            if opcode >= OP_CLOSE:
                if not fin:
                    return self._fail(PE_CONTROL_FRAG, off, 1002, opcode)
                if plen > 125:
                    return self._fail(PE_CONTROL_LONG, off, 1002, <int64_t>plen)
                if <uint64_t>avail < hdr + plen:
                    return EV_MORE
                self.frames += 1
                self.start += hdr + <Py_ssize_t>plen
                if opcode == OP_PONG:
                    self.pongs += 1
                    continue
                self.ctl_opcode = opcode
                self.ctl_data = p + hdr
                self.ctl_len = <Py_ssize_t>plen
                self.ctl_offset = off
                return EV_CONTROL
            if opcode == OP_CONT:
                if self.msg_opcode == 0:
                    return self._fail(PE_CONTINUATION, off, 1002, 0)
                if plen > <uint64_t>(self.max_message - self.msg_len):
                    return self._fail(PE_TOO_BIG, self.msg_offset, 1009,
                                      <int64_t>(self.msg_len + plen))
            else:
                if self.msg_opcode != 0:
                    return self._fail(PE_INTERLEAVED, off, 1002, opcode)
                if plen > <uint64_t>self.max_message:
                    return self._fail(PE_TOO_BIG, off, 1009, <int64_t>plen)
            if <uint64_t>avail >= hdr + plen:
                self.frames += 1
                self.start += hdr + <Py_ssize_t>plen
                if fin and opcode != OP_CONT:
                    # The fast path: a whole message in the buffer, handed on in place.
                    if opcode == OP_TEXT and self.validate_utf8 and \
                            not utf8_valid(p + hdr, <Py_ssize_t>plen, &bad):
                        return self._fail(PE_UTF8, off, 1007, bad)
                    self.messages += 1
                    self.delivered += 1
                    res = consumer.on_message(p + hdr, <Py_ssize_t>plen, opcode, stamp)
                    if res == CONSUME_STOP:
                        return EV_STOP
                    if res == CONSUME_ERROR:
                        return EV_CONSUMER_ERROR
                    continue
                if opcode != OP_CONT:
                    self.msg_opcode = opcode
                    self.msg_len = 0
                    self.msg_offset = off
                memcpy(self.msg + self.msg_len, p + hdr, <Py_ssize_t>plen)
                self.msg_len += <Py_ssize_t>plen
                if fin:
                    res = self._deliver(consumer, stamp)
                    if res != EV_MORE:
                        return res
                continue
            if hdr + plen <= <uint64_t>self.cap:
                return EV_MORE       # fits once the buffer is compacted: wait for it
            # Larger than the buffer: its payload goes to msg as it arrives.
            self.frames += 1
            if opcode != OP_CONT:
                self.msg_opcode = opcode
                self.msg_len = 0
                self.msg_offset = off
            self.start += hdr
            self.remaining = plen
            self.frame_fin = fin

    @property
    def offset(self):
        """Stream offset of the first unparsed byte."""
        return self.base + self.start

    @property
    def buffered(self):
        """Bytes received and not parsed yet (an incomplete frame's head)."""
        return self.end - self.start

    def error(self, source=None):
        """The :class:`~hftcore.errors.ProtocolError` of the last EV_ERROR (or None)."""
        if not self.err:
            return None
        return ProtocolError(_reason(self), self.err_offset, source, self.err_close)


cdef class _OneMessage(Consumer):
    # Copies the first message it gets and stops the reader: recv()'s slow path.
    cdef object message
    cdef int kind

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        with gil:
            self.message = data[:size]
            self.kind = kind
        return CONSUME_STOP


cdef class _Collect(Consumer):
    # Copies every message into a list of (opcode, bytes): the fuzz/test entry point.
    cdef list out

    def __init__(self, list out):
        self.out = out

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        with gil:
            self.out.append((kind, data[:size]))
        return 0


def _close_payload(bytes payload, Py_ssize_t offset, source=None):
    """The (code, reason) of a close frame's payload; ProtocolError when it is invalid."""
    cdef Py_ssize_t bad = 0
    cdef const uint8_t* p
    if len(payload) == 0:
        return 1005, ""
    if len(payload) == 1:
        raise ProtocolError("close frame with a 1-byte payload (a code needs 2)", offset,
                            source, 1002)
    code = (payload[0] << 8) | payload[1]
    if code < 1000 or code in (1004, 1005, 1006, 1015) or 1016 <= code < 3000 \
            or code >= 5000:
        if not (1012 <= code <= 1014):
            raise ProtocolError(f"invalid close code {code}", offset, source, 1002)
    p = payload
    if len(payload) > 2 and not utf8_valid(p + 2, len(payload) - 2, &bad):
        raise ProtocolError(f"invalid UTF-8 at byte {bad} of a close reason", offset,
                            source, 1007)
    return code, payload[2:].decode("utf-8")


def _parse_stream(data, Py_ssize_t max_message=1 << 20, chunks=None,
                  Py_ssize_t buffer_size=4096, bint validate_utf8=True):
    """Run the reader's parser over ``data`` as if received in ``chunks`` (test/fuzz).

    Parameters
    ----------
    data : bytes
        A server-to-client byte stream (frames).
    max_message, buffer_size, validate_utf8
        As for :func:`connect`.
    chunks : sequence of int, optional
        Sizes of successive receives (cycled); default: the whole buffer each time.

    Returns
    -------
    list of (int, bytes)
        Messages and control frames in order: ``(opcode, payload)``; a close frame ends
        the stream (its code and reason validated as :class:`WebSocket` does).

    Raises
    ------
    ProtocolError
        The first protocol error, with its stream offset and close code.
    """
    cdef const uint8_t[::1] src = data
    cdef FrameParser p = FrameParser(buffer_size, max_message, validate_utf8)
    cdef list out = []
    cdef _Collect consumer = _Collect(out)
    cdef RecvStamp stamp
    cdef Py_ssize_t pos = 0, n = src.shape[0], space, take
    cdef int ev
    cdef Py_ssize_t k = 0
    sizes = list(chunks) if chunks else [buffer_size]
    if any(s < 1 for s in sizes):
        raise ValueError("chunk sizes must be >= 1")
    stamp_now(&stamp)
    while pos < n:
        space = p.prepare()
        take = min(space, sizes[k % len(sizes)], n - pos)
        k += 1
        memcpy(p.buf + p.end, &src[pos], take)
        p.end += take
        pos += take
        while True:
            ev = p.parse(consumer, &stamp)
            if ev == EV_ERROR:
                raise p.error()
            if ev == EV_CONTROL:
                payload = p.ctl_data[:p.ctl_len]
                out.append((p.ctl_opcode, payload))
                if p.ctl_opcode == OP_CLOSE:
                    _close_payload(payload, p.ctl_offset)
                    return out
                continue
            break
    return out


cdef int recv_wait_spin_ready(int fd, double timeout) noexcept nogil:
    # Busy-poll readability (poll with a zero timeout) until the deadline: 1, 0, -errno.
    cdef int64_t deadline = monotonic_ns() + <int64_t>(timeout * 1e9)
    cdef int r
    while True:
        r = wait_readable(fd, 0)
        if r != 0:
            return r
        if monotonic_ns() >= deadline:
            return 0


class _TlsChannel:
    """TLS over a plain socket through ``ssl.MemoryBIO``, so the reader can receive
    ciphertext with ``recvmsg`` (kernel timestamps) and without the GIL.

    websocket-client sees it as its socket (``send``, ``recv``, ``settimeout``...) for
    the opening handshake and for sending; :class:`WebSocket` feeds it the ciphertext it
    receives and reads the plaintext back. One lock serialises every use of the TLS
    object (OpenSSL's SSL object is not safe for a read and a write at once).
    """

    def __init__(self, raw, context, server_hostname, timeout, kernel_stamps):
        import ssl
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = context.wrap_bio(self.incoming, self.outgoing,
                                    server_hostname=server_hostname)
        self.lock = threading.RLock()
        self.timeout = timeout
        self.eof = False
        self.kernel_stamps = enable_kernel_timestamps(raw) if kernel_stamps else False
        raw.settimeout(timeout)
        while True:
            try:
                with self.lock:
                    self.obj.do_handshake()
                    self._flush()
                break
            except ssl.SSLWantReadError:
                with self.lock:
                    self._flush()
                self._fill()
            except ssl.SSLError:
                # Send the alert (e.g. "unknown CA") so the server does not wait for us.
                try:
                    with self.lock:
                        self._flush()
                except OSError:
                    pass
                raise

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.raw.sendall(data)

    def _fill(self):
        # Blocking read of ciphertext (the handshake and websocket-client's reads only).
        data = self.raw.recv(1 << 16)
        if not data:
            self.incoming.write_eof()
            self.eof = True
        else:
            self.incoming.write(data)

    def feed(self, data):
        """Ciphertext received by the reader."""
        with self.lock:
            self.incoming.write(data)

    def read_into(self, view, Py_ssize_t start, Py_ssize_t space):
        """Decrypt into ``view[start:start+space]``: bytes written, 0 when the TLS object
        needs more ciphertext, -1 at the end of the TLS stream."""
        import ssl
        cdef Py_ssize_t total = 0, k
        with self.lock:
            while total < space:
                try:
                    k = self.obj.read(space - total, view[start + total:start + space])
                except ssl.SSLWantReadError:
                    break
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return total if total else -1
                if k == 0:
                    return total if total else -1
                total += k
            self._flush()   # TLS 1.3 may answer (key updates, session tickets)
        return total

    # The socket interface websocket-client uses.
    def send(self, data):
        with self.lock:
            n = self.obj.write(data)
            self._flush()
        return n

    def sendall(self, data):
        self.send(data)

    def recv(self, bufsize):
        import ssl
        while True:
            try:
                with self.lock:
                    return self.obj.read(bufsize)
            except ssl.SSLWantReadError:
                if self.eof:
                    return b""
                self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def gettimeout(self):
        return self.timeout

    def settimeout(self, timeout):
        self.timeout = timeout
        self.raw.settimeout(timeout)

    def setsockopt(self, *args):
        self.raw.setsockopt(*args)

    def fileno(self):
        return self.raw.fileno()

    def shutdown(self, how):
        self.raw.shutdown(how)

    def close(self):
        self.raw.close()

    @property
    def _closed(self):
        # websocket-client's shutdown() checks it before closing.
        return self.raw.fileno() < 0


def _tls_context(sslopt):
    """An SSLContext from websocket-client-style ``sslopt`` (verification on unless
    ``cert_reqs`` says ``ssl.CERT_NONE``)."""
    import ssl
    opts = dict(sslopt or {})
    known = {"context", "cert_reqs", "ca_certs", "ca_cert_path", "certfile", "keyfile",
             "password", "check_hostname", "ciphers", "server_hostname"}
    unknown = set(opts) - known
    if unknown:
        raise ValueError(f"sslopt keys not supported with tls_memory_bio=True: "
                         f"{sorted(unknown)}; pass tls_memory_bio=False")
    if opts.get("context") is not None:
        return opts["context"]
    ctx = ssl.create_default_context(cafile=opts.get("ca_certs"),
                                     capath=opts.get("ca_cert_path"))
    cert_reqs = opts.get("cert_reqs", ssl.CERT_REQUIRED)
    if cert_reqs == ssl.CERT_NONE:
        ctx.check_hostname = False
    else:
        ctx.check_hostname = bool(opts.get("check_hostname", True))
    ctx.verify_mode = cert_reqs
    if opts.get("certfile"):
        ctx.load_cert_chain(opts["certfile"], opts.get("keyfile"), opts.get("password"))
    if opts.get("ciphers"):
        ctx.set_ciphers(opts["ciphers"])
    return ctx


cdef class WebSocket:
    """An open WebSocket connection (made by :func:`connect`).

    Receive with :meth:`pump` (the fast path: messages to a Consumer without the GIL) or
    :meth:`recv` (the slow path: the next message as ``bytes``). Send from any thread.

    Attributes
    ----------
    close_code : int or None
        The close status code once closed: the peer's (1005 when its close frame had
        none), the one sent with :meth:`close`, the code of a protocol error this side
        detected (1002, 1007, 1009), or 1006 when the connection dropped.
    close_reason : str
    frames, messages, bytes_received, recv_calls, pings_answered, pongs_received : int
        Counters (see :meth:`counters`).
    kernel_stamps : bool
        Whether ``RecvStamp.kernel_ns`` is filled (plain ``ws://`` on Linux).
    """

    def __cinit__(self):
        self.cipher = NULL

    def __dealloc__(self):
        free(self.cipher)

    def __init__(self, client, str url, Py_ssize_t buffer_size=1 << 18,
                 Py_ssize_t max_message=1 << 24, bint validate_utf8=True,
                 bint kernel_stamps=True):
        import ssl
        self.client = client
        self.sock = client.sock
        self.url = url
        self.fd = self.sock.fileno()
        self.parser = FrameParser(buffer_size, max_message, validate_utf8)
        self.tls_view = PyMemoryView_FromMemory(<char*>self.parser.buf, self.parser.cap,
                                                PyBUF_WRITE)
        if isinstance(self.sock, _TlsChannel):
            self.tls = 2
            self.channel = self.sock
            self.cipher_cap = buffer_size
            self.cipher = <uint8_t*>malloc(buffer_size)
            if self.cipher == NULL:
                raise MemoryError(f"cannot allocate a {buffer_size}-byte TLS buffer")
            self.cipher_view = PyMemoryView_FromMemory(<char*>self.cipher, buffer_size,
                                                       PyBUF_WRITE)
            self.kernel_stamps = self.channel.kernel_stamps
        elif isinstance(self.sock, ssl.SSLSocket):
            self.tls = 1
            self.kernel_stamps = False
        else:
            self.kernel_stamps = enable_kernel_timestamps(self.sock) if kernel_stamps \
                else False
        self.send_lock = threading.Lock()
        self.recv_lock = threading.Lock()
        self.close_code = None
        self.close_reason = ""

    # ---------------------------------------------------------------- receiving

    cdef int _receive(self, double timeout, bint spin) except -1:
        # One receive into the buffer: 1 data, 0 timeout; raises on EOF and errors.
        cdef Py_ssize_t space = self.parser.prepare()
        cdef Py_ssize_t n = 0
        cdef int r
        cdef int ms
        if self.tls == 2:
            return self._receive_bio(space, timeout, spin)
        if self.tls == 1:
            if self.sock.pending() == 0:
                ms = <int>(timeout * 1000) if timeout > 0 else 0
                with nogil:
                    if spin:
                        r = recv_wait_spin_ready(self.fd, timeout)
                    else:
                        r = wait_readable(self.fd, ms)
                if r < 0:
                    raise OSError(-r, os.strerror(-r))
                if r == 0:
                    return 0
            import ssl
            try:
                n = self.sock.recv_into(self.tls_view[self.parser.end:], space)
            except (ssl.SSLWantReadError, BlockingIOError, TimeoutError):
                return 0
            except OSError:
                self._dropped()
                raise
            stamp_now(&self.stamp)
            r = 1
        else:
            with nogil:
                r = recv_wait(self.fd, self.parser.buf + self.parser.end, space,
                              &self.stamp, self.kernel_stamps, timeout, spin, &n)
            if r < 0:
                self._dropped()
                raise OSError(-r, os.strerror(-r))
            if r == 0:
                return 0
        self.recv_calls += 1
        if n == 0:
            self._dropped()
            raise ConnectionClosed(1006, "connection dropped without a close frame",
                                   self.url)
        self.parser.end += n
        self.bytes_received += n
        return 1

    cdef int _receive_bio(self, Py_ssize_t space, double timeout, bint spin) except -1:
        # TLS through ssl.MemoryBIO: plaintext the TLS object already holds first; else
        # one stamped receive of ciphertext (nogil), fed to the TLS object, decrypted
        # into the parser's buffer. 1 data, 0 nothing yet; raises on EOF and errors.
        cdef Py_ssize_t m = 0
        cdef Py_ssize_t n
        cdef int r
        n = self.channel.read_into(self.tls_view, self.parser.end, space)
        if n == 0:
            with nogil:
                r = recv_wait(self.fd, self.cipher, self.cipher_cap, &self.stamp,
                              self.kernel_stamps, timeout, spin, &m)
            if r < 0:
                self._dropped()
                raise OSError(-r, os.strerror(-r))
            if r == 0:
                return 0
            self.recv_calls += 1
            self.channel.feed(self.cipher_view[:m])
            n = self.channel.read_into(self.tls_view, self.parser.end, space)
        if n < 0:
            self._dropped()
            raise ConnectionClosed(1006, "connection dropped without a close frame",
                                   self.url)
        self.parser.end += n
        self.bytes_received += n
        return 1 if n > 0 else 0

    cdef int _run(self, Consumer consumer) except -1:
        # Parse what is buffered, answering control frames: 1 when the consumer stopped.
        cdef int ev
        cdef FrameParser p = self.parser
        while True:
            with nogil:
                ev = p.parse(consumer, &self.stamp)
            if ev == EV_MORE:
                return 0
            if ev == EV_STOP:
                return 1
            if ev == EV_CONTROL:
                if self._control():
                    return 1
                continue
            if ev == EV_CONSUMER_ERROR:
                consumer.check()
                return 1
            self._protocol_error(p.error(self.url))
            return 1

    def pump(self, Consumer consumer not None, double timeout=0.05, bint spin=False):
        """Receive once and hand every complete message to ``consumer``.

        Messages already buffered (left by a consumer that stopped) are handed on first,
        without a receive. Pings are answered and pongs counted on the way.

        Parameters
        ----------
        consumer : Consumer
            ``on_message(data, size, KIND_TEXT or KIND_BINARY, stamp)`` per message,
            without the GIL; ``data`` points into the receive (or reassembly) buffer and
            is valid during the call only. Returning ``CONSUME_STOP`` ends this call after
            that message (the rest stays buffered for the next call).
        timeout : float
            Seconds to wait for data (0: try once).
        spin : bool
            Busy-poll the socket without the GIL instead of sleeping in ``poll``.

        Returns
        -------
        int
            Messages handed on; 0 on timeout.

        Raises
        ------
        ConnectionClosed
            The server closed (the close handshake is completed first; ``code`` is its
            status code) or the connection dropped (1006).
        ProtocolError
            The server broke RFC 6455; the close frame with the matching code (1002, 1007,
            1009) was sent and the connection is closed.

        Notes
        -----
        When the close frame or the protocol error comes after messages handed on in the
        same call, the call returns their number and the next call raises.

        One thread receives at a time: a second thread calling ``pump`` (or ``recv``)
        while one is in it gets ``RuntimeError``. Sending and :meth:`close` may come from
        any thread.
        """
        if not self.recv_lock.acquire(False):
            raise RuntimeError(f"{self.url}: pump/recv called from two threads at once")
        try:
            return self._pump(consumer, timeout, spin)
        finally:
            self.recv_lock.release()

    def _pump(self, Consumer consumer, double timeout, bint spin):
        self._check_open()
        self.parser.delivered = 0
        if self.parser.end > self.parser.start:
            if self._run(consumer) or self.parser.delivered:
                return self.parser.delivered
        if self.tls == 0:
            return self._pump_plain(consumer, timeout, spin)
        if not self._receive(timeout, spin):
            return 0
        self._run(consumer)
        return self.parser.delivered

    cdef object _pump_plain(self, Consumer consumer, double timeout, bint spin):
        # ws://: the receive and the parse in one section without the GIL, so the
        # messages reach the consumer without retaking the GIL in between (another
        # Python thread holding it would delay them by up to the switch interval).
        cdef FrameParser p = self.parser
        cdef Py_ssize_t space = p.prepare()
        cdef Py_ssize_t n = 0
        cdef int r
        cdef int ev = EV_MORE
        with nogil:
            r = recv_wait(self.fd, p.buf + p.end, space, &self.stamp, self.kernel_stamps,
                          timeout, spin, &n)
            if r > 0 and n > 0:
                p.end += n
                ev = p.parse(consumer, &self.stamp)
        if r < 0:
            self._dropped()
            raise OSError(-r, os.strerror(-r))
        if r == 0:
            return 0
        self.recv_calls += 1
        if n == 0:
            self._dropped()
            raise ConnectionClosed(1006, "connection dropped without a close frame",
                                   self.url)
        self.bytes_received += n
        if ev != EV_MORE:
            # A control frame, a stop, an error: the general path from here (it parses
            # again from where the parser stopped).
            self._after_event(consumer, ev)
        return p.delivered

    cdef int _after_event(self, Consumer consumer, int ev) except -1:
        # What _run does with an event other than EV_MORE, then the rest of the buffer.
        if ev == EV_STOP:
            return 1
        if ev == EV_CONTROL:
            if self._control():
                return 1
            return self._run(consumer)
        if ev == EV_CONSUMER_ERROR:
            consumer.check()
            return 1
        self._protocol_error(self.parser.error(self.url))
        return 1

    def recv(self, timeout=None):
        """The next complete message as ``bytes`` (a copy: the slow path).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; default the connection's timeout (:func:`connect`'s).

        Returns
        -------
        bytes
            The message (text messages as their UTF-8 bytes; :attr:`last_kind` says
            which kind it was: KIND_TEXT or KIND_BINARY).

        Raises
        ------
        TimeoutError
            Nothing arrived in time.
        ConnectionClosed, ProtocolError
            As :meth:`pump`.
        """
        import time
        cdef _OneMessage one = _OneMessage()
        if timeout is None:
            timeout = self.sock.gettimeout()
            if timeout is None:
                timeout = 1e9
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.pump(one, max(left, 0.0)):
                self.last_kind = one.kind
                return one.message
            if left <= 0:
                raise TimeoutError(f"{self.url}: no message within {timeout} s")

    def _control(self):
        cdef FrameParser p = self.parser
        payload = p.ctl_data[:p.ctl_len]
        if p.ctl_opcode == OP_PING:
            self.pings_received += 1
            if not self.close_sent:
                self._send(payload, OP_PONG)
                self.pings_answered += 1
            return 0
        # A close frame: complete the handshake, then report it.
        try:
            code, reason = _close_payload(payload, p.ctl_offset, self.url)
        except ProtocolError as exc:
            return self._protocol_error(exc)
        if not self.close_sent:
            try:
                self._send(payload[:2], OP_CLOSE)   # echo the code, as RFC 6455 5.5.1
            except OSError:
                pass
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        self._shutdown()
        return self._raise_or_defer(ConnectionClosed(code, reason, self.url))

    def _raise_or_defer(self, exc):
        # Messages handed on in this call are reported by its return value; the error
        # then comes with the next call.
        if self.parser.delivered > 0:
            self.pending = exc
            return 1
        raise exc

    def _protocol_error(self, exc):
        if not self.close_sent:
            try:
                self._send(struct.pack("!H", exc.code) + str(exc.reason)[:100].encode(),
                           OP_CLOSE)
            except OSError:
                pass
        self.close_code = exc.code
        self.close_reason = exc.reason
        self._shutdown()
        return self._raise_or_defer(exc)

    def _dropped(self):
        if self.close_code is None:
            self.close_code = 1006
            self.close_reason = "connection dropped without a close frame"
        self._shutdown()

    def _shutdown(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.client.shutdown()
        except OSError:
            pass
        try:
            self.sock.close()   # idempotent; whatever websocket-client did
        except OSError:
            pass

    def _check_open(self):
        if self.pending is not None:
            exc, self.pending = self.pending, None
            raise exc
        if self.closed:
            raise ConnectionClosed(self.close_code if self.close_code is not None else 1006,
                                   self.close_reason, self.url)

    # ---------------------------------------------------------------- sending

    def _send(self, data, int opcode):
        with self.send_lock:
            if opcode == OP_CLOSE:
                self.close_sent = True
            self.client.send(data, opcode)

    def send_text(self, data):
        """Send a text message (``str``, or ``bytes`` that are UTF-8)."""
        self._check_open()
        if isinstance(data, str):
            data = data.encode("utf-8")
        self._send(bytes(data), OP_TEXT)

    def send_binary(self, data):
        """Send a binary message."""
        self._check_open()
        self._send(bytes(data), OP_BINARY)

    def ping(self, payload=b""):
        """Send a ping (payload at most 125 bytes); its pong is counted in ``pongs_received``."""
        self._check_open()
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if len(payload) > 125:
            raise ValueError(f"a ping payload is at most 125 bytes, got {len(payload)}")
        self._send(bytes(payload), OP_PING)

    def close(self, int code=1000, reason="", double timeout=2.0, Consumer consumer=None):
        """Close: send a close frame, wait for the server's, close the socket.

        Parameters
        ----------
        code : int
            Status code sent (default 1000); kept in :attr:`close_code`.
        reason : str
            Close reason (UTF-8, at most 123 bytes).
        timeout : float
            Seconds to wait for the server's close frame; then the socket is closed anyway.
        consumer : Consumer, optional
            Gets the messages that arrive before the server's close frame (default: a
            base ``Consumer``, which ignores them; ``messages`` counts them).
        """
        import time
        if self.closed:
            return
        data = reason.encode("utf-8") if isinstance(reason, str) else bytes(reason)
        if len(data) > 123:
            raise ValueError(f"a close reason is at most 123 bytes, got {len(data)}")
        try:
            if not self.close_sent:
                self._send(struct.pack("!H", code) + data, OP_CLOSE)
        except OSError:
            self._dropped()
            return
        self.close_code = code
        self.close_reason = reason if isinstance(reason, str) else data.decode()
        sink = consumer if consumer is not None else Consumer()
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            if self.recv_lock.acquire(False):
                try:
                    self._pump(sink, min(0.05, max(deadline - time.monotonic(), 0.0)),
                               False)
                except (ConnectionClosed, ProtocolError, OSError):
                    pass
                finally:
                    self.recv_lock.release()
            else:
                # Another thread is receiving: it gets the server's close frame (and
                # raises ConnectionClosed there); wait for it.
                time.sleep(0.005)
        if self.closed:
            return
        # No close frame in time. Wake a receiving thread (it sees the end of the
        # stream), and close the socket once no thread is inside a receive call.
        try:
            self.sock.shutdown(2)
        except OSError:
            pass
        if self.recv_lock.acquire(True, 1.0):
            try:
                self._shutdown()
            finally:
                self.recv_lock.release()

    def fileno(self):
        """The socket's file descriptor."""
        return self.fd

    @property
    def frames(self):
        return self.parser.frames

    @property
    def messages(self):
        return self.parser.messages

    @property
    def pongs_received(self):
        return self.parser.pongs

    @property
    def last_stamp(self):
        """``(realtime_ns, monotonic_ns, kernel_ns)`` of the last receive call."""
        return (self.stamp.realtime_ns, self.stamp.monotonic_ns, self.stamp.kernel_ns)

    @property
    def pending(self):
        """True when bytes already received wait here (left by a consumer that stopped,
        or decrypted and held by TLS): ``select``/``poll`` on :meth:`fileno` does not see
        them, so a caller multiplexing sockets calls :meth:`pump` first while it is true.
        """
        if self.parser.end > self.parser.start:
            return True
        if self.tls == 1:
            return self.sock.pending() > 0
        if self.tls == 2:
            return self.channel.obj.pending() > 0 or self.channel.incoming.pending > 0
        return False

    @property
    def is_open(self):
        """False once closed (by either side, or by an error)."""
        return not self.closed

    def counters(self):
        """Frames, messages, bytes, receive calls, pings received and answered, pongs."""
        return {"frames": self.parser.frames, "messages": self.parser.messages,
                "bytes": self.bytes_received, "recv_calls": self.recv_calls,
                "pings_received": self.pings_received,
                "pings_answered": self.pings_answered,
                "pongs_received": self.parser.pongs}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        state = "open" if not self.closed else f"closed {self.close_code}"
        return f"<hftcore.net.ws.WebSocket {self.url} {state}>"


def _proxy_options(proxy):
    if proxy is None:
        return {}
    from urllib.parse import urlsplit
    u = urlsplit(proxy if "://" in proxy else "http://" + proxy)
    if u.scheme not in ("http", "socks4", "socks4a", "socks5", "socks5h"):
        raise ValueError(f"unsupported proxy scheme {u.scheme!r} in {proxy!r}")
    opts = {"http_proxy_host": u.hostname, "http_proxy_port": u.port or 80,
            "proxy_type": u.scheme}
    if u.username:
        opts["http_proxy_auth"] = (u.username, u.password or "")
    return opts


def connect(url, headers=None, double timeout=10.0, sslopt=None, proxy=None,
            subprotocols=None, Py_ssize_t max_message=1 << 24,
            Py_ssize_t buffer_size=1 << 18, bint validate_utf8=True,
            bint kernel_stamps=True, bint tls_memory_bio=True):
    """Open a WebSocket connection: websocket-client's handshake, hftcore's reader.

    Parameters
    ----------
    url : str
        ``ws://`` or ``wss://`` URL.
    headers : dict or list of str, optional
        Extra HTTP headers of the opening handshake.
    timeout : float
        Seconds for the TCP connect and the handshake; also the socket's timeout for
        sends and :meth:`WebSocket.recv`'s default.
    sslopt : dict, optional
        websocket-client's TLS options (``{"cert_reqs": ssl.CERT_REQUIRED, "ca_certs":
        path, ...}``). Certificates are verified unless this says otherwise.
    proxy : str, optional
        ``http://[user:pass@]host:port`` (or ``socks5://...`` with python-socks).
    subprotocols : list of str, optional
        ``Sec-WebSocket-Protocol`` values offered.
    max_message : int
        Largest message accepted (default 16 MiB; the reassembly buffer's size, touched
        only as far as messages use it). A larger one: ``ProtocolError``, close 1009.
    buffer_size : int
        Receive buffer (default 256 KiB): bytes one receive call may take.
    validate_utf8 : bool
        Check every text message is valid UTF-8 (default True). ``False`` skips the
        check deliberately: text messages reach the consumer unchecked.
    kernel_stamps : bool
        Ask for the kernel's receive time (see the module docstring).
    tls_memory_bio : bool
        ``wss://`` without a proxy: run TLS through ``ssl.MemoryBIO`` over a plain socket
        (default), so receives are ``recvmsg`` calls with kernel timestamps, made without
        the GIL. ``False`` (and any ``wss://`` through a proxy) uses websocket-client's
        ``ssl.SSLSocket``: ``kernel_ns = 0`` and the receive call holds the GIL.

    Returns
    -------
    WebSocket
    """
    import websocket

    if not (url.startswith("ws://") or url.startswith("wss://")):
        raise ValueError(f"not a WebSocket URL (ws:// or wss://): {url!r}")
    options = _proxy_options(proxy)
    if headers is not None:
        options["header"] = headers
    if sslopt is not None:
        options["sslopt"] = sslopt
    if subprotocols is not None:
        options["subprotocols"] = list(subprotocols)
    if kernel_stamps and url.startswith("ws://") and HFT_SO_TIMESTAMPNS > 0:
        # Stamping on before the handshake, so the frames that arrive with the
        # response are stamped too (the kernel stamps a segment when it arrives).
        options["sockopt"] = ((SOL_SOCKET, HFT_SO_TIMESTAMPNS, 1),)
    if url.startswith("wss://") and tls_memory_bio and proxy is None:
        from urllib.parse import urlsplit
        import socket as _socket
        u = urlsplit(url)
        host = u.hostname
        context = _tls_context(sslopt)
        raw = _socket.create_connection((host, u.port or 443), timeout=timeout)
        try:
            raw.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            channel = _TlsChannel(raw, context,
                                  (sslopt or {}).get("server_hostname") or host, timeout,
                                  kernel_stamps)
            options.pop("sslopt", None)
            client = websocket.WebSocket(enable_multithread=True,
                                         skip_utf8_validation=True)
            client.connect(url, socket=channel, timeout=timeout, **options)
        except BaseException:
            raw.close()
            raise
    else:
        client = websocket.create_connection(
            url, timeout=timeout, enable_multithread=True, skip_utf8_validation=True,
            **options)
    try:
        return WebSocket(client, url, buffer_size, max_message, validate_utf8,
                         kernel_stamps)
    except BaseException:
        client.shutdown()
        raise


def _parse_throughput(data, int repeat=1, Py_ssize_t buffer_size=1 << 18,
                      bint validate_utf8=True):
    """Parse ``data`` (whole frames) ``repeat`` times with the base Consumer, in memory,
    receive-buffer-sized pieces at a time: the framing cost without the socket (for
    benchmarks). Returns ``(messages, seconds)``."""
    import time
    cdef const uint8_t[::1] src = data
    cdef FrameParser p = FrameParser(buffer_size, 1 << 20, validate_utf8)
    cdef Consumer consumer = Consumer()
    cdef RecvStamp stamp
    cdef Py_ssize_t pos, n = src.shape[0], take
    cdef int _r, ev
    stamp_now(&stamp)
    t0 = time.perf_counter()
    with nogil:
        for _r in range(repeat):
            pos = 0
            while pos < n:
                take = p.prepare()
                if take > n - pos:
                    take = n - pos
                memcpy(p.buf + p.end, &src[pos], take)
                p.end += take
                pos += take
                ev = p.parse(consumer, &stamp)
                if ev != EV_MORE:
                    break
    elapsed = time.perf_counter() - t0
    if p.err:
        raise p.error()
    return p.messages, elapsed
