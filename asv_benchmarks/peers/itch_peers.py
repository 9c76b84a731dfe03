"""ITCH 5.0 decoders and book builders under comparison, each as ``make(buf) -> callable``.

The APIs used are the ones each package documents (read from their installed sources):

- itchcpp 1.6: ``itchcpp.parser.MessageParser().parse_stream(bytes)`` yields one C++-backed
  message object per message; ``itchcpp.book.BookManager().process_stream(bytes)`` builds
  every symbol's L3 book when no symbol is tracked explicitly.
- itchfeed 1.6 (pure Python, forced with ``ITCH_NO_CPP=1`` since it otherwise delegates to
  itchcpp): ``itch.parser.MessageParser().parse_stream(bytes)``.
- meatpy 0.5: ``ITCH50MessageReader`` over an in-memory file (its ``read_file`` path, fed a
  ``BytesIO``); books with one ``ITCH50MarketProcessor`` per stock (its design: one
  instrument per processor), messages routed by ``stock_locate``, system events to all;
  its execution-priority check is relaxed through its ``skip_exception`` hook.
- itch-book 0.2: ``itch_book._core.Session(tables=..., depth=0, symbols=[]).feed(buf)``;
  ``tables=[]`` is its all-books path, ``tables=["messages"]`` also emits its order-flow
  table (its closest thing to a decode).
"""

from __future__ import annotations

import collections
import io
import os


def _consume(it):
    collections.deque(it, maxlen=0)


# -- decode ---------------------------------------------------------------------------


def hftcore_decode(buf):
    from hftcore import itch

    return lambda: itch.decode(buf)


def itchcpp_decode(buf):
    from itchcpp.parser import MessageParser

    return lambda: _consume(MessageParser().parse_stream(buf))


def itchfeed_decode(buf):
    old = os.environ.get("ITCH_NO_CPP")
    os.environ["ITCH_NO_CPP"] = "1"
    try:
        import itch._backend
        import itch.parser

        if itch._backend.USING_CPP_BACKEND:
            raise RuntimeError("itchfeed was already imported with its itchcpp backend")
    finally:
        if old is None:
            del os.environ["ITCH_NO_CPP"]
    parser = itch.parser.MessageParser
    return lambda: _consume(parser().parse_stream(buf))


def strip_types(buf, types: bytes) -> bytes:
    """``buf`` without the messages of the given types (framing kept)."""
    out = bytearray()
    pos, end = 0, len(buf)
    start = 0
    while pos + 3 <= end:
        nxt = pos + 2 + ((buf[pos] << 8) | buf[pos + 1])
        if buf[pos + 2] in types:
            out += buf[start:pos]
            start = nxt
        pos = nxt
    out += buf[start:end]
    return bytes(out)


# meatpy 0.5 unpacks DLCR ('O') as 51 bytes; ITCH 5.0 defines it as 48, so it cannot
# read a stream containing one. It gets the same stream without them (one a day).
MEATPY_SKIPS = b"O"


def meatpy_decode(buf):
    from meatpy.itch50 import ITCH50MessageReader

    buf = strip_types(buf, MEATPY_SKIPS)
    return lambda: _consume(ITCH50MessageReader()._read_messages(io.BytesIO(buf)))


def itchbook_decode(buf):
    from itch_book._core import Session

    def run():
        s = Session(tables=["messages"], depth=0, symbols=[])
        s.feed(buf)
        return s.take_messages()

    return run


# -- books ----------------------------------------------------------------------------


def hftcore_book(buf, max_orders):
    from hftcore import itch

    def run():
        book = itch.OrderBook(max_orders=max_orders)
        book.apply(buf)
        return book

    return run


def hftcore_book_default(buf, max_orders):
    from hftcore import itch

    def run():
        book = itch.OrderBook()
        book.apply(buf)
        return book

    return run


def itchbook_book(buf, max_orders):
    from itch_book._core import Session

    def run():
        s = Session(tables=[], depth=0, symbols=[])
        s.feed(buf)
        return s

    return run


def itchcpp_book(buf, max_orders):
    from itchcpp.book import BookManager

    def run():
        m = BookManager()
        m.process_stream(buf)
        return m

    return run


def meatpy_book(buf, max_orders):
    import datetime

    from meatpy import lob
    from meatpy.itch50 import ITCH50MarketProcessor, ITCH50MessageReader
    from meatpy.itch50.itch50_market_message import StockDirectoryMessage, SystemEventMessage

    # The synthetic days execute resting orders regardless of price-time priority; meatpy
    # checks priority and raises unless its ``skip_exception`` hook says otherwise.
    lob.LimitOrderBook.skip_exception = lambda self, e: True
    day = datetime.datetime(2026, 1, 2)
    buf = strip_types(buf, MEATPY_SKIPS)

    def run():
        procs: dict[int, ITCH50MarketProcessor] = {}
        for m in ITCH50MessageReader()._read_messages(io.BytesIO(buf)):
            if isinstance(m, StockDirectoryMessage):
                procs[m.stock_locate] = ITCH50MarketProcessor(m.stock, day)
            elif isinstance(m, SystemEventMessage):
                for p in procs.values():
                    p.process_message(m)
                continue
            p = procs.get(m.stock_locate)
            if p is not None:
                p.process_message(m)
        return procs

    return run


DECODERS = {
    "hftcore": hftcore_decode,
    "itch-book": itchbook_decode,
    "itchcpp": itchcpp_decode,
    "itchfeed": itchfeed_decode,
    "meatpy": meatpy_decode,
}

BOOKS = {
    "hftcore": hftcore_book,
    "hftcore, default size": hftcore_book_default,
    "itch-book": itchbook_book,
    "itchcpp": itchcpp_book,
    "meatpy": meatpy_book,
}


def live_orders(buf) -> tuple[int, int]:
    """(peak, final) number of live orders in a stream: a plain reference walk, so hftcore's
    ``max_orders`` (live-order capacity) can be sized from the input, not guessed."""
    import struct

    ref_at = struct.Struct(">Q").unpack_from
    u32_at = struct.Struct(">I").unpack_from
    shares: dict[int, int] = {}
    peak = pos = 0
    end = len(buf)
    while pos + 3 <= end:
        length = (buf[pos] << 8) | buf[pos + 1]
        t = buf[pos + 2]
        body = pos + 2
        if t in (0x41, 0x46):  # A, F: order_ref at 11, shares at 20
            shares[ref_at(buf, body + 11)[0]] = u32_at(buf, body + 20)[0]
            peak = max(peak, len(shares))
        elif t == 0x44:  # D
            shares.pop(ref_at(buf, body + 11)[0], None)
        elif t == 0x55:  # U: original ref at 11, new ref at 19, shares at 27
            shares.pop(ref_at(buf, body + 11)[0], None)
            shares[ref_at(buf, body + 19)[0]] = u32_at(buf, body + 27)[0]
        elif t in (0x45, 0x43, 0x58):  # E, C, X: executed/cancelled shares at 19
            ref = ref_at(buf, body + 11)[0]
            left = shares.get(ref, 0) - u32_at(buf, body + 19)[0]
            if left > 0:
                shares[ref] = left
            else:
                shares.pop(ref, None)
        pos += 2 + length
    return peak, len(shares)
