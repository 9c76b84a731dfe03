"""sockio, TcpReader and UdpReader over real loopback sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from hftcore.errors import ConnectionClosed, ProtocolError
from hftcore.net import sockio
from hftcore.net.consumer import KIND_DATAGRAM, KIND_STREAM, Consumer, PyConsumer
from hftcore.net.tcp import TcpReader
from hftcore.net.udp import UdpReader

LINUX = sockio.SO_TIMESTAMPNS > 0


@pytest.fixture
def tcp_pair():
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    server, _ = listener.accept()
    listener.close()
    try:
        yield client, server
    finally:
        client.close()
        server.close()


@pytest.fixture
def udp_pair():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    try:
        yield tx, rx
    finally:
        tx.close()
        rx.close()


class Collect:
    def __init__(self, stop_after=None):
        self.items = []
        self.stop_after = stop_after
        self.consumer = PyConsumer(self)

    def __call__(self, data, kind, stamp):
        self.items.append((data, kind, stamp))
        return self.stop_after is not None and len(self.items) >= self.stop_after


def test_recv_into_stamped_kernel_time_close_to_realtime(tcp_pair):
    client, server = tcp_pair
    accepted = sockio.enable_kernel_timestamps(client)
    assert accepted == LINUX
    buf = bytearray(64)
    assert sockio.recv_into_stamped(client, buf, kernel_stamps=True, timeout=0) is None
    before = time.time_ns()
    server.sendall(b"hello")
    n, (rt, mono, kern) = sockio.recv_into_stamped(client, buf, kernel_stamps=True, timeout=2)
    assert n == 5 and bytes(buf[:5]) == b"hello"
    assert before <= rt <= time.time_ns()
    assert abs(mono - time.monotonic_ns()) < 1e9
    if LINUX:
        # The kernel stamped the segment between the send and the receive's return.
        assert before - 1_000_000 <= kern <= rt
    server.shutdown(socket.SHUT_WR)
    assert sockio.recv_into_stamped(client, buf, timeout=2)[0] == 0


def test_wait_and_timeout_are_prompt(tcp_pair):
    client, server = tcp_pair
    t0 = time.monotonic()
    assert sockio.wait(client, 0.05) is False
    assert sockio.recv_into_stamped(client, bytearray(8), timeout=0.05) is None
    assert sockio.recv_into_stamped(client, bytearray(8), timeout=0.05, spin=True) is None
    assert time.monotonic() - t0 < 2.0
    server.sendall(b"x")
    assert sockio.wait(client, 2.0) is True


def test_nonblocking_helpers(tcp_pair):
    client, _ = tcp_pair
    client.setblocking(True)
    assert sockio.is_nonblocking(client) is False
    sockio.set_nonblocking(client)
    assert sockio.is_nonblocking(client) is True
    sockio.set_nonblocking(client, False)
    assert sockio.is_nonblocking(client) is False


def test_enable_kernel_timestamps_on_a_non_socket(tmp_path):
    with open(tmp_path / "f", "wb") as f:
        assert sockio.enable_kernel_timestamps(f.fileno()) is False


def test_tcp_reader_stream_chunks(tcp_pair):
    client, server = tcp_pair
    reader = TcpReader(client, buffer_size=7)
    assert reader.kernel_stamps == LINUX
    got = Collect()
    payload = bytes(range(256)) * 4
    server.sendall(payload)
    received = b""
    deadline = time.monotonic() + 5
    while len(received) < len(payload) and time.monotonic() < deadline:
        if reader.pump(got.consumer, timeout=0.5):
            received = b"".join(d for d, _, _ in got.items)
    assert received == payload
    assert all(kind == KIND_STREAM and len(d) <= 7 for d, kind, _ in got.items)
    assert reader.bytes_received == len(payload)
    assert reader.messages == len(got.items) == reader.recv_calls
    if LINUX:
        assert all(s[2] > 0 and abs(s[0] - s[2]) < 1e9 for _, _, s in got.items)
    server.close()
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(10):
            reader.pump(got.consumer, timeout=1)
    assert info.value.code == 1006
    assert reader.closed
    with pytest.raises(ConnectionClosed):
        reader.pump(got.consumer, timeout=0)


@pytest.mark.parametrize("spin", [False, True])
def test_tcp_reader_timeout_on_silent_peer(tcp_pair, spin):
    client, _ = tcp_pair
    reader = TcpReader(client)
    t0 = time.monotonic()
    assert reader.pump(Consumer(), timeout=0.05, spin=spin) == 0
    assert time.monotonic() - t0 < 1.0
    assert reader.recv_calls == 0


def test_tcp_reader_consumer_error_reaches_caller(tcp_pair):
    client, server = tcp_pair
    reader = TcpReader(client)

    def boom(data, kind, stamp):
        raise RuntimeError("consumer failed")

    server.sendall(b"abc")
    with pytest.raises(RuntimeError, match="consumer failed"):
        reader.pump(PyConsumer(boom), timeout=2)


def test_tcp_reader_wakes_on_data_from_another_thread(tcp_pair):
    client, server = tcp_pair
    reader = TcpReader(client)
    got = Collect()
    timer = threading.Timer(0.1, server.sendall, args=(b"late",))
    timer.start()
    try:
        assert reader.pump(got.consumer, timeout=5) == 1
    finally:
        timer.cancel()
        timer.join(5)
    assert got.items[0][0] == b"late"


def test_udp_reader_one_message_per_datagram(udp_pair):
    tx, rx = udp_pair
    reader = UdpReader(rx, max_datagram=2048, batch=8)
    assert reader.kernel_stamps == LINUX
    datagrams = [bytes([i]) * (i * 37 % 1500) for i in range(20)]  # includes an empty one
    before = time.time_ns()
    for d in datagrams:
        tx.send(d)
    got = Collect()
    deadline = time.monotonic() + 5
    while len(got.items) < len(datagrams) and time.monotonic() < deadline:
        reader.pump(got.consumer, timeout=0.5)
    assert [d for d, _, _ in got.items] == datagrams
    assert all(kind == KIND_DATAGRAM for _, kind, _ in got.items)
    assert reader.messages == 20 and reader.bytes_received == sum(map(len, datagrams))
    if sockio.HAVE_RECVMMSG:
        assert reader.recv_calls < 20  # several datagrams per call
    if LINUX:
        kernel = [s[2] for _, _, s in got.items]
        assert all(
            before - 1_000_000 <= k <= s[0] for k, (_, _, s) in zip(kernel, got.items, strict=True)
        )
        assert kernel == sorted(kernel)


def test_udp_reader_stop_keeps_the_rest(udp_pair):
    tx, rx = udp_pair
    reader = UdpReader(rx, max_datagram=64, batch=16)
    for i in range(5):
        tx.send(b"d%d" % i)
    time.sleep(0.05)
    got = Collect(stop_after=1)
    assert reader.pump(got.consumer, timeout=1) == 1
    got.stop_after = None
    n = 0
    deadline = time.monotonic() + 5
    while n < 4 and time.monotonic() < deadline:
        n += reader.pump(got.consumer, timeout=0.5)
    assert [d for d, _, _ in got.items] == [b"d0", b"d1", b"d2", b"d3", b"d4"]


def test_udp_reader_truncated_datagram_is_an_error_not_a_drop(udp_pair):
    tx, rx = udp_pair
    reader = UdpReader(rx, max_datagram=16, batch=4)
    tx.send(b"small")
    tx.send(b"x" * 100)
    tx.send(b"after")
    time.sleep(0.05)
    got = Collect()
    with pytest.raises(ProtocolError, match="max_datagram=16"):
        for _ in range(5):
            reader.pump(got.consumer, timeout=1)
    assert [d for d, _, _ in got.items] == [b"small"]
    assert reader.truncated_datagrams == 1
    assert reader.pump(got.consumer, timeout=1) == 1
    assert got.items[-1][0] == b"after"


@pytest.mark.parametrize("spin", [False, True])
def test_udp_reader_timeout(udp_pair, spin):
    _, rx = udp_pair
    reader = UdpReader(rx)
    t0 = time.monotonic()
    assert reader.pump(Consumer(), timeout=0.05, spin=spin) == 0
    assert time.monotonic() - t0 < 1.0


def test_reader_arguments_checked(udp_pair, tcp_pair):
    with pytest.raises(ValueError, match="buffer_size"):
        TcpReader(tcp_pair[0], buffer_size=0)
    with pytest.raises(ValueError, match="batch"):
        UdpReader(udp_pair[1], batch=0)
    with pytest.raises(ValueError, match="max_datagram"):
        UdpReader(udp_pair[1], max_datagram=0)
