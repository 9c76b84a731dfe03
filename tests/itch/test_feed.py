"""hftcore.itch.Feed over real loopback sockets against the local exchange: the books
after the feed equal the books of OrderBook.apply on the same day, whatever the faults."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from hftcore import itch
from hftcore.errors import DecodeError, SequenceGap
from hftcore.itch._feed import BookConsumer
from hftcore.net import moldudp64 as mold
from hftcore.net.consumer import PyConsumer
from hftcore.sim import itch as simitch
from hftcore.sim import itch_exchange as ex

DAY = simitch.generate(messages=60_000, symbols=40, seed=21)
CAP = dict(max_orders=200_000, max_levels=50_000)


@pytest.fixture(scope="module")
def reference():
    book = itch.OrderBook(**CAP)
    book.apply(DAY)
    return book


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def assert_same_books(book, reference):
    assert book.symbols == reference.symbols
    for sym in reference.symbols:
        np.testing.assert_array_equal(book.depth(sym, 1000), reference.depth(sym, 1000), sym)
    a, b = book.stats(), reference.stats()
    for k in ("messages", "live_orders", "live_levels", "trades", "cross_trades", "by_type"):
        assert a[k] == b[k], k


def test_book_consumer_applies_like_the_file_path(reference):
    book = itch.OrderBook(**CAP)
    c = BookConsumer(book)
    seq = mold.MoldUDP64Sequencer(c)
    srv = ex.MoldUDP64Server(DAY, ("127.0.0.1", 9))  # packets only: never started
    for i, j in srv.runs:
        seq.feed(srv._packet(i, j))
    srv.stop()
    assert_same_books(book, reference)
    assert c.messages == reference.seq


def test_bad_message_is_a_clean_error():
    book = itch.OrderBook(**CAP)
    seq = mold.MoldUDP64Sequencer(BookConsumer(book))
    good = itch.encode("R", stock_locate=1, stock="AAPL")[2:]  # without the file framing
    with pytest.raises(DecodeError, match="length") as e:
        seq.feed(mold.encode_packet("S", 1, [good, good[:-1]]))
    assert "ITCH feed message 2" in str(e.value)
    assert book.seq == 1 and book.symbols == {"AAPL": 1}


def test_moldudp64_feed_with_drops_reordering_duplicates(reference):
    port = free_port()
    srv = ex.MoldUDP64Server(
        DAY,
        ("127.0.0.1", port),
        rate=400_000,
        drop=0.02,
        reorder=0.02,
        dup=0.02,
        seed=4,
        start_delay=0.2,
        heartbeat_interval=0.05,
    )
    feed = itch.Feed(moldudp64=("127.0.0.1", port), rerequest=srv.rerequest_address, **CAP)
    with srv:
        with feed:
            snapshots = []

            def read():  # another thread reads the books while the feed applies
                while not feed.ended:
                    snapshots.append(feed.books(3))
                    time.sleep(0.005)

            t = threading.Thread(target=read)
            t.start()
            assert feed.wait(30)
            t.join(5)
        st = feed.stats()
    assert srv.counters["dropped"] > 0 and srv.counters["reordered"] > 0
    assert st["gaps"] > 0 and st["recovered"] > 0 and st["unrecovered"] == 0
    assert st["duplicates"] > 0 and st["ended"]
    assert_same_books(feed.book, reference)
    assert len(snapshots) > 3
    for snap in snapshots:  # every read saw a whole state: never a crossed book
        for sym, b in snap.items():
            if b["bids"] and b["asks"]:
                assert b["bids"][0][0] < b["asks"][0][0], sym
    rep = feed.report().as_dict()
    # One recv -> applied sample per datagram (every datagram passes the timing consumer).
    assert rep["recv_to_applied"]["count"] == st["packets"]
    doc = feed.summary(levels=2)
    assert doc["messages"] == reference.seq and doc["unrecovered"] == 0
    some = next(iter(doc["books"]))
    d = reference.depth(some, 2)
    assert doc["books"][some]["bids"] == [
        [int(r["price"]), int(r["shares"]), int(r["orders"])] for r in d if r["side"] == b"B"
    ]


def test_moldudp64_unrecoverable_gap_stops_the_feed():
    port = free_port()
    srv = ex.MoldUDP64Server(DAY, ("127.0.0.1", port), history=100, heartbeat_interval=0.05)
    with srv:
        assert srv.wait(10)  # the day was sent before anyone listened
        feed = itch.Feed(
            moldudp64=("127.0.0.1", port),
            rerequest=srv.rerequest_address,
            sequencer=dict(retry_timeout=0.01, max_retries=1),
            **CAP,
        )
        feed.start()
        with pytest.raises(SequenceGap):
            feed.wait(10)
        feed.stop()
    assert feed.sequencer.unrecovered_ranges[0][0] == 1


def test_soupbintcp_feed_with_reconnects(reference):
    with ex.SoupBinTCPServer(
        DAY, username="u", password="p", drop_after=(10_000, 33_333), chunk_messages=500
    ) as srv:
        epoch = time.time_ns() - 2 * 86_400 * 10**9  # a midnight in the past: all positive
        feed = itch.Feed(soupbintcp=srv.address, user="u", password="p",
                         event_epoch_ns=epoch, **CAP)  # fmt: skip
        with feed:
            assert feed.wait(30)
        st = feed.stats()
    assert st["reconnects"] == 2 and st["duplicates"] == 0
    rep = feed.report().as_dict()
    assert rep["event_to_applied_rt"]["count"] == reference.seq
    assert rep["recv_to_applied"]["count"] > 0
    assert_same_books(feed.book, reference)


def test_feed_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        itch.Feed()
    with pytest.raises(ValueError, match="user="):
        itch.Feed(soupbintcp="127.0.0.1:1")
    with pytest.raises(ValueError, match="HOST:PORT"):
        itch.Feed(moldudp64="nonsense")
    assert PyConsumer  # the slow-path consumer stays importable beside the feed


def test_multicast_two_listeners_each_recover_their_own_gaps(reference):
    """Loopback multicast: a group joined on 127.0.0.1 by two feeds (SO_REUSEADDR /
    SO_REUSEPORT), drops injected; each asks for its gaps from its own request socket."""
    group, port = "239.77.14.1", free_port()
    srv = ex.MoldUDP64Server(
        DAY,
        (group, port),
        rate=300_000,
        drop=0.02,
        seed=6,
        interface="127.0.0.1",
        start_delay=0.3,
        heartbeat_interval=0.05,
    )
    feeds = [itch.Feed(moldudp64=(group, port), interface="127.0.0.1",
                       rerequest=srv.rerequest_address, **CAP) for _ in range(2)]  # fmt: skip
    with srv:
        for f in feeds:
            f.start()
        try:
            for f in feeds:
                assert f.wait(30)
        finally:
            for f in feeds:
                f.stop()
    for f in feeds:
        st = f.stats()
        assert st["gaps"] > 0 and st["recovered"] > 0 and st["unrecovered"] == 0
        assert_same_books(f.book, reference)


def test_recorded_datagrams_replay_into_the_same_books(tmp_path, reference):
    """``record=``: every datagram captured; feeding the capture back through a fresh
    sequencer rebuilds the same books (capture and replay)."""
    from hftcore.feed.capture import read_capture

    port = free_port()
    path = tmp_path / "feed.cap"
    srv = ex.MoldUDP64Server(
        DAY,
        ("127.0.0.1", port),
        rate=400_000,
        drop=0.01,
        seed=9,
        start_delay=0.2,
        heartbeat_interval=0.05,
    )
    feed = itch.Feed(moldudp64=("127.0.0.1", port), rerequest=srv.rerequest_address,
                     record=str(path), **CAP)  # fmt: skip
    with srv, feed:
        assert feed.wait(30)
    records = list(read_capture(path))
    assert len(records) == feed.stats()["packets"]
    book = itch.OrderBook(**CAP)
    seq = mold.MoldUDP64Sequencer(BookConsumer(book))
    for r in records:  # the answers to the re-requests are in the capture too
        seq.feed(r[0])
    assert seq.ended and seq.unrecovered == 0
    assert_same_books(book, reference)
