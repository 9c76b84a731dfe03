"""``hftcore demo``: the offline tour, on built-in simulated exchanges."""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

_DEMO = """\
An offline tour of hftcore's live feed; nothing is downloaded.

It starts the local Binance-compatible exchange on loopback (hftcore.sim.binance_exchange:
a real WebSocket server and the REST depth endpoint), connects a binance.Feed to it on a
pinned thread, keeps the books of three symbols in sync, and shows a live view each
second: top of book, message rate, receive -> applied latency. On the way it injects a
gap (a depth diff withheld) and a serverShutdown, and shows each handled: the gap found
with its missing update ids and resynced from a snapshot, the connection replaced
make-before-break with no diff lost. It ends by checking every book against the
exchange's own at the same update id, and with the latency and jitter report.
Exit code 0 when every check holds.

With --itch, the file tour first (a synthetic ITCH day decoded and booked, a Binance
recording decoded):

  1. ITCH: writes a synthetic NASDAQ TotalView-ITCH 5.0 day to a temporary directory
     (hftcore.sim.itch), decodes it with the batch decoder (hftcore.itch.read_file) and
     prints the message mix and the decode throughput (median of 3 runs).
  2. ITCH order book: builds every stock's order-level book (hftcore.itch.OrderBook) and
     prints the top of book and depth of the most active symbol.
  3. Binance: decodes a simulated Binance stream (hftcore.binance.decode_many) and keeps
     one symbol's L2 book from its depth diffs, all in one pass
     (hftcore.binance.apply_depth_json_many) and one call per diff (apply_depth_json).
  +. ITCH over MoldUDP64: the day replayed on loopback by the local exchange with 1% of
     the packets dropped; hftcore.itch.Feed recovers them from the re-request server and
     ends with books identical to OrderBook.apply on the file.

example:
  hftcore demo
  hftcore demo --seconds 20 --rate 8000
  hftcore demo --itch --messages 10000000 --symbols 5000
"""


def _rate(n, seconds):
    return n / max(seconds, 1e-9)


def _itch(args, tmp):
    from hftcore import itch
    from hftcore.cli.itch import format_price, format_time
    from hftcore.itch import spec
    from hftcore.sim import itch as simitch

    path = os.path.join(tmp, "synthetic.itch")
    print(
        f"[file 1/3] ITCH 5.0: a synthetic day of {args.messages:,} messages, {args.symbols:,} symbols"
    )
    t0 = time.perf_counter()
    day = simitch.write_day(path, messages=args.messages, symbols=args.symbols, seed=args.seed)
    gen_s = time.perf_counter() - t0
    print(
        f"      generated {day.bytes / 1e6:,.1f} MB in {gen_s:.2f} s "
        f"({_rate(day.messages, gen_s) / 1e6:,.1f} M msg/s)"
    )
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        tables = itch.read_file(path, progress=False)
        runs.append(time.perf_counter() - t0)
    dec_s = statistics.median(runs)
    print(
        f"      decoded with itch.read_file in {dec_s:.3f} s (median of {len(runs)}): "
        f"{_rate(tables.messages, dec_s) / 1e6:,.1f} M msg/s, "
        f"{_rate(day.bytes, dec_s) / 1e6:,.0f} MB/s"
    )
    top = sorted(tables.counts.items(), key=lambda kv: -kv[1])[:6]
    mix = "  ".join(f"{t} {spec.BY_TYPE[t].name} {100 * n / tables.messages:.1f}%" for t, n in top)
    print(f"      mix: {mix}")
    first = min((int(a["timestamp"][0]) for a in tables.values() if len(a)), default=0)
    last = max((int(a["timestamp"][-1]) for a in tables.values() if len(a)), default=0)
    print(
        f"      {tables.counts['R']:,} symbols in the stock directory, "
        f"{format_time(first)} to {format_time(last)}"
    )

    adds = np.concatenate([tables["A"]["stock_locate"], tables["F"]["stock_locate"]])
    busiest = int(np.bincount(adds).argmax()) if len(adds) else 0
    directory = tables["R"]
    hit = np.flatnonzero(directory["stock_locate"] == busiest)
    ticker = directory["stock"][hit[0]].decode().strip() if hit.size else ""

    print("[file 2/3] ITCH order book")
    book = itch.OrderBook(max_orders=day.max_live_orders, max_levels=day.max_price_levels)
    with open(path, "rb") as f:
        buf = f.read()
    t0 = time.perf_counter()
    book.apply(buf)
    book_s = time.perf_counter() - t0
    stats = book.stats()
    print(
        f"      built every book in {book_s:.3f} s ({_rate(day.messages, book_s) / 1e6:,.1f} M "
        f"msg/s): {stats['live_orders']:,} resting orders, {stats['anomalies']} anomalies"
    )
    bid, bid_shares, ask, ask_shares = book.bbo(ticker)
    print(
        f"      most active: {ticker} (stock_locate {busiest}, {np.sum(adds == busiest):,} adds)"
        f"  bid {format_price(bid)} x {bid_shares:,}  ask {format_price(ask)} x {ask_shares:,}"
    )
    depth = book.depth(ticker, 5)
    print(f"      {'side':>6} {'price':>12} {'shares':>10} {'orders':>7}")
    for row in depth:
        side = row["side"].decode() if isinstance(row["side"], bytes) else str(row["side"])
        print(
            f"      {side:>6} {format_price(row['price']):>12} {int(row['shares']):>10,} "
            f"{int(row['orders']):>7,}"
        )


def _binance(args):
    print("[file 3/3] Binance: a simulated spot stream (trades, bookTicker, depth diffs)")
    from hftcore import binance
    from hftcore.book import L2Book
    from hftcore.sim import binance as simb

    messages = simb.generate_messages(100_000, seed=args.seed)
    corpus = b"\n".join(messages)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = binance.decode_many(corpus)
        runs.append(time.perf_counter() - t0)
    sec = statistics.median(runs)
    print(
        f"      decoded {out.n_messages:,} JSON messages with binance.decode_many in "
        f"{sec:.3f} s (median of {len(runs)}; the first call, into fresh memory: "
        f"{runs[0]:.3f} s): {_rate(out.n_messages, sec) / 1e6:,.2f} M msg/s, "
        f"{_rate(len(corpus), sec) / 1e6:,.0f} MB/s"
    )
    print(f"      {out!r}"[:300])
    # The depth diffs of one symbol parsed and applied to its book: all in one pass, then
    # one call per diff (the shape of a live handler).
    diffs = [m for m in messages if b'"depthUpdate"' in m and b'"s":"BTCUSDT"' in m]
    diff_buf = b"\n".join(diffs)
    runs = []
    for _ in range(3):
        book = L2Book(max_levels=5000)
        t0 = time.perf_counter()
        heads = binance.apply_depth_json_many(book, diff_buf)
        runs.append(time.perf_counter() - t0)
    levels = int(heads["n_bids"].sum() + heads["n_asks"].sum())
    batch_s = statistics.median(runs)
    book = L2Book(max_levels=5000)
    t0 = time.perf_counter()
    for m in diffs:
        binance.apply_depth_json(book, m)
    sec = time.perf_counter() - t0
    print(
        f"      BTCUSDT book: {len(diffs):,} depth diffs, {levels:,} levels: "
        f"{batch_s * 1e9 / max(levels, 1):.0f} ns/level with apply_depth_json_many "
        f"(median of {len(runs)}), {sec * 1e9 / max(levels, 1):.0f} ns/level with one "
        f"apply_depth_json call per diff"
    )
    bid, bid_qty, ask, ask_qty = book.bbo()
    print(
        f"      best bid {bid / 1e8:,.2f} x {bid_qty / 1e8:g}   "
        f"best ask {ask / 1e8:,.2f} x {ask_qty / 1e8:g}"
    )


def _itch_wire(args):
    """ITCH over MoldUDP64 on loopback, 1% of the packets dropped and recovered."""
    import socket

    from hftcore import itch
    from hftcore.sim import itch as simitch
    from hftcore.sim.itch_exchange import MoldUDP64Server

    n = min(args.messages, 300_000)
    print(f"[+] ITCH over MoldUDP64: {n:,} messages on loopback, 1% of the packets dropped")
    day = simitch.generate(messages=n, symbols=min(args.symbols, 500), seed=args.seed)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    cap = dict(max_orders=max(4 * n, 1000), max_levels=max(n, 1000))
    srv = MoldUDP64Server(day, ("127.0.0.1", port), drop=0.01, seed=args.seed,
                          rate=1_000_000, start_delay=0.2, heartbeat_interval=0.1)  # fmt: skip
    feed = itch.Feed(moldudp64=("127.0.0.1", port), rerequest=srv.rerequest_address, **cap)
    with srv, feed:
        feed.wait(60)
    st = feed.stats()
    ref = itch.OrderBook(**cap)
    ref.apply(day)
    same = feed.books(10) == itch.feed.books_snapshot(ref, 10)
    print(f"      {st['applied']:,} applied; {srv.counters['dropped']} packets dropped, "
          f"{st['gaps']} gaps, {st['requested']:,} messages asked again, "
          f"{st['recovered']:,} recovered, {st['unrecovered']} lost")  # fmt: skip
    p = feed.report().as_dict()["recv_to_applied"]
    print(f"      books identical to OrderBook.apply on the file: {'yes' if same else 'NO'}; "
          f"recv -> applied per datagram p50 {p['p50'] / 1e3:.1f} us, "
          f"p99 {p['p99'] / 1e3:.1f} us")  # fmt: skip
    return same and st["unrecovered"] == 0


def _demo(args):
    t0 = time.perf_counter()
    if args.itch:
        with tempfile.TemporaryDirectory(prefix="hftcore-demo-") as tmp:
            _itch(args, tmp)
        _binance(args)
    from hftcore.cli.demo_live import live_tour

    ok = live_tour(args)
    ok &= _itch_wire(args)
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0 if ok else 1


def register(cli):
    from hftcore.cli._args import int_range

    p = cli.top.add_parser(
        "demo",
        help="offline tour on simulated exchanges (start here)",
        description=_DEMO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--seconds", type=float, default=8.0, metavar="S",
                   help="length of the live view (default: %(default)s)")  # fmt: skip
    p.add_argument("--rate", type=float, default=4000.0, metavar="N",
                   help="exchange events per second, all symbols (default: %(default)s)")  # fmt: skip
    p.add_argument("--cpu", type=int_range(0), default=None, metavar="N",
                   help="the feed thread's core (default: chosen)")  # fmt: skip
    p.add_argument("--itch", action="store_true",
                   help="run the file tour (ITCH day, Binance recording) first")  # fmt: skip
    p.add_argument("--messages", type=int_range(1), default=2_000_000, metavar="N",
                   help="messages in the synthetic ITCH day (default: %(default)s)")  # fmt: skip
    p.add_argument("--symbols", type=int_range(1, 65535), default=2000, metavar="N",
                   help="symbols in the synthetic ITCH day (default: %(default)s)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=_demo)
