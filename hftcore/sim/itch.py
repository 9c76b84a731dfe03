"""Synthetic NASDAQ TotalView-ITCH 5.0 days: reproducible and internally consistent.

:func:`generate` returns a day as bytes; :func:`write_day` streams one to disk with bounded
memory (``.gz`` when the path ends in ``.gz``). Both are seeded: the same arguments give
the same bytes, whatever the chunking. Output is BinaryFILE-framed (each message preceded
by its 2-byte big-endian length), as NASDAQ's day files are.

Shape of the day
----------------
- 03:58 ``S`` event ``O`` (start of messages); ``R`` stock directory for every symbol
  (``stock_locate`` 1..N in alphabetical order of made-up, unique tickers); ``H`` trading
  state ``T`` for every symbol; a few ``Y``, ``L``, ``V``.
- 04:00 ``S`` ``S`` (start of system hours); pre-market order flow.
- ``K`` (an IPO quoting period), NOII ``I`` every 10 s for the most active symbols from
  09:25 and from 15:50; 09:30 ``S`` ``Q`` (start of market hours) and an opening cross
  ``Q`` (type ``O``) per symbol; ``O`` (a direct listing), ``N``; an operational halt
  (``h``, ``H`` halted, ``J`` auction collar, halt cross ``Q`` type ``H``, ``H`` trading);
  ``W``; 16:00 ``S`` ``M`` and a closing cross ``Q`` (type ``C``) per symbol; post-market
  flow; 20:00 ``S`` ``E``; 20:05 ``S`` ``C``.
- The order flow (the bulk, mostly 09:30-16:00 and heaviest near the open and the close):
  about 45% adds (``A``, some ``F``), 40% deletes ``D``, 8% replaces ``U``, 4% executions
  ``E`` and a few ``C``, 1.5% partial cancels ``X``, 1.5% hidden trades ``P``, and rare
  broken trades ``B``. Symbol activity is Zipf-like: a few symbols get most messages.

Invariants (tests and the order books rely on them)
---------------------------------------------------
1. Timestamps are non-decreasing over the whole stream (ns since midnight, 03:58-20:05).
2. Every ``E``, ``C``, ``X``, ``D`` and ``U`` references a live order: one added earlier
   (by ``A``/``F`` or as a ``U``'s new reference) and not yet removed. ``stock_locate``
   of these messages is the order's symbol.
3. ``E``/``C`` executed shares and ``X`` cancelled shares never exceed the order's
   remaining shares; ``X`` always leaves at least one share. An order whose remaining
   shares reach 0 (by ``E``/``C``), a deleted order (``D``) and a replaced original
   (``U``) are gone and never referenced again.
4. Order reference numbers (``A``/``F`` ``order_ref`` and ``U`` ``new_order_ref``) are
   unique and strictly increasing in stream order, starting at 1. ``P`` carries
   ``order_ref`` 0 (NASDAQ zeroes it for non-displayed orders).
5. Adds and replaces never cross the book: at the time of the message, a buy's price is
   below the symbol's best ask and a sell's above the best bid, over that symbol's live
   orders.
6. Prices are positive multiples of 100 (a one-cent tick, 4 implied decimals) within
   +-128 ticks of a per-symbol reference price; ``C`` execution prices are within two
   ticks above the order's price. Shares are positive.
7. ``A``/``F``/``P``/``Q``/``I`` carry ``stock`` equal to the directory's symbol for their
   ``stock_locate``. Match numbers (``E``/``C``/``P``/``Q``) are unique and increasing;
   ``B`` references an earlier one.
8. ``E`` and ``C`` execute the order at the front of the queue (time priority) at its
   symbol's best bid or best ask. ``X`` keeps an order's place in its queue; ``U`` puts
   the new order at the back of its price level.
9. With ``messages`` at least the scheduled messages (about 4 per symbol plus a few
   hundred), the day holds exactly ``messages`` messages.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

from hftcore.itch import encode_table, spec
from hftcore.sim._itchgen import DayGenerator

__all__ = ["generate", "write_day", "DaySummary", "LEVELS"]

_NS = 1_000_000_000
#: Price levels simulated per symbol and side (a window of ticks around the reference).
LEVELS = 256
_CHUNK = 8 << 20
_MPIDS = (b"NITE", b"GSCO", b"MSCO", b"UBSS", b"JPMS", b"CDRG", b"VIRT", b"SUSQ")


def _t(h, m=0, s=0, ns=0):
    """Nanoseconds since midnight."""
    return ((h * 60 + m) * 60 + s) * _NS + ns


# Intraday curve of the order flow: (fraction of the flow done, time).
_KNOTS = (
    (0.00, _t(4, 0, 0, 1_000_000)),
    (0.02, _t(9, 25)),
    (0.03, _t(9, 30)),
    (0.15, _t(10, 0)),
    (0.85, _t(15, 30)),
    (0.97, _t(16, 0)),
    (1.00, _t(19, 59, 59)),
)


@dataclass(frozen=True)
class DaySummary:
    """What :func:`write_day` wrote.

    Attributes
    ----------
    path : str
        The file.
    messages : int
        Messages written.
    bytes : int
        Uncompressed bytes (with the length prefixes).
    symbols : int
        Symbols in the stock directory.
    max_live_orders : int
        Upper bound on orders resting at once (size an order book's store with it).
    max_price_levels : int
        Upper bound on price levels in use at once, over every symbol and side.
    """

    path: str
    messages: int
    bytes: int
    symbols: int
    max_live_orders: int
    max_price_levels: int


def _tickers(rng, n):
    """``n`` unique, made-up, ticker-like symbols in alphabetical order."""
    letters = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
    lengths = (1, 2, 3, 4, 5)
    weights = np.array([0.002, 0.06, 0.35, 0.55, 0.038])
    if n > 2000:  # there are only 26 one-letter tickers and 676 two-letter ones
        weights = np.array([0.0005, 0.01, 0.25, 0.68, 0.0595])
    seen = set()
    while len(seen) < n:
        k = n - len(seen)
        lens = rng.choice(lengths, size=k, p=weights / weights.sum())
        codes = rng.choice(letters, size=(k, 5))
        for row, ln in zip(codes, lens, strict=True):
            seen.add(row[:ln].tobytes())
    return sorted(seen)  # each round draws only what is missing: exactly n


class _Schedule:
    """Scheduled (non-flow) messages, collected per type then encoded in one go."""

    def __init__(self):
        self.rows = {}  # type -> list of field dicts
        self.order = []  # (time, insertion, type, row index)

    def add(self, type_, timestamp, **fields):
        rows = self.rows.setdefault(type_, [])
        fields["timestamp"] = timestamp
        self.order.append((timestamp, len(self.order), type_, len(rows)))
        rows.append(fields)

    def __len__(self):
        return len(self.order)

    def encode(self):
        """(times uint64, offsets int64 of n+1, framed blob uint8), sorted by time."""
        frames = {}
        for type_, rows in self.rows.items():
            names = {k for r in rows for k in r}
            cols = {k: [r.get(k, 0) for r in rows] for k in names}
            size = spec.BY_TYPE[type_].length + 2
            frames[type_] = np.frombuffer(encode_table(type_, cols), np.uint8).reshape(-1, size)
        self.order.sort()
        parts = [frames[t][i] for _, _, t, i in self.order]
        sizes = np.array([len(p) for p in parts], dtype=np.int64)
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(sizes, out=offsets[1:])
        blob = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        times = np.array([o[0] for o in self.order], dtype=np.uint64)
        return times, offsets, blob


def _schedule(rng, tickers, ref_price, active):
    """Every message of the day outside the order flow."""
    n = len(tickers)
    sc = _Schedule()
    locate = np.arange(1, n + 1)
    sc.add("S", _t(3, 58), event_code="O")
    for i in range(n):
        lot = 100 if ref_price[i] < 1_000 * 10_000 else 10
        sc.add(
            "R", _t(3, 58, 0, 1_000_000 + 1_000 * i),
            stock_locate=locate[i], stock=tickers[i],
            market_category="QNGSPZ"[int(rng.integers(6))],
            financial_status="N", round_lot_size=lot, round_lots_only="N",
            issue_classification="CCCCAE"[int(rng.integers(6))], issue_subtype="Z",
            authenticity="P", short_sale_threshold="N", ipo_flag=" ", luld_tier="12"[i % 2],
            etp_flag="N", etp_leverage_factor=0, inverse_indicator="N",
        )  # fmt: skip
    for i in range(n):
        sc.add(
            "H", _t(3, 59, 0, 1_000 * i), stock_locate=locate[i], stock=tickers[i],
            trading_state="T", reserved=" ", reason=" ",
        )  # fmt: skip
    for j, i in enumerate(rng.choice(n, size=max(1, n // 50), replace=False)):
        sc.add(
            "Y", _t(3, 59, 30, 1_000 * j), stock_locate=locate[i], stock=tickers[i],
            reg_sho_action="0",
        )  # fmt: skip
    for j, i in enumerate(active[:5]):
        for k, mpid in enumerate(_MPIDS[:2]):
            sc.add(
                "L", _t(3, 59, 40, 1_000 * (2 * j + k)), mpid=mpid, stock_locate=locate[i],
                stock=tickers[i], primary_market_maker="N", market_maker_mode="N",
                market_participant_state="A",
            )  # fmt: skip
    # MWCB decline levels: 7%, 13% and 20% below a made-up S&P 500 close (8 decimals).
    sp500 = 4_500_00000000
    sc.add(
        "V", _t(3, 59, 50), level1=sp500 * 93 // 100, level2=sp500 * 87 // 100,
        level3=sp500 * 80 // 100,
    )  # fmt: skip
    sc.add("S", _t(4), event_code="S")

    ipo = int(active[len(active) // 2])
    sc.add(
        "K", _t(7), stock_locate=locate[ipo], stock=tickers[ipo],
        ipo_release_time=11 * 3600 + 30 * 60, ipo_release_qualifier="A",
        ipo_price=int(ref_price[ipo]),
    )  # fmt: skip

    noii = active[: min(10, n)]
    for start, cross in ((_t(9, 25), "O"), (_t(15, 50), "C")):
        for step in range(30 if cross == "O" else 60):
            for j, i in enumerate(noii):
                ref = int(ref_price[i])
                sc.add(
                    "I", start + step * 10 * _NS + 1_000 * j, stock_locate=locate[i],
                    stock=tickers[i], paired_shares=int(rng.integers(1_000, 500_000)),
                    imbalance_shares=int(rng.integers(0, 50_000)),
                    imbalance_direction="BSNO"[int(rng.integers(4))],
                    far_price=ref + 100 * int(rng.integers(-20, 21)),
                    near_price=ref + 100 * int(rng.integers(-10, 11)),
                    current_reference_price=ref, cross_type=cross,
                    price_variation_indicator=" L12"[int(rng.integers(4))],
                )  # fmt: skip

    sc.add("S", _t(9, 30), event_code="Q")
    for at, cross in ((_t(9, 30), "O"), (_t(16), "C")):
        for i in range(n):
            sc.add(
                "Q", at + 1_000 * (i + 1), stock_locate=locate[i], stock=tickers[i],
                shares=int(rng.integers(0, 200_000)), cross_price=int(ref_price[i]),
                cross_type=cross,
            )  # fmt: skip

    lst = int(active[-1])
    sc.add(
        "O", _t(9, 45), stock_locate=locate[lst], stock=tickers[lst],
        open_eligibility_status="N", min_allowable_price=int(ref_price[lst]) * 8 // 10,
        max_allowable_price=int(ref_price[lst]) * 12 // 10,
        near_execution_price=int(ref_price[lst]), near_execution_time=_t(10),
        lower_price_range_collar=int(ref_price[lst]) * 9 // 10,
        upper_price_range_collar=int(ref_price[lst]) * 11 // 10,
    )  # fmt: skip
    for j, i in enumerate(active[:3]):
        sc.add("N", _t(10, 15, 0, 1_000 * j), stock_locate=locate[i], stock=tickers[i],
               interest_flag="B")  # fmt: skip

    # An operational halt and its resumption (with a halt cross) for one symbol.
    h = int(active[min(len(active) - 1, 7)])
    ref = int(ref_price[h])
    sc.add("h", _t(11), stock_locate=locate[h], stock=tickers[h], market_code="Q",
           halt_action="H")  # fmt: skip
    sc.add("H", _t(11, 0, 0, 1), stock_locate=locate[h], stock=tickers[h],
           trading_state="H", reserved=" ", reason="LUDP")  # fmt: skip
    sc.add(
        "J", _t(11, 4), stock_locate=locate[h], stock=tickers[h], reference_price=ref,
        upper_price=ref * 105 // 100 // 100 * 100, lower_price=ref * 95 // 100 // 100 * 100,
        extension=0,
    )  # fmt: skip
    sc.add("Q", _t(11, 5), stock_locate=locate[h], stock=tickers[h],
           shares=int(rng.integers(100, 50_000)), cross_price=ref, cross_type="H")  # fmt: skip
    sc.add("H", _t(11, 5, 0, 1), stock_locate=locate[h], stock=tickers[h],
           trading_state="T", reserved=" ", reason=" ")  # fmt: skip
    sc.add("h", _t(11, 5, 0, 2), stock_locate=locate[h], stock=tickers[h], market_code="Q",
           halt_action="T")  # fmt: skip
    # Synthetic: a market-wide circuit breaker status message, so every type appears.
    sc.add("W", _t(12), breached_level="1")

    sc.add("S", _t(16), event_code="M")
    sc.add("S", _t(20), event_code="E")
    sc.add("S", _t(20, 5), event_code="C")
    return sc


def _pool_cap(bulk):
    return int(min(max(bulk // 20, 1_000), 500_000))


def _plan(messages, symbols, seed):
    """Build the day's generator: (DayGenerator, total messages, pool capacity)."""
    messages = int(messages)
    symbols = int(symbols)
    if messages < 0:
        raise ValueError(f"messages must be >= 0, got {messages}")
    if not 1 <= symbols <= 65535:
        raise ValueError(f"symbols must be in 1..65535 (stock_locate is 2 bytes), got {symbols}")
    seed = int(seed)
    rng = np.random.default_rng(seed & ((1 << 64) - 1))
    tickers = _tickers(rng, symbols)
    # reference prices in cents: log-normal around $30, at least $2
    ref_ticks = np.clip(np.exp(rng.normal(np.log(3_000), 0.9, symbols)), 200, 200_000)
    ref_ticks = ref_ticks.astype(np.int64)
    base_ticks = ref_ticks - LEVELS // 2
    ref_price = ref_ticks * 100
    active = rng.permutation(symbols).astype(np.int32)  # rank -> symbol index
    weights = 1.0 / np.arange(1, symbols + 1) ** 1.0
    cdf = np.cumsum(weights) / weights.sum()
    cdf[-1] = 1.0
    sc = _schedule(rng, tickers, ref_price, active)
    bulk = max(messages - len(sc), 0)
    times, offsets, blob = sc.encode()
    ticker_arr = np.frombuffer(b"".join(t.ljust(8) for t in tickers), np.uint8)
    mpids = np.frombuffer(b"".join(_MPIDS), np.uint8).reshape(-1, 4)
    knots = np.array(_KNOTS, dtype=np.float64)
    cap = _pool_cap(bulk)
    gen = DayGenerator(
        seed & ((1 << 64) - 1), bulk, base_ticks, LEVELS, ticker_arr.reshape(-1, 8), mpids,
        cdf, active, knots[:, 0], knots[:, 1], cap, times, offsets, blob,
    )  # fmt: skip
    return gen, bulk + len(sc), cap


def _chunks(gen, total, progress, chunk_bytes=_CHUNK):
    buf = bytearray(chunk_bytes)
    view = memoryview(buf)
    done = 0
    while True:
        nbytes, nmsg = gen.fill(buf)
        if nmsg == 0:
            break
        done += nmsg
        yield view[:nbytes]
        if progress is not None:
            progress(done, total)


def generate(messages=100_000, symbols=500, seed=0):
    """Generate a synthetic ITCH 5.0 day in memory.

    Parameters
    ----------
    messages : int, default 100_000
        Messages in the day (exact once it exceeds the scheduled messages, about
        4 per symbol plus a few hundred).
    symbols : int, default 500
        Symbols in the stock directory (1..65535).
    seed : int, default 0
        Same arguments, same bytes.

    Returns
    -------
    bytes
        BinaryFILE-framed messages (2-byte big-endian length before each).

    Raises
    ------
    ValueError
        ``messages`` negative or ``symbols`` out of range.

    Examples
    --------
    >>> from hftcore.sim import itch as simitch
    >>> day = simitch.generate(messages=20_000, symbols=50, seed=1)
    >>> day[2:3]   # the first message: system event "start of messages"
    b'S'
    """
    gen, total, _ = _plan(messages, symbols, seed)
    # fill one buffer in place (sized for the average message, grown if needed)
    buf = bytearray(total * 34 + 4096)
    pos = 0
    while True:
        if len(buf) - pos < 4096:
            buf.extend(bytes(len(buf) // 4 + 4096))
        with memoryview(buf) as view:
            nbytes, nmsg = gen.fill(view[pos:])
        if nmsg == 0:
            break
        pos += nbytes
    del buf[pos:]
    return bytes(buf)


def write_day(path, messages=100_000, symbols=500, seed=0, progress=None):
    """Stream a synthetic ITCH 5.0 day to ``path`` with bounded memory.

    The bytes equal ``generate(messages, symbols, seed)``; a path ending in ``.gz`` is
    gzip-compressed (level 1, for speed; the same arguments give the same compressed
    bytes too). The file appears under ``path`` only once complete. Memory does not grow with ``messages``: an
    8 MiB write buffer, about 4 KiB per symbol (each symbol's simulated price levels) and
    at most 500,000 live orders of ~30 bytes.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (overwritten).
    messages, symbols, seed : int
        As for :func:`generate`.
    progress : callable, optional
        Called as ``progress(messages_done, messages_total)`` after each chunk.

    Returns
    -------
    DaySummary

    Examples
    --------
    >>> from hftcore.sim import itch as simitch
    >>> simitch.write_day("day.itch", messages=2_000_000).messages  # doctest: +SKIP
    2000000
    """
    path = os.fspath(path)
    gen, total, cap = _plan(messages, symbols, seed)
    # Written under a temporary name and renamed at the end: an interrupted run never
    # leaves a truncated day under the requested name.
    part = path + ".part"
    nbytes = 0
    try:
        with open(part, "wb") as raw:
            # no file name and mtime 0 in the gzip header: the same day, the same bytes
            f = gzip.GzipFile("", "wb", 1, raw, mtime=0) if path.endswith(".gz") else raw
            with f:
                for chunk in _chunks(gen, total, progress):
                    f.write(chunk)
                    nbytes += len(chunk)
        os.replace(part, path)
    except BaseException:
        if os.path.exists(part):
            os.remove(part)
        raise
    return DaySummary(path, total, nbytes, int(symbols), cap, 2 * LEVELS * int(symbols))
