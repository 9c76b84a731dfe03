"""``hftcore binance simulate | stats | serve`` (and ``watch | replay``, in binance_live):
recorded Binance streams, the local exchange, the live feed."""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import sys
import time

import numpy as np

from hftcore.binance.schema import MARKETS, TIME_UNITS
from hftcore.cli._args import int_range
from hftcore.errors import HftcoreError

_FMT = argparse.RawDescriptionHelpFormatter

_SIMULATE = """\
Write a synthetic Binance market-data recording: one JSON stream message per line, as a
stream recorder writes them. 50% diff depth events (1-20 levels a side, best first), 30%
trades, 20% bookTicker, over the chosen symbols; the depth stream removes the levels the
price moves through, as the exchange does. Seeded: the same arguments write the same
bytes. A path ending in .gz is gzip-compressed.

example:
  hftcore binance simulate rec.ndjson --messages 200000
  hftcore binance simulate rec-usdm.ndjson.gz --market usdm --symbols BTCUSDT,ETHUSDT
  hftcore binance stats rec.ndjson
"""

_STATS = """\
Decode a recorded Binance JSON stream (one message per line, plain or .gz) chunk by chunk
with the batch decoder and summarize it: messages per kind, depth levels, symbols, the
first and last event time, and how fast it decoded. A malformed line stops it with the
file, the message number and the byte offset, unless --skip-errors.

output:
  bytes       uncompressed bytes decoded (and the file's size on disk)
  messages    all messages; "invalid" counts those skipped with --skip-errors
  levels      price levels in depth diffs (bids + asks)
  symbols     distinct symbols, with their message counts
  first/last  event times (UTC) of the earliest and latest event
  throughput  messages and megabytes (1e6 bytes, uncompressed) per second spent reading
              and decoding (the summary's own work is not counted)
  kind table  count and share per message kind

example:
  hftcore binance stats rec.ndjson
  hftcore binance stats btcusdt-2026-11-24.ndjson.gz --time-unit us --json
"""

_SERVE = """\
Run the local Binance-compatible exchange (hftcore.sim.binance_exchange) on loopback
until Ctrl-C (or --duration): a real WebSocket server with Binance's stream paths and
message shapes, the REST depth endpoint on the same port, pings with a pong deadline,
the incoming-message limit, and faults on a timer. Events come from the seeded
simulator at --rate events per second in total (about half are depth diffs), with event
times equal to the send time. It prints the URLs to connect to.

paths (spot):   /ws/<stream>  /stream?streams=a/b  (&timeUnit=MICROSECOND for µs)
                /sbe/ws/..., /sbe/stream?...  SBE, binary (header X-MBX-APIKEY: any key)
                GET /api/v3/depth?symbol=BTCUSDT&limit=1000
paths (usdm):   /public/stream?streams=btcusdt@depth@0ms  (depth, bookTicker)
                /market/stream?streams=btcusdt@aggTrade   (trade, aggTrade)
                GET /fapi/v1/depth?symbol=BTCUSDT&limit=1000

example:
  hftcore binance serve --port 9443 --rate 2000 --symbols BTCUSDT,ETHUSDT
  hftcore binance serve --market usdm --gap-every 500 --shutdown-every 30
"""


def _serve(args):
    import signal

    from hftcore.sim.binance_exchange import BinanceExchange

    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    if not symbols:
        raise HftcoreError("--symbols needs at least one symbol, e.g. BTCUSDT,ETHUSDT")
    if args.rate < 0:
        raise HftcoreError(f"--rate must be >= 0 events per second, got {args.rate:g}")
    if args.sbe and args.market != "spot":
        raise HftcoreError("--sbe: Binance serves SBE market data for spot only")

    def _term(signum, frame):  # SIGTERM stops like Ctrl-C: connections closed cleanly
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    ex = BinanceExchange(
        symbols, market=args.market, rate=args.rate, seed=args.seed, host=args.host,
        port=args.port, gap_every=args.gap_every, disconnect_every=args.disconnect_every,
        shutdown_every=args.shutdown_every,
    )  # fmt: skip
    with ex:
        try:
            low = [s.lower() for s in symbols]
            if args.market == "spot":
                streams = [f"{s}@depth@100ms" for s in low] + [f"{s}@trade" for s in low]
                print(f"streams   {ex.stream_url(streams)}")
                print(f"raw       {ex.ws_url}/ws/{low[0]}@depth@100ms")
            else:
                print(f"depth     {ex.stream_url([f'{s}@depth@0ms' for s in low])}")
                print(f"trades    {ex.stream_url([f'{s}@aggTrade' for s in low])}")
            if args.sbe:
                sbe = ex.stream_url([f"{s}@depth" for s in low] + [f"{s}@trade" for s in low],
                                    sbe=True)  # fmt: skip
                print(f"sbe       {sbe}   (header X-MBX-APIKEY: any non-empty key)")
            path = "/api/v3/depth" if args.market == "spot" else "/fapi/v1/depth"
            print(f"rest      {ex.rest_url}{path}?symbol={symbols[0]}&limit=1000")
            print(f"serving {args.market} {', '.join(symbols)} at {args.rate:g} events/s; "
                  "Ctrl-C stops", flush=True)  # fmt: skip
            t0 = time.monotonic()
            while args.duration is None or time.monotonic() - t0 < args.duration:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM, whenever it comes: a clean stop
        st = ex.stats()
    print(f"stopped: {st['events']:,} events, {st['connections']:,} connections, "
          f"{st['rest']:,} REST requests", flush=True)  # fmt: skip
    return 0


def _simulate(args):
    from hftcore.sim import binance as simbin

    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    if not symbols:
        raise HftcoreError("--symbols needs at least one symbol, e.g. BTCUSDT,ETHUSDT")
    t0 = time.perf_counter()
    data = simbin.generate_corpus(args.messages, seed=args.seed, symbols=symbols,
                                  market=args.market)  # fmt: skip
    opener = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wb") as f:
        f.write(data)
    elapsed = time.perf_counter() - t0
    size = f"{len(data):,} bytes"
    if args.out.endswith(".gz"):
        size += f" ({os.path.getsize(args.out):,} compressed)"
    print(
        f"wrote {args.out}: {args.messages:,} messages ({args.market}; "
        f"{', '.join(symbols)}), {size} in {elapsed:.2f} s"
    )
    return 0


def _format_ns(ns):
    if ns is None:
        return "-"
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.timezone.utc)
    return f"{t:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d} UTC"


def _stats(args):
    from hftcore.binance import KINDS, files

    if not os.path.exists(args.file):
        raise FileNotFoundError(f"{args.file}: no such file")
    if os.path.isdir(args.file):
        raise IsADirectoryError(f"{args.file}: is a directory, not a recording")
    chunk = int(args.chunk_mb * (1 << 20))
    if chunk < 1:
        raise HftcoreError(f"--chunk-mb must be positive, got {args.chunk_mb}")
    counts = dict.fromkeys(KINDS, 0)
    symbols: dict[str, int] = {}
    messages = levels = nbytes = 0
    first = last = None
    errors = []
    t0 = time.perf_counter()
    decode_s = 0.0  # time inside the decoder (the summary's own work is not counted)
    chunks = files.iter_file(args.file, chunk_bytes=chunk, time_unit=args.time_unit,
                             errors="skip" if args.skip_errors else "raise")  # fmt: skip
    while True:
        t1 = time.perf_counter()
        tables = next(chunks, None)
        decode_s += time.perf_counter() - t1
        if tables is None:
            break
        for k, n in tables.counts.items():
            counts[k] = counts.get(k, 0) + n
        messages += tables.n_messages
        nbytes += tables.consumed
        levels += len(tables["depth"])
        errors.extend(tables.errors[: max(0, 10 - len(errors))])
        for name in tables:
            arr = tables[name]
            if len(arr) == 0:
                continue
            # One count per message, not per depth level (a message's rows are adjacent).
            first_rows = np.flatnonzero(np.diff(arr["msg_index"], prepend=-1))
            syms, n = np.unique(arr["symbol"][first_rows], return_counts=True)
            for s, c in zip(syms.tolist(), n.tolist(), strict=True):
                key = s.decode("utf-8", "replace")
                symbols[key] = symbols.get(key, 0) + c
            times = arr["event_time"][arr["event_time"] > 0]
            if len(times):
                lo, hi = int(times.min()), int(times.max())
                first = lo if first is None else min(first, lo)
                last = hi if last is None else max(last, hi)
    elapsed = time.perf_counter() - t0
    out = {
        "file": args.file,
        "file_bytes": os.path.getsize(args.file),
        "bytes": nbytes,
        "messages": messages,
        "depth_levels": levels,
        "symbols": dict(sorted(symbols.items(), key=lambda kv: -kv[1])),
        "first_event_time_ns": first,
        "last_event_time_ns": last,
        "first_time": _format_ns(first) if first is not None else None,
        "last_time": _format_ns(last) if last is not None else None,
        "elapsed_s": elapsed,
        "decode_s": decode_s,
        "messages_per_s": messages / max(decode_s, 1e-9),
        "mb_per_s": nbytes / max(decode_s, 1e-9) / 1e6,
        "counts": counts,
        "errors": [str(e) for e in errors],
    }
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    print(f"file        {args.file}")
    print(f"bytes       {nbytes:,} (file {out['file_bytes']:,})")
    invalid = counts.get("invalid", 0)
    print(f"messages    {messages:,}" + (f" ({invalid:,} invalid, skipped)" if invalid else ""))
    print(f"levels      {levels:,} in depth diffs")
    top = ", ".join(f"{s} {c:,}" for s, c in list(out["symbols"].items())[:8])
    more = f" and {len(symbols) - 8} more" if len(symbols) > 8 else ""
    print(f"symbols     {len(symbols):,}: {top or '-'}{more}")
    print(f"first       {_format_ns(first)}")
    print(f"last        {_format_ns(last)}")
    print(f"elapsed     {elapsed:.3f} s ({decode_s:.3f} s reading and decoding)")
    print(f"throughput  {out['messages_per_s']:,.0f} msg/s, {out['mb_per_s']:,.1f} MB/s "
          "(reading and decoding)")  # fmt: skip
    print()
    print(f"{'kind':<16} {'count':>14} {'share':>8}")
    for k in KINDS:
        c = counts.get(k, 0)
        if c or k in ("trade", "depthUpdate", "bookTicker"):
            share = 100.0 * c / messages if messages else 0.0
            print(f"{k:<16} {c:>14,} {share:>7.2f}%")
    for e in errors:
        print(f"skipped: {e}")
    return 0


def register(cli):
    g = cli.group(
        "binance",
        help="Binance streams: simulate, stats of a recording, serve a local exchange",
        description="Recorded Binance market-data streams (one JSON message per line, .gz "
        "too).\n`hftcore binance SUBCOMMAND --help` explains each, with examples.\n\n"
        "start with:\n"
        "  hftcore binance simulate rec.ndjson --messages 200000\n"
        "  hftcore binance stats rec.ndjson",
    )

    p = g.add_parser(
        "simulate", help="write a synthetic recording (NDJSON)", description=_SIMULATE,
        formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("out", metavar="OUT", help="output file (.gz to compress)")
    p.add_argument("--messages", type=int_range(0), default=100_000, metavar="N",
                   help="messages to write (default: %(default)s)")  # fmt: skip
    p.add_argument("--market", choices=MARKETS, default="spot",
                   help="spot or USD-M futures message shapes (default: %(default)s)")  # fmt: skip
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT,BNBUSDT", metavar="A,B",
                   help="comma-separated symbols (default: %(default)s)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=_simulate)

    p = g.add_parser(
        "stats", help="message counts, symbols, time span and decode throughput",
        description=_STATS, formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("file", metavar="FILE", help="recording: one JSON message per line, .gz too")
    p.add_argument("--time-unit", choices=tuple(TIME_UNITS), default="ms",
                   help="the stream's time unit (us: timeUnit=MICROSECOND; default: ms)")  # fmt: skip
    p.add_argument("--skip-errors", action="store_true",
                   help="count malformed messages as invalid and go on (first 10 shown)")  # fmt: skip
    p.add_argument("--chunk-mb", type=float, default=64, metavar="N",
                   help="decode N MiB at a time (default: %(default)s)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_stats)

    p = g.add_parser(
        "serve", help="run the local Binance-compatible exchange (WebSocket + REST)",
        description=_SERVE, formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument("--port", type=int_range(0, 65535), default=0, metavar="N",
                   help="port (default: 0, a free one; the URLs printed say which)")  # fmt: skip
    p.add_argument("--market", choices=MARKETS, default="spot",
                   help="spot or USD-M futures (default: %(default)s)")  # fmt: skip
    p.add_argument("--rate", type=float, default=1000.0, metavar="N",
                   help="events per second, all symbols and kinds (default: %(default)s)")  # fmt: skip
    p.add_argument("--symbols", default="BTCUSDT,ETHUSDT,BNBUSDT", metavar="A,B",
                   help="comma-separated symbols (default: %(default)s)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    p.add_argument("--gap-every", type=int_range(1), default=None, metavar="N",
                   help="withhold every N-th depth diff from every connection (a gap)")  # fmt: skip
    p.add_argument("--disconnect-every", type=float, default=None, metavar="S",
                   help="drop every connection every S seconds")  # fmt: skip
    p.add_argument("--shutdown-every", type=float, default=None, metavar="S",
                   help="send serverShutdown every S seconds, closing 1 s later")  # fmt: skip
    p.add_argument("--sbe", action="store_true", help="print the SBE stream URL too (spot)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: run until Ctrl-C)")  # fmt: skip
    p.set_defaults(func=_serve)

    from hftcore.cli.binance_live import add_live_commands

    add_live_commands(g)
