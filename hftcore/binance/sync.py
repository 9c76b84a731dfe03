"""Keep a local L2 book in sync with a Binance diff-depth stream.

Follows Binance's documented procedure ("How to manage a local order book correctly",
spot ``web-socket-streams.md`` and the USD-M futures equivalent):

1. Buffer the diff events of ``<symbol>@depth``.
2. Fetch a REST depth snapshot; its ``lastUpdateId`` becomes the book's update id.
   Spot: a snapshot whose ``lastUpdateId`` is strictly less than the ``U`` of the first
   buffered event is fetched again.
3. Drop events already in the snapshot (spot: ``u <= lastUpdateId``; USD-M:
   ``u < lastUpdateId``).
4. Spot, every event from then on: ``u <=`` the local update id is stale (ignored);
   ``U >`` local id ``+ 1`` means events were missed (a gap); otherwise
   ``U <= local id + 1 <= u``: apply it and set the local id to ``u``.
   USD-M: the first event applied must have ``U <= lastUpdateId <= u`` (a first event
   starting after ``lastUpdateId`` means the snapshot is too old: fetch again); after
   that each event's ``pu`` must equal the previous event's ``u`` (else a gap).
5. A gap discards the book and starts again from step 2 (a resync).

Quantities are absolute; 0 removes a level, and removing an absent level is normal.

The update-id rule is :func:`continuity`, the same rule (and the same verdicts,
:data:`~hftcore.binance.APPLIED`, ``STALE``, ``GAP``) as the one-pass applier
:func:`hftcore.binance._apply.apply_depth_json_after` that the live fast path uses. This
module is the state machine only: the REST client (:func:`snapshot_url`,
:func:`rest_snapshot`, :func:`parse_snapshot`) lives in :mod:`hftcore.binance.rest` and
is importable from here for this release.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from hftcore.binance._apply import APPLIED, GAP, OTHER_SYMBOL, STALE, apply_depth_json_after
from hftcore.binance.decode import decode
from hftcore.binance.records import DepthSnapshot, DepthUpdate
from hftcore.binance.rest import parse_snapshot, rest_snapshot, snapshot_url
from hftcore.binance.schema import MARKETS, check_market  # noqa: F401  (MARKETS: re-export)
from hftcore.book import L2Book
from hftcore.errors import SequenceGap, SnapshotError

# rest_snapshot, snapshot_url, parse_snapshot: moved to hftcore.binance.rest, re-exported
# here for this release.
__all__ = ["BookSync", "SnapshotError", "continuity", "rest_snapshot", "snapshot_url"]

log = logging.getLogger("hftcore.binance.sync")


def _ascii_upper(symbol: str) -> bytes:
    """A symbol as the fast path compares it: UTF-8, ASCII letters upper-cased."""
    return symbol.encode("utf-8", "surrogatepass").upper()


def continuity(market: str, first: int, final: int, prev_final: int, last_update_id: int,
               bridged: bool = True) -> int:  # fmt: skip
    """The verdict for a diff event of ids ``U``, ``u``, ``pu`` at the book's update id.

    Parameters
    ----------
    market : {"spot", "usdm"}
    first, final, prev_final : int
        The event's ``U``, ``u`` and ``pu`` (-1 on spot).
    last_update_id : int
        The update id the book reflects.
    bridged : bool, default True
        An event has been applied since the snapshot. USD-M checks its first event
        against the snapshot differently (``U <= lastUpdateId <= u``).

    Returns
    -------
    int
        :data:`~hftcore.binance.APPLIED` (apply it), :data:`~hftcore.binance.STALE`
        (already in the book: ignore it) or :data:`~hftcore.binance.GAP` (events were
        missed; for an unbridged USD-M book: the snapshot is older than the stream).
    """
    if market == "spot":
        # One rule from the snapshot on: u <= local id is already in the book;
        # U beyond local id + 1 means events were missed; otherwise U <= id+1 <= u.
        if final <= last_update_id:
            return STALE
        return GAP if first > last_update_id + 1 else APPLIED
    if not bridged:
        # USD-M: the first event applied must satisfy U <= lastUpdateId <= u.
        if final < last_update_id:
            return STALE
        return GAP if first > last_update_id else APPLIED
    if final <= last_update_id:
        return STALE  # repeated or out of order
    return GAP if prev_final != last_update_id else APPLIED


class BookSync:
    """A local Binance order book kept in sync from diff-depth events and REST snapshots.

    Feed every ``<symbol>@depth`` event to :meth:`feed`, in the order received. The sync
    buffers events, fetches a snapshot through ``snapshot``, aligns the two exactly as
    Binance documents, then applies events to :attr:`book`; a gap in the update ids
    starts a resync (new snapshot) on its own.

    Parameters
    ----------
    symbol : str
        The book's symbol, e.g. ``"BTCUSDT"``; events for another symbol are refused.
    market : {"spot", "usdm"}, default "spot"
        Binance Spot or USD-M futures: the alignment rules differ (see the module doc).
    snapshot : callable, optional
        Called with no arguments when a snapshot is needed; returns the REST body
        (``bytes`` / ``str``), its parsed JSON (``dict``) or a
        :class:`~hftcore.binance.records.DepthSnapshot`. Defaults to
        :func:`rest_snapshot` for ``symbol`` and ``market`` (a blocking HTTP GET).
    max_levels : int, default 5000
        Capacity per side of the :class:`~hftcore.book.L2Book`.
    on_gap : callable, optional
        Called as ``on_gap(gap)`` with a :class:`hftcore.SequenceGap` when the stream
        breaks, before the resync starts.
    max_buffer : int, default 10000
        Events kept while waiting for a snapshot; the oldest go first (a snapshot is
        always newer than them, so they would be discarded anyway).
    snapshot_retries : int, default 3
        Immediate refetches when a snapshot turns out older than the buffered stream;
        after that the sync waits for the next event before fetching again.
    fast_json : bool, default True
        While live, apply raw JSON diffs with
        :func:`hftcore.binance._apply.apply_depth_json_after` (decode, check the update
        ids and apply in one nogil pass) instead of building a record first. Same
        rules and counters as the record path.

    Attributes
    ----------
    book : L2Book
        The local book; only valid while :attr:`state` is ``"live"``.
    state : str
        ``"syncing"`` (before the first sync), ``"live"``, or ``"resyncing"`` (after a
        gap, until the book is aligned again).
    last_update_id : int or None
        Update id the book reflects (the snapshot's ``lastUpdateId``, then each applied
        event's ``u``); ``None`` before the first snapshot.
    applied : int
        Events applied to the book.
    stale_dropped : int
        Events ignored because the book already contains them (older than the snapshot,
        or out of order / repeated).
    gaps : int
        Breaks in the update ids found in the stream.
    resyncs : int
        Resyncs started (after gaps or :meth:`resync` calls).
    snapshots : int
        Snapshots fetched and parsed.
    stale_snapshots : int
        Snapshots discarded because they were older than the buffered stream.
    applied_direct : int
        Events of ``applied`` that took the raw JSON fast path.

    Notes
    -----
    Not thread-safe: feed events from one thread, and read :attr:`book` from that
    thread too (or between calls to :meth:`feed`). The ``snapshot`` callable runs
    inside :meth:`feed` and blocks it.

    Examples
    --------
    >>> sync = BookSync("BTCUSDT", snapshot=my_snapshot_fn)      # doctest: +SKIP
    >>> for msg in websocket:                                    # doctest: +SKIP
    ...     sync.feed(msg)
    ...     if sync.state == "live":
    ...         print(sync.book.bbo())
    """

    def __init__(
        self,
        symbol: str,
        market: str = "spot",
        snapshot: Callable[[], object] | None = None,
        *,
        max_levels: int = 5000,
        on_gap: Callable[[SequenceGap], object] | None = None,
        max_buffer: int = 10_000,
        snapshot_retries: int = 3,
        fast_json: bool = True,
    ):
        if not symbol or not isinstance(symbol, str):
            raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
        self.symbol = symbol.upper()
        self.market = check_market(market)
        self.snapshot = snapshot if snapshot is not None else rest_snapshot(symbol, market)
        self.book = L2Book(max_levels=max_levels)
        self.on_gap = on_gap
        self.snapshot_retries = snapshot_retries
        self.state = "syncing"
        self.last_update_id: int | None = None
        self.applied = 0
        self.stale_dropped = 0
        self.gaps = 0
        self.resyncs = 0
        self.snapshots = 0
        self.stale_snapshots = 0
        self._buffer: deque[DepthUpdate] = deque(maxlen=max_buffer)
        self._bridged = False  # the first event after the snapshot has been applied
        self.fast_json = fast_json
        self.applied_direct = 0
        # Routing only: text without this goes the record path (whose errors name the
        # kind); what the message means is the parser's business, symbol included.
        self._diff_str = '"e":"depthUpdate"'
        self._diff_bytes = self._diff_str.encode()

    # -- public ---------------------------------------------------------------------

    def feed(self, event) -> int:
        """Take one diff-depth event, in the order received.

        Parameters
        ----------
        event : bytes, str or DepthUpdate
            Raw JSON of a ``depthUpdate`` (spot or USD-M, plain or in the
            combined-stream envelope ``{"stream":..,"data":..}``), or a decoded record.

        Returns
        -------
        int
            Events applied to the book during this call (buffered ones included).

        Raises
        ------
        SnapshotError
            When a snapshot was needed and ``snapshot`` failed; the event stays
            buffered and the next call fetches again.
        ValueError
            For an event of another symbol or market, or that is not a depth diff.
        """
        before = self.applied
        if not (self.state == "live" and self.fast_json and self._feed_direct(event)):
            update = self._as_update(event)
            if self.state == "live":
                self._process(update)
            else:
                self._buffer.append(update)
        if self.state != "live":
            self._sync()
        return self.applied - before

    def resync(self, reason: str = "requested") -> None:
        """Discard the book and align it again from a new snapshot.

        Call it after reconnecting the stream; the next :meth:`feed` fetches the
        snapshot. Events buffered so far are kept.
        """
        log.info("%s: resync (%s)", self.symbol, reason)
        self.resyncs += 1
        self.state = "resyncing"
        self.book.clear()
        self.last_update_id = None
        self._bridged = False

    def stats(self) -> dict:
        """The counters and state as a dict (for logging)."""
        return {
            "symbol": self.symbol,
            "market": self.market,
            "state": self.state,
            "last_update_id": self.last_update_id,
            "applied": self.applied,
            "stale_dropped": self.stale_dropped,
            "gaps": self.gaps,
            "resyncs": self.resyncs,
            "snapshots": self.snapshots,
            "stale_snapshots": self.stale_snapshots,
            "applied_direct": self.applied_direct,
            "buffered": len(self._buffer),
            "dropped_levels": self.book.dropped,
        }

    def __repr__(self):
        return (
            f"<BookSync {self.symbol} {self.market} {self.state} "
            f"last_update_id={self.last_update_id} applied={self.applied} "
            f"gaps={self.gaps} resyncs={self.resyncs}>"
        )

    # -- internals ------------------------------------------------------------------

    def _as_update(self, event) -> DepthUpdate:
        if not isinstance(event, DepthUpdate):
            decoded = decode(event)
            if not isinstance(decoded, DepthUpdate):
                raise ValueError(
                    f"{self.symbol}: expected a depthUpdate event, got {type(decoded).__name__}"
                )
            event = decoded
        if event.symbol and _ascii_upper(event.symbol) != _ascii_upper(self.symbol):
            raise ValueError(f"{self.symbol}: got a depth event for {event.symbol}")
        if self.market == "usdm" and event.prev_final_update_id < 0:
            raise ValueError(f"{self.symbol}: USD-M depth event without pu (a spot event?)")
        return event

    def _fetch(self) -> DepthSnapshot:
        try:
            body = self.snapshot()
        except Exception as exc:
            raise SnapshotError(self.symbol, f"{type(exc).__name__}: {exc}") from exc
        try:
            snap = parse_snapshot(body)
        except ValueError as exc:
            raise SnapshotError(self.symbol, str(exc)) from exc
        if snap.symbol and snap.symbol.upper() != self.symbol:
            raise SnapshotError(self.symbol, f"snapshot is for {snap.symbol}")
        self.snapshots += 1
        return snap

    def _sync(self) -> None:
        """Align buffered events with a snapshot (fetching as needed), then drain them.

        A gap while draining puts the event back at the front of the buffer and clears
        ``last_update_id``, so the loop fetches a new snapshot and carries on.
        """
        attempts = 0
        while self._buffer:
            if self.state != "live" and self.last_update_id is None:
                if attempts > self.snapshot_retries:
                    return  # let the stream move on before asking again
                attempts += 1
                snap = self._fetch()
                first = self._buffer[0].first_update_id
                # Spot step 4: a snapshot strictly older than the first buffered event's
                # U is fetched again. (USD-M checks its bridge in _process.)
                if self.market == "spot" and snap.last_update_id < first:
                    self._stale_snapshot(snap.last_update_id, first)
                    continue
                self._load(snap)
            self._process(self._buffer.popleft())

    def _load(self, snap: DepthSnapshot) -> None:
        self.book.load_snapshot(snap.bids, snap.asks)
        self.last_update_id = snap.last_update_id
        self._bridged = False
        log.info(
            "%s: snapshot lastUpdateId=%d (%d bids, %d asks), %d events buffered",
            self.symbol,
            snap.last_update_id,
            len(snap.bids),
            len(snap.asks),
            len(self._buffer),
        )

    def _process(self, ev: DepthUpdate) -> None:
        """Check one event against the book's update id; apply, ignore or resync."""
        verdict = continuity(self.market, ev.first_update_id, ev.final_update_id,
                             ev.prev_final_update_id, self.last_update_id, self._bridged)  # fmt: skip
        if verdict == APPLIED:
            self._apply(ev)
        elif verdict == STALE:
            self.stale_dropped += 1
        elif self._bridged or self.market == "spot":
            self._gap(ev)
        else:
            # USD-M, first event after the snapshot starts after lastUpdateId: the
            # snapshot is older than the stream; fetch again.
            first, lid = ev.first_update_id, self.last_update_id
            self._buffer.appendleft(ev)
            self.book.clear()
            self.last_update_id = None
            self._stale_snapshot(lid, first)

    def _feed_direct(self, msg) -> bool:
        """Live fast path for raw JSON: decode, check the ids, apply, in one nogil pass.

        The update ids are checked before any level is applied, with the same rules as
        the record path: a stale (repeated or out-of-order) event is ignored and counted,
        a gap resyncs; the parser compares the event's own ``"s"`` with this book's symbol
        before applying anything. Returns False when ``msg`` takes the record path
        instead (not bytes or str, or no depthUpdate in the text).
        """
        if isinstance(msg, str):
            diff = self._diff_str
        elif isinstance(msg, (bytes, bytearray)):
            diff = self._diff_bytes
        else:
            return False
        if diff not in msg:
            return False
        verdict, head = apply_depth_json_after(
            self.book, msg, self.last_update_id, self.market, symbol=self.symbol
        )
        if verdict == APPLIED:
            self.last_update_id = head.final_update_id
            self.applied += 1
            self.applied_direct += 1
            return True
        if verdict == STALE:
            self.stale_dropped += 1
            return True
        if verdict == GAP:
            self._gap(self._as_update(msg))  # a spot event fed to a USD-M sync raises here
            return True
        if verdict == OTHER_SYMBOL:
            self._as_update(msg)  # raises the record path's ValueError for it
            raise ValueError(f"{self.symbol}: got a depth event for another symbol")
        raise ValueError(f"{self.symbol}: feed() takes diff events, got a depth snapshot")

    def _apply(self, ev: DepthUpdate) -> None:
        self.book.update_levels(0, ev.bids)
        self.book.update_levels(1, ev.asks)
        self.last_update_id = ev.final_update_id
        self.applied += 1
        self._bridged = True
        self.state = "live"

    def _stale_snapshot(self, last_update_id: int, first: int) -> None:
        self.stale_snapshots += 1
        log.info(
            "%s: snapshot lastUpdateId=%d is older than the buffered stream (U=%d); fetching again",
            self.symbol,
            last_update_id,
            first,
        )

    def _gap(self, ev: DepthUpdate) -> None:
        """Count and report a break in the update ids, then start a resync with ``ev``."""
        lid = self.last_update_id
        first, final, pu = ev.first_update_id, ev.final_update_id, ev.prev_final_update_id
        if self.market == "spot":
            expected, received = lid + 1, first
            if first == lid + 2:
                missing = f"update id {lid + 1}"
            else:
                missing = f"update ids {lid + 1}..{first - 1}"
        else:
            expected, received = lid, pu
            if pu > lid:
                missing = f"the events after u={lid} up to u={pu}"
            else:
                missing = f"unknown (pu={pu} does not continue u={lid})"
        self.gaps += 1
        log.warning(
            "%s: depth gap after update id %d: missing %s (event U=%d u=%d%s); resyncing",
            self.symbol,
            lid,
            missing,
            first,
            final,
            f" pu={pu}" if self.market == "usdm" else "",
        )
        if self.on_gap is not None:
            self.on_gap(SequenceGap(expected, received, source=f"{self.symbol}@depth"))
        self.resync("gap")
        self._buffer.appendleft(ev)
