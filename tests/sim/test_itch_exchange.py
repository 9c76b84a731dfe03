"""The local ITCH exchange over real loopback sockets: MoldUDP64 with faults and its
re-request server, SoupBinTCP with login and resume; every server stopped by its test."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from hftcore.errors import SequenceGap
from hftcore.net import moldudp64 as mold
from hftcore.net.consumer import PyConsumer
from hftcore.net.udp import UdpReader
from hftcore.sim import itch as simitch
from hftcore.sim import itch_exchange as ex

DAY = simitch.generate(messages=20_000, symbols=20, seed=3)


def framed_messages(day):
    """The day's messages by walking the framing by hand (independent of the server)."""
    out, pos = [], 0
    while pos + 2 <= len(day):
        n = int.from_bytes(day[pos : pos + 2], "big")
        if n == 0:
            break
        out.append(day[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out


MESSAGES = framed_messages(DAY)


@pytest.fixture
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root) ...
    s.bind(("127.0.0.1", 0))
    try:
        yield s
    finally:
        s.close()


def receive(sock, seq, deadline_s=30.0):
    reader = UdpReader(sock)
    deadline = time.monotonic() + deadline_s
    while not seq.ended and time.monotonic() < deadline:
        if reader.pump(seq, 0.02) == 0:
            seq.poll()
    return reader


def test_message_offsets_and_packets_fit():
    off = ex.message_offsets(DAY)
    assert len(off) == len(MESSAGES) + 1
    runs = ex._packet_bounds(off, 1400 - 20)
    assert runs[0][0] == 0 and runs[-1][1] == len(MESSAGES)
    assert all(a[1] == b[0] for a, b in zip(runs, runs[1:], strict=False))
    assert max(int(off[j] - off[i]) for i, j in runs) <= 1380


def test_clean_replay_arrives_whole_and_in_order(udp):
    got = []
    seq = mold.MoldUDP64Sequencer(PyConsumer(lambda m, k, s: got.append(m)))
    with ex.MoldUDP64Server(DAY, udp.getsockname(), rate=2_000_000) as srv:
        receive(udp, seq)
        assert srv.wait(5)
    assert got == MESSAGES
    assert seq.gaps == 0 and seq.ended and seq.duplicates == 0
    sizes = [len(mold.encode_packet("X", 1, MESSAGES[i:j])) for i, j in srv.runs]
    assert max(sizes) <= 1400


def test_drops_reorder_duplicates_all_recovered(udp):
    got = []
    srv = ex.MoldUDP64Server(
        DAY, udp.getsockname(), rate=1_000_000, drop=0.05, reorder=0.05, dup=0.05, seed=11
    )
    seq = mold.MoldUDP64Sequencer(
        PyConsumer(lambda m, k, s: got.append(m)), rerequest=srv.rerequest_address, sock=udp
    )
    with srv:
        receive(udp, seq)
    c = srv.counters
    assert c["dropped"] > 0 and c["reordered"] > 0 and c["duplicated"] > 0
    assert got == MESSAGES
    st = seq.stats()
    assert st["gaps"] > 0 and st["recovered"] > 0 and st["unrecovered"] == 0
    assert st["duplicates"] > 0 and st["reordered"] > 0
    assert c["answered"] > 0


def test_history_exhausted_is_an_unrecoverable_gap_with_its_range():
    # A listener that joins after the whole day was sent, against a server that keeps only
    # the last 1000 messages: it learns the session's length from the end-of-session
    # packets, asks for everything, gets the last 1000 only.
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    dest = probe.getsockname()
    probe.close()  # nobody listens there while the day is sent
    got = []
    srv = ex.MoldUDP64Server(DAY, dest, history=1000, heartbeat_interval=0.05)
    with srv:
        assert srv.wait(10)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(dest)
        try:
            seq = mold.MoldUDP64Sequencer(
                PyConsumer(lambda m, k, s: got.append(m)),
                rerequest=srv.rerequest_address,
                sock=sock,
                retry_timeout=0.02,
                max_retries=2,
            )
            with pytest.raises(SequenceGap) as e:
                receive(sock, seq, deadline_s=10)
        finally:
            sock.close()
    n = len(MESSAGES)
    assert e.value.expected == 1
    assert seq.unrecovered_ranges == [(1, e.value.received)]
    # Everything older than the history is gone; the answered part waits in the buffer.
    assert n - 1000 < e.value.received <= n - 1000 + 512 + 1
    assert srv.counters["unanswered"] > 0 and got == []


def test_timestamp_pacing_takes_the_days_time_over_speed(udp):
    # Two messages 0.2 s apart in ITCH time, sped up 2x: about 0.1 s apart on the wire.
    from hftcore import itch

    day = itch.encode("S", timestamp=10**9, event_code="O") + itch.encode(
        "S", timestamp=10**9 + 200_000_000, event_code="Q"
    )
    stamps = []
    seq = mold.MoldUDP64Sequencer(PyConsumer(lambda m, k, s: stamps.append(s[1])))
    with ex.MoldUDP64Server(day, udp.getsockname(), pace="timestamps", speed=2.0, max_payload=40):
        receive(udp, seq, deadline_s=5)
    assert len(stamps) == 2
    assert 0.07 < (stamps[1] - stamps[0]) / 1e9 < 0.3


def test_server_arguments_are_checked():
    with pytest.raises(ValueError, match="drop"):
        ex.MoldUDP64Server(DAY, ("127.0.0.1", 9), drop=1.5)
    with pytest.raises(ValueError, match="pace"):
        ex.MoldUDP64Server(DAY, ("127.0.0.1", 9), pace="wall")
    assert ex.ipaddr_is_multicast("239.1.1.1") and not ex.ipaddr_is_multicast("10.0.0.1")
    assert np.all(np.diff(ex.message_offsets(DAY)) > 2)


def test_load_day_from_plain_and_gzip_files(tmp_path):
    import gzip

    (tmp_path / "d.itch").write_bytes(DAY)
    (tmp_path / "d.itch.gz").write_bytes(gzip.compress(DAY, 1))
    assert ex.load_day(tmp_path / "d.itch") == DAY
    assert ex.load_day(str(tmp_path / "d.itch.gz")) == DAY
    assert ex.load_day(("generate", 20_000, 20, 3)) == DAY
