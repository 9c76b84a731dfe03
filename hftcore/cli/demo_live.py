"""The live part of ``hftcore demo``: a pinned Binance feed against the local exchange."""

from __future__ import annotations

import time

import numpy as np

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")


def _check(ok, text):
    print(f"      [{'ok' if ok else 'FAILED'}] {text}")
    return ok


def _wait(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def live_tour(args) -> bool:
    """Run the tour; True when every check held."""
    from hftcore.binance.feed import Feed, _dec
    from hftcore.sim.binance_exchange import BinanceExchange

    ok = True
    rate = args.rate
    print(f"[1/4] the local Binance exchange: {', '.join(SYMBOLS)} at {rate:,.0f} events/s "
          "(WebSocket streams + REST depth on loopback)")  # fmt: skip
    ex = BinanceExchange(
        SYMBOLS, rate=rate, seed=args.seed, pregenerate=int(rate * (args.seconds + 10))
    )
    with ex:
        print(f"      {ex.ws_url}  (REST {ex.rest_url})")
        feed = Feed(SYMBOLS, url=ex.ws_url, rest_url=ex.rest_url, cpu=args.cpu,
                    streams=("depth", "trade", "bookTicker"))  # fmt: skip
        print("[2/4] binance.Feed on a pinned thread: stream first, then REST snapshots, "
              "diffs held meanwhile")  # fmt: skip
        t0 = time.monotonic()
        with feed:
            synced = feed.wait_synced(30)
            ok &= _check(synced, f"books in sync in {time.monotonic() - t0:.2f} s")
            ts = feed.thread.stats()
            print(f"      feed thread tid {ts.get('native_id')} on core {ts.get('cpu')} "
                  f"(affinity {ts.get('affinity')})")  # fmt: skip
            print(f"[3/4] live view for {args.seconds:g} s: a gap at 1/3, serverShutdown at 2/3")
            start = time.monotonic()
            last_msgs, last_t = feed.consumer.messages, start
            gap_done = shutdown_done = False
            while time.monotonic() - start < args.seconds:
                time.sleep(1.0)
                now = time.monotonic()
                el = now - start
                msgs = feed.consumer.messages
                rep = feed.latency_report().as_dict().get("recv_to_applied", {})
                print(f"  t={el:4.1f}s {(msgs - last_msgs) / (now - last_t):>9,.0f} msg/s  "
                      f"recv->applied p50 {rep.get('p50', 0) / 1e3:6.1f} us "
                      f"p99 {rep.get('p99', 0) / 1e3:7.1f} us  "
                      f"connections {len(feed.connections())}")  # fmt: skip
                for sym in SYMBOLS:
                    bp, bq, ap, aq = feed.books[sym].bbo()
                    st = feed.consumer.symbol_stats(sym)
                    print(f"      {sym:<8} bid {_dec(bp):>10} x {_dec(bq):<10} ask {_dec(ap):>10}"
                          f" x {_dec(aq):<10} u={st['last_update_id']} gaps {st['gaps']}")  # fmt: skip
                last_msgs, last_t = msgs, now
                if not gap_done and el >= args.seconds / 3:
                    gap_done = True
                    print("  >>> the exchange withholds one BTCUSDT diff from this connection")
                    ex.drop_next_diff("BTCUSDT")
                    t_gap = time.monotonic()
                    seen = _wait(lambda: feed.consumer.symbol_stats("BTCUSDT")["gaps"] >= 1, 10)
                    back = seen and feed.wait_synced(20)
                    st = feed.consumer.symbol_stats("BTCUSDT")
                    ok &= _check(seen and back,
                                 f"gap found: update ids {st['last_gap']} missing; resynced "
                                 f"from a snapshot in {time.monotonic() - t_gap:.2f} s, "
                                 f"{st['buffered']} diffs held meanwhile, none dropped")  # fmt: skip
                if not shutdown_done and el >= 2 * args.seconds / 3:
                    shutdown_done = True
                    print("  >>> the exchange sends serverShutdown (closes in 1 s)")
                    gaps_before = sum(feed.consumer.symbol_stats(s)["gaps"] for s in SYMBOLS)
                    ex.server_shutdown(grace=1.0)
                    rotated = _wait(lambda: feed.counters["rotations"] >= 1, 10)
                    single = _wait(lambda: len(feed.connections()) == 1, 10)
                    time.sleep(1.2)
                    gaps_after = sum(feed.consumer.symbol_stats(s)["gaps"] for s in SYMBOLS)
                    ok &= _check(rotated and single and gaps_after == gaps_before,
                                 "a new connection opened before the old one closed; "
                                 f"gaps {gaps_before} -> {gaps_after}, no resync")  # fmt: skip
        print("[4/4] the books against the exchange's own, at the same update id")
        for sym in SYMBOLS:
            st = feed.consumer.symbol_stats(sym)
            lid, bids, asks = ex.book_at(sym, st["last_update_id"])
            got_b, got_a = feed.books[sym].depth()
            same = (lid == st["last_update_id"]
                    and np.array_equal(got_b, np.array(bids, dtype=np.int64).reshape(-1, 2))
                    and np.array_equal(got_a, np.array(asks, dtype=np.int64).reshape(-1, 2)))  # fmt: skip
            ok &= _check(same, f"{sym}: {len(got_b)} bids, {len(got_a)} asks equal at u={lid} "
                         f"({st['applied']:,} diffs applied, {st['stale']:,} duplicates ignored)")  # fmt: skip
    print()
    print(feed.report())
    return ok
