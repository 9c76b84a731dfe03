"""The live ITCH feed: MoldUDP64 or SoupBinTCP into every stock's order book.

:class:`Feed` receives on a pinned thread (:class:`hftcore.feed.PinnedThread`), hands
every message, in sequence and once, to :class:`hftcore.itch.OrderBook` through the same
nogil per-message apply as the file path, and keeps the book readable from other threads
(each datagram, or each SoupBinTCP message, is applied under a lock that readers take:
no reader sees half an update).
"""

from __future__ import annotations

import select
import socket
import time

from hftcore.feed import PinnedThread
from hftcore.itch._book import DEFAULT_MAX_LEVELS, DEFAULT_MAX_ORDERS
from hftcore.itch._feed import BookConsumer, StagedConsumer, new_event_stages, new_stages
from hftcore.itch.book import OrderBook
from hftcore.net import moldudp64 as mold
from hftcore.net import soupbintcp as soup
from hftcore.net.guard import GuardedConsumer

__all__ = ["Feed"]


def _address(value, what):
    if isinstance(value, str):
        host, _, port = value.rpartition(":")
        value = (host, port)
    try:
        host, port = value
        return str(host), int(port)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be (host, port) or 'HOST:PORT', not {value!r}") from None


class Feed:
    """An ITCH 5.0 feed over MoldUDP64 or SoupBinTCP, applied to an :class:`OrderBook`.

    Give exactly one of ``moldudp64`` and ``soupbintcp``.

    Parameters
    ----------
    moldudp64 : (host, port) or "HOST:PORT", optional
        Unicast address to bind, or a multicast group to join.
    rerequest : (host, port), optional
        The MoldUDP64 re-request server (without one, gaps are unrecoverable).
    interface : str, optional
        Local IPv4 address to join the multicast group on.
    soupbintcp : (host, port) or "HOST:PORT", optional
        The SoupBinTCP server.
    user, password : str
        SoupBinTCP credentials.
    session : str, default ""
        SoupBinTCP session to log into (blank: the current one).
    book : OrderBook, optional
        The book to apply to (default: a new one with ``symbols``, ``max_orders``,
        ``max_levels``).
    symbols, max_orders, max_levels
        As :class:`OrderBook`.
    cpu : int, optional
        Core of the feed thread (default: :func:`hftcore.feed.choose_cpu`).
    spin : bool, default False
        Busy-poll the socket.
    latency : bool, default True
        Record the stage latencies (:meth:`report`).
    event_epoch_ns : int, optional
        CLOCK_REALTIME of the ITCH day's midnight: adds the ITCH timestamp -> applied
        stage (meaningful only with synchronised clocks; see
        :class:`hftcore.itch._feed.BookConsumer`).
    on_gap : {"stop", "continue"}, default "stop"
        MoldUDP64 policy for a gap the re-request server cannot fill.
    sequencer : dict, optional
        More :class:`~hftcore.net.moldudp64.MoldUDP64Sequencer` options
        (``retry_timeout``, ``max_retries``, ``buffer_messages`` (default here 1,048,576
        messages behind a gap), ...).
    reconnect : int, default 3
        SoupBinTCP reconnections allowed (each resumes at the next sequence number).
    record : str, optional
        Capture every datagram / TCP chunk to this file (:mod:`hftcore.feed.capture`).
    poll_interval : float, default 0.05
        Longest wait for input in one step of the thread.

    Examples
    --------
    >>> feed = itch.Feed(moldudp64=("239.1.1.1", 26400), rerequest=("10.0.0.1", 26401))
    ... # doctest: +SKIP
    >>> with feed:                                    # doctest: +SKIP
    ...     feed.wait(60)
    ...     print(feed.bbo("AAPL"), feed.stats()["gaps"])
    """

    def __init__(self, *, moldudp64=None, rerequest=None, interface=None, soupbintcp=None,
                 user=None, password=None, session="", book=None, symbols=None,
                 max_orders=DEFAULT_MAX_ORDERS, max_levels=DEFAULT_MAX_LEVELS, cpu=None,
                 spin=False, latency=True, event_epoch_ns=None, on_gap="stop",
                 sequencer=None, reconnect=3, record=None, poll_interval=0.05,
                 name="hftcore-itch"):  # fmt: skip
        if (moldudp64 is None) == (soupbintcp is None):
            raise ValueError("give exactly one of moldudp64=(host, port) and "
                             "soupbintcp=(host, port)")  # fmt: skip
        self.transport = "moldudp64" if moldudp64 is not None else "soupbintcp"
        if self.transport == "moldudp64":
            self.address = _address(moldudp64, "moldudp64")
            self.rerequest = None if rerequest is None else _address(rerequest, "rerequest")
        else:
            self.address = _address(soupbintcp, "soupbintcp")
            if user is None or password is None:
                raise ValueError("soupbintcp= needs user= and password=")
        self.interface = interface
        self.user, self.password, self.session_name = user, password, session
        self.book = book if book is not None else OrderBook(max_orders, max_levels, symbols)
        self.stages = new_stages() if latency else None
        self.event_stages = new_event_stages() if latency and event_epoch_ns else None
        self.consumer = BookConsumer(self.book, self.event_stages, event_epoch_ns)
        self.cpu, self.spin, self.poll_interval, self.name = cpu, spin, poll_interval, name
        self.on_gap = on_gap
        self.sequencer_options = dict(sequencer or {})
        self.reconnect = reconnect
        self.record = record
        self.sock = None
        self.rsock = None
        self.sequencer = None
        self.soup = None
        self.thread = None
        self.guard = None
        self._writer = None
        self._started = None
        self._stopped = None

    # -------------------------------------------------------- lifecycle

    def _top(self, consumer):
        """The consumer the reader pumps: ``consumer``, timed and recorded if asked."""
        if self.stages is not None:
            consumer = StagedConsumer(consumer, self.stages)
        if self.record is None:
            return consumer
        from hftcore.feed.capture import CaptureWriter, RecordingConsumer

        if self._writer is None:  # one file for the feed, across reconnections
            self._writer = CaptureWriter(self.record)
        return RecordingConsumer(consumer, self._writer)

    def start(self):
        """Open the transport and start the feed thread; returns self."""
        if self.thread is not None:
            raise RuntimeError("the feed was started already")
        if self.transport == "moldudp64":
            from hftcore.net.udp import UdpReader

            self.sock = mold.open_socket(*self.address, interface=self.interface)
            request_sock = self.sock
            rr_reader = None
            if self.rerequest:
                # Requests leave from a socket of their own and the (unicast) answers come
                # back to it: they never wait behind a backlog of the feed's own datagrams,
                # and a multicast socket (bound to its group) could not receive them.
                self.rsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.rsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
                local = self.interface or ("127.0.0.1" if self.address[0].startswith("127.")
                                           else "0.0.0.0")  # fmt: skip
                self.rsock.bind((local, 0))
                request_sock = self.rsock
                rr_reader = UdpReader(self.rsock)
            opts = dict(self.sequencer_options)
            opts.setdefault("on_gap", self.on_gap)
            # Room for ~1 s of a busy feed behind a gap (64 MiB, touched as used).
            opts.setdefault("buffer_messages", 1 << 20)
            self.sequencer = mold.MoldUDP64Sequencer(
                self.consumer, self.rerequest, request_sock if self.rerequest else None, **opts
            )
            self.guard = GuardedConsumer(self.sequencer)
            reader = UdpReader(self.sock)
            top = self._top(self.guard)
            step = self._mold_step(reader, top, rr_reader)
        else:
            self.guard = GuardedConsumer(self.consumer)
            self.soup = soup.SoupBinTCPSession(
                *self.address, self.user, self.password, self.guard,
                reader_factory=self._soup_reader,
                session=self.session_name, reconnect=self.reconnect,
            )  # fmt: skip
            self.soup.connect()
            step = self._soup_step()
        self.consumer.set_busy(True)
        self._started = time.monotonic()
        self.thread = PinnedThread(
            step,
            cpu=self.cpu,
            name=self.name,
            poll_interval=self.poll_interval,
            teardown=self._teardown,
        )
        try:
            self.thread.start()
        except BaseException:
            self._close()
            raise
        return self

    def _soup_reader(self, sock):
        """A TCP reader whose pump times each chunk (and records it, if asked)."""
        from hftcore.net.tcp import TcpReader

        return _TimedReader(TcpReader(sock), self)

    def _mold_step(self, reader, top, rr_reader=None):
        seq, guard = self.sequencer, self.guard
        timeout = 0.0 if self.spin else self.poll_interval
        spin = self.spin
        last_poll = [time.monotonic()]
        fds = [reader.fileno(), rr_reader.fileno()] if rr_reader is not None else None

        def step():
            if fds is None:
                n = reader.pump(top, timeout, spin)
            else:
                # Answers first: they unblock the head of the sequence.
                n = rr_reader.pump(top, 0.0) + reader.pump(top, 0.0)
                if n == 0 and not spin:
                    select.select(fds, [], [], timeout)
            now = time.monotonic()
            if n == 0 or now - last_poll[0] > 0.01:
                last_poll[0] = now
                with guard:
                    seq.poll()
            return seq.ended

        return step

    def _soup_step(self):
        session = self.soup
        timeout = 0.0 if self.spin else self.poll_interval
        spin = self.spin

        def step():
            return session.step(timeout, spin) < 0

        return step

    def _teardown(self):
        self._stopped = time.monotonic()

    def _close(self):
        self.consumer.set_busy(False)
        if self.soup is not None:
            self.soup.logout()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.rsock is not None:
            self.rsock.close()
            self.rsock = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def stop(self, timeout=2.0):
        """Stop the thread and close the transport; raises the loop's error, if any."""
        if self.thread is None:
            return
        try:
            self.thread.stop(timeout)
        finally:
            self._close()

    def wait(self, timeout=None):
        """Wait for the end of the session (or an error, raised here); True if it ended."""
        return self.thread.join(timeout)

    @property
    def ended(self):
        """The session ended and every message of it was applied."""
        if self.sequencer is not None:
            return bool(self.sequencer.ended)
        return self.soup is not None and bool(self.soup.framer.ended)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
        else:
            try:
                self.stop()
            except Exception:  # noqa: S110 - the exception in flight wins
                pass

    # -------------------------------------------------------- reading the books

    def locked(self):
        """The lock the feed applies under: ``with feed.locked(): ...`` reads the book
        between two updates."""
        return self.guard

    def bbo(self, symbol):
        """:meth:`OrderBook.bbo`, read under the feed's lock."""
        with self.guard:
            return self.book.bbo(symbol)

    def depth(self, symbol, levels=10):
        """:meth:`OrderBook.depth`, read under the feed's lock."""
        with self.guard:
            return self.book.depth(symbol, levels)

    def books(self, levels=5, symbols=None):
        """``{symbol: {"bids": [[price, shares, orders], ...], "asks": [...]}}``: the top
        ``levels`` of every book with orders (or of ``symbols``), one consistent read."""
        return books_snapshot(self.book, levels, symbols, self.guard)

    # -------------------------------------------------------- numbers

    def stats(self):
        """Transport counters, messages applied, thread facts."""
        out = {"transport": self.transport, "applied": self.consumer.messages}
        if self.sequencer is not None:
            out.update(self.sequencer.stats())
        if self.soup is not None:
            out.update(self.soup.stats())
        if self.thread is not None:
            out["thread"] = self.thread.stats()
        end = self._stopped or time.monotonic()
        if self._started is not None and end > self._started:
            out["elapsed_s"] = end - self._started
        return out

    def report(self, title=None):
        """The latency report (:class:`hftcore.latency.Report`), or None without
        ``latency=True``.

        Stages: ``kernel_to_recv_rt`` (kernel receive stamp to the receive call's return,
        CLOCK_REALTIME), ``recv_to_applied`` (the receive call's return to every message
        of that datagram / TCP chunk applied to the book, CLOCK_MONOTONIC) and the
        inter-arrival of receives; with ``event_epoch_ns`` also ``event_to_applied_rt``
        per message (the ITCH timestamp against the local clock: it includes the offset
        between the two clocks).
        """
        if self.stages is None:
            return None
        from hftcore.latency import Report

        st = self.stats()
        rep = Report.from_stages(
            self.stages, elapsed_s=st.get("elapsed_s"), title=title or f"ITCH over {self.transport}"
        )
        if self.event_stages is not None:
            ev = Report.from_stages(self.event_stages)
            rep.histograms.update(ev.histograms)
            rep.missing.update(ev.missing)
            rep.negative.update(ev.negative)
            rep.most_negative.update(ev.most_negative)
        return rep

    def summary(self, levels=5, symbols=None):
        """The ``hftcore itch listen --json`` document: counters, books, latency."""
        st = self.stats()
        rep = self.report()
        return {
            "messages": int(self.consumer.messages),
            "gaps": int(st.get("gaps", 0)),
            "recovered": int(st.get("recovered", 0)),
            "unrecovered": int(st.get("unrecovered", 0)),
            "duplicates": int(st.get("duplicates", 0)),
            "books": self.books(levels, symbols),
            "latency_ns": rep.as_dict() if rep is not None else {},
        }


class _TimedReader:
    """A reader whose ``pump`` hands chunks through the feed's timing/recording consumer."""

    def __init__(self, reader, feed):
        self.reader = reader
        self.wrap = feed._top
        self._inner = None
        self._top = None

    def pump(self, consumer, timeout=0.05, spin=False):
        if consumer is not self._inner:
            self._inner, self._top = consumer, self.wrap(consumer)
        return self.reader.pump(self._top, timeout, spin)

    def fileno(self):
        return self.reader.fileno()


def books_snapshot(book, levels=5, symbols=None, lock=None):
    """Top ``levels`` of every book with orders (or of ``symbols``) as plain lists."""
    if lock is not None:
        lock.acquire()
    try:
        names = book.symbols if symbols is None else {s: book.locate(s) for s in symbols}
        out = {}
        for sym in sorted(names):
            d = book._depth(names[sym], levels)
            if symbols is None and len(d) == 0:
                continue
            bids = [[int(r["price"]), int(r["shares"]), int(r["orders"])]
                    for r in d if r["side"] == b"B"]  # fmt: skip
            asks = [[int(r["price"]), int(r["shares"]), int(r["orders"])]
                    for r in d if r["side"] == b"S"]  # fmt: skip
            out[sym] = {"bids": bids, "asks": asks}
        return out
    finally:
        if lock is not None:
            lock.release()
