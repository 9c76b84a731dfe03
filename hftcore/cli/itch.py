"""``hftcore itch``: simulate, stats, dump, book, bbo: make, summarize and read ITCH 5.0
files, and build order books from them."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from hftcore._core.progress import Progress
from hftcore.cli._args import int_range
from hftcore.errors import HftcoreError
from hftcore.itch import spec

_FMT = argparse.RawDescriptionHelpFormatter
_TYPES_HELP = ", ".join(f"{m.type}={m.name}" for m in spec.MESSAGES)


def format_time(ns):
    """Nanoseconds since midnight as ``HH:MM:SS.nnnnnnnnn``."""
    ns = int(ns)
    s, frac = divmod(ns, 1_000_000_000)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}.{frac:09d}"


def format_price(raw, kind="price4"):
    """A raw ITCH price as exact dollars: 4 decimals (8 for ``price8``, the V levels)."""
    raw = int(raw)
    scale = spec.PRICE_SCALE[kind]
    digits = len(str(scale)) - 1
    return f"{raw // scale}.{raw % scale:0{digits}d}"


def _format_field(field, value):
    if field.kind in ("alpha", "enum"):
        return bytes(value).decode("ascii", "replace").rstrip(" ")
    if field.kind in spec.PRICE_SCALE:
        return format_price(value, field.kind)
    if field.name == "timestamp":
        return format_time(value)
    return str(int(value))


def _file_error(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a directory, not an ITCH file")


def _iter_tables(path, chunk_mb, types):
    """Decoded tables of ``path``, chunk by chunk (progress bar on a terminal)."""
    from hftcore import itch

    _file_error(path)
    chunk = int(chunk_mb * (1 << 20))
    if chunk < 1:
        raise HftcoreError(f"--chunk-mb must be positive, got {chunk_mb}")
    yield from itch.iter_file(path, chunk_bytes=chunk, types=types)


# ---------------------------------------------------------------- simulate


def _simulate(args):
    from hftcore.sim import itch as simitch

    t0 = time.perf_counter()
    bar = Progress(args.messages, desc="simulating", unit="items")

    def progress(done, total):
        bar.total = total  # the day holds at least its scheduled messages
        bar.update(done)

    with bar:
        day = simitch.write_day(
            args.out, messages=args.messages, symbols=args.symbols, seed=args.seed,
            progress=progress,
        )  # fmt: skip
    elapsed = time.perf_counter() - t0
    print(
        f"wrote {day.path}: {day.messages:,} messages, {day.symbols:,} symbols, "
        f"{day.bytes:,} bytes in {elapsed:.2f} s ({day.messages / max(elapsed, 1e-9):,.0f} msg/s)"
    )
    return 0


# ---------------------------------------------------------------- stats


def _first_last(tables):
    """(seq, timestamp) of the first and last message among ``tables``, or None."""
    first = last = None
    for arr in tables.values():
        if len(arr) == 0:
            continue
        # rows are in stream order within each table
        f = (int(arr["seq"][0]), int(arr["timestamp"][0]))
        la = (int(arr["seq"][-1]), int(arr["timestamp"][-1]))
        first = f if first is None or f < first else first
        last = la if last is None or la > last else last
    return first, last


def _stats(args):
    counts = dict.fromkeys(spec.TYPES, 0)
    messages = consumed = unknown = 0
    first = last = None
    t0 = time.perf_counter()
    for tables in _iter_tables(args.file, args.chunk_mb, None):
        for t, n in tables.counts.items():
            counts[t] += n
        messages += tables.messages
        unknown += tables.unknown
        consumed += tables.consumed
        f, la = _first_last(tables)
        if f is not None:
            first = f if first is None else min(first, f)
            last = la if last is None else max(last, la)
    elapsed = time.perf_counter() - t0
    rate = messages / max(elapsed, 1e-9)
    mbps = consumed / max(elapsed, 1e-9) / 1e6
    out = {
        "file": args.file,
        "file_bytes": os.path.getsize(args.file),
        "bytes": consumed,
        "messages": messages,
        "unknown_types": unknown,
        "symbols": counts.get("R", 0),
        "first_timestamp": first[1] if first else None,
        "last_timestamp": last[1] if last else None,
        "first_time": format_time(first[1]) if first else None,
        "last_time": format_time(last[1]) if last else None,
        "elapsed_s": elapsed,
        "messages_per_s": rate,
        "mb_per_s": mbps,
        "counts": {t: {"name": spec.BY_TYPE[t].name, "count": counts[t]} for t in spec.TYPES},
    }
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    print(f"file        {args.file}")
    print(f"bytes       {consumed:,} (file {out['file_bytes']:,})")
    print(f"messages    {messages:,}" + (f" ({unknown:,} of unknown types)" if unknown else ""))
    print(f"symbols     {out['symbols']:,} (R stock directory messages)")
    print(f"first       {out['first_time'] or '-'}")
    print(f"last        {out['last_time'] or '-'}")
    print(f"elapsed     {elapsed:.3f} s")
    print(f"throughput  {rate:,.0f} msg/s, {mbps:,.1f} MB/s")
    print()
    print(f"{'type':<5} {'name':<30} {'count':>14} {'share':>8}")
    for t in spec.TYPES:
        c = counts[t]
        share = 100.0 * c / messages if messages else 0.0
        print(f"{t:<5} {spec.BY_TYPE[t].name:<30} {c:>14,} {share:>7.2f}%")
    return 0


# ---------------------------------------------------------------- dump


def _parse_types(values):
    if not values:
        return None
    types = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if len(part) > 1 and all(c in spec.BY_TYPE for c in part):
                types.extend(part)  # "AFE"
            elif part in spec.BY_TYPE:
                types.append(part)
            elif part:
                raise HftcoreError(
                    f"unknown ITCH message type {part!r}; known types: {_TYPES_HELP}"
                )
    return list(dict.fromkeys(types))


class _Dumper:
    """Prints rows of decoded tables in stream order, as text or CSV."""

    def __init__(self, types, csv_out):
        self.types = types or list(spec.TYPES)
        self.csv = csv.writer(sys.stdout, lineterminator="\n") if csv_out else None
        if self.csv:
            names = []
            for t in self.types:
                for f in spec.BY_TYPE[t].all_fields:
                    if f.name not in names:
                        names.append(f.name)
            self.columns = names
            self.csv.writerow(["seq", "type", "name", *names])

    def row(self, t, rec):
        msg = spec.BY_TYPE[t]
        if self.csv:
            vals = {f.name: _format_field(f, rec[f.name]) for f in msg.all_fields}
            self.csv.writerow(
                [int(rec["seq"]), t, msg.name, *(vals.get(c, "") for c in self.columns)]
            )
            return
        fields = " ".join(
            f"{f.name}={_format_field(f, rec[f.name])}"
            for f in msg.all_fields
            if f.name != "timestamp"
        )
        print(
            f"{int(rec['seq']):>10}  {format_time(rec['timestamp'])}  {t}  {msg.name:<28}  {fields}"
        )


def _dump(args):
    types = _parse_types(args.type)
    symbol = args.symbol.encode("ascii").strip().ljust(8) if args.symbol else None
    if symbol is not None and len(symbol) > 8:
        raise HftcoreError(f"symbol {args.symbol!r} is longer than ITCH's 8 characters")
    wanted = types or list(spec.TYPES)
    decode_types = None
    if types:
        decode_types = "".join(dict.fromkeys(types + (["R"] if symbol else [])))
    dumper = _Dumper(types, args.csv)
    locate = None
    shown = 0
    limit = args.limit if args.limit > 0 else None
    for tables in _iter_tables(args.file, args.chunk_mb, decode_types):
        if symbol is not None and locate is None and "R" in tables:
            hit = np.flatnonzero(tables["R"]["stock"] == symbol)
            if hit.size:
                locate = int(tables["R"]["stock_locate"][hit[0]])
        picks = []
        for t in wanted:
            arr = tables.get(t)
            if arr is None or len(arr) == 0:
                continue
            if symbol is not None:
                if "stock" in arr.dtype.names:
                    mask = arr["stock"] == symbol
                elif locate is not None:
                    mask = (arr["stock_locate"] == locate) & (arr["stock_locate"] != 0)
                else:
                    continue
                arr = arr[mask]
            if limit is not None:
                arr = arr[: limit - shown]
            if len(arr):
                picks.append((t, arr))
        if not picks:
            continue
        seqs = np.concatenate([a["seq"] for _, a in picks])
        which = np.concatenate([np.full(len(a), k) for k, (_, a) in enumerate(picks)])
        rows = np.concatenate([np.arange(len(a)) for _, a in picks])
        order = np.argsort(seqs, kind="stable")
        if limit is not None:
            order = order[: limit - shown]
        for i in order:
            t, arr = picks[which[i]]
            dumper.row(t, arr[rows[i]])
        shown += len(order)
        if limit is not None and shown >= limit:
            break
    if symbol is not None and locate is None and shown == 0:
        raise HftcoreError(
            f"{args.file}: symbol {args.symbol!r} not found (no R stock directory message)"
        )
    return 0


# ---------------------------------------------------------------- books
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
        f"{ticker} (stock_locate {loc}) at {format_time(book.timestamp)}, "
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


def _register_books(sub) -> None:
    """Add ``book`` and ``bbo`` to ``hftcore itch``."""
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


# ---------------------------------------------------------------- register

_SIMULATE = """\
Write a synthetic, internally consistent ITCH 5.0 day (BinaryFILE framing, as NASDAQ's
day files): a stock directory, system events, crosses, NOII, and an order flow of adds,
executions, cancels, deletes and replaces where every reference points at a live order.
Seeded: the same arguments write the same bytes. A path ending in .gz is gzip-compressed.

example:
  hftcore itch simulate day.itch --messages 2000000 --symbols 3000
  hftcore itch stats day.itch
"""

_STATS = """\
Decode a whole ITCH 5.0 file (BinaryFILE framing, .gz too) with the batch decoder and
summarize it: messages per type, symbols, first and last timestamp, and how fast it
decoded.

output:
  bytes       uncompressed bytes decoded (and the file's size on disk)
  messages    framed messages, all types
  symbols     R (stock directory) messages
  first/last  timestamps of the first and last message, HH:MM:SS.nnnnnnnnn since midnight
  throughput  messages and megabytes (1e6 bytes, uncompressed) per second of wall time
  type table  count and share per message type, named as in the ITCH 5.0 specification

example:
  hftcore itch stats 01302020.NASDAQ_ITCH50.gz
  hftcore itch stats day.itch --json | jq .counts.A
"""

_DUMP = """\
Print messages of an ITCH 5.0 file as readable rows, in stream order.

columns (text):
  seq        0-based index of the message in the file
  time       timestamp, HH:MM:SS.nnnnnnnnn since midnight
  type       the message type character, then its name from the specification
  fields     name=value for every field: prices in dollars (4 decimals; 8 for the V
             levels), alphas with their space padding stripped
--csv writes one header row (seq, type, name, then the fields of the selected types) and
leaves the fields a type does not have empty.

--symbol keeps messages of one stock: by the stock field where the type has one, else by
the stock_locate the R stock directory gave the symbol (order executions, cancels,
deletes, replaces). Market-wide messages (S, V, W, B) have no symbol.

examples:
  hftcore itch dump day.itch --limit 20
  hftcore itch dump day.itch --type A --symbol AAPL --limit 5
  hftcore itch dump day.itch --type A,F,E,C,X,D,U --symbol AAPL --limit 0 --csv > aapl.csv
"""


def register(cli):
    g = cli.group(
        "itch",
        help="NASDAQ TotalView-ITCH 5.0 files: simulate, stats, dump, book, bbo",
        description="NASDAQ TotalView-ITCH 5.0 files (BinaryFILE framing, .gz too).\n"
        "`hftcore itch SUBCOMMAND --help` explains each, with examples.\n\n"
        "start with:\n"
        "  hftcore itch simulate day.itch --messages 2000000\n"
        "  hftcore itch stats day.itch\n"
        "  hftcore itch dump day.itch --type A --limit 5",
    )

    p = g.add_parser(
        "simulate", help="write a synthetic ITCH 5.0 day", description=_SIMULATE,
        formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("out", metavar="OUT", help="output file (.gz to compress)")
    p.add_argument("--messages", type=int_range(0), default=1_000_000, metavar="N",
                   help="messages in the day (default: %(default)s)")  # fmt: skip
    p.add_argument("--symbols", type=int_range(1, 65535), default=1000, metavar="N",
                   help="symbols in the stock directory, 1..65535 (default: %(default)s)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=_simulate)

    p = g.add_parser(
        "stats", help="message counts, symbols, time span and decode throughput",
        description=_STATS, formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("file", metavar="FILE", help="ITCH 5.0 file (BinaryFILE framing, .gz too)")
    p.add_argument("--chunk-mb", type=float, default=64, metavar="N",
                   help="decode N MiB at a time (default: %(default)s)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_stats)

    p = g.add_parser(
        "dump", help="print messages as readable rows (or CSV)", description=_DUMP,
        formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("file", metavar="FILE", help="ITCH 5.0 file (BinaryFILE framing, .gz too)")
    p.add_argument("--type", action="append", metavar="T",
                   help="only these message types: A, or A,F,E (repeatable); " + _TYPES_HELP)  # fmt: skip
    p.add_argument("--symbol", metavar="SYM", help="only messages of this stock, e.g. AAPL")
    p.add_argument("--limit", type=int_range(0), default=100, metavar="N",
                   help="print at most N rows, 0 for all (default: %(default)s)")  # fmt: skip
    p.add_argument("--csv", action="store_true", help="CSV instead of aligned text")
    p.add_argument("--chunk-mb", type=float, default=16, metavar="N",
                   help="decode N MiB at a time (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=_dump)
    _register_books(g)
