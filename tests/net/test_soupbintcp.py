"""SoupBinTCP 3.00: the framer against hand-built byte streams split at every byte, and
the client session over real loopback sockets against the project's server."""

from __future__ import annotations

import struct

import pytest

from hftcore.errors import ProtocolError, SequenceGap
from hftcore.net import soupbintcp as soup
from hftcore.net.consumer import CONSUME_STOP, PyConsumer


def pkt(t, payload=b""):
    """A packet by hand from the spec: length of type + payload, type, payload."""
    return struct.pack(">H", len(payload) + 1) + t + payload


def accepted(session, seq):
    return pkt(b"A", session.rjust(10) + str(seq).encode().rjust(20))


class Collect:
    def __init__(self):
        self.got = []

    def __call__(self, data, kind, stamp):
        self.got.append(data)


def framer(next_seq=1):
    c = Collect()
    return c, soup.SoupBinTCPFramer(PyConsumer(c), next_seq)


STREAM = (
    pkt(b"+", b"hello")
    + accepted(b"S1", 1)
    + pkt(b"S", b"one")
    + pkt(b"H")
    + pkt(b"S", b"")
    + pkt(b"U", b"unseq")
    + pkt(b"S", b"x" * 300)
)


def test_encoders_match_the_spec_layout():
    assert soup.encode_login_request("user", "pw", "", 1) == pkt(
        b"L", b"user  " + b"pw        " + b" " * 10 + b" " * 19 + b"1"
    )
    assert soup.encode_login_request("u", "p", "SESS", 42)[-30:] == b"      SESS" + b"42".rjust(20)
    assert soup.encode_login_accepted("S1", 7) == accepted(b"S1", 7)
    assert soup.encode_login_rejected("A") == b"\x00\x02JA"
    assert soup.SERVER_HEARTBEAT == b"\x00\x01H" and soup.CLIENT_HEARTBEAT == b"\x00\x01R"
    assert soup.END_OF_SESSION == b"\x00\x01Z" and soup.LOGOUT_REQUEST == b"\x00\x01O"
    assert soup.encode_sequenced(b"ab") == b"\x00\x03Sab"
    with pytest.raises(ValueError, match="longer than 6"):
        soup.encode_login_request("toolong", "p")
    packets, rest = soup.parse_packets(STREAM + b"\x00\x05S")
    assert [t for t, _ in packets] == ["+", "A", "S", "H", "S", "U", "S"] and rest == b"\x00\x05S"


def test_whole_stream_in_one_chunk():
    c, f = framer()
    f.feed(STREAM)
    assert c.got == [b"one", b"", b"x" * 300]
    assert f.logged_in and f.session == b"        S1" and f.next_seq == 4
    st = f.stats()
    assert (st["messages"], st["heartbeats"], st["unsequenced"], st["debug"]) == (3, 1, 1, 1)


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_every_split_gives_the_same_messages(step):
    for start in range(step):
        c, f = framer()
        cuts = [0, *range(start or step, len(STREAM), step), len(STREAM)]
        for a, b in zip(cuts, cuts[1:], strict=False):
            f.feed(STREAM[a:b])
        assert c.got == [b"one", b"", b"x" * 300], (step, start)
        assert f.buffered_bytes == 0


def test_end_of_session_stops_and_rejection_is_kept():
    c, f = framer()
    assert f.feed(accepted(b"S1", 1) + pkt(b"S", b"a") + pkt(b"Z")) == CONSUME_STOP
    assert f.ended and c.got == [b"a"]
    c, f = framer()
    assert f.feed(pkt(b"J", b"A")) == CONSUME_STOP
    assert chr(f.rejected) == "A" and not f.logged_in


@pytest.mark.parametrize(
    "stream, offset, words",
    [
        (pkt(b"S", b"a"), 0, "before login accepted"),
        (accepted(b"S1", 1) + b"\x00\x00", 33, "length 0"),
        (accepted(b"S1", 1) + pkt(b"Q", b"?"), 33, "does not send"),
        (pkt(b"A", b"short"), 0, "wrong length"),
        (pkt(b"A", b"S1".rjust(10) + b"12x".rjust(20)), 0, "wrong length or content"),
        (accepted(b"S1", 1) + pkt(b"Z") + pkt(b"H"), 36, "after end of session"),
    ],
)
def test_protocol_errors_name_the_stream_offset(stream, offset, words):
    c, f = framer()
    with pytest.raises(ProtocolError) as e:
        for i in range(len(stream)):  # byte by byte: offsets count across chunks
            f.feed(stream[i : i + 1])
    assert e.value.offset == offset and words in str(e.value)


def test_resume_drops_what_was_handed_on_and_refuses_a_gap():
    c, f = framer()
    f.feed(accepted(b"S1", 1) + pkt(b"S", b"1") + pkt(b"S", b"2"))
    f.reset_connection()  # the link dropped; the server resends from 1
    f.feed(accepted(b"S1", 1) + pkt(b"S", b"1") + pkt(b"S", b"2") + pkt(b"S", b"3"))
    assert c.got == [b"1", b"2", b"3"] and f.duplicates == 2 and f.next_seq == 4
    f.reset_connection()
    with pytest.raises(SequenceGap) as e:
        f.feed(accepted(b"S1", 9))
    assert (e.value.expected, e.value.received) == (4, 9)


def test_next_seq_zero_takes_the_servers_position():
    c, f = framer(next_seq=0)
    f.feed(accepted(b"S1", 500) + pkt(b"S", b"m"))
    assert f.next_seq == 501 and c.got == [b"m"]


# ---------------------------------------------------------------- over loopback


def _day():
    from hftcore.sim import itch as simitch

    day = simitch.generate(messages=5000, symbols=10, seed=5)
    out, pos = [], 0
    while pos + 2 <= len(day):
        n = int.from_bytes(day[pos : pos + 2], "big")
        out.append(day[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return day, out


def _run(session, limit=30.0):
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if session.step(0.02) < 0:
            return True
    return False


def test_session_receives_the_whole_day_and_ends_cleanly():
    from hftcore.sim.itch_exchange import SoupBinTCPServer

    day, messages = _day()
    c = Collect()
    with SoupBinTCPServer(day, username="user", password="secret") as srv:
        s = soup.SoupBinTCPSession(*srv.address, "user", "secret", PyConsumer(c))
        try:
            assert s.connect() == 1
            assert _run(s)
        finally:
            s.logout()
    assert c.got == messages
    assert s.framer.ended and s.next_seq == len(messages) + 1


def test_reconnect_mid_stream_resumes_with_nothing_lost_or_doubled():
    from hftcore.sim.itch_exchange import SoupBinTCPServer

    day, messages = _day()
    c = Collect()
    with SoupBinTCPServer(day, drop_after=(1234, 3000), chunk_messages=256) as srv:
        s = soup.SoupBinTCPSession(*srv.address, "u", "p", PyConsumer(c), reconnect=5)
        try:
            s.connect()
            assert _run(s)
        finally:
            s.close()
        assert srv.counters["dropped_connections"] == 2 and srv.counters["logins"] == 3
    assert s.reconnects == 2
    assert c.got == messages  # in order, each once


def test_lost_link_without_reconnect_raises_and_bad_login_is_rejected():
    from hftcore.errors import ConnectionClosed
    from hftcore.sim.itch_exchange import SoupBinTCPServer

    day, _ = _day()
    with SoupBinTCPServer(day, username="user", password="secret", drop_after=(10,)) as srv:
        bad = soup.SoupBinTCPSession(*srv.address, "user", "wrong", PyConsumer(Collect()))
        with pytest.raises(soup.LoginRejected, match="not authorized"):
            bad.connect()
        bad2 = soup.SoupBinTCPSession(
            *srv.address, "user", "secret", PyConsumer(Collect()), session="OTHER"
        )
        with pytest.raises(soup.LoginRejected, match="session not available"):
            bad2.connect()
        s = soup.SoupBinTCPSession(*srv.address, "user", "secret", PyConsumer(Collect()))
        s.connect()
        try:
            with pytest.raises(ConnectionClosed):
                _run(s, 10)
        finally:
            s.close()


def test_heartbeats_both_ways_at_the_cadence():
    import time

    from hftcore.sim.itch_exchange import SoupBinTCPServer

    day, _ = _day()
    # 5 messages/s: mostly silence; heartbeats every 0.05 s from both sides.
    with SoupBinTCPServer(day, rate=5, heartbeat_interval=0.05) as srv:
        s = soup.SoupBinTCPSession(
            *srv.address, "u", "p", PyConsumer(Collect()), heartbeat_interval=0.05
        )
        try:
            s.connect()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 0.6:
                s.step(0.01)
        finally:
            s.logout()
        time.sleep(0.1)
        assert srv.counters["logouts"] == 1
    assert s.client_heartbeats >= 5 and srv.counters["client_heartbeats"] >= 5
    assert s.framer.heartbeats >= 3
