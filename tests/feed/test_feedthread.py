"""FeedThread: a real net/ reader (TcpReader over loopback TCP) pumped into a consumer on
the pinned thread."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from hftcore.errors import ConnectionClosed
from hftcore.feed import FeedThread

tcp = pytest.importorskip("hftcore.net.tcp")
from hftcore.net.consumer import PyConsumer  # noqa: E402


@pytest.fixture
def tcp_pair():
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=5)
    conn, _ = server.accept()
    server.close()
    try:
        yield conn, client
    finally:
        conn.close()
        client.close()


def _wait(pred, timeout=10.0):
    ev = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if pred():
            return True
        ev.wait(0.01)
    return pred()


@pytest.mark.parametrize("spin", [False, True])
def test_bytes_arrive_on_the_pinned_core(tcp_pair, spin):
    sock, peer = tcp_pair
    chunks, cores = [], []

    def on_message(data, kind, stamp):
        chunks.append(data)
        cores.append(os.sched_getaffinity(0))

    cpu = max(os.sched_getaffinity(0))
    t = FeedThread(tcp.TcpReader(sock), PyConsumer(on_message), cpu=cpu, spin=spin)
    try:
        t.start()
        expected = b"".join(b"message %05d;" % i for i in range(2000))
        peer.sendall(expected)
        assert _wait(lambda: sum(map(len, chunks)) >= len(expected))
        assert b"".join(chunks) == expected
        assert all(c == {cpu} for c in cores)
        stats = t.stats()
        assert stats["messages"] == len(chunks) and stats["spin"] is spin
        assert stats["cpu_now"] == cpu
    finally:
        t.stop(timeout=5)
    assert t.stats()["state"] == "stopped"


def test_stop_is_prompt_with_a_silent_peer(tcp_pair):
    sock, _peer = tcp_pair
    t = FeedThread(tcp.TcpReader(sock), PyConsumer(lambda *a: None), poll_interval=0.05)
    t.start()
    assert _wait(lambda: t.stats()["steps"] >= 3)  # timeouts: the peer says nothing
    t.stop(timeout=2)  # raises TimeoutError if the pump did not come back
    assert not t.is_alive and t.stats()["messages"] == 0


def test_consumer_error_reaches_the_caller(tcp_pair):
    sock, peer = tcp_pair
    seen = []

    def on_message(data, kind, stamp):
        raise ValueError(f"bad message {data[:3]!r}")

    t = FeedThread(tcp.TcpReader(sock), PyConsumer(on_message), on_error=seen.append)
    t.start()
    peer.sendall(b"xyz")
    assert _wait(lambda: not t.is_alive)
    with pytest.raises(ValueError, match="bad message b'xyz'"):
        t.join(timeout=5)
    assert len(seen) == 1 and isinstance(seen[0], ValueError)


def test_peer_close_raises_or_ends_cleanly(tcp_pair):
    sock, peer = tcp_pair
    t = FeedThread(tcp.TcpReader(sock), PyConsumer(lambda *a: None))
    t.start()
    peer.close()
    assert _wait(lambda: not t.is_alive)
    with pytest.raises(ConnectionClosed, match="code 1006"):
        t.stop(timeout=5)


def test_stop_on_close(tcp_pair):
    sock, peer = tcp_pair
    got = []
    t = FeedThread(tcp.TcpReader(sock), PyConsumer(lambda d, k, s: got.append(d)),
                   stop_on_close=True)  # fmt: skip
    t.start()
    peer.sendall(b"last words")
    peer.close()
    assert t.join(timeout=10) is True  # no exception
    assert b"".join(got) == b"last words"
    assert t.stats()["state"] == "stopped" and "1006" in t.stats()["closed"]


def test_reader_must_pump():
    with pytest.raises(TypeError, match="pump"):
        FeedThread(object(), PyConsumer(print))
