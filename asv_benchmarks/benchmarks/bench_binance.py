"""Binance decoders: JSON ``decode_many`` per message kind, SBE ``decode_many_sbe``, and
depth decode + apply into an L2Book (``track_ns_per_level``).

Corpora come from :mod:`hftcore.sim.binance` (seeded, so every run times the same bytes).
"""

import functools
import time

N_MESSAGES = 20_000
KINDS = ["trade", "book_ticker", "depth", "mixed"]


@functools.cache
def _corpus(symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT")):
    """JSON and SBE messages of one event sequence, grouped by kind."""
    from hftcore.sim import binance as sim

    events = sim.generate_events(N_MESSAGES, seed=0, symbols=symbols)
    js = {k: [] for k in KINDS}
    sbe = {k: [] for k in KINDS}
    for e in events:
        j, s = sim.render_json(e, "spot"), sim.render_sbe(e)
        js[e.kind].append(j)
        sbe[e.kind].append(s)
        js["mixed"].append(j)
        sbe["mixed"].append(s)
    return js, sbe


def _best_ns(fn, repeat=5):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        best = min(best, time.perf_counter_ns() - t0)
    return best


class JsonDecodeMany:
    """``decode_many`` on a newline-delimited JSON buffer of one kind (or all mixed)."""

    params = KINDS
    param_names = ["kind"]

    def setup(self, kind):
        from hftcore import binance

        self.decode_many = binance.decode_many
        msgs = _corpus()[0][kind]
        self.n = len(msgs)
        self.buf = b"\n".join(msgs)

    def time_decode_many(self, kind):
        self.decode_many(self.buf)

    def track_ns_per_msg(self, kind):
        return _best_ns(lambda: self.decode_many(self.buf)) / self.n

    track_ns_per_msg.unit = "ns"


class SbeDecodeMany:
    """``decode_many_sbe`` on back-to-back SBE messages of one kind (or all mixed)."""

    params = KINDS
    param_names = ["kind"]

    def setup(self, kind):
        from hftcore import binance

        self.decode_many_sbe = binance.decode_many_sbe
        msgs = _corpus()[1][kind]
        self.n = len(msgs)
        self.buf = b"".join(msgs)

    def time_decode_many_sbe(self, kind):
        self.decode_many_sbe(self.buf)

    def track_ns_per_msg(self, kind):
        return _best_ns(lambda: self.decode_many_sbe(self.buf)) / self.n

    track_ns_per_msg.unit = "ns"


class DepthApply:
    """Depth diffs of one symbol decoded and applied to an L2Book.

    ``json_many`` / ``sbe_many``: one nogil loop over a buffer (``apply_depth_json_many``
    / ``apply_depth_sbe_many``); ``usdm_many`` / ``combined_many``: the same events as
    USD-M futures print them, and spot in combined-stream envelopes; ``json_each`` /
    ``sbe_each``: one Python call per message (``apply_depth_json`` /
    ``apply_depth_sbe``), the shape of a live feed handler.
    """

    params = ["json_many", "usdm_many", "combined_many", "sbe_many", "json_each", "sbe_each"]
    param_names = ["path"]

    def setup(self, path):
        from hftcore import binance
        from hftcore.book import L2Book

        js, sbe = _corpus(("BTCUSDT",))
        self.L2Book = L2Book
        self.json_msgs = js["depth"]
        self.sbe_msgs = sbe["depth"]
        self.buf = b"\n".join(self.json_msgs)
        many, one_json, one_sbe = (binance.apply_depth_json_many, binance.apply_depth_json,
                                   binance.apply_depth_sbe)  # fmt: skip
        if path == "usdm_many":
            from hftcore.sim import binance as sim

            events = sim.generate_events(N_MESSAGES, seed=0, symbols=("BTCUSDT",), market="usdm")
            self.buf = b"\n".join(sim.render_json(e, "usdm") for e in events if e.kind == "depth")
        elif path == "combined_many":
            self.buf = b"\n".join(
                b'{"stream":"btcusdt@depth@100ms","data":' + m + b"}" for m in self.json_msgs
            )
        self.n_levels = len(binance.decode_many(self.buf)["depth"])
        if path.endswith("_many") and path != "sbe_many":
            self.run = lambda book: many(book, self.buf)
        elif path == "sbe_many":
            from hftcore.binance._apply import apply_depth_sbe_many

            sbe_buf = b"".join(self.sbe_msgs)
            self.run = lambda book: apply_depth_sbe_many(book, sbe_buf)
        elif path == "json_each":
            self.run = lambda book: [one_json(book, m) for m in self.json_msgs]
        else:
            self.run = lambda book: [one_sbe(book, m) for m in self.sbe_msgs]
        self.book = L2Book()

    def time_apply(self, path):
        self.run(self.book)

    def track_ns_per_level(self, path):
        return _best_ns(lambda: self.run(self.L2Book())) / self.n_levels

    track_ns_per_level.unit = "ns"
