"""``hftcore itch book`` and ``hftcore itch bbo``: order books from an ITCH file."""

from __future__ import annotations

import argparse
import sys

import numpy as np

_BOOK_EPILOG = """\
examples:
  hftcore itch book day.itch --symbol AAPL                  # the book at the end of the file
  hftcore itch book day.itch.gz --symbol AAPL --at 10:30    # as of 10:30:00
  hftcore itch book day.itch --symbol 13 --at 09:45:00.250 --levels 5   # by stock locate

Prices are shown in dollars (the wire has 4 implied decimals). With --at, messages are
applied up to and including the last one stamped at or before that time of day.
"""

_BBO_EPILOG = """\
examples:
  hftcore itch bbo day.itch --symbol AAPL -o aapl_bbo.csv
  hftcore itch bbo day.itch.gz --symbol AAPL --symbol MSFT -o bbo.npy

One row per change of the best bid or offer: seq (message index), timestamp (ns since
midnight), stock_locate, symbol (CSV only), bid_price, bid_shares, ask_price, ask_shares.
Prices are raw integers with 4 implied decimals (divide by 10000 for dollars); an empty
side reads 0. .npy writes the numpy structured array (hftcore.itch.book.BBO_DTYPE).
"""


def parse_time_of_day(text: str) -> int:
    """``HH:MM[:SS[.fraction]]`` -> nanoseconds since midnight."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"time of day must be HH:MM[:SS[.fff]], got {text!r}")
    try:
        hours, minutes = int(parts[0]), int(parts[1])
        sec_text = parts[2] if len(parts) == 3 else "0"
        whole, _, frac = sec_text.partition(".")
        seconds = int(whole)
        if len(frac) > 9 or (frac and not frac.isdigit()):
            raise ValueError
        nanos = int(frac.ljust(9, "0")) if frac else 0
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad time of day {text!r}") from None
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 60):
        raise argparse.ArgumentTypeError(f"time of day out of range: {text!r}")
    return ((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000 + nanos


def format_time_of_day(ns: int) -> str:
    s, frac = divmod(int(ns), 1_000_000_000)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h:02d}:{m:02d}:{sec:02d}.{frac:09d}"


def _symbol_arg(text: str):
    return int(text) if text.isdigit() else text.upper()


def _capacity_args(p):
    p.add_argument(
        "--max-orders", type=int, default=None, metavar="N",
        help="order store capacity (default 8,000,000; raise if you see BookFull)",
    )  # fmt: skip
    p.add_argument(
        "--max-levels", type=int, default=None, metavar="N",
        help="price level capacity (default 2,000,000)",
    )  # fmt: skip
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")


def _new_book(args, symbols, **kw):
    from hftcore.itch.book import DEFAULT_MAX_LEVELS, DEFAULT_MAX_ORDERS, OrderBook

    return OrderBook(
        max_orders=args.max_orders or DEFAULT_MAX_ORDERS,
        max_levels=args.max_levels or DEFAULT_MAX_LEVELS,
        symbols=symbols,
        **kw,
    )


def _cmd_book(args) -> int:
    book = _new_book(args, [args.symbol])
    book.apply_file(args.file, progress=args.progress or None, until=args.at)
    try:
        loc = book.locate(args.symbol)
    except KeyError:
        print(f"hftcore: error: {args.file}: symbol {args.symbol!r} not in the stock "
              f"directory (no R message for it)", file=sys.stderr)  # fmt: skip
        return 1
    print(format_ladder(book, loc, args.levels, args.symbol))
    return 0


def format_ladder(book, loc, levels, name=None) -> str:
    """A readable ladder: asks (worst to best) above the bids (best to worst)."""
    depth = book.depth(loc, levels)
    bids = depth[depth["side"] == b"B"]
    asks = depth[depth["side"] == b"S"][::-1]
    ticker = book.ticker(loc) or str(name)
    state = book.trading_state(loc)
    lines = [
        f"{ticker} (stock_locate {loc}) at {format_time_of_day(book.timestamp)}, "
        f"after {book.seq:,} messages"
        + (f", trading state {state.trading_state}" if state.trading_state else ""),
        f"{'side':>4} {'price':>12} {'shares':>12} {'orders':>7}",
    ]
    for side, rows in (("ask", asks), ("bid", bids)):
        for r in rows:
            lines.append(
                f"{side:>4} {int(r['price']) / 10_000:>12,.4f} {int(r['shares']):>12,} "
                f"{int(r['orders']):>7,}"
            )
        if side == "ask":
            if len(asks) == 0:
                lines.append(f"{'ask':>4} {'(empty)':>12}")
            bid_px, _, ask_px, _ = book.bbo(loc)
            spread = (ask_px - bid_px) / 10_000 if bid_px and ask_px else None
            lines.append("-" * 38 + (f" spread {spread:,.4f}" if spread is not None else ""))
    if len(bids) == 0:
        lines.append(f"{'bid':>4} {'(empty)':>12}")
    return "\n".join(lines)


def _cmd_bbo(args) -> int:
    from hftcore.itch.book import BBO_DTYPE

    out = args.output
    if not (out.endswith(".csv") or out.endswith(".npy")):
        print("hftcore: error: -o must end in .csv or .npy", file=sys.stderr)
        return 2
    symbols = args.symbol or None
    book = _new_book(args, symbols, bbo=True)
    parts = []
    for _ in book.iter_file(args.file, progress=args.progress or None):
        parts.append(book.drain_bbo())  # drain per chunk: memory stays bounded
    parts.append(book.drain_bbo())
    table = np.concatenate(parts) if parts else np.zeros(0, dtype=BBO_DTYPE)
    missing = [s for s in args.symbol or () if isinstance(s, str) and s not in book.symbols]
    for s in missing:
        print(f"hftcore: warning: {args.file}: {s!r} not in the stock directory", file=sys.stderr)
    if out.endswith(".npy"):
        np.save(out, table)
    else:
        names = {loc: t for t, loc in book.symbols.items()}
        with open(out, "w") as f:
            f.write("seq,timestamp,stock_locate,symbol,bid_price,bid_shares,ask_price,ask_shares\n")
            for r in table.tolist():
                seq, ts, loc, bp, bs, ap, asz = r
                f.write(f"{seq},{ts},{loc},{names.get(loc, '')},{bp},{bs},{ap},{asz}\n")
    print(f"{len(table):,} top-of-book changes -> {out}", file=sys.stderr)
    return 0


def register(cli) -> None:
    """Add ``book`` and ``bbo`` to ``hftcore itch``."""
    sub = cli.group("itch", help="NASDAQ TotalView-ITCH 5.0 files: decode, inspect, books")
    p = sub.add_parser(
        "book",
        help="the order book of a symbol at a time of day, as a price ladder",
        description="Build the order book of one symbol from an ITCH 5.0 file (.gz too)\n"
        "and print it as a price ladder: price in dollars, shares and order count per level.",
        epilog=_BOOK_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="ITCH 5.0 file, BinaryFILE framing (.gz decompressed on the fly)")
    p.add_argument("--symbol", required=True, type=_symbol_arg, help="ticker or stock locate")
    p.add_argument(
        "--at", type=parse_time_of_day, default=None, metavar="HH:MM[:SS[.fff]]",
        help="time of day (exchange time): stop at the first message stamped after it",
    )  # fmt: skip
    p.add_argument("--levels", type=int, default=10, help="levels per side (default 10)")
    _capacity_args(p)
    p.set_defaults(func=_cmd_book)

    p = sub.add_parser(
        "bbo",
        help="top-of-book history of symbols to CSV or .npy",
        description="Record every change of the best bid and offer of the given symbols\n"
        "(every symbol if none is given) from an ITCH 5.0 file (.gz too).",
        epilog=_BBO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="ITCH 5.0 file, BinaryFILE framing (.gz decompressed on the fly)")
    p.add_argument(
        "--symbol", action="append", type=_symbol_arg, metavar="SYMBOL",
        help="ticker or stock locate; repeat for several (default: every symbol)",
    )  # fmt: skip
    p.add_argument("-o", "--output", required=True, help="output file, .csv or .npy")
    _capacity_args(p)
    p.set_defaults(func=_cmd_bbo)
