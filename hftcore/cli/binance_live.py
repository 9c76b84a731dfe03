"""``hftcore binance watch | replay``: the live feed from the shell, and its captures."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from hftcore.binance.schema import MARKETS
from hftcore.cli._args import int_range
from hftcore.errors import HftcoreError

_FMT = argparse.RawDescriptionHelpFormatter

_WATCH = """\
Keep live order books of Binance symbols in sync and show them: the feed thread (pinned
to a core) reads the WebSocket streams, applies every depth diff to its symbol's book by
Binance's documented procedure (snapshot over REST, update-id chain, resync on a gap),
and measures latency per stage. Connections are rotated before Binance's 24-hour limit
and at serverShutdown, make-before-break: no diff lost or applied twice. Runs until
Ctrl-C or --duration, then prints the report (and writes it with --json).

Against the real exchange by default (needs the internet); --url/--rest-url point it at
any compatible server, such as `hftcore binance serve`.

output, every second:
  SYMBOL state u=<last update id> bid PRICE x QTY | ask PRICE x QTY  msgs gaps resyncs
  a line of message rate and recv->applied p50/p99 (the periodic latency log)
stages of the final report (ns):
  kernel_to_recv     the kernel stamped the packet -> the receive call returned (ws:// only)
  event_to_recv      the exchange's event time E -> received (includes the clock offset
                     between the exchange and this machine: compare, don't trust, absolutes)
  recv_to_decoded    received -> parsed
  recv_to_applied    received -> applied to the book (or written to a ring table)
  event_to_applied   E -> applied

example:
  hftcore binance watch BTCUSDT ETHUSDT --duration 60 --json report.json
  hftcore binance watch BTCUSDT --futures --streams depth aggTrade --cpu 3 --spin
  hftcore binance serve --port 9000 &    # then, against the local exchange:
  hftcore binance watch BTCUSDT --url ws://127.0.0.1:9000 --rest-url http://127.0.0.1:9000
"""

_REPLAY = """\
Run a capture written by `hftcore binance watch --record FILE` (or Feed(record=...))
through the same pipeline the live feed ran: every frame, snapshot install and
connection switch in the order the feed thread saw them. The books end as the live ones
did; prints each symbol's top of book and counters (and writes them with --json).

example:
  hftcore binance watch BTCUSDT --duration 30 --record btc.cap
  hftcore binance replay btc.cap --json replay.json
"""


def _line(feed, sym):
    from hftcore.binance.feed import _dec

    st = feed.consumer.symbol_stats(sym)
    bp, bq, ap, aq = feed.books[sym].bbo()
    return (f"{sym:<10} {st['state']:<7} u={st['last_update_id']:<12} "
            f"bid {_dec(bp):>12} x {_dec(bq):<10} | ask {_dec(ap):>12} x {_dec(aq):<10} "
            f"msgs {st['messages']:<8} gaps {st['gaps']} resyncs {st['resyncs']}")  # fmt: skip


def _watch(args):
    from hftcore.binance.feed import Feed

    symbols = [s.upper() for s in args.symbols]
    market = "usdm" if args.futures else args.market
    streams = tuple(args.streams)
    if market == "usdm" and "trade" in streams and "aggTrade" not in streams:
        streams = tuple("aggTrade" if s == "trade" else s for s in streams)
    feed = Feed(symbols, market=market, streams=streams, url=args.url, rest_url=args.rest_url,
                cpu=args.cpu, spin=args.spin, record=args.record, depth_speed=args.depth_speed,
                log_interval=None)  # fmt: skip

    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    print(f"connecting: {', '.join(symbols)} ({market}; {', '.join(streams)}) "
          f"at {feed.url}", flush=True)  # fmt: skip
    t0 = time.monotonic()
    last_msgs, last_t = 0, t0
    feed.start()
    try:
        while args.duration is None or time.monotonic() - t0 < args.duration:
            time.sleep(min(1.0, args.duration or 1.0))
            now = time.monotonic()
            msgs = feed.consumer.messages
            if not args.quiet:
                for sym in symbols:
                    print(_line(feed, sym))
                rep = feed.latency_report().as_dict().get("recv_to_applied", {})
                print(f"  {(msgs - last_msgs) / max(now - last_t, 1e-9):,.0f} msg/s; "
                      f"recv->applied p50 {rep.get('p50', 0):,} ns p99 {rep.get('p99', 0):,} ns; "
                      f"connections {len(feed.connections())}", flush=True)  # fmt: skip
            last_msgs, last_t = msgs, now
    except KeyboardInterrupt:
        pass
    finally:
        feed.stop()
    print(feed.report())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(feed.stats(levels=args.levels), f, indent=2)
        print(f"report written to {args.json}")
    bad = [s for s in symbols if "depth" in streams
           and feed.consumer.symbol_stats(s)["state"] != "live"]  # fmt: skip
    if bad:
        print(f"not in sync at the end: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _replay(args):
    from hftcore.binance.feed import replay

    try:
        result = replay(args.capture)
    except OSError as exc:
        raise HftcoreError(f"{args.capture}: {exc}") from exc
    stats = result.stats(levels=args.levels)
    for sym, st in stats["symbols"].items():
        bid = st["bids"][0] if st["bids"] else ["-", "-"]
        ask = st["asks"][0] if st["asks"] else ["-", "-"]
        print(f"{sym:<10} {st['state']:<7} u={st['last_update_id']} bid {bid[0]} x {bid[1]} "
              f"| ask {ask[0]} x {ask[1]}  applied {st['applied']} gaps {st['gaps']} "
              f"snapshots {st['snapshots']}")  # fmt: skip
    print(f"{stats['messages']:,} messages, {stats['decode_errors']} undecodable")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(stats, f, indent=2)
        print(f"written to {args.json}")
    return 0


def add_live_commands(g):
    """Add ``watch`` and ``replay`` to the ``binance`` command group."""
    p = g.add_parser("watch", help="live books in sync, with latency (real or local exchange)",
                     description=_WATCH, formatter_class=_FMT)  # fmt: skip
    p.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT ETHUSDT")
    p.add_argument("--futures", action="store_true", help="USD-M futures (same as --market usdm)")
    p.add_argument("--market", choices=MARKETS, default="spot", help="default: %(default)s")
    p.add_argument("--streams", nargs="+", default=["depth", "trade"],
                   choices=["depth", "trade", "aggTrade", "bookTicker"],
                   help="streams to follow (default: depth trade)")  # fmt: skip
    p.add_argument("--depth-speed", default=None, metavar="S",
                   help="diff-depth speed: spot 100ms (default) or 1000ms; futures 0ms, "
                   "100ms (default), 250ms, 500ms")  # fmt: skip
    p.add_argument("--cpu", type=int_range(0), default=None, metavar="N",
                   help="the feed thread's core (default: isolated, else least busy)")  # fmt: skip
    p.add_argument("--spin", action="store_true", help="busy-poll the socket (a core at 100%%)")
    p.add_argument("--record", default=None, metavar="FILE",
                   help="capture every frame (replay it with `hftcore binance replay`)")  # fmt: skip
    p.add_argument("--url", default=None, help="stream base URL (default: Binance's)")
    p.add_argument("--rest-url", default=None, help="REST base URL (default: Binance's)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")  # fmt: skip
    p.add_argument("--json", default=None, metavar="FILE", help="write the final report as JSON")
    p.add_argument("--levels", type=int_range(1), default=20, metavar="N",
                   help="book levels per side in the JSON report (default: %(default)s)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no live view, only the final report")
    p.set_defaults(func=_watch)

    p = g.add_parser("replay", help="run a feed capture through the pipeline again",
                     description=_REPLAY, formatter_class=_FMT)  # fmt: skip
    p.add_argument("capture", metavar="CAPTURE", help="a capture file (--record)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the books and counters")
    p.add_argument("--levels", type=int_range(1), default=20, metavar="N",
                   help="book levels per side in the JSON (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=_replay)
