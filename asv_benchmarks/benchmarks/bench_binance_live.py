"""The live Binance feed on loopback: ``binance.Feed`` keeping three books from the local
exchange at 10,000 depth diffs per second, and the raw-socket floor of the same run
(``asv_benchmarks/peers/binance_live.py`` does the run; it also has the peer stacks).

Loopback figures move with whatever else the machine runs; the ratio of event->applied
to the floor's event->recv of the same run is the figure to track.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_HARNESS = Path(__file__).resolve().parents[1] / "peers" / "binance_live.py"


def _harness():
    spec = importlib.util.spec_from_file_location("binance_live", _HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class BinanceLive:
    """One 4-second run at 10,000 diffs/s (about 21 price levels each)."""

    timeout = 600
    number = 1
    repeat = 1

    def setup_cache(self):
        h = _harness()
        r = h.run_once("hftcore", 10_000, 4.0, seed=1, python=sys.executable, pythonpath=None)
        if "error" in r:
            raise NotImplementedError(r["error"])
        return {
            "recv_to_applied_p50": r["stages"]["recv_to_applied"]["p50"],
            "recv_to_applied_p99": r["stages"]["recv_to_applied"]["p99"],
            "event_to_applied_p50": r["stages"]["event_to_applied"]["p50"],
            "floor_p50": r["floor"]["stages"]["event_to_recv"]["p50"],
            "books_ok": all(v == "ok" for v in r["books"].values()),
            "kept": r["kept"],
        }

    def track_recv_to_applied_p50_ns(self, r):
        return r["recv_to_applied_p50"]

    track_recv_to_applied_p50_ns.unit = "ns"

    def track_recv_to_applied_p99_ns(self, r):
        return r["recv_to_applied_p99"]

    track_recv_to_applied_p99_ns.unit = "ns"

    def track_event_to_applied_p50_ns(self, r):
        return r["event_to_applied_p50"]

    track_event_to_applied_p50_ns.unit = "ns"

    def track_event_to_applied_vs_floor(self, r):
        return r["event_to_applied_p50"] / r["floor_p50"] if r["floor_p50"] else 0.0

    track_event_to_applied_vs_floor.unit = "ratio"

    def track_books_right_and_kept(self, r):
        return 1 if r["books_ok"] and r["kept"] else 0

    track_books_right_and_kept.unit = "bool"
