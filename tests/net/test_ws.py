"""The WebSocket reader over real loopback sockets against the raw test server."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

import pytest

from hftcore.errors import ConnectionClosed, ProtocolError
from hftcore.net import sockio, ws
from hftcore.net.consumer import KIND_BINARY, KIND_TEXT, Consumer, PyConsumer

from .wsserver import RawServer, close_frame, frame, read_close, read_frame

LINUX = sockio.SO_TIMESTAMPNS > 0
TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


class Collect:
    def __init__(self, stop_after=None):
        self.items = []
        self.stop_after = stop_after
        self.consumer = PyConsumer(self)

    def __call__(self, data, kind, stamp):
        self.items.append((kind, data, stamp))
        return self.stop_after is not None and len(self.items) >= self.stop_after

    @property
    def messages(self):
        return [(k, d) for k, d, _ in self.items]


def pump_until(conn, got, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(got.items) < count and time.monotonic() < deadline:
        conn.pump(got.consumer, timeout=0.2)
    return got.messages


def send_and_wait_close(frames, code_expected=None):
    """A script: send frames, then expect the client's close frame (returned)."""
    result = {}

    def script(conn):
        conn.sendall(frames)
        result["close"] = read_close(conn)
        if result["close"][0] not in (1002, 1007, 1009):
            conn.sendall(close_frame(result["close"][0]))

    return script, result


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000, 300_000]


@pytest.mark.parametrize("buffer_size", [256, 4096, 1 << 18])
def test_every_size_class(buffer_size):
    rnd = random.Random(buffer_size)
    msgs = []
    for n in SIZES:
        msgs.append((BINARY, rnd.randbytes(n)))
        msgs.append((TEXT, ("é" * (n // 2) + "a" * (n % 2)).encode()))
    stream = b"".join(frame(op, p) for op, p in msgs)
    script, result = send_and_wait_close(stream)
    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5, buffer_size=buffer_size)
        got = Collect()
        assert pump_until(c, got, len(msgs)) == msgs
        assert c.messages == len(msgs) and c.frames == len(msgs)
        assert c.bytes_received == len(stream)
        c.close(1000)
    assert result["close"] == (1000, b"")
    assert c.close_code == 1000 and not c.is_open


def test_many_frames_per_receive_call_and_kernel_stamps():
    msgs = [(TEXT, b"m%05d" % i + b"x" * 190) for i in range(2000)]
    stream = b"".join(frame(op, p) for op, p in msgs)
    script, result = send_and_wait_close(stream)
    before = time.time_ns()
    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        assert c.kernel_stamps == LINUX
        got = Collect()
        assert pump_until(c, got, len(msgs)) == msgs
        assert c.recv_calls < len(msgs) // 10  # many frames per receive call
        for _, _, (rt, _mono, kern) in got.items:
            assert before <= rt <= time.time_ns()
            if LINUX:
                assert before - 10**6 <= kern <= rt
        c.close()


def test_handshake_response_and_first_frames_in_one_send():
    # websocket-client reads the response line by line: the frames behind it must reach us.
    first = frame(TEXT, b"hello") + frame(BINARY, b"\x00\x01")
    script, result = send_and_wait_close(b"")
    with RawServer(script, first=first) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        assert pump_until(c, got, 2) == [(TEXT, b"hello"), (BINARY, b"\x00\x01")]
        c.close()


def test_split_at_every_byte_over_tcp():
    msgs_frames = (
        frame(TEXT, b"ab", fin=False)
        + frame(PING, b"mid")
        + frame(CONT, "ü€😀".encode(), fin=False)
        + frame(CONT, b"z")
        + frame(BINARY, bytes(range(130)))
        + frame(TEXT, b"")
    )
    pongs = []

    def script(conn):
        for i in range(len(msgs_frames)):
            conn.sendall(msgs_frames[i : i + 1])
            time.sleep(0.0005)
        _, opcode, payload = read_frame(conn)
        pongs.append((opcode, payload))
        read_close(conn)
        conn.sendall(close_frame(1000))

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        assert pump_until(c, got, 3) == [
            (TEXT, "abü€😀z".encode()),
            (BINARY, bytes(range(130))),
            (TEXT, b""),
        ]
        assert c.recv_calls > 20  # it really arrived in pieces
        assert c.pings_answered == 1
        c.close()
    assert pongs == [(PONG, b"mid")]


def test_parser_every_split_point():
    # The same parser in memory: every two-piece split and every chunk size.
    stream = (
        frame(TEXT, b"hi" * 70, fin=False)
        + frame(PING, b"p")
        + frame(CONT, b"!" * 200)
        + frame(BINARY, b"\xff" * 300)
        + frame(PONG, b"")
        + frame(TEXT, "ß".encode() * 40)
    )
    expected = [
        (PING, b"p"),
        (TEXT, b"hi" * 70 + b"!" * 200),
        (BINARY, b"\xff" * 300),
        (TEXT, "ß".encode() * 40),
    ]
    for size in (1, 2, 3, 7, 64, 255, 1000):
        assert ws._parse_stream(stream, chunks=[size], buffer_size=256) == expected
    for k in range(1, len(stream)):
        got = ws._parse_stream(stream, chunks=[k, len(stream)], buffer_size=1024)
        assert got == expected, k


def test_ping_answered_with_its_payload():
    payloads = [b"", b"x", bytes(range(125))]
    seen = []

    def script(conn):
        for p in payloads:
            conn.sendall(frame(PING, p))
            seen.append(read_frame(conn))
        conn.sendall(frame(TEXT, b"done"))
        read_close(conn)
        conn.sendall(close_frame(1000))

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        assert pump_until(c, got, 1) == [(TEXT, b"done")]
        assert c.counters()["pings_answered"] == 3
        c.close()
    assert seen == [(True, PONG, p) for p in payloads]


def test_server_close_completes_the_handshake():
    result = {}

    def script(conn):
        conn.sendall(frame(TEXT, b"last") + close_frame(1001, b"going away"))
        result["echo"] = read_close(conn)
        result["eof"] = conn.recv(1)

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(50):
                c.pump(got.consumer, timeout=0.2)
        assert info.value.code == 1001 and info.value.reason == "going away"
        assert got.messages == [(TEXT, b"last")]
        assert c.close_code == 1001 and c.close_reason == "going away"
        with pytest.raises(ConnectionClosed):
            c.pump(got.consumer, timeout=0)
        c.close()  # already closed: nothing to do
    assert result["echo"] == (1001, b"")
    assert result["eof"] == b""


def test_server_close_without_code():
    result = {}

    def script(conn):
        conn.sendall(close_frame())
        result["echo"] = read_close(conn)

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(50):
                c.pump(Consumer(), timeout=0.2)
        assert info.value.code == 1005
    assert result["echo"] == (None, b"")


def test_client_close_keeps_the_code():
    result = {}

    def script(conn):
        result["close"] = read_close(conn)
        conn.sendall(frame(TEXT, b"late") + close_frame(4000))

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        c.close(4000, "bye", consumer=got.consumer)
        assert c.close_code == 4000 and c.close_reason == "bye"
        assert c.sock.fileno() == -1
        assert got.messages == [(TEXT, b"late")]
        with pytest.raises(ConnectionClosed):
            c.send_text("x")
    assert result["close"] == (4000, b"bye")


def test_context_manager_closes():
    result = {}

    def script(conn):
        result["close"] = read_close(conn)
        conn.sendall(close_frame(1000))

    with RawServer(script) as srv:
        with ws.connect(srv.url, timeout=5) as c:
            assert c.is_open
        assert not c.is_open
    assert result["close"] == (1000, b"")


def test_drop_without_close_frame_is_1006():
    def script(conn):
        conn.sendall(frame(TEXT, b"a"))
        conn.shutdown(socket.SHUT_RDWR)

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(50):
                c.pump(got.consumer, timeout=0.2)
        assert info.value.code == 1006 and c.close_code == 1006
        assert got.messages == [(TEXT, b"a")]


BAD = [
    ("masked", frame(TEXT, b"abc", mask=b"\x01\x02\x03\x04"), 1002, "masked"),
    ("rsv1", frame(TEXT, b"abc", rsv=4), 1002, "reserved bits 0x40"),
    ("rsv3", frame(BINARY, b"abc", rsv=1), 1002, "reserved bits 0x10"),
    ("opcode3", frame(3, b""), 1002, "reserved opcode 0x3"),
    ("opcode11", frame(11, b""), 1002, "reserved opcode 0xb"),
    ("len64top", bytes([0x82, 127]) + struct.pack("!Q", 1 << 63), 1002, "most significant"),
    ("control_long", bytes([0x89, 126]) + struct.pack("!H", 126) + b"x" * 126, 1002,
     "126-byte payload"),
    ("control_fragmented", frame(PING, b"x", fin=False), 1002, "fragmented control"),
    ("continuation", frame(CONT, b"x"), 1002, "continuation frame without"),
    ("interleaved", frame(TEXT, b"a", fin=False) + frame(BINARY, b"b"), 1002,
     "before the fragmented message ended"),
    ("too_big", frame(BINARY, b"x" * 1001), 1009, "over max_message=1000"),
    ("too_big_fragments", frame(BINARY, b"x" * 600, fin=False) + frame(CONT, b"y" * 600),
     1009, "over max_message=1000"),
    ("utf8", frame(TEXT, b"ok\xc3\x28"), 1007, "invalid UTF-8 at byte 2"),
    ("utf8_fragments", frame(TEXT, b"\xe2\x82", fin=False) + frame(CONT, b"\x28"), 1007,
     "invalid UTF-8 at byte 0"),
    ("close_1byte", frame(CLOSE, b"\x03"), 1002, "1-byte payload"),
    ("close_code", close_frame(1005), 1002, "invalid close code 1005"),
    ("close_reason_utf8", close_frame(1000, b"\xff"), 1007, "close reason"),
]  # fmt: skip


# The offending frame is not the first of the bad bytes: its offset within them.
BAD_FRAME_AT = {"interleaved": 3}


@pytest.mark.parametrize(("name", "bad", "code", "match"), BAD, ids=[b[0] for b in BAD])
def test_protocol_errors_close_with_the_right_code(name, bad, code, match):
    prefix = frame(TEXT, b"fine") + frame(BINARY, b"")
    script, result = send_and_wait_close(prefix + bad)
    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5, max_message=1000)
        got = Collect()
        with pytest.raises(ProtocolError, match=match) as info:
            for _ in range(50):
                c.pump(got.consumer, timeout=0.2)
        assert got.messages == [(TEXT, b"fine"), (BINARY, b"")]
        err = info.value
        assert err.code == code and c.close_code == code
        # Where the bad frame (or the bad message's first frame) starts in the stream.
        where = len(prefix) + BAD_FRAME_AT.get(name, 0)
        assert err.offset == where
        assert srv.url in str(err) and f"byte offset {where}" in str(err)
        with pytest.raises(ConnectionClosed):
            c.pump(got.consumer, timeout=0)
    assert result["close"][0] == code


@pytest.mark.parametrize(("name", "bad", "code", "match"), BAD, ids=[b[0] for b in BAD])
def test_protocol_errors_in_memory_parser(name, bad, code, match):
    prefix = frame(TEXT, b"fine")
    with pytest.raises(ProtocolError, match=match) as info:
        ws._parse_stream(prefix + bad, max_message=1000, chunks=[3])
    assert info.value.code == code
    assert info.value.offset == len(prefix) + BAD_FRAME_AT.get(name, 0)


UTF8_CASES = [
    b"",
    b"plain ascii, longer than eight bytes",
    "é€😀ß漢字".encode(),
    "\U0010ffff".encode(),
    b"\x80",  # lone continuation
    b"\xc0\x80",  # overlong NUL
    b"\xc1\xbf",  # overlong
    b"\xe0\x80\xaf",  # overlong 3-byte
    b"\xf0\x80\x80\xaf",  # overlong 4-byte
    b"\xed\xa0\x80",  # surrogate U+D800
    b"\xed\xbf\xbf",  # surrogate U+DFFF
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xff",
    b"abc\xe2\x82",  # truncated at the end
    b"abcdefgh\xe2\x82\xacabcdefgh",
    b"abcdefghijklmno\xc3",
]


def python_first_bad(data):
    try:
        data.decode("utf-8")
        return -1
    except UnicodeDecodeError as exc:
        return exc.start


@pytest.mark.parametrize("data", UTF8_CASES)
def test_utf8_validator_agrees_with_python(data):
    assert ws.utf8_check(data) == python_first_bad(data)


def test_utf8_validator_random_against_python():
    rnd = random.Random(5)
    alphabet = [b"a", b"\x7f", "é".encode(), "€".encode(), "😀".encode(), b"\x80", b"\xc3",
                b"\xed\xa0\x80", b"\xf4\x90", b"\xe0\x9f\x80", b"z" * 9]  # fmt: skip
    for _ in range(3000):
        data = b"".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 12)))
        assert ws.utf8_check(data) == python_first_bad(data), data


def test_utf8_check_can_be_switched_off_explicitly():
    bad = frame(TEXT, b"\xff\xfe")
    assert ws._parse_stream(bad, validate_utf8=False) == [(TEXT, b"\xff\xfe")]


@pytest.mark.parametrize("spin", [False, True])
def test_pump_times_out_promptly_on_a_silent_peer(spin):
    script, result = send_and_wait_close(b"")
    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        t0 = time.monotonic()
        assert c.pump(Consumer(), timeout=0.05, spin=spin) == 0
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(TimeoutError):
            c.recv(timeout=0.05)
        c.close()


def test_recv_slow_path_and_stop_keeps_the_rest():
    stream = frame(TEXT, b"one") + frame(PING, b"pp") + frame(BINARY, b"two") + frame(TEXT, b"3")
    seen = []

    def script(conn):
        conn.sendall(stream)
        seen.append(read_frame(conn))
        read_close(conn)
        conn.sendall(close_frame(1000))

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        time.sleep(0.05)  # let the whole stream arrive in one receive
        assert c.recv() == b"one" and c.last_kind == KIND_TEXT
        assert c.recv() == b"two" and c.last_kind == KIND_BINARY
        assert c.pending  # "3" is buffered here, not in the socket
        got = Collect(stop_after=1)
        assert c.pump(got.consumer, timeout=1) == 1
        assert got.messages == [(TEXT, b"3")]
        assert not c.pending
        assert c.recv_calls == 1
        c.close()
    assert seen == [(True, PONG, b"pp")]


def test_consumer_exception_reaches_the_caller():
    script, result = send_and_wait_close(frame(TEXT, b"x"))

    def boom(data, kind, stamp):
        raise KeyError("from the consumer")

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        with pytest.raises(KeyError, match="from the consumer"):
            for _ in range(50):
                c.pump(PyConsumer(boom), timeout=0.2)
        c.close()


def test_sending_while_another_thread_receives():
    n = 300
    received = []

    def script(conn):
        for _ in range(n):
            fin, opcode, payload = read_frame(conn)
            received.append((opcode, payload))
            conn.sendall(frame(opcode, payload))  # echo
        read_close(conn)
        conn.sendall(close_frame(1000))

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        stop = threading.Event()

        def receive():
            while not stop.is_set() and len(got.items) < n:
                c.pump(got.consumer, timeout=0.05)

        t = threading.Thread(target=receive)
        t.start()
        try:
            for i in range(n):
                if i % 2:
                    c.send_binary(b"b%d" % i)
                else:
                    c.send_text(f"t{i}")
            t.join(10)
        finally:
            stop.set()
            t.join(5)
        expected = [(BINARY, b"b%d" % i) if i % 2 else (TEXT, b"t%d" % i) for i in range(n)]
        assert received == expected
        assert got.messages == expected
        c.close()


def test_client_ping_and_pong_counted():
    seen = []

    def script(conn):
        seen.append(read_frame(conn))
        conn.sendall(frame(PONG, b"abc") + frame(TEXT, b"after"))
        read_close(conn)
        conn.sendall(close_frame(1000))

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        c.ping(b"abc")
        got = Collect()
        assert pump_until(c, got, 1) == [(TEXT, b"after")]
        assert c.pongs_received == 1
        with pytest.raises(ValueError):
            c.ping(b"x" * 126)
        c.close()
    assert seen == [(True, PING, b"abc")]


def test_connect_arguments_checked():
    with pytest.raises(ValueError, match="ws://"):
        ws.connect("http://127.0.0.1:1/")
    with pytest.raises(ValueError, match="proxy scheme"):
        ws.connect("ws://127.0.0.1:1/", proxy="ftp://x:1")
    with pytest.raises(ValueError, match="buffer_size"):
        ws.FrameParser(buffer_size=10)


@pytest.mark.parametrize("insert", [b"\xc3\xa9", b"\xff", b"\xed\xa0\x80", b"\xe2\x82"])
def test_utf8_validator_every_position_of_long_runs(insert):
    # The ASCII fast path takes 64/16-byte steps and an overlapping tail load: put a
    # multibyte (or bad) sequence at every position of runs of every length around them.
    for n in range(0, 140):
        base = b"a" * n
        assert ws.utf8_check(base) == -1
        for pos in range(0, n + 1, 1 if n < 70 else 7):
            data = base[:pos] + insert + base[pos:]
            assert ws.utf8_check(data) == python_first_bad(data), (n, pos)


def test_close_while_another_thread_pumps():
    result = {}

    def script(conn):
        conn.sendall(frame(TEXT, b"first"))
        result["close"] = read_close(conn)
        conn.sendall(close_frame(result["close"][0]))

    with RawServer(script) as srv:
        c = ws.connect(srv.url, timeout=5)
        got = Collect()
        outcome = []

        def receive():
            try:
                for _ in range(200):
                    c.pump(got.consumer, timeout=0.05)
            except BaseException as exc:  # reported to the test below
                outcome.append(exc)

        t = threading.Thread(target=receive)
        t.start()
        try:
            deadline = time.monotonic() + 5
            while not got.items and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(RuntimeError, match="two threads"):
                for _ in range(100):  # the other thread is (almost always) inside pump
                    c.pump(Consumer(), timeout=0.01)
            c.close(4002, "main thread")
        finally:
            t.join(10)
        assert not t.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], ConnectionClosed)
        assert c.close_code == 4002 and not c.is_open
        assert got.messages == [(TEXT, b"first")]
    assert result["close"] == (4002, b"main thread")
