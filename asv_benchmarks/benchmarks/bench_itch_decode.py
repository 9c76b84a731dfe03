"""asv benchmarks of the ITCH 5.0 batch decoder on an in-memory, day-shaped buffer.

The buffer is a synthetic day from :func:`hftcore.sim.itch.generate` (order flow: A, D,
U, E, X dominate, as in a NASDAQ day), built once per parameter in ``setup_cache``.
"""

import time

import numpy as np

from hftcore import itch
from hftcore.sim import itch as simitch


class ItchDecode:
    """Decode every field of every message, or only the add orders."""

    params = [100_000, 2_000_000]
    param_names = ["messages"]
    timeout = 300

    def setup_cache(self):
        return {n: simitch.generate(messages=n, symbols=500, seed=0) for n in self.params}

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
