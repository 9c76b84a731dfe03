"""asv benchmarks of the ITCH 5.0 batch decoder on an in-memory, day-shaped buffer."""

import time

import numpy as np

from hftcore import itch
from hftcore.itch import spec

# Message mix of a NASDAQ day: order flow (A, D, U, E, X) dominates, the rest is rare.
MIX = {
    "A": 0.38, "D": 0.34, "U": 0.09, "E": 0.06, "X": 0.05, "F": 0.02, "I": 0.02,
    "P": 0.015, "C": 0.005, "R": 0.003, "H": 0.003, "L": 0.002, "Y": 0.002, "Q": 0.001,
    "N": 0.001, "J": 0.001, "K": 0.001, "h": 0.001, "S": 0.001, "B": 0.001, "V": 0.001,
    "W": 0.001, "O": 0.001,
}  # fmt: skip


def day_buffer(n, seed=0):
    """``n`` messages in the day's mix, random field values, BinaryFILE-framed."""
    rng = np.random.default_rng(seed)
    types = list(MIX)
    p = np.array([MIX[t] for t in types])
    which = rng.choice(len(types), size=n, p=p / p.sum())
    tables = {}
    for i, t in enumerate(types):
        seqs = np.flatnonzero(which == i)
        arr = np.zeros(len(seqs), dtype=spec.dtype(t))
        arr["seq"] = seqs
        arr["timestamp"] = np.sort(rng.integers(34_200 * 10**9, 57_600 * 10**9, len(seqs)))
        for f in spec.BY_TYPE[t].fields:
            if f.kind in ("alpha", "enum"):
                codes = rng.integers(ord("A"), ord("Z") + 1, size=(len(seqs), f.size))
                arr[f.name] = codes.astype(np.uint8).view(f"S{f.size}").ravel()
            else:
                arr[f.name] = rng.integers(0, 1 << (8 * f.size - 1), size=len(seqs))
        tables[t] = arr
    return itch.encode_stream(tables)


class ItchDecode:
    """Decode every field of every message, or only the add orders."""

    params = [100_000, 2_000_000]
    param_names = ["messages"]
    timeout = 180

    def setup_cache(self):
        return {n: day_buffer(n) for n in self.params}

    def setup(self, buffers, n):
        self.buf = buffers[n]

    def time_decode_all(self, buffers, n):
        itch.decode(self.buf)

    def time_decode_types_A(self, buffers, n):
        itch.decode(self.buf, types="A")

    def track_msgs_per_second(self, buffers, n):
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            itch.decode(self.buf)
            runs.append(time.perf_counter() - t0)
        return n / float(np.median(runs))

    track_msgs_per_second.unit = "messages/s"
