"""asv_benchmarks/peers/binance_live.py: one short run against the local exchange, its
figures and book checks against the exchange's own counts and books."""

from __future__ import annotations

import importlib.util
import sys

import pytest

pytest.importorskip("websockets")


@pytest.fixture(scope="module")
def harness(repo):
    path = repo / "asv_benchmarks" / "peers" / "binance_live.py"
    spec = importlib.util.spec_from_file_location("binance_live_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hftcore_run_counts_every_diff_and_checks_books(harness, repo):
    # pythonpath=None: the children import the hftcore this process imports (the
    # installed one in CI; the source tree has no compiled modules there).
    r = harness.run_once("hftcore", 300, 1.0, seed=3, python=sys.executable,
                         pythonpath=None)  # fmt: skip
    assert "error" not in r, r.get("error")
    sent = r["exchange"]["depth_sent"]
    assert sent > 100
    # The floor parsed every depth frame the exchange sent in the measured phase, and so
    # did the feed; each stage has one figure per diff.
    assert r["floor"]["messages"] == sent
    assert r["messages"] == sent
    assert r["floor"]["stages"]["event_to_recv"]["count"] == sent
    assert r["stages"]["event_to_applied"]["count"] == sent
    assert r["books"] == {s: "ok" for s in harness.SYMBOLS}
    assert r["kept"]


def test_check_books_reports_a_wrong_level(harness):
    from hftcore.sim.binance_exchange import BinanceExchange

    with BinanceExchange(harness.SYMBOLS, rate=0, seed=2, ping_interval=0) as ex:
        books = {}
        for s in harness.SYMBOLS:
            lid, bids, asks = ex.book(s)
            books[s] = {"last_update_id": lid, "bids": [list(x) for x in bids],
                        "asks": [list(x) for x in asks]}  # fmt: skip
        assert harness.check_books(ex, books) == {s: "ok" for s in harness.SYMBOLS}
        books["ETHUSDT"]["asks"][3][1] += 1
        books["BNBUSDT"]["last_update_id"] = None
        nb, na = len(books["ETHUSDT"]["bids"]), len(books["ETHUSDT"]["asks"])
        out = harness.check_books(ex, books)
    assert out["BTCUSDT"] == "ok"
    assert out["ETHUSDT"] == (f"differs: bids {nb} levels (exchange {nb}, {nb} equal in place), "
                              f"asks {na} ({na}, {na - 1})")  # fmt: skip
    assert out["BNBUSDT"] == "not synced"
