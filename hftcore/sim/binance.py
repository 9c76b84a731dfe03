"""Reproducible Binance stream corpora (JSON and SBE) for tests, demos and benchmarks.

The same event sequence renders as JSON stream messages (spot or USD-M futures shapes) or
as spot SBE messages: 50% diff depth events (1-20 levels a side, about 15% of them
removals, and the levels the price has moved through are removed as on the exchange, so
the book is never left crossed; update ids consecutive per symbol: each event's ``U`` is the previous ``u + 1``,
and USD-M ``pu`` is the previous ``u``), 30% trades (USD-M: aggregate trades), 20% book
tickers. Prices follow a random walk on each symbol's tick grid; quantities are exact
8-decimal values. Same arguments and seed, same bytes.

Examples
--------
>>> from hftcore.sim.binance import generate_corpus
>>> from hftcore import binance
>>> t = binance.decode_many(generate_corpus(1000, seed=1))
>>> t.n_messages
1000
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import NamedTuple

from hftcore.binance import sbe_encode
from hftcore.binance.schema import MARKETS, SCALE, check_market

__all__ = [
    "Event",
    "render_json",
    "render_sbe",
    "generate_events",
    "iter_events",
    "generate_messages",
    "generate_corpus",
    "generate_sbe_messages",
    "generate_sbe_corpus",
    "MARKETS",
]

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")

# symbol: (start price, tick size, quantity step), all with 8 implied decimals
_INSTRUMENTS = {
    "BTCUSDT": (43_250 * SCALE, 1_000_000, 1_000),
    "ETHUSDT": (2_300 * SCALE, 1_000_000, 10_000),
    "BNBUSDT": (310 * SCALE, 1_000_000, 100_000),
    "SOLUSDT": (95 * SCALE, 1_000_000, 100_000),
}
_DEFAULT_INSTRUMENT = (100 * SCALE, 1_000_000, 100_000)
_START_MS = 1_700_000_000_000


class Event(NamedTuple):
    """One generated event, before rendering; times in microseconds."""

    kind: str  # "depth", "trade" or "book_ticker"
    symbol: str
    event_time: int  # µs
    transaction_time: int  # µs
    first_update_id: int  # depth: U; book_ticker: u; trade: trade id
    final_update_id: int  # depth: u
    prev_final_update_id: int  # depth: previous u
    bids: list  # depth: [(price, qty)], best first; book_ticker: [(bid, qty)]
    asks: list
    price: int  # trade
    qty: int  # trade
    buyer_is_maker: bool  # trade


def generate_events(
    messages: int = 100_000,
    seed: int = 0,
    symbols=DEFAULT_SYMBOLS,
    market: str = "spot",
) -> list[Event]:
    """The abstract event sequence behind every rendering.

    Parameters
    ----------
    messages : int
        Number of events.
    seed : int
        Random seed; the sequence is a pure function of the arguments.
    symbols : sequence of str
    market : {"spot", "usdm"}

    Returns
    -------
    list of Event
    """
    check_market(market)
    if not symbols:
        raise ValueError("symbols must not be empty")
    return list(itertools.islice(_events(seed, tuple(symbols), market), messages))


def iter_events(seed: int = 0, symbols=DEFAULT_SYMBOLS, market: str = "spot") -> Iterator[Event]:
    """The endless event sequence of :func:`generate_events`, one event at a time.

    ``generate_events(n, seed, symbols, market)`` is the first ``n`` events of
    ``iter_events(seed, symbols, market)``. The local exchange
    (:mod:`hftcore.sim.binance_exchange`) draws from it at its chosen rate.

    Parameters
    ----------
    seed : int
    symbols : sequence of str
    market : {"spot", "usdm"}

    Returns
    -------
    iterator of Event
    """
    check_market(market)
    if not symbols:
        raise ValueError("symbols must not be empty")
    return _events(seed, tuple(symbols), market)


def _events(seed, symbols, market):
    rng = random.Random(seed)
    state = {}
    for i, s in enumerate(symbols):
        price, tick, step = _INSTRUMENTS.get(s, _DEFAULT_INSTRUMENT)
        state[s] = {
            "mid": price // tick,  # in ticks
            "tick": tick,
            "step": step,
            "u": 1_000_000 * (i + 1) + rng.randrange(1000),
            "trade_id": 10_000_000 * (i + 1),
            "levels": (set(), set()),  # live bid / ask prices (ticks) the stream has set
        }
    t_us = _START_MS * 1000
    while True:
        s = symbols[rng.randrange(len(symbols))]
        st = state[s]
        t_us += rng.randrange(0, 3000)
        if rng.random() < 0.1:
            st["mid"] += rng.choice((-1, 1))
        tick, step, mid = st["tick"], st["step"], st["mid"]
        r = rng.random()
        if r < 0.5:
            first = st["u"] + 1
            last = first + rng.randrange(0, 8)
            bids = _side(rng, mid, tick, step, -1)
            asks = _side(rng, mid, tick, step, +1)
            # As on the exchange, levels the price has moved through are removed (before
            # the furthest new levels, within 20 a side): the book never stays crossed.
            live_b, live_a = st["levels"]
            gone_b = sorted((k for k in live_b if k >= mid), reverse=True)
            gone_a = sorted(k for k in live_a if k <= mid)
            bids = ([(k * tick, 0) for k in gone_b] + bids)[:20]
            asks = ([(k * tick, 0) for k in gone_a] + asks)[:20]
            for live, levels in ((live_b, bids), (live_a, asks)):
                for p, q in levels:
                    (live.add if q else live.discard)(p // tick)
            yield (
                Event("depth", s, t_us, t_us - rng.randrange(0, 2000), first, last, st["u"],
                      bids, asks, 0, 0, False)
            )  # fmt: skip
            st["u"] = last
        elif r < 0.8:
            st["trade_id"] += 1
            price = (mid + rng.choice((-1, 0, 1))) * tick
            qty = rng.randrange(1, 50_000) * step
            yield (
                Event("trade", s, t_us, t_us - rng.randrange(0, 2000), st["trade_id"], 0, 0,
                      [], [], price, qty, rng.random() < 0.5)
            )  # fmt: skip
        else:
            bid = [((mid - 1) * tick, rng.randrange(1, 50_000) * step)]
            ask = [((mid + 1) * tick, rng.randrange(1, 50_000) * step)]
            yield (
                Event("book_ticker", s, t_us, t_us - rng.randrange(0, 2000), st["u"], 0, 0,
                      bid, ask, 0, 0, False)
            )  # fmt: skip


def _side(rng, mid, tick, step, sign):
    n = rng.randint(1, 20)
    # Most updates land near the touch, as in real depth streams: distances from the mid
    # are exponential (mean ~8 ticks), distinct.
    offsets = set()
    while len(offsets) < n:
        offsets.add(1 + int(rng.expovariate(0.125)))
    offsets = sorted(offsets)
    out = []
    for k in offsets:
        qty = 0 if rng.random() < 0.15 else rng.randrange(1, 200_000) * step
        out.append(((mid + sign * k) * tick, qty))
    return out


def _fx(v: int, decimals: int = 8) -> str:
    whole, frac = divmod(v, SCALE)
    if decimals == 0:
        return str(whole)
    return f"{whole}.{frac:08d}"[: len(str(whole)) + 1 + decimals]


def render_json(e: Event, market: str = "spot") -> bytes:
    """One event as a JSON stream message of ``market`` (see :func:`generate_messages`)."""
    ms_e = e.event_time // 1000
    ms_t = e.transaction_time // 1000
    # Spot streams print 8 decimals; USD-M prints the instrument's precision.
    pd, qd = (8, 8) if market == "spot" else (2, 5)
    if e.kind == "depth":
        b = ",".join(f'["{_fx(p, pd)}","{_fx(q, qd)}"]' for p, q in e.bids)
        a = ",".join(f'["{_fx(p, pd)}","{_fx(q, qd)}"]' for p, q in e.asks)
        if market == "spot":
            s = (f'{{"e":"depthUpdate","E":{ms_e},"s":"{e.symbol}","U":{e.first_update_id},'
                 f'"u":{e.final_update_id},"b":[{b}],"a":[{a}]}}')  # fmt: skip
        else:
            s = (f'{{"e":"depthUpdate","E":{ms_e},"T":{ms_t},"s":"{e.symbol}",'
                 f'"U":{e.first_update_id},"u":{e.final_update_id},'
                 f'"pu":{e.prev_final_update_id},"b":[{b}],"a":[{a}]}}')  # fmt: skip
    elif e.kind == "trade":
        m = "true" if e.buyer_is_maker else "false"
        if market == "spot":
            s = (f'{{"e":"trade","E":{ms_e},"s":"{e.symbol}","t":{e.first_update_id},'
                 f'"p":"{_fx(e.price, pd)}","q":"{_fx(e.qty, qd)}","T":{ms_t},"m":{m},'
                 f'"M":true}}')  # fmt: skip
        else:
            s = (f'{{"e":"aggTrade","E":{ms_e},"a":{e.first_update_id},"s":"{e.symbol}",'
                 f'"p":"{_fx(e.price, pd)}","q":"{_fx(e.qty, qd)}",'
                 f'"f":{e.first_update_id * 3},"l":{e.first_update_id * 3 + 2},'
                 f'"T":{ms_t},"m":{m}}}')  # fmt: skip
    else:
        (bp, bq), (ap, aq) = e.bids[0], e.asks[0]
        quote = (f'"b":"{_fx(bp, pd)}","B":"{_fx(bq, qd)}","a":"{_fx(ap, pd)}",'
                 f'"A":"{_fx(aq, qd)}"')  # fmt: skip
        if market == "spot":
            s = f'{{"u":{e.first_update_id},"s":"{e.symbol}",{quote}}}'
        else:
            s = (f'{{"e":"bookTicker","u":{e.first_update_id},"E":{ms_e},"T":{ms_t},'
                 f'"s":"{e.symbol}",{quote}}}')  # fmt: skip
    return s.encode()


def generate_messages(
    messages: int = 100_000, seed: int = 0, symbols=DEFAULT_SYMBOLS, market: str = "spot"
) -> list[bytes]:
    """JSON stream messages, one ``bytes`` per WebSocket text frame.

    Parameters
    ----------
    messages, seed, symbols, market
        As :func:`generate_events`. ``market="usdm"`` renders USD-M shapes (``T`` and
        ``pu`` in depth, ``aggTrade`` instead of ``trade``, ``bookTicker`` with ``e``/``E``),
        with 2-decimal prices and 5-decimal quantities as the futures streams print them
        (every generated value lies on that grid, so both renderings decode equal).

    Returns
    -------
    list of bytes
    """
    return [render_json(e, market) for e in generate_events(messages, seed, symbols, market)]


def generate_corpus(
    messages: int = 100_000, seed: int = 0, symbols=DEFAULT_SYMBOLS, market: str = "spot"
) -> bytes:
    """Newline-delimited JSON of :func:`generate_messages` (one message a line)."""
    return b"\n".join(generate_messages(messages, seed, symbols, market)) + b"\n"


def render_sbe(e: Event) -> bytes:
    """One event as a spot SBE message (see :func:`generate_sbe_messages`)."""
    if e.kind == "depth":
        return sbe_encode.encode_depth_diff(
            e.event_time, e.first_update_id, e.final_update_id, e.symbol, e.bids, e.asks
        )
    if e.kind == "trade":
        return sbe_encode.encode_trades(
            e.event_time, e.transaction_time, e.symbol,
            [(e.first_update_id, e.price, e.qty, e.buyer_is_maker)],
        )  # fmt: skip
    (bp, bq), (ap, aq) = e.bids[0], e.asks[0]
    return sbe_encode.encode_best_bid_ask(e.event_time, e.first_update_id, e.symbol, bp, bq, ap, aq)


def generate_sbe_messages(
    messages: int = 100_000, seed: int = 0, symbols=DEFAULT_SYMBOLS
) -> list[bytes]:
    """The spot event sequence as SBE messages (schema 1 v0), one per binary frame:
    ``DepthDiffStreamEvent``, ``TradesStreamEvent`` (one trade each) and
    ``BestBidAskStreamEvent``, exponents -8, times in microseconds."""
    return [render_sbe(e) for e in generate_events(messages, seed, symbols, "spot")]


def generate_sbe_corpus(messages: int = 100_000, seed: int = 0, symbols=DEFAULT_SYMBOLS) -> bytes:
    """:func:`generate_sbe_messages` back to back in one buffer."""
    return b"".join(generate_sbe_messages(messages, seed, symbols))
