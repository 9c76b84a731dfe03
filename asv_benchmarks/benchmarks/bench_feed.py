"""The feed runtime: the pinned thread's own cost per step, and the receive path over
loopback as ``hftcore feed bench`` measures it (throughput of hftcore's WebSocket reader
and of the raw ``recv_into`` floor in the same run, and their ratio).

Loopback figures move with whatever else the machine runs; the ratio to the floor of the
same run is the figure to track.
"""

from __future__ import annotations

import itertools


class PinnedThreadStep:
    """Loop overhead per step of :class:`hftcore.feed.PinnedThread` (a no-op step)."""

    timeout = 60

    def track_ns_per_step(self):
        import time

        from hftcore.feed import PinnedThread, choose_cpu

        cpu = choose_cpu(warn=False)  # chosen once, outside the timing
        best = float("inf")
        n = 200_000
        for _ in range(3):
            count = itertools.count()
            limit = n - 1

            def step(count=count, limit=limit):
                return next(count) >= limit

            t = PinnedThread(step, cpu=cpu)
            t0 = time.perf_counter_ns()
            t.start()
            t.join(timeout=30)
            best = min(best, (time.perf_counter_ns() - t0) / n)
        return best

    track_ns_per_step.unit = "ns"


class WebSocketThroughput:
    """200-byte text frames as fast as the server sends them (``--rate 0``)."""

    timeout = 300
    number = 1
    repeat = 1

    def setup(self):
        from hftcore.feed import bench

        if not bench.available_clients()["hftcore"]:
            raise NotImplementedError("hftcore.net.ws not built")
        result = bench.run_bench(["raw", "hftcore"], messages=1_000_000, size=200, rate=0)
        self.raw = result["clients"]["raw"]["messages_per_s"]
        self.hft = result["clients"]["hftcore"]["messages_per_s"]

    def track_hftcore_frames_per_s(self):
        return self.hft

    track_hftcore_frames_per_s.unit = "frames/s"

    def track_raw_floor_frames_per_s(self):
        return self.raw

    track_raw_floor_frames_per_s.unit = "frames/s"

    def track_hftcore_vs_floor(self):
        return self.hft / self.raw if self.raw else 0.0

    track_hftcore_vs_floor.unit = "ratio"
