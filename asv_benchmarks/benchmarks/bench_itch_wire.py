"""asv benchmarks of ITCH over MoldUDP64 without sockets: a day's packets handed to
``MoldUDP64Sequencer`` -> ``BookConsumer`` -> ``OrderBook`` (the receive path past the
socket), in order, and with 1% of the packets arriving late (reordered: the sequencer
buffers what follows and hands it on once the late packet arrives). The loopback figures
(sockets, a sender process) come from ``tools/bench_itch_wire.py``.
"""

import random

from hftcore.itch import OrderBook
from hftcore.itch._feed import BookConsumer
from hftcore.net.consumer import Consumer
from hftcore.net.moldudp64 import MoldUDP64Sequencer
from hftcore.sim.itch import generate
from hftcore.sim.itch_exchange import MoldUDP64Server

_CACHE = {}


def packets(messages):
    if messages not in _CACHE:
        srv = MoldUDP64Server(generate(messages=messages, symbols=500, seed=0), ("127.0.0.1", 9))
        _CACHE[messages] = (srv._packets, srv.n)
        srv.stop()
    return _CACHE[messages]


def late(pk, fraction=0.01, seed=0):
    """``pk`` with ``fraction`` of the packets moved 8 places later."""
    rng = random.Random(seed)
    out = list(pk)
    for i in range(len(out) - 9, 0, -1):
        if rng.random() < fraction:
            out.insert(i + 8, out.pop(i))
    return out


class MoldUDP64IntoBook:
    params = [[200_000]]
    param_names = ["messages"]
    timeout = 300

    def setup(self, messages):
        self.pk, self.n = packets(messages)
        self.late = late(self.pk)
        self.framed = b"".join(p[20:] for p in self.pk)  # the blocks are BinaryFILE framing

    def _run(self, pk, consumer):
        seq = MoldUDP64Sequencer(consumer)
        feed = seq.feed
        for p in pk:
            feed(p)
        assert seq.next_seq == self.n + 1

    def time_sequencer_only(self, messages):
        self._run(self.pk, Consumer())

    def time_into_book(self, messages):
        self._run(self.pk, BookConsumer(OrderBook(1_000_000, 200_000)))

    def time_into_book_one_percent_late(self, messages):
        self._run(self.late, BookConsumer(OrderBook(1_000_000, 200_000)))

    def time_file_path_reference(self, messages):
        # The same day through OrderBook.apply on the framed bytes: the floor.
        OrderBook(1_000_000, 200_000).apply(self.framed)
