"""MoldUDP64: packet parsing against hand-built bytes, and the sequencer's guarantees
(in sequence, once each, gaps asked of a real re-request socket on loopback)."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from hftcore.errors import DecodeError, SequenceGap
from hftcore.net import moldudp64 as mold
from hftcore.net.consumer import CONSUME_STOP, PyConsumer

SESSION = b"SESSION001"


def packet(seq, messages, session=SESSION):
    """A downstream packet built by hand from the spec's layout (not by the encoder)."""
    body = b"".join(struct.pack(">H", len(m)) + m for m in messages)
    return session + struct.pack(">QH", seq, len(messages)) + body


def msg(seq):
    return b"M%07d" % seq


class Collect:
    def __init__(self, stop_at=None):
        self.got = []
        self.stop_at = stop_at

    def __call__(self, data, kind, stamp):
        self.got.append(data)
        return self.stop_at is not None and len(self.got) == self.stop_at


def make(**kw):
    c = Collect(kw.pop("stop_at", None))
    return c, mold.MoldUDP64Sequencer(PyConsumer(c), **kw)


@pytest.fixture
def server():
    """A UDP socket standing in for the re-request server, and the feed's socket."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    srv.settimeout(2.0)
    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli.bind(("127.0.0.1", 0))
    try:
        yield srv, cli
    finally:
        srv.close()
        cli.close()


# ---------------------------------------------------------------- packets


def test_parse_packet_matches_the_spec_layout():
    p = packet(41, [b"abc", b"", b"x" * 300])
    assert mold.parse_packet(p) == (SESSION, 41, "data", [b"abc", b"", b"x" * 300])
    assert mold.encode_packet("SESSION001", 41, [b"abc", b"", b"x" * 300]) == p
    hb = SESSION + struct.pack(">QH", 7, 0)
    assert mold.parse_packet(hb) == (SESSION, 7, "heartbeat", [])
    assert mold.encode_heartbeat(SESSION, 7) == hb
    end = SESSION + struct.pack(">QH", 9, 0xFFFF)
    assert mold.parse_packet(end) == (SESSION, 9, "end", [])
    assert mold.encode_end_of_session(SESSION, 9) == end
    req = SESSION + struct.pack(">QH", 100, 25)
    assert mold.encode_request(SESSION, 100, 25) == req
    assert mold.parse_request(req) == (SESSION, 100, 25)
    assert mold.encode_packet("S1", 1, [b"a"])[:10] == b"S1        "


@pytest.mark.parametrize(
    "data, offset, words",
    [
        (b"SESSION001" + b"\x00" * 9, 19, "shorter than its 20-byte header"),
        (packet(1, [b"abcd"])[:-1], 20, "runs past the end"),
        (packet(1, [b"ab"]) + b"z", 24, "after its last message block"),
        (SESSION + struct.pack(">QH", 1, 0) + b"z", 20, "after its last message block"),
        (SESSION + struct.pack(">QH", 2**64 - 1, 2) + b"\x00\x00" * 2, 10, "overflows"),
        (SESSION + struct.pack(">QH", 1, 3) + b"\x00\x01a\x00\x00", 25, "runs past"),
    ],
)
def test_malformed_packets_name_the_offset(data, offset, words):
    with pytest.raises(DecodeError) as e:
        mold.parse_packet(data)
    assert e.value.offset == offset
    assert words in str(e.value)


# ---------------------------------------------------------------- sequencing


def test_in_order_duplicates_and_reordering():
    c, s = make()
    assert s.feed(packet(1, [msg(1), msg(2)])) == 0
    s.feed(packet(5, [msg(5), msg(6)]))  # 3, 4 missing: 5, 6 wait
    assert [m for m in c.got] == [msg(1), msg(2)]
    assert s.buffered == 2 and s.gaps == 1
    s.feed(packet(1, [msg(1), msg(2)]))  # duplicates
    s.feed(packet(3, [msg(3), msg(4)]))  # the late packet: everything flows
    s.feed(packet(6, [msg(6), msg(7)]))  # 6 duplicate, 7 new
    assert c.got == [msg(i) for i in range(1, 8)]
    st = s.stats()
    assert st["duplicates"] == 3 and st["reordered"] == 2 and st["buffered"] == 0
    assert st["messages"] == 7 and st["next_seq"] == 8 and st["buffer_high_water"] == 2
    assert st["packets"] == 5 and st["unrecovered"] == 0


def test_gap_is_requested_from_the_rerequest_server_and_recovered(server):
    srv, cli = server
    c, s = make(rerequest=srv.getsockname(), sock=cli, max_request=3)
    s.feed(packet(1, [msg(1)]))
    s.feed(packet(9, [msg(9)]))  # 2..8 missing: 7 messages, max 3 per request
    reqs = [mold.parse_request(srv.recvfrom(64)[0]) for _ in range(3)]
    assert reqs == [(SESSION, 2, 3), (SESSION, 5, 3), (SESSION, 8, 1)]
    assert s.requests == 3 and s.requested == 7
    s.feed(packet(2, [msg(i) for i in range(2, 9)]))
    assert c.got == [msg(i) for i in range(1, 10)]
    assert s.recovered == 7 and s.unrecovered == 0


def test_retries_then_unrecoverable_stop_names_the_range(server):
    srv, cli = server
    c, s = make(rerequest=srv.getsockname(), sock=cli, retry_timeout=0.01, max_retries=2)
    s.feed(packet(1, [msg(1)]))
    s.feed(packet(4, [msg(4), msg(5)]))
    deadline = time.monotonic() + 5
    with pytest.raises(SequenceGap) as e:
        while time.monotonic() < deadline:
            s.poll()
            time.sleep(0.002)
    assert (e.value.expected, e.value.received) == (2, 4)
    assert "messages 2 to 3 unrecoverable" in str(e.value)
    reqs = []
    srv.settimeout(0.2)
    try:
        while True:
            reqs.append(mold.parse_request(srv.recvfrom(64)[0]))
    except TimeoutError:
        pass
    assert reqs == [(SESSION, 2, 2)] * 3  # the first request and two retries
    assert s.unrecovered_ranges == [(2, 4)]
    assert c.got == [msg(1)]
    with pytest.raises(SequenceGap):  # stays failed: never hidden
        s.feed(packet(6, [msg(6)]))


def test_unrecoverable_continue_skips_counts_and_goes_on():
    c, s = make(retry_timeout=0.005, max_retries=1, on_gap="continue")
    s.feed(packet(1, [msg(1)]))
    s.feed(packet(4, [msg(4)]))
    s.feed(packet(10, [msg(10), msg(11)]))
    deadline = time.monotonic() + 5
    while s.next_seq < 12 and time.monotonic() < deadline:
        s.poll()
        time.sleep(0.002)
    assert c.got == [msg(1), msg(4), msg(10), msg(11)]
    assert s.unrecovered_ranges == [(2, 4), (5, 10)]
    assert s.unrecovered == 7 and s.unrecoverable_gaps == 2


def test_heartbeat_reveals_a_tail_gap_and_end_of_session_stops(server):
    srv, cli = server
    c, s = make(rerequest=srv.getsockname(), sock=cli)
    s.feed(packet(1, [msg(1), msg(2)]))
    s.feed(mold.encode_heartbeat(SESSION, 5))  # 3, 4 were sent and lost
    assert mold.parse_request(srv.recvfrom(64)[0]) == (SESSION, 3, 2)
    assert s.feed(mold.encode_end_of_session(SESSION, 5)) == 0  # not all there yet
    assert not s.ended
    assert s.feed(packet(3, [msg(3), msg(4)])) == CONSUME_STOP
    assert s.ended and c.got == [msg(i) for i in range(1, 5)]
    assert s.heartbeats == 2


def test_stale_after_heartbeat_timeout_and_back():
    c, s = make(heartbeat_timeout=0.02)
    s.feed(packet(1, [msg(1)]))
    time.sleep(0.05)
    s.poll()
    assert s.stale and s.stale_periods == 1
    s.poll()
    assert s.stale_periods == 1  # one period, however long
    s.feed(mold.encode_heartbeat(SESSION, 2))
    assert not s.stale


def test_malformed_packets_are_counted_not_fatal():
    c, s = make()
    s.feed(packet(1, [msg(1)]))
    s.feed(b"short")
    s.feed(packet(2, [msg(2)])[:-1])
    s.feed(packet(2, [msg(2)]))
    assert c.got == [msg(1), msg(2)] and s.malformed == 2


def test_session_change_after_end_of_session_and_foreign_packets():
    c, s = make()
    s.feed(packet(1, [msg(1)]))
    s.feed(packet(1, [b"other"], session=b"SESSION002"))  # mid-session: ignored
    assert s.foreign_packets == 1 and c.got == [msg(1)]
    assert s.feed(mold.encode_end_of_session(SESSION, 2)) == CONSUME_STOP
    s.feed(packet(1, [b"new day"], session=b"SESSION002"))
    assert s.session == b"SESSION002" and s.session_changes == 1
    assert c.got == [msg(1), b"new day"]


def test_pinned_session_and_late_join():
    c, s = make(session="SESSION002", start_seq=0)
    s.feed(packet(50, [msg(50)]))  # another session: never followed
    s.feed(packet(70, [msg(70)], session=b"SESSION002"))
    s.feed(packet(71, [msg(71)], session=b"SESSION002"))
    assert c.got == [msg(70), msg(71)] and s.foreign_packets == 1


def test_buffer_overflow_is_asked_again(server):
    srv, cli = server
    c, s = make(rerequest=srv.getsockname(), sock=cli, buffer_messages=4)
    s.feed(packet(1, [msg(1)]))
    # The window is [next_seq, next_seq + 4) = [2, 6): 3..5 wait, 6..9 do not fit.
    s.feed(packet(3, [msg(i) for i in range(3, 10)]))
    assert s.overflow == 4 and s.buffered == 3
    assert mold.parse_request(srv.recvfrom(64)[0]) == (SESSION, 2, 1)
    s.feed(packet(2, [msg(2)]))
    # The head is now blocked at 6 (never stored): asked at once, window-sized.
    assert mold.parse_request(srv.recvfrom(64)[0]) == (SESSION, 6, 4)
    s.feed(packet(6, [msg(6), msg(7), msg(8), msg(9)]))
    assert c.got == [msg(i) for i in range(1, 10)]


def test_inner_stop_keeps_the_rest_of_the_packet():
    c, s = make(stop_at=2)
    assert s.feed(packet(1, [msg(1), msg(2), msg(3), msg(4)])) == CONSUME_STOP
    assert c.got == [msg(1), msg(2)]
    c.stop_at = None
    s.poll()
    assert c.got == [msg(i) for i in range(1, 5)]


def test_inner_error_reaches_the_caller():
    def boom(data, kind, stamp):
        raise KeyError("inner")

    s = mold.MoldUDP64Sequencer(PyConsumer(boom))
    with pytest.raises(KeyError):
        s.feed(packet(1, [msg(1)]))


def test_bad_arguments():
    c = PyConsumer(lambda *a: None)
    with pytest.raises(ValueError, match="on_gap"):
        mold.MoldUDP64Sequencer(c, on_gap="ignore")
    with pytest.raises(ValueError, match="sock="):
        mold.MoldUDP64Sequencer(c, rerequest=("127.0.0.1", 1))
    with pytest.raises(ValueError, match="longer than 10"):
        mold.MoldUDP64Sequencer(c, session="ELEVENCHARS")
