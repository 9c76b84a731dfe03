"""Reading a ``.gz`` ITCH day: main's reader (``gzip.GzipFile`` in the decoding thread)
against the threaded reader with zlib and with igzip, in one run on the same file.

    python tools/bench_gz.py DAY.gz [--runs 3] [--modes stdlib,zlib,isal] [--chunk-mib 64]

Prints, per mode and per reader (``read_file`` / ``iter_file``), every run and the median
in MB/s of uncompressed ITCH (10^6 bytes/s), warm: one untimed pass first fills the page
cache and the allocator. Also times the decompressor alone (no decode) for each backend.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import statistics
import time

from hftcore import itch
from hftcore._core import files
from hftcore.itch import files as itch_files


@contextlib.contextmanager
def _stdlib_open_stream(path, backend=None):
    # main's open_stream before issue 11, verbatim in behaviour: GzipFile in this thread.
    compressed = files.is_gzip(path)
    with open(path, "rb") as raw:
        reader = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            yield reader, raw, compressed
        finally:
            if compressed:
                reader.close()


@contextlib.contextmanager
def _mode(mode, monkey_env):
    import os

    if mode == "stdlib":
        saved = itch_files.open_stream
        itch_files.open_stream = _stdlib_open_stream
        try:
            yield
        finally:
            itch_files.open_stream = saved
    else:
        old = os.environ.get("HFTCORE_GZIP")
        os.environ["HFTCORE_GZIP"] = mode
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("HFTCORE_GZIP", None)
            else:
                os.environ["HFTCORE_GZIP"] = old


def _consume_iter(path, chunk):
    n = 0
    for t in itch.iter_file(path, chunk_bytes=chunk, progress=False):
        n = t.consumed
    return n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("day")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="stdlib,zlib,isal")
    ap.add_argument("--chunk-mib", type=int, default=64)
    ap.add_argument("--plain", help="the same day uncompressed: iter_file on it is the decode "
                    "alone, the floor a .gz read approaches")  # fmt: skip
    args = ap.parse_args(argv)
    chunk = args.chunk_mib << 20
    modes = args.modes.split(",")
    # Uncompressed size, and the decompressor alone per backend.
    size = 0
    for backend in [m for m in modes if m != "stdlib"] + ["stdlib"]:
        runs = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            if backend == "stdlib":
                with gzip.open(args.day, "rb") as f:
                    buf = bytearray(chunk)
                    n = 0
                    while got := f.readinto(buf):
                        n += got
            else:
                with files.open_stream(args.day, backend) as (reader, _, _):
                    buf = bytearray(chunk)
                    n = 0
                    while got := reader.readinto(buf):
                        n += got
            runs.append(time.perf_counter() - t0)
            size = n
        med = statistics.median(runs)
        print(f"decompress only  {backend:7s} runs {[round(r, 2) for r in runs]} s  "
              f"median {size / med / 1e6:7.1f} MB/s", flush=True)  # fmt: skip
    print(f"uncompressed size {size:,} bytes", flush=True)
    if args.plain:
        runs = []
        _consume_iter(args.plain, chunk)
        for _ in range(args.runs):
            t0 = time.perf_counter()
            _consume_iter(args.plain, chunk)
            runs.append(time.perf_counter() - t0)
        med = statistics.median(runs)
        print(f"iter_file  plain   runs {[round(r, 2) for r in runs]} s  median {med:6.2f} s  "
              f"{size / med / 1e6:7.1f} MB/s (decode alone)", flush=True)  # fmt: skip
    for mode in modes:
        with _mode(mode, None):
            itch.read_file(args.day, progress=False)  # warm-up, untimed
            for name, fn in (
                ("read_file", lambda: itch.read_file(args.day, progress=False)),
                ("iter_file", lambda: _consume_iter(args.day, chunk)),
            ):
                runs = []
                for _ in range(args.runs):
                    t0 = time.perf_counter()
                    fn()
                    runs.append(time.perf_counter() - t0)
                med = statistics.median(runs)
                print(f"{name}  {mode:7s} runs {[round(r, 2) for r in runs]} s  "
                      f"median {med:6.2f} s  {size / med / 1e6:7.1f} MB/s", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
