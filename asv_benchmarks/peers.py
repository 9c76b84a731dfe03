#!/usr/bin/env python
"""hftcore side by side with peer libraries: same machine, same input, one run.

Sections
--------
itch-decode  decode a day-shaped ITCH 5.0 stream (``hftcore.sim.itch.generate``, 2M
             messages) held in memory: hftcore ``itch.decode`` (every field of every type)
             vs itch-book, itchcpp, itchfeed, meatpy. Messages/second and ratios.
itch-book    build every symbol's book: from that day, from a dense day (the flow of
             ``peers/itch_day.py`` leaves hundreds of thousands of orders resting) and from
             a 50-symbol day: hftcore ``itch.OrderBook.apply`` vs itch-book, itchcpp
             ``BookManager``, meatpy. Each library runs in its own subprocess, so its peak
             RSS growth (VmHWM, which sees C allocations) is measured alone.
binance      one corpus (``hftcore.sim.binance``: 50% depth diffs of 1-20 levels a side, 30%
             trades, 20% bookTicker): json, orjson, msgspec (typed Structs, strict=False)
             decoding with exact int64 8-decimal conversion; msgspec + bmoscon order-book
             applying the diffs; hftbacktest's ROIVector depth applying the same levels;
             hftcore ``decode_many``, ``decode_many_sbe`` (the same events as SBE) and
             decode+apply (``binance.apply_depth_json(book, msg)`` / ``apply_depth_sbe``). ns per
             message and per price level.
latency      record 1M skewed latencies into a histogram: hftcore ``Histogram.record_many``
             (the nogil inline ``record``), ``Histogram.record`` from Python, the
             ``hdrhistogram`` package's ``record_value``; ns per value.

Method: inputs generated once (cached under the temp dir) and held in memory before
timing; each measurement warmed up once, then timed ``--runs`` times (default 5) with the GC
disabled; median and min reported. Slow peers run on a prefix of the same input, and a
measurement whose single run is very slow gets fewer runs (both said in the table). Parts
of hftcore missing from the build are reported as "not available in this build".

How to run
----------
Peers live in a benchmark-only venv, never as hftcore dependencies::

    python -m venv /work/venvs/peers
    /work/venvs/peers/bin/pip install -r asv_benchmarks/requirements-peers.txt
    python setup.py build_ext --inplace -j 2          # hftcore, in place, in this checkout
    PYTHONPATH=$PWD /work/venvs/peers/bin/python asv_benchmarks/peers.py

(or ``pip install --no-build-isolation .`` into the venv after installing Cython and
setuptools there, then drop PYTHONPATH). Flags: ``--quick`` (small sizes, CI smoke),
``--only itch-decode|itch-book|binance``, ``--messages N``, ``--runs N``, ``--out FILE``
(Markdown; default docs/benchmarks/peers.md, ``--out -`` for none).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from peers import itch_peers, timing  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "hftcore-peers"
SECTIONS = ("itch-decode", "itch-book", "binance", "latency")
PEER_DISTS = {
    "hftcore": "hftcore",
    "itch-book": "itch-book",
    "itchcpp": "itchcpp",
    "itchfeed": "itchfeed",
    "meatpy": "meatpy",
    "order-book": "order-book",
    "hftbacktest": "hftbacktest",
    "msgspec": "msgspec",
    "orjson": "orjson",
    "numpy": "numpy",
    "hdrhistogram": "hdrhistogram",
}
NOT_AVAILABLE = "not available in this build"


def version_of(dist: str) -> str:
    if dist == "python":
        return f"stdlib {platform.python_version()}"
    if dist == "hftcore":
        try:
            import hftcore

            return getattr(hftcore, "__version__", "?")
        except ImportError:
            return "-"
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# -- inputs ---------------------------------------------------------------------------


def _cache_key(*params, sample: bytes) -> str:
    """Name of a cached input: its parameters and the first messages the generator
    makes now, so a changed generator never reuses a stale cached corpus."""
    h = hashlib.sha1(repr(params).encode())
    h.update(sample)
    return h.hexdigest()[:12]


def itch_day(messages: int, symbols: int, seed: int = 1, dense: bool = False) -> tuple[Path, str]:
    """Path of a cached generated day and which generator made it.

    ``dense``: the day from asv_benchmarks/peers/itch_day.py, whose flow leaves far more
    orders resting (about 13% of messages) than hftcore.sim.itch's (about 2%).
    """
    try:
        if dense:
            raise ImportError
        from hftcore.sim import itch as sim_itch

        gen, source = sim_itch.generate, "hftcore.sim.itch.generate"
    except ImportError:
        from peers import itch_day as fallback

        gen, source = fallback.generate, "asv_benchmarks/peers/itch_day.py"
    sample = gen(messages=500, symbols=symbols, seed=seed)
    key = _cache_key(source, messages, symbols, seed, sample=bytes(sample))
    path = CACHE / f"itch-{messages}-{symbols}-{key}.itch"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"  generating {messages:,} messages over {symbols:,} symbols ({source}) ...")
        data = gen(messages=messages, symbols=symbols, seed=seed)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path, source


# -- results --------------------------------------------------------------------------


class Row(dict):
    """One measurement: section, case, library, api, n (units timed), median_s, min_s..."""


def fmt_rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:,.2f}" if seconds else "-"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}x" if x >= 10 else f"{x:,.2f}x"


# -- ITCH decode ----------------------------------------------------------------------


def run_itch_decode(args) -> list[Row]:
    path, source = itch_day(args.messages, args.symbols)
    buf = path.read_bytes()
    total, counts = timing.frame_offsets(buf)
    n_all = sum(counts.values())
    print(f"\n[itch-decode] {n_all:,} messages, {len(buf) / 1e6:,.1f} MB ({source})")
    prefixes = {
        "itchcpp": args.prefix_fast,
        "itchfeed": args.prefix_slow,
        "meatpy": args.prefix_slow,
    }
    apis = {
        "hftcore": "itch.decode(buf): every field, every type -> numpy tables",
        "itch-book": 'Session(tables=["messages"]).feed + take_messages (order-flow rows only)',
        "itchcpp": "MessageParser().parse_stream(buf): one object per message",
        "itchfeed": "pure Python (ITCH_NO_CPP=1) MessageParser().parse_stream(buf)",
        "meatpy": "ITCH50MessageReader over an in-memory file: one object per message",
    }
    rows = []
    for lib, make in itch_peers.DECODERS.items():
        limit = prefixes.get(lib)
        n = min(limit, n_all) if limit else n_all
        data = buf[: timing.frame_offsets(buf, n)[0]] if n < n_all else buf
        note = "" if n == n_all else f"first {n:,} messages"
        if lib == "meatpy" and counts.get("O"):
            note += "; without DLCR (O): meatpy reads it as 51 bytes, the spec says 48"
        row = Row(section="itch-decode", case=f"{n_all:,}-message day ({source})",
                  library=lib, version=version_of(PEER_DISTS[lib]), api=apis[lib], n=n,
                  note=note.lstrip("; "))  # fmt: skip
        try:
            fn = make(data)
            row["median_s"], row["min_s"], row["runs"] = timing.measure(fn, args.runs)
        except (ImportError, AttributeError) as e:
            row["note"] = f"{NOT_AVAILABLE}: {e}" if lib == "hftcore" else f"cannot run: {e}"
        except Exception as e:  # noqa: BLE001 - a peer failing is a result, not a crash
            row["note"] = f"failed: {type(e).__name__}: {e}"[:160]
        rows.append(row)
        print_row(row)
    ratio_vs_hftcore(rows)
    return rows


# -- ITCH books (one subprocess per library) ------------------------------------------


def book_worker(lib: str, path: str, n: int, max_orders: int, runs: int) -> dict:
    """Runs in a fresh interpreter: time one library's book build, report peak RSS growth."""
    buf = Path(path).read_bytes()
    end, _ = timing.frame_offsets(buf, n)
    if end < len(buf):
        buf = buf[:end]
    out = {}
    try:
        fn = itch_peers.BOOKS[lib](buf, max_orders)
        # Peak RSS from here on is the book build's own: reset VmHWM to the current RSS
        # (the input is already loaded); without that, fall back to the larger of the two.
        timing.reset_peak_rss()
        base = max(timing.proc_status_kb("VmHWM"), timing.proc_status_kb("VmRSS"))
        t0 = time.perf_counter()
        result = fn()  # the first build (also the warm-up): its peak is one build's cost
        first_s = time.perf_counter() - t0
        out["rss_delta_mb"] = (timing.proc_status_kb("VmHWM") - base) / 1024
        del result
        out["median_s"], out["min_s"], out["runs"] = timing.measure(
            fn, runs, warmup=0, first_s=first_s
        )
    except (ImportError, AttributeError) as e:
        out["error"] = f"{NOT_AVAILABLE}: {e}" if lib == "hftcore" else f"cannot run: {e}"
    except Exception as e:  # noqa: BLE001
        out["error"] = f"failed: {type(e).__name__}: {e}"[:160]
    return out


def run_itch_book(args) -> list[Row]:
    rows = []
    days = [
        ("day", args.messages, args.symbols, False),
        ("dense day", args.messages, args.symbols, True),
        ("50-symbol", args.messages_50, 50, False),
    ]
    apis = {
        "hftcore": "itch.OrderBook(max_orders=...).apply(buf)",
        "hftcore, default size": "itch.OrderBook().apply(buf) (default capacities)",
        "itch-book": "Session(tables=[], depth=0).feed(buf): all books",
        "itchcpp": "book.BookManager().process_stream(buf): all books",
        "meatpy": "one ITCH50MarketProcessor per stock, routed by locate",
    }
    for label, messages, symbols, dense in days:
        path, source = itch_day(messages, symbols, dense=dense)
        buf = path.read_bytes()
        _, counts = timing.frame_offsets(buf)
        n_all = sum(counts.values())
        peak, resting = cached_live_orders(path, buf)
        max_orders = peak + peak // 4 + 1024  # hftcore's live-order capacity: peak + 25%
        case = (f"{label}: {n_all:,} msgs, {symbols:,} symbols, {resting:,} resting at end "
                f"(peak {peak:,}; {source})")  # fmt: skip
        print(f"\n[itch-book] {case}")
        del buf
        book_rows = []
        for lib in itch_peers.BOOKS:
            n = min(args.prefix_book, n_all) if lib == "meatpy" else n_all
            cmd = [sys.executable, str(Path(__file__).resolve()), "--_book-worker", lib,
                   str(path), str(n), str(max_orders), str(args.runs)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            try:
                res = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                res = {"error": f"worker failed: {proc.stderr.strip()[-160:]}"}
            note = "" if n == n_all else f"first {n:,} messages"
            if lib == "meatpy" and counts.get("O"):
                note += "; without DLCR (O): meatpy reads it as 51 bytes, the spec says 48"
            row = Row(section="itch-book", case=case, library=lib,
                      version=version_of(PEER_DISTS[lib.split(",")[0]]), api=apis[lib], n=n,
                      note=note.lstrip("; "))  # fmt: skip
            if "error" in res:
                row["note"] = res["error"]
            else:
                row.update(median_s=res["median_s"], min_s=res["min_s"], runs=res["runs"])
                row["rss_mb"] = res["rss_delta_mb"]
                if n == n_all and resting >= 10_000 and res["rss_delta_mb"] >= 2:
                    row["bytes_per_order"] = res["rss_delta_mb"] * 2**20 / resting
            if lib == "hftcore":
                row["api"] += f" (max_orders={max_orders:,}: peak live orders + 25%)"
            book_rows.append(row)
            print_row(row)
        ratio_vs_hftcore(book_rows, fastest=True)
        sized, default = book_rows[0], book_rows[1]
        if "median_s" in sized and "median_s" in default:
            slow = sized["median_s"] / default["median_s"]
            if slow > 2:
                sized["note"] = (f"{slow:,.0f}x slower than with default capacities: the "
                                 f"day's order refs span several times its order_ref table "
                                 f"(sized from max_orders)")  # fmt: skip
        rows += book_rows
    return rows


def cached_live_orders(path: Path, buf: bytes) -> tuple[int, int]:
    """(peak, final) live orders of a cached day, computed once by a reference walk."""
    side = path.with_suffix(".orders.json")
    if side.exists():
        peak, final = json.loads(side.read_text())
    else:
        peak, final = itch_peers.live_orders(buf)
        side.write_text(json.dumps([peak, final]))
    return peak, final


# -- Binance --------------------------------------------------------------------------


def binance_corpus(messages: int, seed: int = 1) -> tuple[list[bytes], list[bytes] | None, str]:
    """(JSON messages, the same events as SBE messages or None, source); JSON is cached."""
    try:
        from hftcore.sim import binance as sim_binance

        gen, source = sim_binance.generate_messages, "hftcore.sim.binance"
    except (ImportError, AttributeError):
        from peers import binance_corpus as fallback

        gen, source, sim_binance = fallback.generate, "asv_benchmarks/peers/binance_corpus.py", None
    sample = b"".join(bytes(c) for c in gen(messages=500, seed=seed))
    key = _cache_key(source, messages, seed, sample=sample)
    path = CACHE / f"binance-{messages}-{key}.ndjson"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        corpus = gen(messages=messages, seed=seed)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(b"".join(bytes(c).rstrip(b"\n") + b"\n" for c in corpus))
        tmp.replace(path)
    sbe = None
    if sim_binance is not None and hasattr(sim_binance, "generate_sbe_messages"):
        sbe = sim_binance.generate_sbe_messages(messages=messages, seed=seed)
    return path.read_bytes().splitlines(), sbe, source


def by_symbol(lines: list, symbols: list[str]) -> list[list]:
    """Group messages by symbol, keeping stream order (one book per symbol)."""
    groups: dict[str, list] = {}
    for line, sym in zip(lines, symbols, strict=True):
        groups.setdefault(sym, []).append(line)
    return list(groups.values())


def run_binance(args) -> list[Row]:
    from peers import binance_peers as bp

    corpus, sbe, source = binance_corpus(args.binance_messages)
    is_depth = [c.startswith(b'{"e":"depthUpdate"') for c in corpus]
    depth = [c for c, d in zip(corpus, is_depth, strict=True) if d]
    other = [c for c, d in zip(corpus, is_depth, strict=True) if not d]
    parsed = [json.loads(c) for c in depth]
    levels = sum(len(m["b"]) + len(m["a"]) for m in parsed)
    symbols = [m["s"] for m in parsed]
    depth_groups = by_symbol(depth, symbols)
    nd_buf = b"\n".join(corpus) + b"\n"
    other_buf = b"\n".join(other) + b"\n"
    if sbe is not None and len(sbe) != len(corpus):
        sbe = None
    sbe_depth = sbe_other = sbe_groups = None
    if sbe is not None:
        sbe_depth = [m for m, d in zip(sbe, is_depth, strict=True) if d]
        sbe_other = [m for m, d in zip(sbe, is_depth, strict=True) if not d]
        sbe_groups = by_symbol(sbe_depth, symbols)
    print(
        f"\n[binance] {len(corpus):,} messages ({len(depth):,} depth diffs with {levels:,} "
        f"levels, {len(other):,} trades/bookTicker; {len(depth_groups)} symbol(s)), "
        f"{len(nd_buf) / 1e6:.1f} MB JSON ({source})"
    )
    rows = []

    def add(case, lib, dist, api, make, n, n_levels=0):
        row = Row(section="binance", case=case, library=lib, version=version_of(dist),
                  api=api, n=n, levels=n_levels, note="")  # fmt: skip
        try:
            fn = make()
            row["median_s"], row["min_s"], row["runs"] = timing.measure(fn, args.runs)
        except (ImportError, AttributeError, NotImplementedError) as e:
            row["note"] = (f"{NOT_AVAILABLE}: {e}" if lib.startswith("hftcore")
                           else f"cannot run: {e}")  # fmt: skip
        except Exception as e:  # noqa: BLE001
            row["note"] = f"failed: {type(e).__name__}: {e}"[:160]
        rows.append(row)
        print_row(row)
        return row

    exact = "exact int conversion"
    typed = "typed Structs (strict=False), str -> " + exact
    floaty = "typed Structs (strict=False) str -> float, round(x*1e8)"
    for case, lines, buf, sbe_part, n_lv in (
        ("decode, mixed corpus", corpus, nd_buf, sbe, levels),
        ("decode, trades + bookTicker only", other, other_buf, sbe_other, 0),
    ):
        add(case, "hftcore", "hftcore", "binance.decode_many(ndjson buffer) -> tables",
            lambda buf=buf: hftcore_decode_many(buf), len(lines), n_lv)  # fmt: skip
        add(case, "hftcore SBE", "hftcore", "binance.decode_many_sbe(same events as SBE)",
            lambda p=sbe_part: hftcore_sbe_decode(p), len(lines), n_lv)  # fmt: skip
        add(case, "msgspec", "msgspec", typed,
            lambda lines=lines: bp.msgspec_decoder(lines), len(lines), n_lv)  # fmt: skip
        add(case, "msgspec float", "msgspec", floaty,
            lambda lines=lines: bp.msgspec_float_decoder(lines), len(lines), n_lv)  # fmt: skip
        add(case, "orjson", "orjson", "orjson.loads + " + exact,
            lambda lines=lines: bp.orjson_decoder(lines), len(lines), n_lv)  # fmt: skip
        add(case, "json", "python", "json.loads + " + exact,
            lambda lines=lines: bp.json_decoder(lines), len(lines), n_lv)  # fmt: skip
        ratio_vs_hftcore([r for r in rows if r["case"] == case])

    apply = "depth diffs: decode + apply to a book per symbol"
    add(apply, "hftcore", "hftcore", "apply_depth_json(book, msg) per diff",
        lambda: hftcore_apply(depth_groups, "apply_depth_json"), len(depth), levels)  # fmt: skip
    add(apply, "hftcore, batch", "hftcore",
        "binance.apply_depth_json_many(book, ndjson of the symbol's diffs)",
        lambda: hftcore_apply_many(depth_groups), len(depth), levels)  # fmt: skip
    add(apply, "hftcore SBE", "hftcore", "apply_depth_sbe(book, msg) per diff",
        lambda: hftcore_apply(sbe_groups, "apply_depth_sbe"), len(depth), levels)  # fmt: skip
    add(apply, "msgspec + order-book", "order-book",
        "msgspec Struct decode, exact int, OrderBook bids/asks set/del",
        lambda: bp.msgspec_orderbook_apply(depth_groups), len(depth), levels)  # fmt: skip
    add(apply, "hftbacktest", "hftbacktest",
        "ROIVectorMarketDepthBacktest.elapse over pre-built depth events (apply only)",
        lambda: hftbacktest_apply(depth_groups), len(depth), levels)  # fmt: skip
    ratio_vs_hftcore([r for r in rows if r["case"] == apply])
    return rows


def run_latency(args) -> list[Row]:
    import numpy as np
    from peers import latency_peers as lp

    n = args.latency_values
    values = lp.latency_values(n)
    print(f"\n[latency] {n:,} lognormal latencies (median {int(np.median(values)):,} ns)")
    rows = []
    case = "record values into a latency histogram"
    slow_n = min(n, 200_000)  # Python-level loops: a prefix
    for lib, dist, api, make, count in (
        ("hftcore", "hftcore", "Histogram.record_many(int64 array): nogil inline record",
         lp.hftcore_record_many, n),
        ("hftcore, Python", "hftcore", "Histogram.record(v) called from Python per value",
         lp.hftcore_record_python, slow_n),
        ("hdrhistogram", "hdrhistogram", "HdrHistogram(1, 1 h, 2).record_value(v) per value",
         lp.hdrh_record_value, slow_n),
        ("python loop", "python", "for v in list: f(v), f a no-op Python function (what "
         "any pure-Python recorder pays at least)", lp.python_loop_floor, slow_n),
    ):  # fmt: skip
        row = Row(section="latency", case=case, library=lib, version=version_of(dist),
                  api=api, n=count, levels=0, note="")  # fmt: skip
        try:
            fn = make(values[:count])
            row["median_s"], row["min_s"], row["runs"] = timing.measure(fn, args.runs)
        except ImportError as e:
            row["note"] = (f"{NOT_AVAILABLE}: {e}" if lib.startswith("hftcore")
                           else f"cannot run: {e}")  # fmt: skip
        rows.append(row)
        print_row(row)
    ratio_vs_hftcore(rows)
    return rows


def hftcore_decode_many(buf: bytes):
    from hftcore import binance

    binance.decode_many(buf)  # fail here (not while timing) if unavailable
    return lambda: binance.decode_many(buf)


def hftcore_apply(groups, function: str):
    if groups is None:
        raise NotImplementedError("no SBE corpus (hftcore.sim.binance.generate_sbe_messages)")
    from hftcore import binance
    from hftcore.book import L2Book

    apply = getattr(binance, function)  # apply_depth_json / apply_depth_sbe (book, msg)
    apply(L2Book(max_levels=5000), groups[0][0])

    def run():
        books = []
        for msgs in groups:
            book = L2Book(max_levels=5000)
            for msg in msgs:
                apply(book, msg)
            books.append(book)
        return books

    return run


def hftcore_apply_many(groups):
    from hftcore import binance
    from hftcore.book import L2Book

    apply_many = binance.apply_depth_json_many
    bufs = [b"\n".join(msgs) + b"\n" for msgs in groups]

    def run():
        books = []
        for buf in bufs:
            book = L2Book(max_levels=5000)
            apply_many(book, buf)
            books.append(book)
        return books

    return run


def hftcore_sbe_decode(msgs):
    if msgs is None:
        raise NotImplementedError("no SBE corpus (hftcore.sim.binance.generate_sbe_messages)")
    from hftcore import binance

    buf = b"".join(msgs)
    binance.decode_many_sbe(buf)
    return lambda: binance.decode_many_sbe(buf)


def hftbacktest_apply(groups: list[list[bytes]]):
    """Build hftbacktest's event arrays (one asset per symbol) before timing; time elapse."""
    import math

    import numpy as np
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_EVENT,
        EXCH_EVENT,
        LOCAL_EVENT,
        SELL_EVENT,
        BacktestAsset,
        ROIVectorMarketDepthBacktest,
    )
    from hftbacktest.binding import event_dtype
    from peers.binance_peers import to_e8

    setups = []
    for lines in groups:
        rows = []
        ticks = []
        for i, line in enumerate(lines):
            m = json.loads(line)
            ts = m["E"] * 1_000_000 + i  # ns, strictly increasing
            for flag, levels in ((BUY_EVENT, m["b"]), (SELL_EVENT, m["a"])):
                for p, q in levels:
                    ev = DEPTH_EVENT | EXCH_EVENT | LOCAL_EVENT | flag
                    rows.append((ev, ts, ts, float(p), float(q), 0, 0, 0.0))
                    ticks.append(to_e8(p))
        events = np.array(rows, dtype=event_dtype)
        uniq = sorted(set(ticks))
        tick = 0
        for a, b in zip(uniq, uniq[1:], strict=False):
            tick = math.gcd(tick, b - a)
        tick = (tick or 1_000_000) / 1e8
        span = int(events["exch_ts"][-1] - events["exch_ts"][0] + 1_000)
        setups.append((events, tick, uniq[0] / 1e8 - tick, uniq[-1] / 1e8 + tick, span))

    def build():
        out = []
        for events, tick, lo, hi, span in setups:
            asset = (BacktestAsset().data(events).linear_asset(1.0).constant_order_latency(0, 0)
                     .risk_adverse_queue_model().no_partial_fill_exchange()
                     .trading_value_fee_model(0.0, 0.0).tick_size(tick).lot_size(1e-8)
                     .roi_lb(lo).roi_ub(hi).last_trades_capacity(0))  # fmt: skip
            out.append((ROIVectorMarketDepthBacktest([asset]), span))
        return out

    # Construction (data load, ROI vector allocation) is setup; time only elapse().
    holder = [build()]

    def timed():
        for hbt, span in holder.pop():
            hbt.elapse(span)
        holder.append(build())

    return timed


# -- output ---------------------------------------------------------------------------


def ratio_vs_hftcore(rows: list[Row], fastest: bool = False) -> None:
    """``ratio``: the row's time per message over the reference hftcore row's (the first
    hftcore row, or with ``fastest`` the fastest one): >1 means hftcore is faster."""
    ours = [r for r in rows if r["library"].startswith("hftcore") and "median_s" in r]
    if not fastest:
        ours = [r for r in ours if r["library"] == "hftcore"]
    ref = min(ours, key=lambda r: r["median_s"] / r["n"], default=None)
    for r in rows:
        if ref is None or "median_s" not in r:
            r["ratio"] = None
            continue
        r["ratio"] = (r["median_s"] / r["n"]) / (ref["median_s"] / ref["n"])
        r["ref"] = ref is r


def print_row(r: Row) -> None:
    if "median_s" not in r:
        print(f"  {r['library']:<22} -- {r['note']}")
        return
    per = r["median_s"] / r["n"] * 1e9
    extra = f"  rss +{r['rss_mb']:.0f} MB" if "rss_mb" in r else ""
    lvl = f"  {r['median_s'] / r['levels'] * 1e9:,.1f} ns/level" if r.get("levels") else ""
    print(f"  {r['library']:<22} {fmt_rate(r['n'], r['median_s']):>9} M msg/s  "
          f"{per:>10,.1f} ns/msg{lvl}{extra}  {r['note']}")  # fmt: skip


def machine_info(args) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{d} {version_of(d)}" for d in PEER_DISTS.values())
    try:
        import hftcore

        where = Path(hftcore.__file__).resolve().parent
        rev = subprocess.run(["git", "-C", str(where), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
        versions += f" (hftcore from {where}" + (f", commit {rev})" if rev else ")")
    except (ImportError, OSError):
        pass
    return [
        f"- Date: {now}",
        f"- CPU: {cpu}; {os.cpu_count()} logical cores; load average at start: {load}",
        f"- Python {platform.python_version()} ({platform.machine()}, {platform.system()})",
        f"- Versions: {versions}",
        f"- Runs: {args.runs} timed after 1 warm-up, GC off, inputs in memory; median (min)",
        f"- Command: `{' '.join(['python', 'asv_benchmarks/peers.py', *sys.argv[1:]])}`",
    ]


NOTES = {
    "itch-decode": [
        "hftcore fills numpy tables with every field of every message type; itchcpp, itchfeed "
        "and meatpy build one Python object per message (consumed and dropped); itch-book has "
        "no plain decode: its `messages` table holds order-flow rows only (A/F/E/C/X/D/U/P), "
        "built while it also maintains books.",
    ],
    "itch-book": [
        "Each library runs in a fresh subprocess; 'peak RSS growth' is VmHWM after the first "
        "build minus RSS before it (input already loaded), so C/C++ allocations count. "
        "hftcore preallocates its order store for `max_orders`: one row sized as a user "
        "would (peak live orders + 25%), one with the default "
        "capacities (8M orders).",
        "meatpy keeps one `ITCH50MarketProcessor` per stock (its design); messages are routed "
        "by stock locate, and its execution-priority check is relaxed through its "
        "`skip_exception` hook because the synthetic day executes orders out of "
        "price-time priority.",
    ],
    "binance": [
        "Every decoder yields exact int64 prices/quantities with 8 implied decimals, except "
        "'msgspec float' (msgspec's fastest path: strict=False decodes the strings to float, "
        "then round(x*1e8), inexact in general). ns/level divides by all bid+ask levels of "
        "the depth diffs in the measured messages.",
        "hftbacktest takes float events, not JSON: its event array is built before timing, and "
        "only `ROIVectorMarketDepthBacktest.elapse` over all events (its Rust depth apply "
        "through the backtest engine) is timed.",
    ],
    "latency": [
        "ns/msg here is ns per recorded value. hftcore's row is the loop a Cython caller "
        "runs (`record` is `cpdef inline` in histogram.pxd, compiled into the caller); the "
        "Python rows pay a call per value from Python; 'python loop' calls a no-op Python "
        "function per value, the least a pure-Python recorder (hdrhistogram's "
        "`record_value`) pays. Wall-clock times: on a shared machine the median includes "
        "time other processes held the core (bench_latency.py also reports CPU time).",
        "hdrhistogram is configured for the same range (1 ns .. 1 h) at 2 significant "
        "digits (bucket width <= 1/128 of the value: hftcore's resolution).",
    ],
}


def markdown(rows: list[Row], args, info: list[str]) -> str:
    out = ["# hftcore vs peer libraries", "",
           "Generated by `asv_benchmarks/peers.py` (one run, same machine, same inputs).", "",
           *info, "",
           "Ratio = the row's time per message / the reference hftcore row's (marked `ref`):",
           "`>1` means hftcore is faster. The reference is the `hftcore` row of each table",
           "(JSON for Binance), and for ITCH books the fastest hftcore row.",
           "The machine was shared with other jobs during the run (2 cores): expect noise of",
           "tens of percent; ratios within one run are more reliable than absolute figures.",
           ""]  # fmt: skip
    for section in SECTIONS:
        sec = [r for r in rows if r["section"] == section]
        if not sec:
            continue
        out += [f"## {section}", "", *(f"- {n}" for n in NOTES[section]), ""]
        for case in dict.fromkeys(r["case"] for r in sec):
            out += [f"### {case}", ""]
            cr = [r for r in sec if r["case"] == case]
            if section in ("binance", "latency"):
                out += ["| library | version | ns/msg median (min) | ns/level | ratio | API | note |",
                        "|---|---|---|---|---|---|---|"]  # fmt: skip
            else:
                mem = " peak RSS growth |" if section == "itch-book" else ""
                out += [f"| library | version | M msg/s median (min) | ratio |{mem} API | note |",
                        "|---|---|---|---|" + ("---|" if mem else "") + "---|---|"]  # fmt: skip
            for r in cr:
                if "median_s" in r:
                    med, mn = r["median_s"], r["min_s"]
                    if section == "latency":
                        perf = f"{med / r['n'] * 1e9:,.2f} ({mn / r['n'] * 1e9:,.2f})"
                        lvl = "-"
                    elif section == "binance":
                        perf = f"{med / r['n'] * 1e9:,.0f} ({mn / r['n'] * 1e9:,.0f})"
                        lvl = f"{med / r['levels'] * 1e9:,.1f}" if r.get("levels") else "-"
                    else:
                        perf = f"{fmt_rate(r['n'], med)} ({fmt_rate(r['n'], mn)})"
                else:
                    perf, lvl = "-", "-"
                ratio = "ref" if r.get("ref") else fmt_ratio(r.get("ratio"))
                cells = [r["library"], r["version"], perf]
                if section in ("binance", "latency"):
                    cells.append(lvl)
                cells.append(ratio)
                if section == "itch-book":
                    mem = f"{r['rss_mb']:,.1f} MB" if "rss_mb" in r else "-"
                    if r.get("bytes_per_order"):
                        mem += f" ({r['bytes_per_order']:,.0f} B/resting order)"
                    cells.append(mem)
                note = r.get("note", "")
                if r.get("runs") and r["runs"] < args.runs:
                    note = f"{note}; only {r['runs']} runs (slow)".lstrip("; ")
                cells += [r["api"], note]
                out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
            out.append("")
    return "\n".join(out)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="hftcore vs peer libraries (itchcpp, itchfeed, meatpy, itch-book, json, "
        "orjson, msgspec, order-book, hftbacktest) on the same inputs, in one run.",
        epilog="Run with the peers venv's python and hftcore importable (PYTHONPATH or "
        "installed). Inputs are generated once and cached under " + str(CACHE) + ".",
    )
    p.add_argument("--quick", action="store_true", help="small sizes (CI smoke test)")
    p.add_argument("--only", choices=SECTIONS, action="append", help="run only this section")
    p.add_argument("--messages", type=int, help="ITCH day size (default 2,000,000)")
    p.add_argument("--symbols", type=int, help="ITCH day symbols (default 5,000)")
    p.add_argument("--binance-messages", type=int, help="Binance corpus size (default 30,000)")
    p.add_argument("--latency-values", type=int,
                   help="values recorded in the latency section (default 1,000,000)")  # fmt: skip
    p.add_argument("--runs", type=int, default=5, help="timed runs per measurement (default 5)")
    p.add_argument("--out", default=str(HERE.parent / "docs" / "benchmarks" / "peers.md"),
                   help="Markdown output file; '-' for none")  # fmt: skip
    p.add_argument("--_book-worker", nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    q = a.quick
    a.messages = a.messages or (200_000 if q else 2_000_000)
    a.symbols = a.symbols or (500 if q else 5_000)
    a.messages_50 = min(a.messages, 100_000 if q else 1_000_000)
    a.binance_messages = a.binance_messages or (2_000 if q else 30_000)
    a.latency_values = a.latency_values or (100_000 if q else 1_000_000)
    a.prefix_fast = 100_000 if q else None  # itchcpp: whole day in a full run
    a.prefix_slow = 20_000 if q else 100_000  # pure-Python decoders: a prefix of the day
    a.prefix_book = 20_000 if q else 50_000  # meatpy's books: 10-100 us per message
    if q:
        a.runs = min(a.runs, 5)
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._book_worker:
        lib, path, n, max_orders, runs = args._book_worker
        print(json.dumps(book_worker(lib, path, int(n), int(max_orders), int(runs))))
        return 0
    info = machine_info(args)
    print("\n".join(info))
    rows: list[Row] = []
    only = args.only or SECTIONS
    if "itch-decode" in only:
        rows += run_itch_decode(args)
    if "itch-book" in only:
        rows += run_itch_book(args)
    if "binance" in only:
        rows += run_binance(args)
    if "latency" in only:
        rows += run_latency(args)
    md = markdown(rows, args, info)
    print("\n" + md)
    if args.out != "-":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md + "\n")
        print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
