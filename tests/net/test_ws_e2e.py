"""End to end against the `websockets` library's server (a real, independent RFC 6455
implementation), over ws:// and wss:// on loopback."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import time

import pytest

from hftcore.errors import ConnectionClosed
from hftcore.net import sockio, ws
from hftcore.net.consumer import KIND_BINARY, KIND_TEXT, PyConsumer

websockets_server = pytest.importorskip("websockets.sync.server")
LINUX = sockio.SO_TIMESTAMPNS > 0


class Server:
    """websockets' sync server in a thread; ``handler(connection)`` per client."""

    def __init__(self, handler, ssl_context=None):
        self.pings = []
        self.server = websockets_server.serve(
            handler, "127.0.0.1", 0, ssl=ssl_context, max_size=None, compression=None
        )
        self.port = self.server.socket.getsockname()[1]
        scheme = "wss" if ssl_context else "ws"
        self.url = f"{scheme}://localhost:{self.port}/feed"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return False


def collect(conn, count, timeout=10.0):
    out = []

    def cb(data, kind, stamp):
        out.append((kind, data))

    consumer = PyConsumer(cb)
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        conn.pump(consumer, timeout=0.2)
    return out


def echo_then_stream(connection):
    # Echo what the client sends until "go", then a fixed stream, then close 1001.
    for message in connection:
        if message == "go":
            break
        connection.send(message)
    connection.send("x" * 200_000)
    connection.send([b"frag-", b"mented"])  # one message in two frames
    connection.send("é" * 10)
    connection.close(1001, "bye now")


def test_against_websockets_server():
    with Server(echo_then_stream) as srv:
        conn = ws.connect(srv.url, timeout=5, headers={"X-Test": "1"})
        sizes = [0, 125, 126, 65535, 65536]
        for n in sizes:
            conn.send_binary(bytes(range(256)) * (n // 256) + bytes(n % 256))
            conn.send_text("t" * n)
        got = collect(conn, 2 * len(sizes))
        expected = []
        for n in sizes:
            expected.append((KIND_BINARY, bytes(range(256)) * (n // 256) + bytes(n % 256)))
            expected.append((KIND_TEXT, b"t" * n))
        assert got == expected
        conn.send_text("go")
        got = collect(conn, 3)
        assert got == [
            (KIND_TEXT, b"x" * 200_000),
            (KIND_BINARY, b"frag-mented"),
            (KIND_TEXT, "é".encode() * 10),
        ]
        with pytest.raises(ConnectionClosed) as info:
            for _ in range(50):
                conn.pump(PyConsumer(lambda *a: None), timeout=0.2)
        assert info.value.code == 1001 and conn.close_code == 1001
        assert conn.close_reason == "bye now"


def test_server_ping_is_answered():
    pongs = []

    def handler(connection):
        pong = connection.ping(b"are you there")
        pongs.append(pong.wait(5))
        connection.send("after ping")
        connection.recv(5)  # wait for the client's close

    with Server(handler) as srv:
        conn = ws.connect(srv.url, timeout=5)
        assert collect(conn, 1) == [(KIND_TEXT, b"after ping")]
        assert conn.pings_answered == 1
        conn.close(1000)
        assert conn.close_code == 1000
        assert conn.sock.fileno() == -1  # the socket is really closed
    assert pongs == [True]


def test_client_close_code_reaches_the_server():
    codes = []

    def handler(connection):
        try:
            connection.recv(5)
        except Exception:
            pass
        codes.append(connection.close_code)

    with Server(handler) as srv:
        conn = ws.connect(srv.url, timeout=5)
        conn.close(4001, "client done")
        time.sleep(0.1)
    assert codes == [4001]


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("memory_bio", [True, False])
def test_wss_verifies_certificates_by_default(tls_files, memory_bio):
    cert, key = tls_files
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    pongs = []

    def handler(connection):
        pongs.append(connection.ping(b"tls ping").wait(5))
        for message in connection:
            connection.send(message)

    with Server(handler, ctx) as srv:
        # A self-signed certificate the client does not trust: refused.
        with pytest.raises(ssl.SSLError):
            ws.connect(srv.url, timeout=5, tls_memory_bio=memory_bio)
        before = time.time_ns()
        conn = ws.connect(
            srv.url, timeout=5, sslopt={"ca_certs": str(cert)}, tls_memory_bio=memory_bio
        )
        # Through MemoryBIO the ciphertext is received with recvmsg: kernel stamps.
        assert conn.kernel_stamps == (memory_bio and LINUX)
        payloads = [b"a" * n for n in (0, 10, 126, 70000, 300_000)]
        for p in payloads:
            conn.send_binary(p)
        got = collect(conn, len(payloads))
        assert got == [(KIND_BINARY, p) for p in payloads]
        rt, _, kern = conn.last_stamp
        assert rt > before
        if memory_bio and LINUX:
            assert before - 10**6 <= kern <= rt
        else:
            assert kern == 0
        assert conn.pings_answered == 1
        t0 = time.monotonic()
        assert conn.pump(PyConsumer(lambda *a: None), timeout=0.05) == 0
        assert time.monotonic() - t0 < 1.0
        conn.close(1000)
        assert conn.close_code == 1000
        assert conn.sock.fileno() == -1  # the socket is really closed
    assert pongs == [True]


def test_wss_cert_none_is_explicit(tls_files):
    cert, key = tls_files
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def handler(connection):
        connection.send("hi")
        connection.recv(5)

    with Server(handler, ctx) as srv:
        conn = ws.connect(srv.url, timeout=5, sslopt={"cert_reqs": ssl.CERT_NONE})
        assert collect(conn, 1) == [(KIND_TEXT, b"hi")]
        conn.close()
        with pytest.raises(ValueError, match="tls_memory_bio=False"):
            ws.connect(srv.url, timeout=5, sslopt={"ssl_version": 2})
