"""A Binance-compatible market-data exchange on loopback, for tests, demos and benchmarks.

:class:`BinanceExchange` runs a real WebSocket server (the ``websockets`` library, asyncio)
in its own thread with its own event loop, started and stopped from ordinary code::

    with BinanceExchange(["BTCUSDT", "ETHUSDT"], market="spot", rate=2000, seed=1) as ex:
        url = ex.stream_url(["btcusdt@depth@100ms", "btcusdt@trade"])   # combined, µs
        rest = ex.rest_url + "/api/v3/depth?symbol=BTCUSDT&limit=1000"
        ...
        last_update_id, bids, asks = ex.book("BTCUSDT")

One port serves everything; paths as on Binance:

- ``/ws/<stream>``, ``/ws``: raw streams (spot); ``/ws`` then ``SUBSCRIBE``.
- ``/stream?streams=a/b``: combined streams, ``{"stream":..,"data":..}``.
- ``/public/ws/..``, ``/public/stream?..``, ``/market/ws/..``, ...: USD-M routed paths
  (as on ``fstream.binance.com`` today): depth and bookTicker on ``/public``, trade and
  aggTrade on ``/market``; USD-M has no unrouted ``/ws`` or ``/stream`` (HTTP 404), and
  a stream on the wrong route is refused.
- ``/sbe/ws/..``, ``/sbe/stream``: spot SBE streams (:attr:`BinanceExchange.sbe_url`):
  binary frames (templates 10000 trade, 10001 bestBidAsk, 10002 depth20, 10003 depth
  diff), the ``X-MBX-APIKEY`` header required (HTTP 401 without).
- ``GET /api/v3/depth``: REST depth snapshot (spot; ``/fapi/v1/depth`` USD-M).

Add ``timeUnit=MICROSECOND`` to a stream URL's query for µs event times (milliseconds
otherwise; SBE is always µs). REST is answered on the same port from websockets'
``process_request`` hook: a request without ``Upgrade: websocket`` gets an HTTP answer
and the connection closes (``Connection: close``).

Streams (symbols lowercase in names): spot ``<s>@depth@100ms``, ``<s>@depth`` (and
``@depth@1000ms``), ``<s>@trade``, ``<s>@aggTrade``, ``<s>@bookTicker``; USD-M
``<s>@depth``, ``@depth@0ms``/``@100ms``/``@250ms``/``@500ms`` (with ``pu``),
``<s>@trade``, ``<s>@aggTrade``, ``<s>@bookTicker``; SBE ``<s>@trade``,
``<s>@bestBidAsk``, ``<s>@depth``, ``<s>@depth20`` (every 100 ms). Every depth stream
carries every diff the generator makes, whatever its update-speed suffix (the suffix is
part of the name a client subscribes to, nothing more); unknown streams and symbols are
refused (an error reply, or HTTP 400 in the URL), where Binance would accept them and
stay silent.

The event sequence
------------------
One sequence for all connections, as on the exchange: a generator task draws events
from :func:`hftcore.sim.binance.iter_events` (50% depth diffs, 30% trades, 20% book
tickers, symbols at random) at ``rate`` events per second **in total** (all symbols
and kinds: about ``rate / 2`` depth diffs per second). Each event's times are its send
time (``E``: CLOCK_REALTIME when it is rendered, µs or ms; ``T`` a little earlier). A
trade event goes out on ``@trade`` and ``@aggTrade`` (one trade per aggregate). The
exchange applies every diff to its own book per symbol (:meth:`BinanceExchange.book`),
keeping the last ``history`` diffs of each symbol so :meth:`BinanceExchange.book_at`
gives the book at any recent update id. Before serving, ``warmup`` events fill the
books.

Frames are written pre-framed and shared by every connection that takes the same
rendering (server frames are unmasked, so the bytes are identical), one socket write per
connection per generator tick; websockets does the handshake, pings, the close
handshake and reading. No compression is negotiated. A connection whose unsent output
exceeds ``write_buffer_limit`` is dropped (a slow consumer).

Connection rules (as Binance documents them)
--------------------------------------------
Pings every ``ping_interval`` (spot 20 s, USD-M 180 s) with a payload; no pong within
``pong_timeout`` (spot 60 s, USD-M 600 s) closes the connection (code 1011). At most
``message_limit`` incoming messages per second (spot 5, USD-M 10; text, binary, ping
and pong frames all count, in a sliding one-second window): one more closes the
connection (code 1008). At most ``max_streams`` (1024) streams per connection.
``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY`` and
``GET_PROPERTY`` (``combined``) are answered with ``{"result":..,"id":..}``, errors with
``{"code":..,"msg":..,"id":..}``. Keep test ping intervals well above
``1 / message_limit`` seconds: pongs count.

REST
----
``GET /api/v3/depth?symbol=&limit=`` (spot: default 100, at most 5000, larger limits
get 5000) and ``GET /fapi/v1/depth`` (USD-M: limits 5, 10, 20, 50, 100, 500, 1000,
default 500; other values: HTTP 400) answer ``{"lastUpdateId", "bids", "asks"}`` (USD-M
also ``E`` and ``T``), prices and quantities as decimal strings. Request weights as
Binance documents them: spot 1-100: 5, 101-500: 25, 501-1000: 50, 1001-5000: 250;
USD-M 5/10/20/50: 2, 100: 5, 500: 10, 1000: 20. Every answer carries
``X-MBX-USED-WEIGHT-1M`` (the weight used by the client's IP in the current clock
minute); over ``weight_limit`` (spot 6000, USD-M 2400) the answer is 429 with
``Retry-After`` (seconds to the next minute; the refused request costs nothing). A
client that asks again before its ``Retry-After`` has passed commits a violation;
``ban_after`` violations ban the IP: 418 with ``Retry-After`` for ``ban_seconds``.

Faults on demand
----------------
:meth:`~BinanceExchange.drop_next_diff` (a gap on one connection or all),
:meth:`~BinanceExchange.disconnect` (abrupt, or a close code),
:meth:`~BinanceExchange.server_shutdown` (the ``serverShutdown`` event, then close
after a grace period), :attr:`~BinanceExchange.snapshot_delay` (a slow snapshot),
:meth:`~BinanceExchange.stale_snapshot` (a snapshot older than the stream),
:meth:`~BinanceExchange.rest_429`, :meth:`~BinanceExchange.silence` (nothing sent, pings
included), ``max_connection_age``; and periodic ones: ``gap_every``,
``disconnect_every``, ``shutdown_every``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from hftcore.binance import sbe_encode
from hftcore.binance.schema import SCALE, check_market
from hftcore.sim.binance import DEFAULT_SYMBOLS, Event, iter_events

__all__ = [
    "BinanceExchange",
    "ConnectionInfo",
    "DEFAULTS",
    "rest_weight",
    "render",
]

log = logging.getLogger("hftcore.sim.binance_exchange")

#: Per-market defaults: Binance's documented limits.
DEFAULTS = {
    "spot": {
        "ping_interval": 20.0,
        "pong_timeout": 60.0,
        "message_limit": 5,
        "weight_limit": 6000,
        "rest_path": "/api/v3/depth",
        "default_limit": 100,
        "max_limit": 5000,
    },
    "usdm": {
        "ping_interval": 180.0,
        "pong_timeout": 600.0,
        "message_limit": 10,
        "weight_limit": 2400,
        "rest_path": "/fapi/v1/depth",
        "default_limit": 500,
        "max_limit": 1000,
    },
}

_USDM_LIMITS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
_SPOT_DEPTH = {"depth", "depth@100ms", "depth@1000ms"}
_USDM_DEPTH = {"depth", "depth@0ms", "depth@100ms", "depth@250ms", "depth@500ms"}
_ROUTE = {"depth": "public", "bookTicker": "public", "trade": "market", "aggTrade": "market"}
_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def rest_weight(market: str, limit: int) -> int:
    """The request weight of a depth snapshot of ``limit`` levels, as Binance documents it.

    Parameters
    ----------
    market : {"spot", "usdm"}
    limit : int
        Spot: 1-5000; USD-M: one of 5, 10, 20, 50, 100, 500, 1000.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For a USD-M limit that is not one of the valid values.
    """
    if check_market(market) == "spot":
        limit = min(max(limit, 1), 5000)
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    try:
        return _USDM_LIMITS[limit]
    except KeyError:
        raise ValueError(f"USD-M depth limit must be one of {sorted(_USDM_LIMITS)}") from None


class ConnectionInfo(NamedTuple):
    """One stream connection as the exchange sees it (a copy, taken when asked)."""

    id: int  # the exchange's number for it; pass it (or this record) to the fault methods
    path: str  # the request path with its query, e.g. "/stream?streams=btcusdt@trade"
    streams: tuple  # subscribed stream names, in subscription order
    combined: bool  # payloads wrapped as {"stream":..,"data":..}
    time_unit: str  # "ms" or "us"
    encoding: str  # "json" or "sbe"
    remote: tuple  # the client's (host, port)
    opened: float  # when the connection opened, seconds since the epoch
    messages_sent: int  # stream events, replies and serverShutdown sent
    bytes_sent: int  # WebSocket frame bytes written for them
    messages_received: int  # text/binary/ping/pong frames received
    pings_sent: int
    pongs_received: int
    diffs_dropped: int  # depth diffs withheld (drop_next_diff, gap_every, silence)
    silenced: bool  # inside a silence() period


class _Conn:
    """The exchange's state for one stream connection (event-loop thread only)."""

    __slots__ = ("id", "ws", "path", "streams", "combined", "micro", "sbe", "route",
                 "opened", "remote", "sent", "nbytes", "received", "pings", "pongs",
                 "dropped", "drop_next", "silent_until", "out", "recent", "closing",
                 "tasks")  # fmt: skip

    def __init__(self, cid, ws, path, streams, combined, micro, sbe, route):
        self.id = cid
        self.ws = ws
        self.path = path
        self.streams = dict.fromkeys(streams)  # ordered set: name -> (symbol, kind)
        self.combined = combined
        self.micro = micro
        self.sbe = sbe
        self.route = route
        self.opened = time.time()
        self.remote = tuple(ws.remote_address[:2]) if ws.remote_address else ("", 0)
        self.sent = self.nbytes = self.received = self.pings = self.pongs = 0
        self.dropped = 0
        self.drop_next: set[str] = set()
        self.silent_until = 0.0  # monotonic
        self.out: list[bytes] = []
        self.recent: deque[float] = deque()
        self.closing = False
        self.tasks: list[asyncio.Task] = []

    def info(self) -> ConnectionInfo:
        return ConnectionInfo(
            self.id, self.path, tuple(self.streams), self.combined,
            "us" if self.micro else "ms", "sbe" if self.sbe else "json", self.remote,
            self.opened, self.sent, self.nbytes, self.received, self.pings, self.pongs,
            self.dropped, self.silent_until > time.monotonic(),
        )  # fmt: skip


def _frame(payload: bytes, opcode: int = 1) -> bytes:
    """An unmasked, unfragmented WebSocket frame (RFC 6455 5.2) holding ``payload``."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class _Book:
    """A symbol's authoritative book (price -> qty dicts) and its recent diffs."""

    def __init__(self, history: int):
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.last_update_id = -1
        self.base = ({}, {}, -1)  # the book before the first kept diff
        self.diffs: deque = deque()  # (U, u, bids, asks)
        self.history = history
        self.changed = False

    def apply(self, ev: Event) -> None:
        if self.last_update_id < 0:
            self.last_update_id = ev.prev_final_update_id
            self.base = ({}, {}, ev.prev_final_update_id)
        for side, levels in ((self.bids, ev.bids), (self.asks, ev.asks)):
            _put(side, levels)
        self.last_update_id = ev.final_update_id
        self.diffs.append((ev.first_update_id, ev.final_update_id, ev.bids, ev.asks))
        while len(self.diffs) > self.history:
            self.fold()
        self.changed = True

    def fold(self) -> None:
        _, u, b, a = self.diffs.popleft()
        bids, asks, _ = self.base
        _put(bids, b)
        _put(asks, a)
        self.base = (bids, asks, u)

    def forget(self) -> None:
        """Fold every kept diff into the base (the history starts now)."""
        while self.diffs:
            self.fold()

    def at(self, update_id: int):
        bids, asks, base_id = self.base
        if update_id < base_id:
            raise ValueError(
                f"update id {update_id} is older than the history kept (from {base_id})"
            )
        bids, asks, lid = dict(bids), dict(asks), base_id
        for _, u, b, a in self.diffs:
            if u > update_id:
                break
            _put(bids, b)
            _put(asks, a)
            lid = u
        return lid, bids, asks

    def lag_id(self, lag: int | None) -> int:
        """The update id ``lag`` diffs back (the oldest kept when None or too far)."""
        if lag is None or lag >= len(self.diffs):
            return self.base[2]
        return self.diffs[-lag - 1][1]


def _put(side: dict, levels) -> None:
    for p, q in levels:
        if q:
            side[p] = q
        else:
            side.pop(p, None)


def _sorted(bids: dict, asks: dict, limit: int | None = None):
    b = sorted(bids.items(), key=lambda kv: -kv[0])[:limit]
    a = sorted(asks.items())[:limit]
    return b, a


class BinanceExchange:
    """A Binance-compatible market-data server on loopback (see the module doc).

    Parameters
    ----------
    symbols : sequence of str, default ("BTCUSDT", "ETHUSDT", "BNBUSDT")
        Symbols served (upper case; stream names use them lower-cased).
    market : {"spot", "usdm"}, default "spot"
        Message shapes, paths, limits and REST endpoint of Binance Spot or USD-M futures.
    rate : float, default 1000
        Events per second in total (all symbols and kinds; about half are depth diffs).
        0 pauses the generator (use :meth:`step` to make events by hand). The attribute
        may be changed at run time; the new rate applies from the next tick.
    seed : int, default 0
        Seed of the event sequence (:func:`hftcore.sim.binance.iter_events`).
    host : str, default "127.0.0.1"
    port : int, default 0
        0 picks a free port (see :attr:`port`).
    ping_interval, pong_timeout : float, optional
        Seconds between server pings and the pong deadline after each; the market's
        defaults (spot 20/60, USD-M 180/600) when omitted. ``ping_interval=0`` sends no
        pings.
    message_limit : int, optional
        Incoming messages per second a connection may send (spot 5, USD-M 10).
    max_streams : int, default 1024
        Streams per connection.
    max_connection_age : float, optional
        Close connections (code 1000) this many seconds after they opened, as the 24-hour
        limit does.
    snapshot_delay : float, default 0
        Seconds every REST snapshot is held back after the book is read (a slow
        snapshot: the diffs go on meanwhile). Settable at run time.
    weight_limit : int, optional
        REST request weight per IP per minute (spot 6000, USD-M 2400).
    ban_after : int, default 3
        Requests made before a 429's ``Retry-After`` passed that ban the IP (418).
    ban_seconds : float, default 120
        Length of a ban (``Retry-After`` of the 418 answers).
    weight_window : float, default 60
        Seconds of the weight window (Binance: one clock minute; the header keeps its
        ``-1M`` name). Tests may widen it to stay clear of a minute boundary.
    history : int, default 20000
        Diffs kept per symbol for :meth:`book_at` and stale snapshots.
    warmup : int, default 2000
        Events applied to the books before serving (not sent).
    pregenerate : int, default 0
        Events drawn from the sequence in :meth:`start`, before serving, and sent first
        (then the generator goes on live). Python makes an event in about 40 µs on this
        class of machine (a depth diff about 80 µs): benchmarks that need more than a few
        thousand events per second pregenerate what they will send, so the rate is
        limited by rendering and sending only. Same sequence either way.
    gap_every : int, optional
        Withhold every N-th depth diff (counted over all symbols) from every connection:
        a gap that every client sees (the exchange's book still takes the diff).
    disconnect_every : float, optional
        Drop every connection abruptly every S seconds.
    shutdown_every : float, optional
        :meth:`server_shutdown` (``shutdown_grace``) every S seconds.
    shutdown_grace : float, default 1.0
    api_keys : collection of str, optional
        Keys accepted in ``X-MBX-APIKEY`` on the SBE paths; any non-empty key when None.
    write_buffer_limit : int, default 64 MiB
        Unsent bytes after which a connection is dropped as a slow consumer.

    Attributes
    ----------
    ws_url : str
        ``ws://HOST:PORT``; append ``/ws/<stream>``, ``/stream?streams=..`` (USD-M:
        ``/public/..`` or ``/market/..``), or use :meth:`stream_url`.
    sbe_url : str
        ``ws://HOST:PORT/sbe`` (spot only); append ``/ws/..`` or ``/stream?..``.
    rest_url : str
        ``http://HOST:PORT``; append ``/api/v3/depth?...`` or ``/fapi/v1/depth?...``.

    Notes
    -----
    Every method may be called from any thread; each runs on the exchange's event loop
    and waits for it (up to 5 s). :meth:`stop` closes every connection, the listening
    socket, the loop and its thread, within its timeout.

    Examples
    --------
    >>> with BinanceExchange(["BTCUSDT"], rate=500) as ex:      # doctest: +SKIP
    ...     ws = websocket.create_connection(ex.stream_url(["btcusdt@depth@100ms"]))
    ...     print(ws.recv())
    """

    def __init__(
        self,
        symbols: Iterable[str] = DEFAULT_SYMBOLS,
        market: str = "spot",
        rate: float = 1000.0,
        seed: int = 0,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float | None = None,
        pong_timeout: float | None = None,
        message_limit: int | None = None,
        max_streams: int = 1024,
        max_connection_age: float | None = None,
        snapshot_delay: float = 0.0,
        weight_limit: int | None = None,
        ban_after: int = 3,
        ban_seconds: float = 120.0,
        weight_window: float = 60.0,
        history: int = 20_000,
        warmup: int = 2000,
        pregenerate: int = 0,
        gap_every: int | None = None,
        disconnect_every: float | None = None,
        shutdown_every: float | None = None,
        shutdown_grace: float = 1.0,
        api_keys: Iterable[str] | None = None,
        write_buffer_limit: int = 64 << 20,
    ):
        self.market = check_market(market)
        self.symbols = tuple(s.upper() for s in symbols)
        if not self.symbols:
            raise ValueError("symbols must not be empty")
        if rate < 0:
            raise ValueError(f"rate must be >= 0 events/s, got {rate}")
        d = DEFAULTS[market]
        self.rate = float(rate)
        self.seed = seed
        self.host = host
        self._port = port
        self.ping_interval = d["ping_interval"] if ping_interval is None else ping_interval
        self.pong_timeout = d["pong_timeout"] if pong_timeout is None else pong_timeout
        self.message_limit = d["message_limit"] if message_limit is None else message_limit
        self.max_streams = max_streams
        self.max_connection_age = max_connection_age
        self.snapshot_delay = snapshot_delay
        self.weight_limit = d["weight_limit"] if weight_limit is None else weight_limit
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.weight_window = weight_window
        self.history = history
        self.warmup = warmup
        self.pregenerate = pregenerate
        self.gap_every = gap_every
        self.disconnect_every = disconnect_every
        self.shutdown_every = shutdown_every
        self.shutdown_grace = shutdown_grace
        self.api_keys = None if api_keys is None else set(api_keys)
        self.write_buffer_limit = write_buffer_limit
        self._lower = {s.lower(): s for s in self.symbols}
        self._books = {s: _Book(history) for s in self.symbols}
        self._events = iter_events(seed, self.symbols, market)
        self._conns: dict[int, _Conn] = {}
        self._ids = itertools.count(1)
        self._subs: dict[tuple, list] = {}
        self._dirty: set[_Conn] = set()
        self._counts = dict.fromkeys(("events", "depth", "trade", "book_ticker", "gaps",
                                      "rest", "rest_429", "rest_418", "slow_consumers",
                                      "connections"), 0)  # fmt: skip
        self._weights: dict[str, tuple[int, int]] = {}  # ip -> (minute, used weight)
        self._retry_until: dict[str, float] = {}
        self._violations: dict[str, int] = {}
        self._banned_until: dict[str, float] = {}
        self._force_429: list[float] = []  # Retry-After of each forced 429 to come
        self._stale: list = []  # lag of each stale snapshot to come
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server = None
        self._tasks: list[asyncio.Task] = []
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._depth_seen = 0

    # -- lifecycle ------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> BinanceExchange:
        """Fill the books (``warmup``), start the server thread and wait until it listens.

        Returns
        -------
        BinanceExchange
            ``self``.
        """
        if self._thread is not None:
            raise RuntimeError("the exchange is already started")
        for _ in range(self.warmup):
            self._apply(next(self._events))
        for b in self._books.values():
            b.forget()
        if self.pregenerate:
            ahead = list(itertools.islice(self._events, self.pregenerate))
            self._events = itertools.chain(ahead, self._events)
        self._thread = threading.Thread(target=self._run, name="binance-exchange", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._start_error is not None:
            err = self._start_error
            self.stop()
            raise RuntimeError(f"the exchange did not start: {err!r}") from err
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the server, end the loop and join its thread.

        Bounded by ``timeout`` seconds; connections that do not finish their close
        handshake in time are aborted.
        """
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(timeout * 0.6), loop)
            try:
                fut.result(timeout * 0.8)
            except Exception:  # noqa: BLE001 - stop anyway
                log.exception("exchange shutdown")
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the exchange thread did not stop in time")
        self._thread = None

    def __enter__(self) -> BinanceExchange:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._port

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self._port}"

    @property
    def sbe_url(self) -> str:
        return f"ws://{self.host}:{self._port}/sbe"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def stream_url(self, streams, combined: bool = True, micro: bool = True,
                   sbe: bool = False) -> str:  # fmt: skip
        """The URL of a connection to ``streams``.

        Parameters
        ----------
        streams : str or sequence of str
            Stream names, e.g. ``["btcusdt@depth@100ms", "btcusdt@trade"]``. USD-M: all
            on the same route (``/public``: depth, bookTicker; ``/market``: trade,
            aggTrade).
        combined : bool, default True
            ``/stream?streams=..`` (wrapped payloads); False: ``/ws/a/b`` (raw).
        micro : bool, default True
            Add ``timeUnit=MICROSECOND``.
        sbe : bool, default False
            The SBE path (spot; connect with an ``X-MBX-APIKEY`` header).

        Returns
        -------
        str
        """
        if isinstance(streams, str):
            streams = [streams]
        streams = list(streams)
        base = self.sbe_url if sbe else self.ws_url
        micro = micro and not sbe  # SBE times are always µs
        if self.market == "usdm" and not sbe:
            routes = {_ROUTE.get(s.split("@")[1] if "@" in s else "", "?") for s in streams}
            if len(routes) != 1 or "?" in routes:
                raise ValueError(f"USD-M streams must share one route (public/market): {streams}")
            base += "/" + routes.pop()
        if combined:
            url = f"{base}/stream?streams={'/'.join(streams)}"
            return url + ("&timeUnit=MICROSECOND" if micro else "")
        url = f"{base}/ws/{'/'.join(streams)}" if streams else f"{base}/ws"
        return url + ("?timeUnit=MICROSECOND" if micro else "")

    # -- inspection -----------------------------------------------------------------

    def book(self, symbol: str):
        """The exchange's book of ``symbol`` now.

        Returns
        -------
        (int, list, list)
            ``(last_update_id, bids, asks)``: bids best (highest) first, asks best
            (lowest) first, each a list of ``(price, qty)`` int pairs with 8 implied
            decimals.
        """
        b = self._book_of(symbol)
        return self._call(lambda: (b.last_update_id, *_sorted(b.bids, b.asks)))

    def book_at(self, symbol: str, update_id: int):
        """The book of ``symbol`` as it was after the diff ending at ``update_id``.

        Returns
        -------
        (int, list, list)
            As :meth:`book`; the update id is the last diff's ``u`` that is
            ``<= update_id``.

        Raises
        ------
        ValueError
            ``update_id`` is older than the ``history`` kept.
        """
        b = self._book_of(symbol)

        def at():
            lid, bids, asks = b.at(update_id)
            return (lid, *_sorted(bids, asks))

        return self._call(at)

    def update_id(self, symbol: str) -> int:
        """The last update id of ``symbol``'s book."""
        b = self._book_of(symbol)
        return self._call(lambda: b.last_update_id)

    def connections(self) -> list[ConnectionInfo]:
        """The open stream connections, oldest first."""
        return self._call(lambda: [c.info() for c in self._conns.values()])

    def wait_connections(self, n: int = 1, timeout: float = 5.0) -> list[ConnectionInfo]:
        """Wait until at least ``n`` connections are open; returns :meth:`connections`.

        Raises
        ------
        TimeoutError
        """
        deadline = time.monotonic() + timeout
        while True:
            conns = self.connections()
            if len(conns) >= n:
                return conns
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(conns)} connections open after {timeout} s, wanted {n}")
            time.sleep(0.01)

    def stats(self) -> dict:
        """Counters: events made (per kind), gaps injected, REST answers, connections."""
        return self._call(lambda: dict(self._counts, open_connections=len(self._conns)))

    # -- events -----------------------------------------------------------------------

    def step(self, n: int = 1) -> None:
        """Make and send ``n`` events now (in addition to the generator's rate)."""
        self._call(lambda: self._emit_batch(n))

    # -- faults -----------------------------------------------------------------------

    def drop_next_diff(self, symbol: str, connection=None) -> None:
        """Withhold the next depth diff of ``symbol`` from one connection (a gap there
        only), or from every open connection when ``connection`` is None."""
        self._book_of(symbol)
        sym = symbol.upper()

        def do():
            for c in self._targets(connection):
                c.drop_next.add(sym)

        self._call(do)

    def disconnect(self, connection=None, code: int | None = None, reason: str = "") -> None:
        """Close one connection (an id or :class:`ConnectionInfo`), or all when None.

        ``code=None`` drops the TCP connection without a close frame (an abrupt
        disconnect); a code runs the close handshake with it.
        """

        def do():
            for c in self._targets(connection):
                self._close(c, code, reason)

        self._call(do)

    def server_shutdown(self, grace: float = 1.0, connection=None) -> None:
        """Send the ``serverShutdown`` event, then close (code 1001) after ``grace`` s.

        The event is ``{"e":"serverShutdown","E":..}`` (combined connections:
        wrapped with ``"stream":"!serverShutdown"``; a JSON text frame on SBE
        connections too), ``E`` in the connection's time unit. Applies to the
        connections open now (all, or ``connection``); new connections are served
        as usual, as by another server behind the same name.
        """
        self._call(lambda: self._shutdown_conns(grace, connection))

    def stale_snapshot(self, count: int = 1, lag: int | None = None) -> None:
        """Answer the next ``count`` REST snapshots from the past: the book ``lag``
        diffs of that symbol back, or the oldest book kept when None (with its older
        ``lastUpdateId``)."""
        self._call(lambda: self._stale.extend([lag] * count))

    def rest_429(self, n: int = 1, retry_after: float = 1.0) -> None:
        """Answer the next ``n`` REST requests with 429 and ``Retry-After: retry_after``
        (whole seconds, rounded up)."""
        self._call(lambda: self._force_429.extend([retry_after] * n))

    def silence(self, connection, seconds: float) -> None:
        """Send nothing on ``connection`` (None: all) for ``seconds``: no events, no
        replies, no pings. What would have been sent is dropped (counted)."""

        def do():
            until = time.monotonic() + seconds
            for c in self._targets(connection):
                c.silent_until = until

        self._call(do)

    # -- internals: thread bridge ------------------------------------------------------

    def _book_of(self, symbol: str) -> _Book:
        try:
            return self._books[symbol.upper()]
        except KeyError:
            raise ValueError(f"{symbol!r} is not served here (symbols: {self.symbols})") from None

    def _call(self, fn, timeout: float = 5.0):
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn()  # not started (or stopped): no other thread touches the state
        if threading.current_thread() is self._thread:
            return fn()
        fut: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def _targets(self, connection) -> list[_Conn]:
        if connection is None:
            return list(self._conns.values())
        cid = connection.id if isinstance(connection, ConnectionInfo) else int(connection)
        try:
            return [self._conns[cid]]
        except KeyError:
            raise ValueError(f"no open connection {cid}") from None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
            self._ready.set()
            loop.run_forever()
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._start_error = exc
            self._ready.set()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self) -> None:
        from websockets.asyncio.server import serve

        exchange = self

        from websockets.asyncio.server import ServerConnection
        from websockets.frames import Opcode

        counted = (Opcode.TEXT, Opcode.BINARY, Opcode.PING, Opcode.PONG)

        class _Connection(ServerConnection):
            binsim = None

            def process_event(self, event):
                if self.request is not None and self.binsim is not None:
                    if event.opcode in counted:
                        exchange._incoming(self.binsim, event.opcode is Opcode.PONG)
                super().process_event(event)

        quiet = logging.getLogger("hftcore.sim.binance_exchange.websockets")
        quiet.setLevel(logging.CRITICAL)
        self._server = await serve(
            self._handler, self.host, self._port, process_request=self._process_request,
            compression=None, ping_interval=None, ping_timeout=None, close_timeout=1.0,
            max_size=1 << 16, max_queue=64, create_connection=_Connection, logger=quiet,
        )  # fmt: skip
        self._port = self._server.sockets[0].getsockname()[1]
        self._tasks = [asyncio.get_running_loop().create_task(self._generate())]
        for every, fn in ((self.disconnect_every, self._periodic_disconnect),
                          (self.shutdown_every, self._periodic_shutdown),
                          (self.max_connection_age, self._age_check)):  # fmt: skip
            if every:
                self._tasks.append(asyncio.get_running_loop().create_task(fn(every)))
        if self.market == "spot":
            self._tasks.append(asyncio.get_running_loop().create_task(self._depth20()))

    async def _shutdown(self, timeout: float) -> None:
        for t in self._tasks:
            t.cancel()
        for c in list(self._conns.values()):
            for t in c.tasks:
                t.cancel()
        if self._server is not None:
            self._server.close(close_connections=True)
            try:
                await asyncio.wait_for(self._server.wait_closed(), timeout)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                for c in list(self._conns.values()):
                    c.ws.transport.abort()

    # -- internals: the event sequence ------------------------------------------------

    def _apply(self, ev: Event) -> None:
        if ev.kind == "depth":
            self._books[ev.symbol].apply(ev)

    async def _generate(self) -> None:
        loop = asyncio.get_running_loop()
        t0, made, rate = loop.time(), 0, self.rate
        while True:
            tick = 0.005 if self.rate <= 0 else min(0.005, max(0.001, 1.0 / self.rate))
            await asyncio.sleep(tick)
            if self.rate != rate:  # changed at run time: the new rate from now on
                t0, made, rate = loop.time(), 0, self.rate
            if self.rate <= 0:
                continue
            due = int((loop.time() - t0) * self.rate) - made
            cap = max(1, int(self.rate * 0.1))
            if due > cap:  # behind by more than 100 ms: do not try to catch up
                made += due - cap
                due = cap
            if due > 0:
                made += due
                try:
                    self._emit_batch(due)
                except Exception:  # noqa: BLE001 - keep serving; the log says why
                    log.exception("event generator")

    def _emit_batch(self, n: int) -> None:
        for _ in range(n):
            self._emit(next(self._events))
        self._flush()

    def _emit(self, ev: Event) -> None:
        now_us = time.time_ns() // 1000
        ev = ev._replace(
            event_time=now_us, transaction_time=now_us - (ev.event_time - ev.transaction_time)
        )
        sym = ev.symbol
        self._counts["events"] += 1
        self._counts[ev.kind] += 1
        withheld = ()
        if ev.kind == "depth":
            self._books[sym].apply(ev)
            self._depth_seen += 1
            if self.gap_every and self._depth_seen % self.gap_every == 0:
                withheld = self._conns.values()
                self._counts["gaps"] += 1
            else:
                withheld = [c for c in self._conns.values() if sym in c.drop_next]
                for c in withheld:
                    c.drop_next.discard(sym)
            for c in withheld:
                c.dropped += 1
            kinds = ("depth", "sbe_depth")
        elif ev.kind == "trade":
            kinds = ("trade", "aggTrade", "sbe_trade")
        else:
            kinds = ("bookTicker", "sbe_bba")
        now = time.monotonic()
        for kind in kinds:
            targets = self._subs.get((sym, kind))
            if not targets:
                continue
            cache: dict = {}
            for c, stream in targets:
                if c.closing or c in withheld:
                    continue
                if c.silent_until > now:
                    if ev.kind == "depth":
                        c.dropped += 1
                    continue
                key = (stream, c.combined, c.micro) if not c.sbe else kind
                frame = cache.get(key)
                if frame is None:
                    frame = cache[key] = self._render(ev, kind, stream, c)
                c.out.append(frame)
                c.sent += 1
                c.nbytes += len(frame)
                self._dirty.add(c)

    def _render(self, ev: Event, kind: str, stream: str, c: _Conn) -> bytes:
        if c.sbe:
            if kind == "sbe_depth":
                return _frame(sbe_encode.encode_depth_diff(
                    ev.event_time, ev.first_update_id, ev.final_update_id, ev.symbol,
                    ev.bids, ev.asks), 2)  # fmt: skip
            if kind == "sbe_trade":
                return _frame(sbe_encode.encode_trades(
                    ev.event_time, ev.transaction_time, ev.symbol,
                    [(ev.first_update_id, ev.price, ev.qty, ev.buyer_is_maker)]), 2)  # fmt: skip
            (bp, bq), (ap, aq) = ev.bids[0], ev.asks[0]
            return _frame(sbe_encode.encode_best_bid_ask(
                ev.event_time, ev.first_update_id, ev.symbol, bp, bq, ap, aq), 2)  # fmt: skip
        payload = render(ev, kind, self.market, c.micro)
        if c.combined:
            payload = b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"
        return _frame(payload)

    def _flush(self) -> None:
        for c in self._dirty:
            if c.out:
                data = b"".join(c.out)
                c.out.clear()
                self._write(c, data)
        self._dirty.clear()

    def _write(self, c: _Conn, data: bytes) -> None:
        from websockets.protocol import State

        ws = c.ws
        if c.closing or ws.protocol.state is not State.OPEN or ws.transport.is_closing():
            return
        if ws.transport.get_write_buffer_size() > self.write_buffer_limit:
            self._counts["slow_consumers"] += 1
            log.warning("connection %d: %d bytes unsent, dropped as a slow consumer", c.id,
                        ws.transport.get_write_buffer_size())  # fmt: skip
            self._close(c, None, "slow consumer")
            return
        ws.transport.write(data)

    def _send_text(self, c: _Conn, payload: bytes) -> None:
        """A reply or control event, now (unless the connection is silenced)."""
        if c.silent_until > time.monotonic():
            return
        frame = _frame(payload)
        c.sent += 1
        c.nbytes += len(frame)
        self._write(c, frame)

    async def _depth20(self) -> None:
        """SBE ``<s>@depth20``: the top 20 levels every 100 ms when the book changed."""
        while True:
            await asyncio.sleep(0.1)
            now_us = time.time_ns() // 1000
            for sym, b in self._books.items():
                targets = self._subs.get((sym, "sbe_depth20"))
                if not targets or not b.changed:
                    continue
                b.changed = False
                bids, asks = _sorted(b.bids, b.asks, 20)
                frame = _frame(sbe_encode.encode_depth_snapshot(
                    now_us, b.last_update_id, sym, bids, asks), 2)  # fmt: skip
                now = time.monotonic()
                for c, _ in targets:
                    if not c.closing and c.silent_until <= now:
                        c.out.append(frame)
                        c.sent += 1
                        c.nbytes += len(frame)
                        self._dirty.add(c)
            self._flush()

    # -- internals: connections --------------------------------------------------------

    def _parse_streams(self, names, sbe: bool, route: str | None):
        """``{name: (symbol, kind)}`` for ``names``, or an error message."""
        out = {}
        for name in names:
            if not isinstance(name, str) or "@" not in name:
                return None, f"invalid stream name {name!r}"
            sym, _, rest = name.partition("@")
            symbol = self._lower.get(sym)
            if symbol is None or sym != sym.lower():
                return None, f"unknown symbol in stream {name!r} (served: {', '.join(self._lower)})"
            if sbe:
                kind = {"trade": "sbe_trade", "bestBidAsk": "sbe_bba", "depth": "sbe_depth",
                        "depth20": "sbe_depth20"}.get(rest)  # fmt: skip
            elif rest in (_SPOT_DEPTH if self.market == "spot" else _USDM_DEPTH):
                kind = "depth"
            else:
                kind = rest if rest in ("trade", "aggTrade", "bookTicker") else None
            if kind is None:
                return None, f"unknown stream {name!r}"
            if route is not None and _ROUTE[kind] != route:
                return None, f"stream {name!r} is served on /{_ROUTE[kind]}, not /{route}"
            out[name] = (symbol, kind)
        return out, None

    def _reindex(self) -> None:
        subs: dict[tuple, list] = {}
        for c in self._conns.values():
            for name, key in c.streams.items():
                subs.setdefault(key, []).append((c, name))
        self._subs = subs

    def _incoming(self, c: _Conn, pong: bool) -> None:
        c.received += 1
        if pong:
            c.pongs += 1
        now = time.monotonic()
        c.recent.append(now)
        while c.recent and c.recent[0] <= now - 1.0:
            c.recent.popleft()
        if len(c.recent) > self.message_limit and not c.closing:
            log.info("connection %d: more than %d messages in a second; closing", c.id,
                     self.message_limit)  # fmt: skip
            self._close(c, 1008, "Too many messages")

    def _close(self, c: _Conn, code: int | None, reason: str) -> None:
        if c.closing:
            return
        c.closing = True
        c.out.clear()
        if code is None:
            c.ws.transport.abort()
        else:
            asyncio.get_running_loop().create_task(c.ws.close(code, reason))

    async def _handler(self, ws) -> None:
        path, streams, combined, micro, sbe, route = ws.binsim_request
        c = _Conn(next(self._ids), ws, path, (), combined, micro, sbe, route)
        c.streams.update(streams)
        ws.binsim = c
        self._conns[c.id] = c
        self._counts["connections"] += 1
        self._reindex()
        loop = asyncio.get_running_loop()
        if self.ping_interval:
            c.tasks.append(loop.create_task(self._pinger(c)))
        try:
            async for msg in ws:
                if not c.closing:  # closing: let the close handshake end the loop
                    self._control(c, msg)
        except Exception:  # noqa: BLE001 - the connection ends either way
            pass
        finally:
            c.closing = True
            for t in c.tasks:
                t.cancel()
            self._conns.pop(c.id, None)
            self._dirty.discard(c)
            self._reindex()

    async def _pinger(self, c: _Conn) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.ping_interval)
            if c.closing:
                return
            if c.silent_until > time.monotonic():
                continue
            n += 1
            try:
                waiter = await c.ws.ping(str(int(time.time() * 1000) * 1000 + n % 1000))
            except Exception:  # noqa: BLE001 - closed meanwhile
                return
            c.pings += 1
            c.tasks.append(asyncio.get_running_loop().create_task(self._deadline(c, waiter)))

    async def _deadline(self, c: _Conn, waiter) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.pong_timeout)
        except asyncio.TimeoutError:
            log.info("connection %d: no pong within %s s; closing", c.id, self.pong_timeout)
            self._close(c, 1011, "pong timeout")
        except Exception:  # noqa: BLE001 - connection closed
            return

    def _control(self, c: _Conn, msg) -> None:
        """Answer one client request (SUBSCRIBE and friends)."""
        try:
            req = json.loads(msg)
        except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
            line, col = getattr(exc, "lineno", 1), getattr(exc, "colno", 1)
            return self._reply_error(
                c, 3, f"Invalid JSON: expected value at line {line} column {col}", None
            )
        if not isinstance(req, dict):
            return self._reply_error(c, 2, "Invalid request: expected an object", None)
        rid = req.get("id")
        valid_id = (rid is None or (type(rid) is int and -(2**63) <= rid < 2**63)
                    or (isinstance(rid, str) and rid.isalnum() and len(rid) <= 36))  # fmt: skip
        if not valid_id:
            return self._reply_error(
                c, 2, "Invalid request: request ID must be an unsigned integer", None
            )
        method = req.get("method")
        if method is None:
            return self._reply_error(c, 2, "Invalid request: missing field `method`", rid)
        if method not in _METHODS:
            return self._reply_error(
                c, 2, f"Invalid request: unknown variant {method}, expected one of "
                "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, "
                "`GET_PROPERTY`", rid)  # fmt: skip
        params = req.get("params", [])
        if not isinstance(params, list):
            return self._reply_error(c, 2, "Invalid request: params must be a list", rid)
        result = None
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            parsed, err = self._parse_streams(params, c.sbe, c.route)
            if err:
                return self._reply_error(c, 2, f"Invalid request: {err}", rid)
            if method == "SUBSCRIBE":
                new = [n for n in parsed if n not in c.streams]
                if len(c.streams) + len(new) > self.max_streams:
                    return self._reply_error(
                        c, 2, f"Invalid request: at most {self.max_streams} streams per "
                        "connection", rid)  # fmt: skip
                c.streams.update(parsed)
            else:
                for n in parsed:
                    c.streams.pop(n, None)
            self._reindex()
        elif method == "LIST_SUBSCRIPTIONS":
            result = list(c.streams)
        elif method == "SET_PROPERTY":
            if len(params) != 2 or params[0] != "combined":
                return self._reply_error(
                    c, 2, "Invalid request: property name must be a string", rid
                )
            if type(params[1]) is not bool:
                return self._reply_error(c, 1, "Invalid value type: expected Boolean", rid)
            c.combined = params[1]
        else:  # GET_PROPERTY
            if params != ["combined"]:
                return self._reply_error(
                    c, 2, "Invalid request: property name must be a string", rid
                )
            result = c.combined
        self._send_text(
            c, json.dumps({"result": result, "id": rid}, separators=(",", ":")).encode()
        )

    def _reply_error(self, c: _Conn, code: int, msg: str, rid) -> None:
        body = {"code": code, "msg": msg, "id": rid}
        self._send_text(c, json.dumps(body, separators=(",", ":")).encode())

    def _shutdown_conns(self, grace: float, connection) -> None:
        loop = asyncio.get_running_loop()
        for c in self._targets(connection):
            if c.closing:
                continue
            now_us = time.time_ns() // 1000
            body = b'{"e":"serverShutdown","E":%d}' % (now_us if c.micro else now_us // 1000)
            if c.combined:
                body = b'{"stream":"!serverShutdown","data":' + body + b"}"
            self._flush()
            self._send_text(c, body)
            loop.call_later(grace, self._close, c, 1001, "server shutdown")

    async def _periodic_disconnect(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            for c in list(self._conns.values()):
                self._close(c, None, "periodic disconnect")

    async def _periodic_shutdown(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self._shutdown_conns(self.shutdown_grace, None)

    async def _age_check(self, age: float) -> None:
        while True:
            await asyncio.sleep(min(1.0, age / 10))
            now = time.time()
            for c in list(self._conns.values()):
                if now - c.opened >= age:
                    self._close(c, 1000, "max connection age")

    # -- internals: HTTP -----------------------------------------------------------------

    async def _process_request(self, ws, request):
        url = urlsplit(request.path)
        path, query = url.path, parse_qs(url.query)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return await self._rest(ws, request, path, query)
        sbe = path == "/sbe" or path.startswith("/sbe/")
        if sbe:
            if self.market != "spot":
                return self._http(ws, 404, {"code": -1, "msg": "SBE streams are spot only"})
            key = request.headers.get("X-MBX-APIKEY", "")
            if not key or (self.api_keys is not None and key not in self.api_keys):
                return self._http(ws, 401, {"code": -2015,
                                            "msg": "Invalid API-key, IP, or permissions for action."})  # fmt: skip
            path = path[4:]
        route = None
        if self.market == "usdm" and not sbe:
            head, _, rest = path.lstrip("/").partition("/")
            if head not in ("public", "market"):
                return self._http(ws, 404, {"code": -1, "msg": f"no stream endpoint at {path}; "
                                            "USD-M streams are at /public or /market"})  # fmt: skip
            route, path = head, "/" + rest
        if path == "/stream":
            names = [s for s in query.get("streams", [""])[0].split("/") if s]
            combined = True
        elif path == "/ws" or path.startswith("/ws/"):
            names = [s for s in path[4:].split("/") if s]
            combined = False
        else:
            return self._http(ws, 404, {"code": -1, "msg": f"no stream endpoint at {url.path}"})
        if len(names) > self.max_streams:
            return self._http(ws, 400, {"code": -1, "msg": f"at most {self.max_streams} streams"})
        parsed, err = self._parse_streams(names, sbe, route)
        if err:
            return self._http(ws, 400, {"code": -1, "msg": err})
        unit = query.get("timeUnit", [""])[0].upper()
        micro = sbe or unit == "MICROSECOND"
        ws.binsim_request = (request.path, parsed, combined, micro, sbe, route)
        return None

    def _http(self, ws, status: int, body, headers=()):
        resp = ws.respond(HTTPStatus(status), "")
        data = json.dumps(body, separators=(",", ":")).encode()
        resp.body = data
        del resp.headers["Content-Type"]
        del resp.headers["Content-Length"]
        resp.headers["Content-Type"] = "application/json;charset=UTF-8"
        resp.headers["Content-Length"] = str(len(data))
        for k, v in headers:
            resp.headers[k] = v
        return resp

    async def _rest(self, ws, request, path, query):
        self._counts["rest"] += 1
        ip = ws.remote_address[0] if ws.remote_address else ""
        now = time.time()
        minute = int(now // self.weight_window)
        wmin, used = self._weights.get(ip, (minute, 0))
        if wmin != minute:
            used = 0

        def answer(status, body, extra=()):
            hdrs = [("X-MBX-USED-WEIGHT-1M", str(used))]
            return self._http(ws, status, body, hdrs + list(extra))

        if path != DEFAULTS[self.market]["rest_path"]:
            return answer(404, {"code": -1, "msg": f"no REST endpoint at {path} here "
                                f"({self.market}: {DEFAULTS[self.market]['rest_path']})"})  # fmt: skip
        if self._banned_until.get(ip, 0) > now:
            self._counts["rest_418"] += 1
            until = self._banned_until[ip]
            return answer(418, {"code": -1003, "msg": f"Way too many requests; IP({ip}) banned "
                                f"until {int(until * 1000)}. Please use the websocket for live "
                                "updates to avoid bans."},
                          [("Retry-After", str(math.ceil(until - now)))])  # fmt: skip
        if self._retry_until.get(ip, 0) > now:
            n = self._violations[ip] = self._violations.get(ip, 0) + 1
            if n >= self.ban_after:
                self._banned_until[ip] = now + self.ban_seconds
                self._violations[ip] = 0
                self._counts["rest_418"] += 1
                return answer(418, {"code": -1003, "msg": f"Way too many requests; IP({ip}) "
                                    "banned. Please use the websocket for live updates to "
                                    "avoid bans."},
                              [("Retry-After", str(math.ceil(self.ban_seconds)))])  # fmt: skip
            self._counts["rest_429"] += 1
            wait = self._retry_until[ip] - now
            return answer(429, self._too_many(ip), [("Retry-After", str(math.ceil(wait)))])
        if self._force_429:
            wait = self._force_429.pop(0)
            self._retry_until[ip] = now + wait
            self._counts["rest_429"] += 1
            return answer(429, self._too_many(ip), [("Retry-After", str(math.ceil(wait)))])
        sym = query.get("symbol", [""])[0]
        if not sym:
            return answer(400, {"code": -1102, "msg": "Mandatory parameter 'symbol' was not "
                                "sent, was empty/null, or malformed."})  # fmt: skip
        book = self._books.get(sym.upper()) if sym == sym.upper() else None
        if book is None:
            return answer(400, {"code": -1121, "msg": "Invalid symbol."})
        d = DEFAULTS[self.market]
        raw = query.get("limit", [str(d["default_limit"])])[0]
        if not raw.isdigit() or len(raw) > 20:
            return answer(400, {"code": -1100, "msg": "Illegal characters found in parameter "
                                "'limit'; legal range is '^[0-9]{1,20}$'."})  # fmt: skip
        limit = int(raw)
        if self.market == "spot":
            limit = min(max(limit, 1), d["max_limit"])
        elif limit not in _USDM_LIMITS:
            return answer(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not "
                                f"valid; valid limits: {sorted(_USDM_LIMITS)}."})  # fmt: skip
        weight = rest_weight(self.market, limit)
        if used + weight > self.weight_limit:
            self._retry_until[ip] = end = (minute + 1) * self.weight_window
            self._counts["rest_429"] += 1
            return answer(429, self._too_many(ip), [("Retry-After", str(math.ceil(end - now)))])
        used += weight
        self._weights[ip] = (minute, used)
        self._violations[ip] = 0
        if self._stale:
            lag = self._stale.pop(0)
            lid, bids, asks = book.at(book.lag_id(lag))
        else:
            lid, bids, asks = book.last_update_id, book.bids, book.asks
        bids, asks = _sorted(bids, asks, limit)
        t_ms = int(time.time() * 1000)
        body = self._snapshot_body(lid, bids, asks, t_ms)
        if self.snapshot_delay > 0:
            await asyncio.sleep(self.snapshot_delay)
        resp = self._http(ws, 200, {}, [("X-MBX-USED-WEIGHT-1M", str(used))])
        resp.body = body
        del resp.headers["Content-Length"]
        resp.headers["Content-Length"] = str(len(body))
        return resp

    def _too_many(self, ip: str) -> dict:
        return {"code": -1003, "msg": f"Too many requests; current limit of IP({ip}) request "
                f"weight is {self.weight_limit} per minute. Please use WebSocket Streams for "
                "live updates to avoid polling the API."}  # fmt: skip

    def _snapshot_body(self, lid: int, bids, asks, t_ms: int) -> bytes:
        px, qx = _PRINT[self.market]
        b, a = _levels_json(bids, px, qx), _levels_json(asks, px, qx)
        if self.market == "spot":
            return f'{{"lastUpdateId":{lid},"bids":[{b}],"asks":[{a}]}}'.encode()
        return f'{{"lastUpdateId":{lid},"E":{t_ms},"T":{t_ms},"bids":[{b}],"asks":[{a}]}}'.encode()


def _dec8(v: int) -> str:
    w, f = divmod(v, SCALE)
    return f"{w}.{f:08d}"


def _dec5(v: int) -> str:
    return _dec8(v)[:-3]


def _dec2(v: int) -> str:
    return _dec8(v)[:-6]


# market -> (price printer, quantity printer): spot prints 8 decimals, USD-M the
# instrument's precision (2 and 5 here; every generated value lies on that grid).
_PRINT = {"spot": (_dec8, _dec8), "usdm": (_dec2, _dec5)}


def _levels_json(levels, px, qx) -> str:
    return ",".join([f'["{px(p)}","{qx(q)}"]' for p, q in levels])


def render(ev: Event, kind: str, market: str = "spot", micro: bool = False) -> bytes:
    """One event as the JSON payload of a ``kind`` stream (before any combined wrapping).

    Parameters
    ----------
    ev : Event
        Times in µs.
    kind : {"depth", "trade", "aggTrade", "bookTicker"}
    market : {"spot", "usdm"}
    micro : bool
        µs times (``timeUnit=MICROSECOND``); milliseconds otherwise.

    Returns
    -------
    bytes
    """
    E = ev.event_time if micro else ev.event_time // 1000
    T = ev.transaction_time if micro else ev.transaction_time // 1000
    px, qx = _PRINT[market]
    s = ev.symbol
    if kind == "depth":
        b = _levels_json(ev.bids, px, qx)
        a = _levels_json(ev.asks, px, qx)
        if market == "spot":
            out = (f'{{"e":"depthUpdate","E":{E},"s":"{s}","U":{ev.first_update_id},'
                   f'"u":{ev.final_update_id},"b":[{b}],"a":[{a}]}}')  # fmt: skip
        else:
            out = (f'{{"e":"depthUpdate","E":{E},"T":{T},"s":"{s}","U":{ev.first_update_id},'
                   f'"u":{ev.final_update_id},"pu":{ev.prev_final_update_id},'
                   f'"b":[{b}],"a":[{a}]}}')  # fmt: skip
    elif kind in ("trade", "aggTrade"):
        m = "true" if ev.buyer_is_maker else "false"
        tid, p, q = ev.first_update_id, px(ev.price), qx(ev.qty)
        tail = ',"M":true}' if market == "spot" else "}"
        if kind == "trade":
            out = (f'{{"e":"trade","E":{E},"s":"{s}","t":{tid},"p":"{p}","q":"{q}",'
                   f'"T":{T},"m":{m}{tail}')  # fmt: skip
        else:
            out = (f'{{"e":"aggTrade","E":{E},"s":"{s}","a":{tid},"p":"{p}","q":"{q}",'
                   f'"f":{tid},"l":{tid},"T":{T},"m":{m}{tail}')  # fmt: skip
    elif kind == "bookTicker":
        (bp, bq), (ap, aq) = ev.bids[0], ev.asks[0]
        quote = f'"b":"{px(bp)}","B":"{qx(bq)}","a":"{px(ap)}","A":"{qx(aq)}"'
        if market == "spot":
            out = f'{{"u":{ev.first_update_id},"s":"{s}",{quote}}}'
        else:
            out = f'{{"e":"bookTicker","u":{ev.first_update_id},"E":{E},"T":{T},"s":"{s}",{quote}}}'
    else:
        raise ValueError(f"unknown stream kind {kind!r}")
    return out.encode()
