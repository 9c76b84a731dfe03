"""The Binance live feed: books kept in sync on a pinned thread, nothing lost across
reconnects and rotations.

::

    feed = binance.Feed(["BTCUSDT", "ETHUSDT"], market="spot", streams=("depth", "trade"))
    with feed:                          # connects, starts the pinned thread
        feed.wait_synced()
        feed.books["BTCUSDT"].bbo()     # a consistent read from any thread
        feed.trades.take()              # trades since the last take, a numpy table
        print(feed.report())            # latency per stage, counters

Threads, and who does what:

- the **feed thread** (:class:`hftcore.feed.PinnedThread`, pinned to a core) pumps the
  WebSocket connections into a :class:`~hftcore.binance._live.LiveConsumer`: every frame
  is parsed and applied without the GIL (books, ring tables, latency stamps); between
  pumps it installs the snapshots the REST thread fetched, switches connections, and
  watches connection ages. It never waits on HTTP or on a handshake.
- the **connector** thread opens connections (handshake, TLS) and closes old ones, with
  exponential backoff and jitter, within Binance's connection-attempt limit.
- the **REST** thread fetches depth snapshots, tracking ``X-MBX-USED-WEIGHT-1M`` and
  honouring 429 / 418 with ``Retry-After``; retries back off with jitter.
- an optional **callback** thread takes the ring tables and calls ``on_trade`` /
  ``on_top`` (never the feed thread).

Connection life: the server's pings are answered by the reader as frames arrive. Before
``max_connection_age`` (Binance closes a connection at 24 h) and at once on
``serverShutdown``, a new connection is opened and subscribed *before* the old one
closes (make-before-break): both are pumped, the book takes each diff once (by update
id), and the old one closes when the new one's diffs reach the book for every symbol
(or after ``overlap_timeout``). A dropped connection is reopened with backoff; if diffs
were missed meanwhile, the books resync by the documented procedure (counted).
"""

from __future__ import annotations

import collections
import json
import logging
import random
import select
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence

import numpy as np

from hftcore.binance import _live
from hftcore.binance.schema import check_market
from hftcore.book._l2book import _fmt
from hftcore.errors import ConnectionClosed, HftcoreError, ProtocolError
from hftcore.feed import PinnedThread
from hftcore.feed.capture import CaptureWriter, replay_into
from hftcore.latency import Report

__all__ = [
    "Feed",
    "FeedError",
    "RingTables",
    "ReplayResult",
    "replay",
    "stream_names",
    "DEFAULT_URLS",
    "SBE_URL",
    "RING_DTYPES",
    "LiveConsumer",
]

log = logging.getLogger("hftcore.binance.feed")

LiveConsumer = _live.LiveConsumer
RING_DTYPES = _live.RING_DTYPES

#: market -> (stream base URL, REST base URL). Spot market data also comes from
#: ``wss://data-stream.binance.vision`` (streams only); USD-M streams are routed:
#: ``/public`` (depth, bookTicker) and ``/market`` (trade, aggTrade, klines).
DEFAULT_URLS = {
    "spot": ("wss://stream.binance.com:9443", "https://api.binance.com"),
    "usdm": ("wss://fstream.binance.com", "https://fapi.binance.com"),
}
#: Spot SBE market data (an Ed25519 API key in ``X-MBX-APIKEY``; times always in µs).
SBE_URL = "wss://stream-sbe.binance.com:9443"
# SBE stream names of the JSON kinds (no aggTrade in SBE).
_SBE_NAMES = {"depth": "depth", "trade": "trade", "bookTicker": "bestBidAsk"}
_REST_PATH = {"spot": "/api/v3/depth", "usdm": "/fapi/v1/depth"}
_REST_LIMIT = {"spot": 5000, "usdm": 1000}
_USDM_ROUTE = {"depth": "public", "bookTicker": "public", "trade": "market", "aggTrade": "market"}
_STREAM_KINDS = ("depth", "trade", "aggTrade", "bookTicker")
# Binance: at most 300 connection attempts per 5 minutes per IP.
_ATTEMPTS, _ATTEMPT_WINDOW = 300, 300.0


class FeedError(HftcoreError):
    """The feed cannot go on (bad arguments, a connection that never opens...)."""


def stream_names(symbols: Iterable[str], streams: Sequence[str], market: str = "spot",
                 depth_speed: str | None = None,
                 encoding: str = "json") -> dict[str, list[str]]:  # fmt: skip
    """Binance stream names per route for ``symbols`` x ``streams``.

    Parameters
    ----------
    symbols : iterable of str
    streams : sequence of {"depth", "trade", "aggTrade", "bookTicker"}
    market : {"spot", "usdm"}
    depth_speed : str, optional
        The diff-depth update speed: spot "100ms" (default) or "1000ms"; USD-M "100ms"
        (default), "0ms" (unthrottled), "250ms", "500ms".
    encoding : {"json", "sbe"}
        "sbe": spot SBE names (``<s>@depth``, ``<s>@trade``, ``<s>@bestBidAsk``).

    Returns
    -------
    dict
        Route ("" for spot; "public" / "market" for USD-M) -> stream names.
    """
    market = check_market(market)
    speed = depth_speed or "100ms"
    out: dict[str, list[str]] = {}
    if encoding == "sbe":
        if market != "spot":
            raise ValueError("SBE market data is spot only")
        for kind in streams:
            if kind not in _SBE_NAMES:
                raise ValueError(f"no SBE stream for {kind!r}: one of {tuple(_SBE_NAMES)}")
            out.setdefault("", []).extend(f"{sym.lower()}@{_SBE_NAMES[kind]}" for sym in symbols)
        return out
    if encoding != "json":
        raise ValueError(f"encoding must be 'json' or 'sbe', got {encoding!r}")
    for kind in streams:
        if kind not in _STREAM_KINDS:
            raise ValueError(f"unknown stream {kind!r}: one of {_STREAM_KINDS}")
        route = _USDM_ROUTE[kind] if market == "usdm" else ""
        for sym in symbols:
            name = f"{sym.lower()}@{kind}"
            if kind == "depth":
                name += f"@{speed}" if speed != "250ms" or market == "spot" else ""
            out.setdefault(route, []).append(name)
    return out


class RingTables:
    """The ring tables of one kind (trades, aggregate trades, top-of-book changes), one
    per symbol, taken by any thread.

    ``take()`` returns the rows of every symbol since the last take, in receive order;
    ``tables["BTCUSDT"].take()`` one symbol's. Rows overwritten before they were taken
    (a taker too slow for ``ring_capacity``) are counted in :attr:`overruns`.
    """

    def __init__(self, rings: dict):
        self._rings = rings

    def __getitem__(self, symbol: str):
        return self._rings[symbol.upper()]

    def __iter__(self):
        return iter(self._rings)

    def take(self) -> np.ndarray:
        parts = [r.take() for r in self._rings.values()]
        out = np.concatenate(parts) if parts else np.empty(0)
        if len(parts) > 1:
            out = out[np.argsort(out["recv_time"], kind="stable")]
        return out

    @property
    def overruns(self) -> int:
        """Rows lost to overruns, all symbols."""
        return sum(r.overruns for r in self._rings.values())

    @property
    def written(self) -> int:
        return sum(r.written for r in self._rings.values())


class _Channel:
    """One route's connections: at most two open (the old and the new during a switch).
    ``ids`` are the consumer's connection numbers, alternating per new connection."""

    def __init__(self, index: int, url: str, carries_depth: bool):
        self.index = index
        self.url = url
        self.carries_depth = carries_depth
        self.generation = 0
        self.active: list[tuple[int, object, float]] = []  # (conn id, ws, opened monotonic)
        self.opening = False
        self.opening_reason = ""
        self.overlap_since: float | None = None

    def next_id(self) -> int:
        cid = 2 * self.index + self.generation % 2
        self.generation += 1
        return cid


class Feed:
    """Binance market data on a pinned thread: books in sync, trades and top of book in
    ring tables, latency per stage, captures.

    Parameters
    ----------
    symbols : sequence of str
        E.g. ``["BTCUSDT", "ETHUSDT"]``.
    market : {"spot", "usdm"}
        Binance Spot or USD-M futures.
    streams : sequence of str
        Any of "depth" (diff depth: the books), "trade", "aggTrade", "bookTicker".
    url : str, optional
        Stream base URL (default: Binance's, :data:`DEFAULT_URLS`); the local exchange
        (:class:`hftcore.sim.binance_exchange.BinanceExchange`) gives its ``ws_url``.
        USD-M routes (``/public``, ``/market``) are appended.
    rest_url : str, optional
        REST base URL for the depth snapshots (default: Binance's).
    cpu : int, optional
        The feed thread's core (default: an isolated core, else the least busy one
        other than 0; see :func:`hftcore.feed.choose_cpu`).
    spin : bool, default False
        Busy-poll the sockets (a core at 100% for the lowest wake-up latency).
    realtime : bool, default False
        Ask for SCHED_FIFO (where permitted; a clear log line where not).
    record : str or os.PathLike, optional
        Capture every frame and book step to this file (``binance.replay`` runs it).
    depth_speed : str, optional
        Diff-depth speed (spot "100ms"/"1000ms"; USD-M "0ms"/"100ms"/...).
    snapshot_limit : int, optional
        Levels per side of REST snapshots (spot default 5000, USD-M 1000).
    max_levels : int, default 5000
        Book capacity per side.
    ring_capacity : int, default 65536
        Rows per ring table (per symbol and kind).
    max_connection_age : float, optional
        Seconds before a connection is rotated (default 23.5 h; Binance closes at 24 h).
    overlap_timeout : float, default 10.0
        Longest make-before-break overlap before the old connection closes anyway.
    encoding : {"json", "sbe"}
        "sbe": Binance's spot SBE market-data streams (binary frames, templates
        10000-10003; default URL :data:`SBE_URL`), which need ``api_key``.
    api_key : str, optional
        The Ed25519 API key sent as ``X-MBX-APIKEY`` (SBE streams; no signature).
    headers : dict, optional
        Extra handshake headers.
    sslopt, proxy, connect_timeout
        Passed to :func:`hftcore.net.ws.connect`.
    on_trade, on_top : callable, optional
        Called on the callback thread with each batch of new trade (or aggTrade) rows /
        top-of-book rows (numpy tables), every ``callback_interval`` seconds.
    log_interval : float, optional
        Seconds between periodic log lines (message rate, per-stage p50/p99/max).

    Notes
    -----
    ``books`` are :class:`~hftcore.book.L2Book` objects the feed thread writes; any
    thread may read them (``bbo()``, ``depth()`` are consistent snapshots: a seqlock).
    Do not write to them.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        market: str = "spot",
        streams: Sequence[str] = ("depth", "trade"),
        *,
        url: str | None = None,
        rest_url: str | None = None,
        cpu: int | None = None,
        spin: bool = False,
        realtime: bool = False,
        record=None,
        depth_speed: str | None = None,
        snapshot_limit: int | None = None,
        max_levels: int = 5000,
        ring_capacity: int = 65536,
        max_connection_age: float | None = None,
        overlap_timeout: float = 10.0,
        encoding: str = "json",
        api_key: str | None = None,
        headers: dict | None = None,
        sslopt: dict | None = None,
        proxy: str | None = None,
        connect_timeout: float = 10.0,
        reconnect_delay: tuple[float, float] = (0.25, 30.0),
        on_trade=None,
        on_top=None,
        callback_interval: float = 0.01,
        log_interval: float | None = None,
        poll_interval: float = 0.02,
    ):
        self.market = check_market(market)
        self.symbols = [s.upper() for s in symbols]
        if not self.symbols:
            raise FeedError("Feed needs at least one symbol")
        self.streams = tuple(streams)
        self.encoding = encoding
        routes = stream_names(self.symbols, self.streams, self.market, depth_speed, encoding)
        base, rest = DEFAULT_URLS[self.market]
        self.headers = dict(headers or {})
        if encoding == "sbe":
            base = SBE_URL
            if api_key:
                self.headers["X-MBX-APIKEY"] = api_key
            if not self.headers.get("X-MBX-APIKEY"):
                raise FeedError("SBE streams need an API key: Feed(..., encoding='sbe', "
                                "api_key=...) (Binance: an Ed25519 key; sent as X-MBX-APIKEY)")  # fmt: skip
        self.url = (url or base).rstrip("/")
        self.rest_url = (rest_url or rest).rstrip("/")
        self.snapshot_limit = snapshot_limit or _REST_LIMIT[self.market]
        self.cpu = cpu
        self.spin = spin
        self.realtime = realtime
        self.sslopt = sslopt
        self.proxy = proxy
        self.connect_timeout = connect_timeout
        self.reconnect_delay = reconnect_delay
        self.max_connection_age = 23.5 * 3600 if max_connection_age is None else max_connection_age
        self.overlap_timeout = overlap_timeout
        self.poll_interval = poll_interval
        self.log_interval = log_interval
        self.callback_interval = callback_interval
        self.on_trade = on_trade
        self.on_top = on_top
        self.record = record
        self._writer = None
        if record is not None:
            meta = {"source": "hftcore.binance.Feed", "market": self.market,
                    "symbols": self.symbols, "streams": list(self.streams),
                    "time_unit": "us", "url": self.url}  # fmt: skip
            self._writer = CaptureWriter(str(record), metadata=meta)
        self.consumer = LiveConsumer(self.symbols, self.market, "us", max_levels=max_levels,
                                     ring_capacity=ring_capacity, capture=self._writer)  # fmt: skip
        self.consumer.stop_on_events = True
        self.books = self.consumer.books
        self.trades = RingTables(self.consumer.trade_rings)
        self.agg_trades = RingTables(self.consumer.agg_trade_rings)
        self.tops = RingTables(self.consumer.top_rings)
        self._channels = []
        for i, (route, names) in enumerate(sorted(routes.items())):
            prefix = f"{self.url}/{route}" if route else self.url
            query = "/".join(names)
            # µs event times (SBE carries µs always, and takes no timeUnit).
            ch_url = f"{prefix}/stream?streams={query}" + (
                "" if encoding == "sbe" else "&timeUnit=MICROSECOND")  # fmt: skip
            carries = any(n.split("@")[1] == "depth" for n in names)
            self._channels.append(_Channel(i, ch_url, carries))
        self._inbox: collections.deque = collections.deque()
        self._stop = threading.Event()
        self._thread: PinnedThread | None = None
        self._connector: threading.Thread | None = None
        self._rest: threading.Thread | None = None
        self._callbacks: threading.Thread | None = None
        self._connect_q: collections.deque = collections.deque()
        self._connect_cv = threading.Condition()
        self._rest_q: collections.deque = collections.deque()
        self._rest_cv = threading.Condition()
        self._requested: set[str] = set()
        self._seen_events = -1
        self._attempts: collections.deque = collections.deque()
        self._started = 0.0
        self._periodic = None
        self.counters = collections.Counter()
        self.weight_used = 0
        self.snapshot_seconds: dict[str, float] = {}
        self.errors: collections.deque = collections.deque(maxlen=100)

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Feed:
        """Open the connections and start the threads; returns at once (the books sync
        in the background: :meth:`wait_synced`)."""
        if self._thread is not None:
            raise FeedError("feed already started")
        self._started = time.monotonic()
        self._stop.clear()
        self._connector = threading.Thread(target=self._connector_loop, name="hftcore-connect",
                                           daemon=True)  # fmt: skip
        self._rest = threading.Thread(target=self._rest_loop, name="hftcore-rest", daemon=True)
        self._connector.start()
        self._rest.start()
        for ch in self._channels:
            self._open(ch, "start")
        self._thread = PinnedThread(self._step, cpu=self.cpu, name="hftcore-binance",
                                    realtime=self.realtime, poll_interval=self.poll_interval,
                                    teardown=self._teardown)  # fmt: skip
        self._thread.start()
        if self.on_trade is not None or self.on_top is not None:
            self._callbacks = threading.Thread(target=self._callback_loop,
                                               name="hftcore-callbacks", daemon=True)  # fmt: skip
            self._callbacks.start()
        if self.log_interval:
            from hftcore.latency import PeriodicLogger

            self._periodic = PeriodicLogger(self.consumer.stages, self.log_interval,
                                            logger=log)  # fmt: skip
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread and close every connection (bounded by ``timeout``); raises
        an exception the feed thread ended with."""
        self._stop.set()
        with self._connect_cv:
            self._connect_cv.notify_all()
        with self._rest_cv:
            self._rest_cv.notify_all()
        error = None
        if self._thread is not None:
            try:
                self._thread.stop(timeout)
            except BaseException as exc:  # re-raised after the rest is stopped
                error = exc
        for t in (self._connector, self._rest, self._callbacks):
            if t is not None:
                t.join(timeout)
        # Connections the connector opened after the feed thread ended.
        while self._inbox:
            item = self._inbox.popleft()
            if item[0] == "conn":
                _close_quietly(item[3])
        if self._writer is not None:
            self._writer.close()
        if error is not None:
            raise error

    def __enter__(self) -> Feed:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_synced(self, timeout: float = 30.0) -> bool:
        """Wait until every symbol's book is live (snapshot installed, diffs chained).
        Returns False on timeout (see :meth:`stats` for why)."""
        if "depth" not in self.streams:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_dead()
            if all(self.consumer.symbol_stats(s)["state"] == "live" for s in self.symbols):
                return True
            time.sleep(0.01)
        return False

    def _raise_if_dead(self):
        t = self._thread
        if t is not None and not t.is_alive and t.error is not None:
            raise FeedError(f"the feed thread ended: {t.error!r}") from t.error

    # -- the feed thread --------------------------------------------------------------

    def _step(self):
        c = self.consumer
        live = [(cid, ws) for ch in self._channels for cid, ws, _ in ch.active]
        if not live:
            time.sleep(self.poll_interval if not self._inbox else 0)
        elif len(live) == 1:
            # One connection: receive for a whole poll interval without the GIL (the
            # consumer stops early when it has work for this loop), so another Python
            # thread holding the GIL does not delay frames between receives.
            cid, ws = live[0]
            c.conn = cid
            self._pump(cid, ws, 0.0 if self.spin else self.poll_interval, self.poll_interval)
        else:
            # Bytes a reader already holds (TLS plaintext) are invisible to select.
            held = [cid for cid, ws in live if ws.pending]
            timeout = 0.0 if (self.spin or held) else self.poll_interval
            ready, _, _ = select.select([ws for _, ws in live], [], [], timeout)
            for cid, ws in live:
                if ws in ready or cid in held:
                    c.conn = cid
                    self._pump(cid, ws, 0.0)
        if c.events != self._seen_events:
            self._seen_events = c.events
            self._service()
        while self._inbox:
            self._handle(self._inbox.popleft())
        self._check_connections()
        if self._periodic is not None:
            self._periodic.tick()
        return self._stop.is_set()

    def _pump(self, cid, ws, timeout, budget=0.0):
        try:
            ws.pump(self.consumer, timeout, self.spin, budget)
        except (ConnectionClosed, ProtocolError, OSError) as exc:
            self._dropped(cid, ws, exc)

    def _dropped(self, cid, ws, exc):
        for ch in self._channels:
            for item in list(ch.active):
                if item[0] != cid or item[1] is not ws:
                    continue
                ch.active.remove(item)
                self.counters["drops"] += 1
                log.warning("connection %d closed: %r", cid, exc)
                self.errors.append(f"connection {cid}: {exc!r}")
                self._retire(ws)
                _close_quietly(ws)
                if ch.active:
                    # One of an overlapping pair: the other carries on alone (the
                    # consumer places what it held, or resyncs on a real gap).
                    ch.overlap_since = None
                    if ch.carries_depth:
                        self.consumer.set_link(ch.active[-1][0], False)
                elif not ch.opening:
                    self._open(ch, "reconnect")

    def _service(self):
        c = self.consumer
        for sym in c.wanted_snapshots():
            if sym not in self._requested:
                self._requested.add(sym)
                self._request_snapshot(sym)
        for kind, cid, body in c.take_notes():
            if kind == "shutdown":
                log.info("serverShutdown on connection %d: opening its successor", cid)
                self.counters["shutdowns"] += 1
                c.clear_shutdown(cid)
                ch = self._channels[cid // 2]
                if not ch.opening and ch.overlap_since is None:
                    self._open(ch, "shutdown")
            elif kind == "error":
                log.error("exchange error on connection %d: %s", cid, body[:300])
                self.errors.append(body[:300].decode("utf-8", "replace"))
            else:
                log.debug("reply on connection %d: %s", cid, body[:300])
        for text in c.take_errors():
            log.error("undecodable message skipped: %s", text)
            self.errors.append(text)

    def _handle(self, item):
        kind = item[0]
        if kind == "snapshot":
            _, sym, body, stamp = item
            try:
                verdict = self.consumer.install_snapshot(sym, body, stamp)
            except (ValueError, HftcoreError) as exc:
                log.error("%s: bad snapshot: %s; fetching again", sym, exc)
                self.errors.append(f"{sym} snapshot: {exc}")
                verdict = "bad"
            self._requested.discard(sym)
            if verdict != "live":
                self.counters["snapshot_refetches"] += 1
            self._seen_events = -1  # look at wanted snapshots again
        elif kind == "conn":
            _, ch, cid, ws, reason = item
            ch.opening = False
            if self._stop.is_set():
                _close_quietly(ws)
                return
            now = time.monotonic()
            ch.active.append((cid, ws, now))
            if len(ch.active) > 1:
                ch.overlap_since = now
                if ch.carries_depth:
                    self.consumer.set_link(ch.active[0][0], True)
            elif ch.carries_depth:
                self.consumer.set_link(cid, False)
            self.counters["rotations" if reason in ("rotation", "shutdown") else
                          ("reconnects" if reason == "reconnect" else "opened")] += 1  # fmt: skip
        elif kind == "failed":
            _, ch, exc = item
            ch.opening = False
            self.errors.append(f"connect: {exc!r}")
            if not ch.active:
                self._open(ch, "reconnect")

    def _check_connections(self):
        now = time.monotonic()
        for ch in self._channels:
            if ch.overlap_since is not None:
                new_id = ch.active[-1][0]
                joined = not ch.carries_depth or self.consumer.joined(new_id)
                if joined or now - ch.overlap_since > self.overlap_timeout:
                    if not joined:
                        log.warning("connection %d: overlap timed out before every book "
                                    "joined it; switching", new_id)  # fmt: skip
                    self._end_overlap(ch)
            elif ch.active and not ch.opening:
                opened = ch.active[0][2]
                if now - opened > self.max_connection_age:
                    log.info("connection %d is %.0f s old: rotating", ch.active[0][0],
                             now - opened)  # fmt: skip
                    self._open(ch, "rotation")

    def _end_overlap(self, ch):
        """The newest connection of ``ch`` becomes the only one."""
        ch.overlap_since = None
        keep = ch.active[-1]
        for item in ch.active[:-1]:
            self._retire(item[1])
            self._close_later(item[1])
        ch.active = [keep]
        if ch.carries_depth:
            self.consumer.set_link(keep[0], False)

    def _teardown(self):
        for ch in self._channels:
            for _, ws, _ in ch.active:
                self._retire(ws)
                _close_quietly(ws)
            ch.active = []

    # -- the connector thread ---------------------------------------------------------

    def _open(self, ch, reason):
        ch.opening = True
        ch.opening_reason = reason
        with self._connect_cv:
            self._connect_q.append(("open", ch, reason))
            self._connect_cv.notify()

    def _retire(self, ws):
        """Keep the counters of a connection that is going away."""
        self.counters["pings_answered"] += getattr(ws, "pings_answered", 0)

    def _close_later(self, ws):
        with self._connect_cv:
            self._connect_q.append(("close", ws))
            self._connect_cv.notify()

    def _connector_loop(self):
        from hftcore.net import ws as wsmod

        failures = 0
        while not self._stop.is_set():
            with self._connect_cv:
                while not self._connect_q and not self._stop.is_set():
                    self._connect_cv.wait(0.5)
                if self._stop.is_set():
                    break
                task = self._connect_q.popleft()
            if task[0] == "close":
                _close_quietly(task[1])
                continue
            _, ch, reason = task
            while not self._stop.is_set():
                self._respect_attempt_limit()
                try:
                    ws = wsmod.connect(ch.url, headers=self.headers or None,
                                       timeout=self.connect_timeout, sslopt=self.sslopt,
                                       proxy=self.proxy)  # fmt: skip
                except Exception as exc:
                    failures += 1
                    self.counters["connect_failures"] += 1
                    delay = _backoff(failures, *self.reconnect_delay)
                    log.warning("connect to %s failed (%r); retrying in %.2f s", ch.url, exc,
                                delay)  # fmt: skip
                    self.errors.append(f"connect: {exc!r}")
                    if self._stop.wait(delay):
                        break
                    continue
                failures = 0
                self._inbox.append(("conn", ch, ch.next_id(), ws, reason))
                break

    def _respect_attempt_limit(self):
        now = time.monotonic()
        while self._attempts and now - self._attempts[0] > _ATTEMPT_WINDOW:
            self._attempts.popleft()
        if len(self._attempts) >= _ATTEMPTS:
            wait = _ATTEMPT_WINDOW - (now - self._attempts[0])
            log.warning("connection-attempt limit reached: waiting %.0f s", wait)
            self._stop.wait(wait)
        self._attempts.append(time.monotonic())

    # -- the REST thread --------------------------------------------------------------

    def _request_snapshot(self, sym):
        with self._rest_cv:
            self._rest_q.append(sym)
            self._rest_cv.notify()

    def _rest_loop(self):
        while not self._stop.is_set():
            with self._rest_cv:
                while not self._rest_q and not self._stop.is_set():
                    self._rest_cv.wait(0.5)
                if self._stop.is_set():
                    break
                sym = self._rest_q.popleft()
            body = self._fetch_snapshot(sym)
            if body is not None:
                stamp = (time.time_ns(), time.monotonic_ns(), 0)
                self._inbox.append(("snapshot", sym, body, stamp))

    def _fetch_snapshot(self, sym) -> bytes | None:
        url = f"{self.rest_url}{_REST_PATH[self.market]}?symbol={sym}&limit={self.snapshot_limit}"
        failures = 0
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "hftcore"})
                with urllib.request.urlopen(req, timeout=self.connect_timeout) as resp:
                    body = resp.read()
                    self._weight(resp.headers)
                self.counters["snapshots_fetched"] += 1
                self.snapshot_seconds[sym] = time.monotonic() - t0
                return body
            except urllib.error.HTTPError as exc:
                self._weight(exc.headers)
                if exc.code in (429, 418):
                    retry = _retry_after(exc.headers, 1.0)
                    self.counters[f"rest_{exc.code}"] += 1
                    log.warning("REST %d for %s: waiting %.1f s (Retry-After)", exc.code, sym,
                                retry)  # fmt: skip
                    if self._stop.wait(retry):
                        return None
                    continue
                failures += 1
                self.errors.append(f"REST {sym}: HTTP {exc.code}")
            except (OSError, ValueError) as exc:
                failures += 1
                self.errors.append(f"REST {sym}: {exc!r}")
            self.counters["rest_failures"] += 1
            if self._stop.wait(_backoff(failures, 0.2, 10.0)):
                return None
        return None

    def _weight(self, headers):
        if headers is None:
            return
        used = headers.get("X-MBX-USED-WEIGHT-1M") or headers.get("x-mbx-used-weight-1m")
        if used is not None:
            try:
                self.weight_used = int(used)
            except ValueError:
                pass

    # -- the callback thread ----------------------------------------------------------

    def _callback_loop(self):
        while not self._stop.wait(self.callback_interval):
            try:
                if self.on_trade is not None:
                    for tables in (self.trades, self.agg_trades):
                        rows = tables.take()
                        if len(rows):
                            self.on_trade(rows)
                if self.on_top is not None:
                    rows = self.tops.take()
                    if len(rows):
                        self.on_top(rows)
            except Exception as exc:  # a callback's error must not stop the feed
                log.exception("callback failed")
                self.errors.append(f"callback: {exc!r}")

    # -- reading the state ------------------------------------------------------------

    def connections(self) -> list[dict]:
        """The open connections: id, URL, age in seconds."""
        now = time.monotonic()
        return [{"id": cid, "url": ch.url, "age_s": now - opened}
                for ch in self._channels for cid, _, opened in ch.active]  # fmt: skip

    def stats(self, levels: int = 20) -> dict:
        """Everything in one dict, in the shape ``hftcore binance watch --json`` writes:
        per-symbol books (top ``levels``, decimal strings) and counters, connection
        counters, latency per stage and jitter (ns)."""
        c = self.consumer
        symbols = {}
        for sym in self.symbols:
            st = c.symbol_stats(sym)
            bids, asks = self.books[sym].depth(levels)
            symbols[sym] = {
                "last_update_id": st["last_update_id"],
                "bids": [[_dec(p), _dec(q)] for p, q in bids],
                "asks": [[_dec(p), _dec(q)] for p, q in asks],
                "messages": st["messages"],
                "levels": {"bids": self.books[sym].bid_count, "asks": self.books[sym].ask_count},
                "gaps": st["gaps"],
                "resyncs": st["resyncs"],
                "state": st["state"],
                "applied": st["applied"],
                "stale": st["stale"],
                "snapshot_seconds": self.snapshot_seconds.get(sym),
                "trades": self.consumer.trade_rings[sym].written
                + self.consumer.agg_trade_rings[sym].written,
            }
        report = self.latency_report()
        d = report.as_dict()
        return {
            "symbols": symbols,
            "connections": {
                "opened": self.counters["opened"],
                "reconnects": self.counters["reconnects"],
                "rotations": self.counters["rotations"],
                "drops": self.counters["drops"],
                "shutdowns": self.counters["shutdowns"],
                "connect_failures": self.counters["connect_failures"],
                "pings_answered": self.counters["pings_answered"]
                + sum(ws.pings_answered for ch in self._channels for _, ws, _ in ch.active),
            },
            "messages": c.messages,
            "decode_errors": c.decode_errors,
            "rest": {
                "weight_used_1m": self.weight_used,
                **{k: v for k, v in self.counters.items() if k.startswith(("rest", "snapshot"))},
            },  # fmt: skip
            "latency_ns": {k: v for k, v in d.items() if not k.startswith("_")},
            "jitter_ns": {
                "rfc3550": report.jitter_ns,
                "inter_arrival": report.details().get("inter_arrival"),
            },  # fmt: skip
            "overruns": {
                "trades": self.trades.overruns + self.agg_trades.overruns,
                "tops": self.tops.overruns,
            },  # fmt: skip
        }

    def latency_report(self) -> Report:
        """Latency per stage (``event_to_recv``, ``recv_to_applied``, ``event_to_applied``,
        ``kernel_to_recv`` on ws://...) and jitter, as a :class:`hftcore.latency.Report`."""
        elapsed = time.monotonic() - self._started if self._started else None
        return Report.from_stages(self.consumer.stages, counters={"messages": self.consumer.messages},
                                  elapsed_s=elapsed, title="Binance feed latency")  # fmt: skip

    def report(self) -> str:
        """A text report: per-symbol state and counters, connections, latency."""
        lines = []
        for sym in self.symbols:
            st = self.consumer.symbol_stats(sym)
            bp, bq, ap, aq = self.books[sym].bbo()
            lines.append(
                f"{sym:<10} {st['state']:<8} u={st['last_update_id']} bid {_dec(bp)} x {_dec(bq)}"
                f" | ask {_dec(ap)} x {_dec(aq)}  msgs {st['messages']} gaps {st['gaps']}"
                f" resyncs {st['resyncs']} stale {st['stale']}"
            )
        cn = self.counters
        lines.append(f"connections: opened {cn['opened']} reconnects {cn['reconnects']} "
                     f"rotations {cn['rotations']} drops {cn['drops']} "
                     f"shutdowns {cn['shutdowns']}")  # fmt: skip
        lines.append(self.latency_report().text())
        return "\n".join(lines)

    @property
    def thread(self) -> PinnedThread | None:
        """The feed thread (its ``stats()`` say which core it really runs on)."""
        return self._thread


class ReplayResult:
    """What :func:`replay` ends with: the books, the ring tables and the counters."""

    def __init__(self, consumer, metadata):
        self.consumer = consumer
        self.metadata = metadata
        self.books = consumer.books
        self.trades = RingTables(consumer.trade_rings)
        self.agg_trades = RingTables(consumer.agg_trade_rings)
        self.tops = RingTables(consumer.top_rings)

    def stats(self, levels: int = 20) -> dict:
        out = {}
        for sym in self.consumer.symbols:
            st = self.consumer.symbol_stats(sym)
            bids, asks = self.books[sym].depth(levels)
            out[sym] = dict(st, bids=[[_dec(p), _dec(q)] for p, q in bids],
                            asks=[[_dec(p), _dec(q)] for p, q in asks])  # fmt: skip
        return {"symbols": out, "messages": self.consumer.messages,
                "decode_errors": self.consumer.decode_errors}  # fmt: skip


def replay(path, symbols: Sequence[str] | None = None, market: str | None = None,
           max_levels: int = 5000) -> ReplayResult:  # fmt: skip
    """Run a capture made with ``Feed(record=...)`` through the same pipeline.

    Frames, snapshot installs and connection switches are replayed in the order the feed
    thread saw them, so the books end as the live ones did.

    Parameters
    ----------
    path : str or os.PathLike
    symbols, market : optional
        Default: from the capture's metadata.
    """
    meta = _capture_metadata(path)
    symbols = list(symbols or meta.get("symbols") or [])
    if not symbols:
        raise FeedError(f"{path}: no symbols in the capture's metadata; pass symbols=")
    market = market or meta.get("market", "spot")
    consumer = LiveConsumer(symbols, market, meta.get("time_unit", "us"), max_levels=max_levels)
    replay_into(str(path), consumer)
    return ReplayResult(consumer, meta)


def _capture_metadata(path) -> dict:
    from hftcore.feed.capture import capture_info

    meta = capture_info(str(path)).metadata
    if isinstance(meta, (bytes, str)):
        meta = json.loads(meta or "{}")
    return dict(meta or {})


def _dec(v: int) -> str:
    """A price or quantity (8 implied decimals) as Binance prints it: exact decimal text."""
    return _fmt(int(v), 8)


def _backoff(failures: int, first: float, cap: float) -> float:
    """Exponential backoff with full jitter: uniform in [first/2, min(cap, first*2**n)]."""
    top = min(cap, first * (2 ** min(failures, 16)))
    return random.uniform(first / 2, max(first / 2, top))


def _retry_after(headers, default: float) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After")))
    except (TypeError, ValueError):
        return default


def _close_quietly(ws):
    try:
        ws.close(timeout=0.5)
    except Exception:  # closing a dead connection: nothing to report
        pass
