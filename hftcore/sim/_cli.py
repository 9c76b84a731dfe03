"""``hftcore demo``: the offline tour, on built-in simulated exchanges."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import statistics
import tempfile
import time

import numpy as np

_DEMO = """\
An offline tour of hftcore on simulated data; nothing is downloaded.

  1. ITCH: writes a synthetic NASDAQ TotalView-ITCH 5.0 day to a temporary directory
     (hftcore.sim.itch), decodes it with the batch decoder (hftcore.itch.read_file) and
     prints the message mix and the decode throughput (median of 3 runs).
  2. ITCH order book: builds every stock's order-level book (hftcore.itch.OrderBook) and
     prints the top of book and depth of the most active symbol.
  3. Binance: decodes a simulated Binance stream corpus (hftcore.binance.decode_many).
Parts whose modules are not available in this build are skipped, and the demo says so.

example:
  hftcore demo
  hftcore demo --messages 10000000 --symbols 5000
"""


def _rate(n, seconds):
    return n / max(seconds, 1e-9)


def _itch(args, tmp):
    from hftcore import itch
    from hftcore.itch import spec
    from hftcore.itch._cli_files import format_price, format_time
    from hftcore.sim import itch as simitch

    path = os.path.join(tmp, "synthetic.itch")
    print(
        f"[1/3] ITCH 5.0: a synthetic day of {args.messages:,} messages, {args.symbols:,} symbols"
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

    print("[2/3] ITCH order book")
    if not hasattr(itch, "OrderBook"):
        print("      skipped: hftcore.itch.OrderBook is not in this build")
        return
    book = itch.OrderBook(max_orders=day.max_live_orders, max_levels=day.max_price_levels)
    with open(path, "rb") as f:
        buf = f.read()
    t0 = time.perf_counter()
    book.apply(buf)
    book_s = time.perf_counter() - t0
    stats = book.stats()
    print(
        f"      built every book in {book_s:.3f} s ({_rate(day.messages, book_s) / 1e6:,.1f} M "
        f"msg/s): {stats.get('live_orders', 0):,} resting orders, "
        f"{stats.get('anomalies', 0)} anomalies"
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
    print("[3/3] Binance")
    try:
        binance = importlib.import_module("hftcore.binance")
        simb = importlib.import_module("hftcore.sim.binance")
    except ModuleNotFoundError as e:
        print(f"      skipped: {e.name} is not in this build")
        return
    decode_many = getattr(binance, "decode_many", None)
    gen = next(
        (getattr(simb, n) for n in ("generate_corpus", "corpus", "generate") if hasattr(simb, n)),
        None,
    )
    if decode_many is None or gen is None:
        missing = "hftcore.binance.decode_many" if decode_many is None else "a corpus generator"
        print(f"      skipped: {missing} is not in this build")
        return
    kwargs = {"seed": args.seed} if "seed" in inspect.signature(gen).parameters else {}
    corpus = gen(**kwargs)
    t0 = time.perf_counter()
    out = decode_many(corpus)
    sec = time.perf_counter() - t0
    n = getattr(out, "n_messages", None)
    if n is None:
        n = len(corpus)
    nbytes = len(corpus) if isinstance(corpus, (bytes, bytearray, memoryview)) else None
    size = f", {_rate(nbytes, sec) / 1e6:,.0f} MB/s" if nbytes else ""
    print(
        f"      decoded {n:,} JSON messages with binance.decode_many in {sec:.3f} s "
        f"({_rate(n, sec) / 1e6:,.2f} M msg/s{size})"
    )
    print(f"      {out!r}"[:300])


def _demo(args):
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hftcore-demo-") as tmp:
        _itch(args, tmp)
    _binance(args)
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def register(cli):
    from hftcore.itch._cli_files import int_range

    p = cli.top.add_parser(
        "demo",
        help="offline tour on simulated exchanges (start here)",
        description=_DEMO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--messages", type=int_range(1), default=2_000_000, metavar="N",
                   help="messages in the synthetic ITCH day (default: %(default)s)")  # fmt: skip
    p.add_argument("--symbols", type=int_range(1, 65535), default=2000, metavar="N",
                   help="symbols in the synthetic ITCH day (default: %(default)s)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=_demo)
