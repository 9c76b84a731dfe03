"""Peer implementations of Binance JSON decoding (and book apply), each as a zero-argument
callable over an in-memory corpus, so they are timed the same way as hftcore.

Every decoder produces the same thing hftcore does: integers with 8 implied decimals for
prices and quantities (exact, from the decimal strings), per message.
"""

from __future__ import annotations

import json

E8 = "00000000"


def to_e8(s: str | bytes) -> int:
    """Exact decimal string -> int with 8 implied decimals (non-negative, <= 8 decimals)."""
    if isinstance(s, bytes):
        s = s.decode()
    whole, _, frac = s.partition(".")
    return int(whole + (frac + E8)[:8])


def _levels(levels):
    return [(to_e8(p), to_e8(q)) for p, q in levels]


def _convert_dict(m: dict):
    """Convert one decoded dict (json/orjson) to integer fields, as hftcore does."""
    e = m.get("e")
    if e == "depthUpdate":
        return (m["E"], m["U"], m["u"], _levels(m["b"]), _levels(m["a"]))
    if e == "trade":
        return (m["E"], m["t"], to_e8(m["p"]), to_e8(m["q"]), m["T"], m["m"])
    return (m["u"], to_e8(m["b"]), to_e8(m["B"]), to_e8(m["a"]), to_e8(m["A"]))


def json_decoder(corpus):
    loads = json.loads

    def run():
        for line in corpus:
            _convert_dict(loads(line))

    return run


def orjson_decoder(corpus):
    import orjson

    loads = orjson.loads

    def run():
        for line in corpus:
            _convert_dict(loads(line))

    return run


def _msgspec_types():
    import msgspec

    class DepthUpdate(msgspec.Struct):
        e: str
        E: int
        s: str
        U: int
        u: int
        b: list[tuple[str, str]]
        a: list[tuple[str, str]]

    class Trade(msgspec.Struct):
        e: str
        E: int
        s: str
        t: int
        p: str
        q: str
        T: int
        m: bool

    class BookTicker(msgspec.Struct):
        u: int
        s: str
        b: str
        B: str
        a: str
        A: str

    class DepthUpdateF(msgspec.Struct):  # strict=False: numeric strings decode to float
        E: int
        U: int
        u: int
        b: list[tuple[float, float]]
        a: list[tuple[float, float]]

    class TradeF(msgspec.Struct):
        E: int
        t: int
        p: float
        q: float
        T: int
        m: bool

    class BookTickerF(msgspec.Struct):
        u: int
        b: float
        B: float
        a: float
        A: float

    def dec(t):
        return msgspec.json.Decoder(t, strict=False).decode

    return (dec(DepthUpdate), dec(Trade), dec(BookTicker)), (
        dec(DepthUpdateF),
        dec(TradeF),
        dec(BookTickerF),
    )


def _kind(line: bytes) -> int:
    """0 depth, 1 trade, 2 bookTicker: the cheap dispatch a msgspec user writes."""
    if line.startswith(b'{"e":"depthUpdate"'):
        return 0
    if line.startswith(b'{"e":"trade"'):
        return 1
    return 2


def msgspec_decoder(corpus):
    """msgspec typed Structs (strict=False), prices kept as str then converted exactly."""
    (depth, trade, ticker), _ = _msgspec_types()
    tagged = [(_kind(line), line) for line in corpus]

    def run():
        for k, line in tagged:
            if k == 0:
                m = depth(line)
                _levels(m.b), _levels(m.a)
            elif k == 1:
                m = trade(line)
                to_e8(m.p), to_e8(m.q)
            else:
                m = ticker(line)
                to_e8(m.b), to_e8(m.B), to_e8(m.a), to_e8(m.A)

    return run


def msgspec_float_decoder(corpus):
    """msgspec typed Structs, strict=False decoding the strings to float, then round(x*1e8)
    (inexact in general: what a user gets from the fastest msgspec path)."""
    _, (depth, trade, ticker) = _msgspec_types()
    tagged = [(_kind(line), line) for line in corpus]

    def run():
        for k, line in tagged:
            if k == 0:
                m = depth(line)
                [(round(p * 1e8), round(q * 1e8)) for p, q in m.b]
                [(round(p * 1e8), round(q * 1e8)) for p, q in m.a]
            elif k == 1:
                m = trade(line)
                round(m.p * 1e8), round(m.q * 1e8)
            else:
                m = ticker(line)
                round(m.b * 1e8), round(m.B * 1e8), round(m.a * 1e8), round(m.A * 1e8)

    return run


def msgspec_orderbook_apply(groups):
    """msgspec decode + exact conversion + bmoscon ``order-book`` applying each level;
    ``groups``: the depth messages of each symbol (one book per symbol)."""
    from order_book import OrderBook

    (depth, _, _), _ = _msgspec_types()

    def run():
        books = []
        for lines in groups:
            book = OrderBook()
            bids, asks = book.bids, book.asks
            for line in lines:
                m = depth(line)
                for side, levels in ((bids, m.b), (asks, m.a)):
                    for p, q in levels:
                        price, qty = to_e8(p), to_e8(q)
                        if qty:
                            side[price] = qty
                        elif price in side:
                            del side[price]
            books.append(book)
        return books

    return run
