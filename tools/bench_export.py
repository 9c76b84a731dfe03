"""Benchmarks of the Parquet export (issue 11); figures, not tests.

    python tools/bench_export.py peer DAY [--runs 3]
        hftcore itch to-parquet (--types ECP --bbo: trades and top of book, the tables
        itch-book writes by default; and all 23 types) against itch-book's
        `itch2parquet convert DAY OUT --no-md5` (bbo, trades), each a fresh process,
        same file, medians of --runs.
    python tools/bench_export.py workers DAY... [--runs 1]
        hftcore.dask.convert_days on a LocalCluster of 1 worker, then of 2 (the cluster
        is started before the clock starts): wall time, speed-up, per-day task seconds
        and MB/s of uncompressed ITCH per worker core.

The peer's command is taken from $ITCH2PARQUET (default /work/venvs/peers/bin/itch2parquet).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def _run(cmd, env=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - t0


def peer(args):
    from hftcore import itch

    size = sum(t.consumed for t in itch.iter_file(args.day, types="", progress=False))
    peer_cmd = os.environ.get("ITCH2PARQUET", "/work/venvs/peers/bin/itch2parquet")
    tmp = tempfile.mkdtemp(prefix="hftcore-bench-export-")
    env = dict(os.environ, HFTCORE_NO_PROGRESS="1")
    cases = {
        "hftcore --types ECP --bbo": [
            sys.executable,
            "-m",
            "hftcore",
            "itch",
            "to-parquet",
            args.day,
            f"{tmp}/h1",
            "--types",
            "ECP",
            "--bbo",
            "--force",
        ],  # fmt: skip
        "hftcore all 23 types": [
            sys.executable,
            "-m",
            "hftcore",
            "itch",
            "to-parquet",
            args.day,
            f"{tmp}/h2",
            "--force",
        ],  # fmt: skip
        "hftcore all 23 types --bbo": [
            sys.executable,
            "-m",
            "hftcore",
            "itch",
            "to-parquet",
            args.day,
            f"{tmp}/h3",
            "--bbo",
            "--force",
        ],  # fmt: skip
        "itch-book convert (bbo,trades)": [
            peer_cmd,
            "convert",
            args.day,
            f"{tmp}/p",
            "--no-md5",
        ],  # fmt: skip
    }
    if args.only:
        cases = {k: v for k, v in cases.items() if any(k.startswith(o) for o in args.only)}
    try:
        # Interleaved (case A, B, C, D, then again): the load of this shared machine
        # drifts, and a drift then hits every case alike.
        times = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                times[name].append(_run(cmd, env))
        for name, runs in times.items():
            med = statistics.median(runs)
            print(f"{name:32s} runs {[round(r, 2) for r in runs]} s  median {med:6.2f} s  "
                  f"{size / med / 1e6:6.1f} MB/s", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def workers(args):
    import distributed

    from hftcore import itch
    from hftcore.export import dask as xdask

    sizes = {
        p: sum(t.consumed for t in itch.iter_file(p, types="", progress=False)) for p in args.days
    }
    total = sum(sizes.values())
    print(f"{len(args.days)} days, {total / 1e6:,.1f} MB of uncompressed ITCH", flush=True)
    walls = {}
    for n in (1, 2):
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                           dashboard_address=None)  # fmt: skip
        client = distributed.Client(cluster)
        client.run(lambda: __import__("hftcore.export.dask"))  # imports outside the clock
        runs = []
        try:
            for _ in range(args.runs):
                out = tempfile.mkdtemp(prefix="hftcore-bench-dask-")
                try:
                    t0 = time.perf_counter()
                    s = xdask.convert_days(args.days, out, client=client, types=args.types)
                    runs.append(time.perf_counter() - t0)
                finally:
                    shutil.rmtree(out, ignore_errors=True)
                assert not s["errors"], s["errors"]
                for p, r in sorted(s["results"].items()):
                    print(f"  {n} worker(s): {os.path.basename(p)} {r['task_seconds']:.2f} s "
                          f"{sizes[p] / r['task_seconds'] / 1e6:6.1f} MB/s, cpu {r['cpu_seconds']:.2f} s "
                          f"(worker pid {r['worker_pid']})", flush=True)  # fmt: skip
        finally:
            client.close()
            cluster.close()
        walls[n] = statistics.median(runs)
        print(f"{n} worker(s): wall {[round(r, 2) for r in runs]} s, median {walls[n]:.2f} s, "
              f"{total / walls[n] / 1e6:.1f} MB/s total, {total / walls[n] / n / 1e6:.1f} MB/s "
              f"per worker core", flush=True)  # fmt: skip
    print(f"speed-up 2 workers vs 1: {walls[1] / walls[2]:.2f}x", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("peer")
    p.add_argument("day")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--only", action="append", help="cases whose name starts with this")
    p.set_defaults(func=peer)
    p = sub.add_parser("workers")
    p.add_argument("days", nargs="+")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--types", default=None, help="ITCH types to write (default: all)")
    p.set_defaults(func=workers)
    args = ap.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
