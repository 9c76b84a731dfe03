"""``hftcore itch to-parquet`` and ``hftcore binance to-parquet``: day files and
recordings to Parquet datasets, here or on a Dask cluster.

Registered after :mod:`hftcore.cli.itch` and :mod:`hftcore.cli.binance` (it adds
subcommands to their groups), so those modules stay untouched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from hftcore.cli._args import int_range
from hftcore.errors import HftcoreError

_FMT = argparse.RawDescriptionHelpFormatter

_ITCH_TO_PARQUET = """\
Convert ITCH 5.0 day files (plain or .gz) to Parquet: one dataset per message type at
OUT/<type>/, Hive-partitioned by day=<YYYY-MM-DD> (the date comes from --date or from
NASDAQ's file names such as 01302020.NASDAQ_ITCH50.gz; otherwise the file's stem).

Columns follow the message table: integers keep their width, prices stay integers with
their implied decimals in the field metadata (decimals=4; 8 for V), symbols and codes
are dictionary-encoded strings, `timestamp` is int64 ns since midnight (US Eastern) and,
when the date is known, `time` is a timestamp[ns, America/New_York].

Each day is streamed chunk by chunk (bounded memory), written under hidden temporary
names and renamed when the whole day is done; OUT/_hftcore/ records completed days, so
a rerun skips them (--force converts again). A day that fails (corrupt .gz, truncated
file) is reported and the other days still complete; the exit status is then 1.

With --workers N the days run as tasks on a local Dask cluster of N processes; with
--scheduler tcp://HOST:8786 on an existing cluster (paths must be readable there).

examples:
  hftcore itch to-parquet 01302020.NASDAQ_ITCH50.gz out/
  hftcore itch to-parquet day*.itch.gz out/ --types A,F,E,C,X,D,U,P --bbo --workers 2
  hftcore itch to-parquet sim.itch out/ --date 2024-03-01 --compression snappy
  python -c "import pyarrow.dataset as ds; print(ds.dataset('out/P', partitioning='hive').to_table())"
"""

_BINANCE_TO_PARQUET = """\
Convert recorded Binance streams (NDJSON, plain or .gz) to Parquet: one dataset per table
kind (trades, agg_trades, book_ticker, depth, depth_snapshots, klines) at OUT/<kind>/,
partitioned by the UTC day of the event time (day=undated for rows without one, e.g.
REST snapshots). Prices and quantities stay int64 with decimals=8 in the metadata; times
are timestamp[ns, UTC]. Temporary names, skip-on-rerun and per-file errors as in
`hftcore itch to-parquet`.

examples:
  hftcore binance to-parquet rec-*.ndjson.gz out/
  hftcore binance to-parquet rec.ndjson out/ --time-unit us --workers 2
"""


def _types_arg(values):
    from hftcore.itch import spec

    if not values:
        return None
    out = []
    for v in values:
        for t in v.replace(",", ""):
            if t not in spec.BY_TYPE:
                raise HftcoreError(f"--types: {t!r} is not an ITCH 5.0 message type")
            if t not in out:
                out.append(t)
    return "".join(out)


def _common(p):
    p.add_argument("--compression", default="zstd",
                   choices=("zstd", "snappy", "gzip", "lz4", "brotli", "none"),
                   help="Parquet codec (default: %(default)s)")  # fmt: skip
    p.add_argument("--row-group-rows", type=int_range(1), default=1 << 20, metavar="N",
                   help="rows per row group, and most rows buffered per dataset "
                   "(default: %(default)s)")  # fmt: skip
    p.add_argument("--chunk-mb", type=float, default=64, metavar="N",
                   help="decode N MiB of (decompressed) input at a time (default: %(default)s)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="convert days already complete in OUT")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--workers", type=int_range(1), metavar="N",
                   help="run the files as tasks on a local Dask cluster of N processes")  # fmt: skip
    g.add_argument("--scheduler", metavar="ADDR",
                   help="run on an existing Dask cluster, e.g. tcp://10.0.0.5:8786")  # fmt: skip


def _check_inputs(paths):
    for p in paths:
        if not os.path.exists(p):
            raise FileNotFoundError(f"{p}: no such file")
        if os.path.isdir(p):
            raise IsADirectoryError(f"{p}: is a directory, not a day file")


def _print_result(path, res, err, size_of=os.path.getsize):
    name = os.path.basename(path)
    if err is not None:
        print(f"FAILED {name}: {err}", file=sys.stderr, flush=True)
        return
    if res.get("skipped"):
        print(f"skip   {name}: complete in the output already", flush=True)
        return
    secs = res.get("task_seconds") or res.get("seconds") or 0
    rows = sum(res["rows"].values())
    mb = res.get("bytes", 0) / 1e6
    rate = f", {mb / secs:,.1f} MB/s" if secs and mb else ""
    print(f"done   {name}: {rows:,} rows in {len(res['files'])} files, {secs:.2f} s{rate}",
          flush=True)  # fmt: skip


def _run(args, fmt, options):
    from hftcore import export

    paths = args.inputs
    _check_inputs(paths)
    t0 = time.perf_counter()
    if args.workers or args.scheduler:
        from hftcore.export import dask as xdask

        client, cluster = xdask.start_client(args.workers, args.scheduler)
        try:
            print(f"dask dashboard: {client.dashboard_link}", flush=True)
            summary = xdask.convert_days(paths, args.out, fmt=fmt, client=client,
                                         on_result=_print_result, **options)  # fmt: skip
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        errors = summary["errors"]
    else:
        errors = {}
        convert = export.itch_day_to_parquet if fmt == "itch" else export.binance_to_parquet
        for p in paths:
            try:
                res = convert(p, args.out, **options)
            except (HftcoreError, OSError) as e:
                errors[p] = str(e)
                _print_result(p, None, str(e))
            else:
                _print_result(p, res, None)
    n = len(paths)
    print(f"{n - len(errors)} of {n} file(s) converted to {args.out} in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
    return 1 if errors else 0


def _itch_to_parquet(args):
    if len(args.inputs) > 1 and args.date:
        raise HftcoreError("--date names the day of a single file; give one DAY")
    options = dict(
        types=_types_arg(args.types), bbo=args.bbo, date=args.date,
        compression=args.compression, row_group_rows=args.row_group_rows,
        chunk_bytes=max(int(args.chunk_mb * (1 << 20)), 1), force=args.force,
    )  # fmt: skip
    if not (args.workers or args.scheduler):
        options["progress"] = None
    return _run(args, "itch", options)


def _binance_to_parquet(args):
    options = dict(
        time_unit=args.time_unit, compression=args.compression,
        row_group_rows=args.row_group_rows,
        chunk_bytes=max(int(args.chunk_mb * (1 << 20)), 1), force=args.force,
    )  # fmt: skip
    if not (args.workers or args.scheduler):
        options["progress"] = None
    return _run(args, "binance", options)


def _split_out(args):
    """``DAY... OUT``: the last positional is the output directory."""
    if len(args.paths) < 2:
        raise HftcoreError("give at least one input file and the output directory (OUT)")
    args.inputs, args.out = args.paths[:-1], args.paths[-1]
    if os.path.isfile(args.out):
        raise HftcoreError(f"{args.out}: OUT must be a directory, not a file")


def register(cli):
    from hftcore.binance.schema import TIME_UNITS

    g = cli.group("itch", help="NASDAQ TotalView-ITCH 5.0 files")
    p = g.add_parser("to-parquet", help="day files to Hive-partitioned Parquet datasets",
                     description=_ITCH_TO_PARQUET, formatter_class=_FMT)  # fmt: skip
    p.add_argument("paths", nargs="+", metavar="DAY... OUT",
                   help="ITCH day files (plain or .gz), then the output directory")  # fmt: skip
    p.add_argument("--types", action="append", metavar="TYPES",
                   help="only these message types, e.g. AFEXDUP or A,F,E (default: all)")  # fmt: skip
    p.add_argument("--bbo", action="store_true",
                   help="also OUT/bbo/: every top-of-book change of every stock (order book)")  # fmt: skip
    p.add_argument("--date", metavar="YYYY-MM-DD",
                   help="the trading day of a single file whose name carries none")  # fmt: skip
    _common(p)
    p.set_defaults(func=lambda a: (_split_out(a), _itch_to_parquet(a))[1])

    register_lobster(g)
    register_fetch(g)

    g = cli.group("binance", help="Binance JSON streams")
    p = g.add_parser("to-parquet", help="recordings to Parquet, by kind and UTC day",
                     description=_BINANCE_TO_PARQUET, formatter_class=_FMT)  # fmt: skip
    p.add_argument("paths", nargs="+", metavar="RECORDING... OUT",
                   help="recordings (NDJSON, plain or .gz), then the output directory")  # fmt: skip
    p.add_argument("--time-unit", choices=tuple(TIME_UNITS), default="ms",
                   help="the streams' time unit (us: timeUnit=MICROSECOND; default: ms)")  # fmt: skip
    _common(p)
    p.set_defaults(func=lambda a: (_split_out(a), _binance_to_parquet(a))[1])


_LOBSTER = """\
Write LOBSTER files (the academic standard: lobsterdata.com) for stocks of an ITCH day:
per stock a message file (time in seconds after midnight, event type 1-7, order id,
size, price x 10000, direction) and an orderbook file (ask price/size, bid price/size
for each of N levels after every message; empty levels read 9999999999 / -9999999999 and
size 0), named TICKER_DATE_START_END_message_N.csv / ..._orderbook_N.csv. The book is
hftcore's ITCH order book, built from the whole day; rows are kept between --start and
--end (default 09:30 to 16:00, LOBSTER's window). A replace (U) is a deletion (3) and a
new order (1).

examples:
  hftcore itch lobster 01302020.NASDAQ_ITCH50.gz --symbol AAPL --levels 10 lobster/
  hftcore itch lobster day.itch --symbol AAPL --symbol MSFT --start 09:30 --end 10:00 out/
"""


def _lobster(args):
    from hftcore.export.lobster import write_lobster

    _check_inputs([args.day])
    res = write_lobster(
        args.day, args.symbol, args.out, levels=args.levels, date=args.date,
        start_ns=args.start, end_ns=args.end,
    )  # fmt: skip
    for sym, r in res.items():
        print(f"{sym}: {r['rows']:,} rows -> {r['message']}, {r['orderbook']}")
    return 0


def register_lobster(g):
    p = g.add_parser("lobster", help="LOBSTER message and orderbook files of stocks",
                     description=_LOBSTER, formatter_class=_FMT)  # fmt: skip
    p.add_argument("day", metavar="DAY", help="ITCH 5.0 day file (plain or .gz)")
    p.add_argument("out", metavar="OUT", help="output directory")
    p.add_argument("--symbol", action="append", required=True, metavar="S",
                   help="a ticker, e.g. AAPL (repeatable)")  # fmt: skip
    p.add_argument("--levels", type=int_range(1, 1000), default=10, metavar="N",
                   help="price levels per side in the orderbook file (default: %(default)s)")  # fmt: skip
    p.add_argument("--date", metavar="YYYY-MM-DD",
                   help="the day, for the file names (default: from the NASDAQ file name)")  # fmt: skip
    from hftcore.cli.itch import parse_time_of_day

    p.add_argument("--start", default="09:30", type=parse_time_of_day, metavar="HH:MM[:SS]",
                   help="first time kept (default: %(default)s)")  # fmt: skip
    p.add_argument("--end", default="16:00", type=parse_time_of_day, metavar="HH:MM[:SS]",
                   help="time kept up to, excluded (default: %(default)s)")  # fmt: skip
    p.set_defaults(func=_lobster)


_LIST = """\
List NASDAQ's public ITCH 5.0 sample day files (MMDDYYYY.NASDAQ_ITCH50.gz) from the
directory listing at --base-url (default: $HFTCORE_ITCH_URL or NASDAQ's emi.nasdaq.com).

examples:
  hftcore itch list
  hftcore itch list --base-url http://mirror.local/itch/
"""

_FETCH = """\
Download NASDAQ sample day files by date into --dest. The download goes to NAME.part and
resumes from its bytes (HTTP Range) when a run is interrupted: run the same command
again. The MD5 is checked against the published NAME.md5sum when there is one, then the
file is renamed to NAME. Files already present are skipped.

examples:
  hftcore itch fetch 2020-01-30 --dest data/
  hftcore itch fetch 01302020 12302019 --dest data/ --base-url http://mirror.local/itch/
"""


def _list(args):
    from hftcore.export import fetch

    days = fetch.list_days(args.base_url)
    for d, name in days:
        print(f"{d.isoformat()}  {name}")
    print(f"{len(days)} day file(s) at {fetch.base_url(args.base_url)}", file=sys.stderr)
    return 0


def _fetch(args):
    from hftcore._core.progress import Progress
    from hftcore.export import fetch

    listing = fetch.list_days(args.base_url)
    failed = 0
    for text in args.dates:
        bar = Progress(0, desc=text)

        def progress(done, total, bar=bar):
            bar.total = total or done
            bar.update(done)

        try:
            res = fetch.fetch_day(text, args.dest, url=args.base_url, listing=listing,
                                  progress=progress)  # fmt: skip
        except (ValueError, HftcoreError) as e:
            print(f"FAILED {text}: {e}", file=sys.stderr)
            failed += 1
            continue
        finally:
            bar.close()
        if res["skipped"]:
            print(f"skip   {res['path']}: already there")
        else:
            check = {True: "md5 matches the published checksum",
                     None: "no checksum published"}[res["checked"]]  # fmt: skip
            print(f"done   {res['path']}: {res['bytes']:,} bytes, md5 {res['md5']} ({check})")
    return 1 if failed else 0


def register_fetch(g):
    p = g.add_parser("list", help="NASDAQ's public ITCH sample day files",
                     description=_LIST, formatter_class=_FMT)  # fmt: skip
    p.add_argument("--base-url", metavar="URL", help="the listing (default: NASDAQ's)")
    p.set_defaults(func=_list)
    p = g.add_parser("fetch", help="download sample day files (resumable, MD5-checked)",
                     description=_FETCH, formatter_class=_FMT)  # fmt: skip
    p.add_argument("dates", nargs="+", metavar="DATE", help="YYYY-MM-DD or MMDDYYYY")
    p.add_argument("--dest", default=".", metavar="DIR", help="directory (default: .)")
    p.add_argument("--base-url", metavar="URL", help="the listing (default: NASDAQ's)")
    p.set_defaults(func=_fetch)
