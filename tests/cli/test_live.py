"""The live commands from the shell: `hftcore demo`, `binance watch` against the local
exchange, `binance replay` of its capture (subprocesses, each stopped by the test)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from hftcore.sim.binance_exchange import BinanceExchange


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "hftcore", *args], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_demo_runs_the_live_tour_and_every_check_holds():
    r = _run("demo", "--seconds", "3", "--rate", "2000")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "FAILED" not in r.stdout
    assert r.stdout.count("[ok]") >= 5  # sync, gap, shutdown, three books
    assert "recv_to_applied" in r.stdout and "jitter (RFC 3550)" in r.stdout


def test_watch_json_report_then_replay_gives_the_same_books(tmp_path):
    report, cap, again = tmp_path / "r.json", tmp_path / "w.cap", tmp_path / "again.json"
    with BinanceExchange(["BTCUSDT", "ETHUSDT"], rate=1500, seed=4) as ex:
        r = _run("binance", "watch", "BTCUSDT", "ETHUSDT", "--url", ex.ws_url, "--rest-url",
                 ex.rest_url, "--duration", "2.5", "--json", str(report), "--record", str(cap),
                 "--levels", "5", "--quiet")  # fmt: skip
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        doc = json.loads(report.read_text())
        for sym in ("BTCUSDT", "ETHUSDT"):
            s = doc["symbols"][sym]
            lid, bids, asks = ex.book_at(sym, s["last_update_id"])
            want_b = [[_dec(p), _dec(q)] for p, q in bids[:5]]
            want_a = [[_dec(p), _dec(q)] for p, q in asks[:5]]
            assert s["bids"] == want_b and s["asks"] == want_a
            assert s["gaps"] == 0 and s["messages"] > 0
    assert doc["connections"]["opened"] == 1
    for stage in ("event_to_recv", "recv_to_applied", "event_to_applied"):
        assert set(doc["latency_ns"][stage]) >= {"count", "p50", "p90", "p99", "p999", "max"}
    r = _run("binance", "replay", str(cap), "--json", str(again), "--levels", "5")
    assert r.returncode == 0, r.stderr
    rep = json.loads(again.read_text())
    for sym in ("BTCUSDT", "ETHUSDT"):
        assert rep["symbols"][sym]["bids"] == doc["symbols"][sym]["bids"]
        assert rep["symbols"][sym]["last_update_id"] == doc["symbols"][sym]["last_update_id"]
    assert np.isfinite(doc["jitter_ns"]["rfc3550"])


def _dec(v):
    whole, frac = divmod(int(v), 10**8)
    text = f"{frac:08d}".rstrip("0")
    return f"{whole}.{text}" if text else str(whole)


def test_watch_help_teaches():
    r = _run("binance", "watch", "--help")
    assert r.returncode == 0
    for word in ("event_to_recv", "--record", "--json", "example"):
        assert word in r.stdout
