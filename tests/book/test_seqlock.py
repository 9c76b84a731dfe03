"""A reader on another thread never sees a half-applied update (the L2Book seqlock).

The writer applies depth messages without the GIL; every message sets the same 20 bid
and 20 ask levels to one quantity, a new one each message. A whole message leaves all 40
quantities equal; any read that mixes two messages sees two different quantities.
"""

from __future__ import annotations

import threading

import numpy as np

from hftcore import binance
from hftcore.book import L2Book

LEVELS = 20


def _messages(n: int) -> bytes:
    out = []
    for k in range(n):
        qty = f"{k + 1}.00000000"
        bids = ",".join(f'["{100 - i}.00","{qty}"]' for i in range(LEVELS))
        asks = ",".join(f'["{101 + i}.00","{qty}"]' for i in range(LEVELS))
        out.append(
            f'{{"e":"depthUpdate","E":{k},"s":"BTCUSDT","U":{k + 1},"u":{k + 1},'
            f'"b":[{bids}],"a":[{asks}]}}'
        )
    return ("\n".join(out) + "\n").encode()


def test_concurrent_reader_never_sees_a_torn_book():
    book = L2Book(max_levels=64)
    data = _messages(4000)
    done = threading.Event()
    torn = []
    reads = [0, 0]

    def reader():
        while not done.is_set():
            bids, asks = book.depth(LEVELS)
            if len(bids):
                q = np.concatenate([bids[:, 1], asks[:, 1]])
                if len(bids) != LEVELS or len(asks) != LEVELS or (q != q[0]).any():
                    torn.append((bids.copy(), asks.copy()))
                reads[0] += 1
            bp, bq, ap, aq = book.bbo()
            if bq != aq:
                torn.append(("bbo", bq, aq))
            reads[1] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(20):  # each batch runs without the GIL
            binance.apply_depth_json_many(book, data)
    finally:
        done.set()
        t.join(10)
    assert not t.is_alive()
    assert not torn, f"{len(torn)} torn reads, first: {torn[0]}"
    assert reads[0] > 0 and reads[1] > 0
    assert book.version % 2 == 0 and book.version >= 2 * 20 * 4000
    bids, asks = book.depth()
    assert (bids[:, 1] == 4000 * 10**8).all() and (asks[:, 1] == 4000 * 10**8).all()


def test_version_moves_by_two_per_write():
    book = L2Book(max_levels=8)
    v0 = book.version
    book.update("bid", 100, 1)
    assert book.version == v0 + 2
    book.update_many("ask", [101, 102], [1, 1])
    assert book.version == v0 + 4
    book.load_snapshot([[100, 1]], [[101, 1]])
    assert book.version == v0 + 6
    book.clear()
    assert book.version == v0 + 8
