"""Many days on a Dask cluster (optional extra ``[dask]``; also importable as
``hftcore.dask``).

- :func:`convert_days`: :func:`~hftcore.export.itch_day_to_parquet` (or
  :func:`~hftcore.export.binance_to_parquet`) of many files, one task per file, on a
  ``distributed.LocalCluster`` started here (``workers=N``) or on an existing cluster
  (``scheduler="tcp://host:8786"``). Days are independent: a day whose worker dies is
  run again on another worker (its half-written files are hidden temporaries, replaced
  on the rerun), a corrupt day fails alone while the others complete.
- :func:`read_itch` / :func:`read_binance`: lazy ``dask.dataframe`` of one ITCH message
  type or one Binance kind; the decode runs on the workers.
- :func:`read_bbo`: per-day order book work, one task per day (each day's book starts
  empty): every top-of-book change as a ``dask.dataframe``.
"""

from __future__ import annotations

import os
import time

try:
    import dask
    import dask.dataframe as dd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('hftcore.dask needs dask: pip install "hftcore[dask,parquet]"') from exc

import numpy as np
import pandas as pd

from hftcore.export import arrow, parquet

__all__ = [
    "read_itch",
    "read_binance",
    "read_bbo",
    "itch_partitions",
    "convert_days",
    "start_client",
]

#: Decompressed bytes per partition of a plain ITCH file in :func:`read_itch`.
DEFAULT_PARTITION_BYTES = 256 << 20


# ---------------------------------------------------------------- reading


def itch_partitions(path, partition_bytes=DEFAULT_PARTITION_BYTES) -> list[tuple[int, int, int]]:
    """Message-aligned ``(start, stop, seq_start)`` byte ranges of a plain ITCH file.

    The framing is walked (no table is built) to find where each range's last whole
    message ends. A ``.gz`` file cannot be split without decompressing it: it is one
    range, ``(0, -1, 0)``.
    """
    import mmap

    from hftcore._core.files import is_gzip
    from hftcore.itch.decoder import _decode

    path = os.fspath(path)
    size = os.path.getsize(path)
    if is_gzip(path) or size == 0:
        return [(0, -1, 0)]
    partition_bytes = max(int(partition_bytes), 1 << 16)
    out = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        start, seq = 0, 0
        while start < size:
            stop = min(start + partition_bytes, size)
            t = _decode(mm[start:stop], "", seq, path, start)
            if t.consumed == 0 and not t.end_of_session:
                stop = size  # one message larger than a partition, or a truncated tail
                t = _decode(mm[start:stop], "", seq, path, start)
            end = start + t.consumed
            if t.consumed == 0 or t.end_of_session or end >= size:
                out.append((start, size, seq))
                break
            out.append((start, end, seq))
            start, seq = end, t.next_seq
    return out


def _itch_part(spec_, type_, keep, date, label):
    """One partition: the rows of ``type_`` in a byte range of a day (a dask task)."""
    path, start, stop, seq = spec_
    from hftcore import itch
    from hftcore.itch.decoder import _decode

    if stop < 0:
        rows = itch.read_file(path, types=type_, progress=False)[type_]
    else:
        with open(path, "rb") as f:
            f.seek(start)
            buf = f.read(stop - start)
        t = _decode(buf, type_, seq, os.fspath(path), start)
        rows = t[type_]
    table = arrow.itch_table(type_, rows, date)
    df = table.to_pandas()
    df["day"] = pd.Categorical([label] * len(df))
    return df[keep] if keep is not None else df


def read_itch(paths, type="P", columns=None, *, date=None,
              partition_bytes=DEFAULT_PARTITION_BYTES):  # fmt: skip
    """One ITCH message type of many day files as a lazy ``dask.dataframe``.

    Parameters
    ----------
    paths : str, os.PathLike or list of them
        Day files (plain or ``.gz``).
    type : str
        The message type character, e.g. ``"P"`` (non-cross trades) or ``"A"``.
    columns : list of str, optional
        Keep these columns (the columns of :func:`hftcore.export.itch_schema`, plus
        ``day``).
    date : str or datetime.date, optional
        The date of a single day whose name carries none (adds the ``time`` column).
    partition_bytes : int
        Plain files are split into message-aligned partitions of about this many bytes
        (the split points are found here, by walking the framing); a ``.gz`` day is one
        partition (a gzip stream cannot be entered in the middle).

    Returns
    -------
    dask.dataframe.DataFrame
        Columns as in the Parquet export (dictionary strings become categoricals), plus
        ``day``; partitions in file order, then stream order.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    if date is not None and len(paths) != 1:
        raise ValueError("date= names the day of a single file")
    parts, dates, labels = [], [], []
    for p in paths:
        label, day = parquet.day_label(p, date)
        for start, stop, seq in itch_partitions(p, partition_bytes):
            parts.append((p, start, stop, seq))
            dates.append(day)
            labels.append(label)
    dated = any(d is not None for d in dates)
    if dated and not all(d is not None for d in dates):
        raise ValueError("some days have a date and some do not: rename them or convert apart")
    meta = arrow.itch_table(type, np.empty(0, dtype=_itch_dtype(type)), dates[0] if dated else None)
    meta = meta.to_pandas()
    meta["day"] = pd.Categorical([])
    if columns is not None:
        meta = meta[columns]
    return dd.from_map(
        _itch_part, parts, [type] * len(parts), [columns] * len(parts), dates, labels,
        meta=meta, label=f"read-itch-{type}", enforce_metadata=False,
    )  # fmt: skip


def _itch_dtype(type_):
    from hftcore.itch import dtype

    return dtype(type_)


def _binance_part(path, kind, keep, time_unit):
    from hftcore.binance import files as bfiles

    rows = bfiles.read_file(path, time_unit=time_unit, progress=False)[kind]
    df = arrow.binance_table(kind, rows).to_pandas()
    return df[keep] if keep is not None else df


def read_binance(paths, kind="trades", columns=None, *, time_unit="ms"):
    """One table kind of many Binance recordings as a lazy ``dask.dataframe``, one
    partition per recording (decoded on the workers).

    ``kind`` is a table of :data:`hftcore.binance.schema.TABLES` (``trades``,
    ``agg_trades``, ``book_ticker``, ``depth``, ``depth_snapshots``, ``klines``).
    """
    from hftcore.binance.schema import TABLES

    if kind not in TABLES:
        raise ValueError(f"kind must be one of {sorted(TABLES)}, got {kind!r}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    meta = arrow.binance_schema(kind).empty_table().to_pandas()
    if columns is not None:
        meta = meta[columns]
    n = len(paths)
    return dd.from_map(_binance_part, paths, [kind] * n, [columns] * n, [time_unit] * n,
                       meta=meta, label=f"read-binance-{kind}", enforce_metadata=False)  # fmt: skip


def _bbo_day(path, date, label, book_options):
    from hftcore import itch

    book = itch.OrderBook(bbo=True, **(book_options or {}))
    frames = []
    for _ in book.iter_file(path, progress=False):
        events = book.drain_bbo()
        if len(events):
            names = {loc: t for t, loc in book.symbols.items()}
            frames.append(arrow.bbo_table(events, names, date).to_pandas())
    if not frames:
        df = arrow.bbo_schema(date is not None).empty_table().to_pandas()
    else:
        df = pd.concat(frames, ignore_index=True)
        df["stock"] = df["stock"].astype(str).astype("category")
    df["day"] = pd.Categorical([label] * len(df))
    return df


def read_bbo(paths, *, book_options=None):
    """Every top-of-book change of every stock, one partition (and one task) per day.

    Each task builds the day's :class:`hftcore.itch.OrderBook` from empty, as the day
    requires; ``book_options`` are its keyword arguments (``max_orders``, ...).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(p) for p in paths]
    labels = [parquet.day_label(p) for p in paths]
    dated = labels[0][1] is not None
    meta = arrow.bbo_schema(dated).empty_table().to_pandas()
    meta["stock"] = meta["stock"].astype(str).astype("category")
    meta["day"] = pd.Categorical([])
    n = len(paths)
    return dd.from_map(_bbo_day, paths, [d for _, d in labels], [lb for lb, _ in labels],
                       [book_options] * n, meta=meta, label="itch-bbo",
                       enforce_metadata=False)  # fmt: skip


# ---------------------------------------------------------------- converting on a cluster


def start_client(workers=None, scheduler=None, *, threads_per_worker=1, memory_limit="auto",
                 dashboard=True):  # fmt: skip
    """``(client, cluster)``: a client of the cluster at ``scheduler`` (``cluster`` None),
    or of a new ``distributed.LocalCluster`` of ``workers`` processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s"), None
    cluster = LocalCluster(
        n_workers=int(workers or os.cpu_count() or 1),
        threads_per_worker=threads_per_worker,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=":0" if dashboard else None,
    )
    return Client(cluster), cluster


def _convert(fmt, path, out, options):
    from hftcore.errors import HftcoreError

    t0 = time.perf_counter()
    c0 = time.process_time()
    try:
        if fmt == "itch":
            res = parquet.itch_day_to_parquet(path, out, progress=False, **options)
        else:
            res = parquet.binance_to_parquet(path, out, progress=False, **options)
    except HftcoreError as e:
        # A corrupt or truncated file fails the same way on every worker: reported as
        # this file's error, not retried.
        return {"error": f"{type(e).__name__}: {e}"}
    res["task_seconds"] = round(time.perf_counter() - t0, 3)
    # CPU seconds of the worker process (every thread: decode, decompressor, writer).
    res["cpu_seconds"] = round(time.process_time() - c0, 3)
    res["worker_pid"] = os.getpid()
    return res


def convert_days(paths, out, *, fmt="itch", client=None, workers=None, scheduler=None,
                 retries=2, on_result=None, **options):  # fmt: skip
    """Convert many day files (``fmt="itch"``) or recordings (``"binance"``) on Dask.

    Parameters
    ----------
    paths : list of str or os.PathLike
        The files, each one task; paths must be readable by the workers.
    out : str or os.PathLike
        The output root, shared by the workers (a local or network file system).
    client : distributed.Client, optional
        Use this client; else one is started with ``workers`` / ``scheduler``
        (:func:`start_client`) and closed at the end.
    retries : int
        Reruns of a task that raised (a worker that dies is replaced by the scheduler
        on its own, up to ``distributed.scheduler.allowed-failures`` times).
    on_result : callable, optional
        Called with ``(path, result_or_None, error_or_None)`` as each file finishes.
    **options
        Passed to :func:`~hftcore.export.itch_day_to_parquet` or
        :func:`~hftcore.export.binance_to_parquet`.

    Returns
    -------
    dict
        ``results`` (path to manifest), ``errors`` (path to the error text), ``seconds``.
    """
    from distributed import as_completed

    if fmt not in ("itch", "binance"):
        raise ValueError(f"fmt must be 'itch' or 'binance', got {fmt!r}")
    paths = [os.fspath(p) for p in paths]
    if len(set(map(parquet.source_stem, paths))) != len(paths):
        raise ValueError("two inputs have the same file name: their outputs would collide")
    own = client is None
    cluster = None
    if own:
        client, cluster = start_client(workers, scheduler)
    t0 = time.perf_counter()
    results, errors = {}, {}
    try:
        futures = {}
        for p in paths:
            fut = client.submit(_convert, fmt, p, os.fspath(out), options, retries=retries,
                                pure=False, key=f"hftcore-{fmt}-{parquet.source_stem(p)}-"
                                f"{dask.base.tokenize(p, time.time_ns())}")  # fmt: skip
            futures[fut] = p
        for fut in as_completed(list(futures)):
            p = futures[fut]
            err = fut.exception()
            if err is None and "error" in fut.result():
                err = fut.result()["error"]
                errors[p] = err
                if on_result:
                    on_result(p, None, err)
            elif err is None:
                results[p] = fut.result()
                if on_result:
                    on_result(p, results[p], None)
            else:
                errors[p] = f"{type(err).__name__}: {err}"
                if on_result:
                    on_result(p, None, errors[p])
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    return {"results": results, "errors": errors, "seconds": time.perf_counter() - t0}
