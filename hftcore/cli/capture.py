"""``hftcore feed capture-info | to-ndjson``: look into capture files, convert them.

The commands join the ``feed`` group. :func:`add_capture_commands` adds them to the
group's subparsers (``hftcore.cli.feed`` calls it); :func:`register` does the same through
the ``CommandLine`` builder for a command line without ``cli/feed.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

_FMT = argparse.RawDescriptionHelpFormatter

_INFO = """\
Walk a capture file (as written by a live feed's record=PATH or a CaptureWriter), check
every record's CRC32C checksum, and summarize it: the metadata stored at creation, the
records per kind, the time span of the receive stamps, and what was skipped.

A capture cut short by a crash ends in a torn tail (a partial or unchecked last record):
it is skipped and reported, never an error. A bad record with valid ones after it is
corruption inside the file: an error naming the byte offset, unless --skip-errors.

output:
  created       when the file was created (UTC)
  metadata      the JSON object the writer stored (source URL, feed, market...)
  records       valid records and their payload bytes
  kinds         records per kind: text, binary (WebSocket), stream (TCP), datagram (UDP)
  first/last    receive time (CLOCK_REALTIME, UTC) of the first and last record
  span          last - first receive time
  torn tail     the partial last record skipped (bytes), after a crash
  corrupt       bad records skipped inside the file (with --skip-errors)
  missing       messages the writer dropped (gaps in the record numbers)

example:
  hftcore feed capture-info feed.cap
  hftcore feed capture-info feed.cap --json
"""

_TO_NDJSON = """\
Write the text messages of a capture (WebSocket text frames: JSON from an exchange) as
newline-delimited JSON, one message per line, in capture order: the format
`hftcore binance stats` and hftcore.binance.read_file read. Binary, stream and datagram
records are skipped and counted. An OUT ending in .gz is gzip-compressed.

example:
  hftcore feed to-ndjson feed.cap feed.ndjson
  hftcore binance stats feed.ndjson
"""

_KIND_NAMES = {1: "text", 2: "binary", 16: "stream", 17: "datagram"}


def _utc(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.timezone.utc).isoformat(timespec="microseconds")


def _info(args) -> int:
    from hftcore.feed.capture import capture_info

    info = capture_info(args.file, errors="skip" if args.skip_errors else "raise")
    if args.json:
        out = info._asdict()
        out["kinds"] = {_KIND_NAMES.get(k, str(k)): n for k, n in info.kinds.items()}
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    kinds = ", ".join(f"{_KIND_NAMES.get(k, k)} {n:,}" for k, n in sorted(info.kinds.items()))
    lines = [
        ("file", f"{info.path} ({info.file_bytes:,} bytes, format version {info.version})"),
        ("created", _utc(info.created_ns)),
        ("metadata", json.dumps(info.metadata, sort_keys=True)),
        ("records", f"{info.records:,} ({info.payload_bytes:,} payload bytes)"),
        ("kinds", kinds or "-"),
    ]
    if info.records:
        span = (info.last_realtime_ns - info.first_realtime_ns) / 1e9
        lines += [
            ("first", _utc(info.first_realtime_ns)),
            ("last", _utc(info.last_realtime_ns)),
            ("span", f"{span:.6f} s"),
        ]
    lines += [
        ("torn tail", f"{info.torn_records} record ({info.torn_bytes:,} bytes) skipped"
         if info.torn_records else "none"),
        ("corrupt", f"{info.corrupt_records} records ({info.skipped_bytes:,} bytes) skipped"
         if info.corrupt_records else "none"),
        ("missing", f"{info.missing_records:,} messages dropped by the writer"
         if info.missing_records else "none"),
    ]  # fmt: skip
    for key, value in lines:
        print(f"{key:<10} {value}")
    return 0


def _to_ndjson(args) -> int:
    from hftcore.feed.capture import capture_to_ndjson

    res = capture_to_ndjson(args.file, args.out, errors="skip" if args.skip_errors else "raise")
    info = res["info"]
    print(f"{res['lines']:,} text messages written to {args.out}; "
          f"{res['skipped']:,} records of other kinds skipped", file=sys.stderr)  # fmt: skip
    if info.torn_records:
        print(f"torn tail skipped: {info.torn_bytes:,} bytes", file=sys.stderr)
    if info.corrupt_records:
        print(f"corrupt records skipped: {info.corrupt_records}", file=sys.stderr)
    return 0


def add_capture_commands(subparsers) -> None:
    """Add ``capture-info`` and ``to-ndjson`` to the ``feed`` group's subparsers."""
    p = subparsers.add_parser(
        "capture-info", help="check a capture file and summarize it", description=_INFO,
        formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("file", metavar="FILE", help="capture file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--skip-errors", action="store_true",
                   help="skip corrupt records inside the file (counted) instead of failing")  # fmt: skip
    p.set_defaults(func=_info)

    p = subparsers.add_parser(
        "to-ndjson", help="write a capture's text messages as NDJSON", description=_TO_NDJSON,
        formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("file", metavar="FILE", help="capture file")
    p.add_argument("out", metavar="OUT", help="NDJSON file to write (.gz to compress)")
    p.add_argument("--skip-errors", action="store_true",
                   help="skip corrupt records inside the file (counted) instead of failing")  # fmt: skip
    p.set_defaults(func=_to_ndjson)


def register(cli):
    add_capture_commands(
        cli.group(
            "feed",
            help="the live feed runtime: captures",
            description="The exchange-free live feed runtime.\n"
            "`hftcore feed SUBCOMMAND --help` explains each, with examples.",
        )
    )
