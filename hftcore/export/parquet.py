"""Day files to Hive-partitioned Parquet datasets, one day (or recording) at a time.

Layout under ``OUT``::

    OUT/<type>/day=<label>/<stem>.parquet     ITCH: one dataset per message type letter
    OUT/bbo/day=<label>/<stem>.parquet        ITCH --bbo: every top-of-book change
    OUT/<kind>/day=<YYYY-MM-DD>/<stem>.parquet Binance: per kind and UTC day
    OUT/_hftcore/<format>/<stem>.json         the manifest of a completed source file

``<label>`` is the day's date (``YYYY-MM-DD``, from ``--date`` or a NASDAQ file name such
as ``01302020.NASDAQ_ITCH50.gz``), else the file's stem. A day is streamed chunk by chunk:
memory holds one decoded chunk and at most ``row_group_rows`` buffered rows per type,
whatever the day's size. Every file is written under a hidden temporary name (readers
skip names starting with ``.`` or ``_``) and renamed into place only when the whole day
has been written; the manifest is written last, so a source whose manifest exists (for
the same size and options) is complete and a rerun skips it, while a day that was
interrupted is cleaned up and written again.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import queue
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hftcore.export import arrow
from hftcore.export._chunks import day_chunks
from hftcore.export.names import day_label, source_stem
from hftcore.itch import spec

__all__ = [
    "itch_day_to_parquet",
    "binance_to_parquet",
    "day_label",
    "source_stem",
    "manifest_path",
    "is_complete",
    "DEFAULT_ROW_GROUP_ROWS",
    "MANIFEST_DIR",
]

DEFAULT_ROW_GROUP_ROWS = 1 << 20
MANIFEST_DIR = "_hftcore"
_MANIFEST_VERSION = 1


def manifest_path(out, fmt: str, path) -> Path:
    """Where the manifest of a completed source file is written."""
    return Path(out) / MANIFEST_DIR / fmt / f"{source_stem(path)}.json"


def is_complete(out, fmt: str, path, options: dict) -> bool:
    """True when ``path`` was converted to ``out`` completely with the same options."""
    m = manifest_path(out, fmt, path)
    try:
        data = json.loads(m.read_text())
    except (OSError, ValueError):
        return False
    return (
        data.get("version") == _MANIFEST_VERSION
        and data.get("source_size") == os.path.getsize(path)
        and data.get("options") == options
        and all((Path(out) / f).is_file() for f in data.get("files", []))
    )


def _write_json_atomic(path: Path, data: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


class _Writer:
    """The thread that encodes and writes row groups (pyarrow releases the GIL), so the
    Parquet encoding of one chunk overlaps the decoding of the next. Jobs wait in a
    queue of ``depth`` row groups (bounded memory); the first error is raised to the
    caller at its next call."""

    def __init__(self, depth=4):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error = None
        self._aborted = False
        self._thread = threading.Thread(target=self._run, name="hftcore-parquet", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            job = self._queue.get()
            if job is None:
                return
            if self._error is None and not self._aborted:
                try:
                    job[0](*job[1:])
                except BaseException as e:  # raised in the caller's thread
                    self._error = e

    def submit(self, fn, *args):
        if self._error is not None:
            raise self._error
        self._queue.put((fn, *args))

    def finish(self):
        """Wait for every job; raise the first error."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self):
        self._aborted = True
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join(timeout=60)


class _PartWriter:
    """One output file: rows buffered to ``row_group_rows``, written (by the
    :class:`_Writer` thread) under a temporary name, renamed by :meth:`commit`."""

    def __init__(self, final: Path, schema: pa.Schema, compression, row_group_rows, thread):
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        self.schema = schema
        self.compression = compression
        self.row_group_rows = row_group_rows
        self.thread = thread
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.rows = 0
        self.writer = None  # created and used by the writer thread only

    def add(self, table: pa.Table):
        if not table.num_rows:
            return
        self.buffer.append(table)
        self.buffered += table.num_rows
        while self.buffered >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def _flush(self, n):
        table = pa.concat_tables(self.buffer)
        head, rest = table.slice(0, n), table.slice(n)
        self.thread.submit(self._write, head, n)
        self.rows += head.num_rows
        self.buffer = [rest] if rest.num_rows else []
        self.buffered = rest.num_rows

    def _write(self, head, n):
        if self.writer is None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            # Dictionary pages only for the dictionary (string) columns: trying them on
            # high-cardinality integers (seq, order_ref, timestamp) costs ~25 % of the write.
            strings = [f.name for f in self.schema if pa.types.is_dictionary(f.type)]
            self.writer = pq.ParquetWriter(self.tmp, self.schema, compression=self.compression,
                                           use_dictionary=strings or False)  # fmt: skip
        self.writer.write_table(head.combine_chunks(), row_group_size=n)

    def _close_writer(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def close(self):
        if self.buffered:
            self._flush(self.buffered)
        self.thread.submit(self._close_writer)

    def commit(self):
        if self.rows:
            os.replace(self.tmp, self.final)

    def discard(self):
        """After the writer thread has stopped: remove the temporary file."""
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - the tmp file is removed anyway
                pass
            self.writer = None
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass
        for d in (self.final.parent, self.final.parent.parent):
            try:
                d.rmdir()  # only when empty: leave no empty partition behind
            except OSError:
                break


class _Parts:
    """The output files of one source file, committed together."""

    def __init__(self, out: Path, stem: str, compression, row_group_rows):
        self.out = out
        self.stem = stem
        self.compression = compression
        self.row_group_rows = int(row_group_rows)
        if self.row_group_rows < 1:
            raise ValueError(f"row_group_rows must be >= 1, got {row_group_rows}")
        self.parts: dict[tuple[str, str], _PartWriter] = {}
        self.thread = _Writer()

    def add(self, dataset: str, label: str, table: pa.Table):
        key = (dataset, label)
        part = self.parts.get(key)
        if part is None:
            final = self.out / dataset / f"day={label}" / f"{self.stem}.parquet"
            part = self.parts[key] = _PartWriter(
                final, table.schema, self.compression, self.row_group_rows, self.thread
            )
        part.add(table)

    def commit(self) -> list[str]:
        for p in self.parts.values():
            p.close()
        self.thread.finish()
        files = []
        for p in self.parts.values():
            p.commit()
            if p.rows:
                files.append(str(p.final.relative_to(self.out)))
        return sorted(files)

    def discard(self):
        self.thread.abort()
        for p in self.parts.values():
            p.discard()

    def rows(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (dataset, _), p in self.parts.items():
            out[dataset] = out.get(dataset, 0) + p.rows
        return out


def _remove_previous(out: Path, stem: str, datasets, label=None):
    """Delete this source's files (final and temporary) from an earlier, incomplete run."""
    pattern_final = f"{stem}.parquet"
    for ds in datasets:
        base = out / ds
        if not base.is_dir():
            continue
        for d in base.iterdir():
            if not d.name.startswith("day=") or (label is not None and d.name != f"day={label}"):
                continue
            for f in d.iterdir():
                if f.name == pattern_final or (
                    f.name.startswith(f".{pattern_final}.") and f.name.endswith(".tmp")
                ):
                    f.unlink(missing_ok=True)


def _open_manifest_old(out, fmt, path):
    m = manifest_path(out, fmt, path)
    try:
        return json.loads(m.read_text())
    except (OSError, ValueError):
        return None


def itch_day_to_parquet(
    path,
    out,
    *,
    types=None,
    bbo=False,
    date=None,
    compression="zstd",
    row_group_rows=DEFAULT_ROW_GROUP_ROWS,
    chunk_bytes=64 << 20,
    progress=None,
    force=False,
    book_options=None,
) -> dict:
    """Convert one ITCH 5.0 day file (plain or ``.gz``) to Parquet under ``out``.

    Parameters
    ----------
    path : str or os.PathLike
        The day file.
    out : str or os.PathLike
        The output root: ``out/<type>/day=<label>/<stem>.parquet``.
    types : str or iterable of str, optional
        Message types to write (default: all 23).
    bbo : bool
        Also write ``out/bbo/``: every top-of-book change of every stock, from
        :class:`hftcore.itch.OrderBook` (fed the same chunks in the same pass).
    date : datetime.date or str, optional
        The trading day; default: from the file name, if it carries one. With a date the
        tables gain a ``time`` column and the partition is ``day=YYYY-MM-DD``.
    compression : str
        Parquet codec (``zstd``, ``snappy``, ``gzip``, ``lz4``, ``none``).
    row_group_rows : int
        Rows per Parquet row group (and most rows buffered per type).
    chunk_bytes : int
        Decompressed bytes decoded per step.
    progress : bool, optional
        Progress bar on stderr (default: when stderr is a terminal).
    force : bool
        Convert even if a complete conversion with the same options exists.
    book_options : dict, optional
        Keyword arguments for the :class:`~hftcore.itch.OrderBook` of ``bbo``
        (``max_orders``, ``max_levels``).

    Returns
    -------
    dict
        The manifest: ``source``, ``day``, ``rows`` per dataset, ``files``, ``messages``,
        ``bytes`` (decompressed), ``seconds``; ``skipped`` True when it was complete.

    Raises
    ------
    hftcore.DecodeError
        The file is corrupt or truncated (names the file and offset); nothing of this
        day is left in ``out``.
    """
    from hftcore import itch
    from hftcore.itch.decoder import _type_filter

    path = os.fspath(path)
    out = Path(out)
    filt = _type_filter(types)
    wanted = "".join(t for t in spec.TYPES if filt is None or t in filt)
    label, day = day_label(path, date)
    options = {
        "types": wanted,
        "bbo": bool(bbo),
        "date": day.isoformat() if day else None,
        "compression": compression,
        "row_group_rows": int(row_group_rows),
    }
    if not force and is_complete(out, "itch", path, options):
        done = _open_manifest_old(out, "itch", path) or {}
        done["skipped"] = True
        return done
    stem = source_stem(path)
    datasets = list(spec.TYPES) + ["bbo"]
    manifest_path(out, "itch", path).unlink(missing_ok=True)
    _remove_previous(out, stem, datasets)
    parts = _Parts(out, stem, None if compression == "none" else compression, row_group_rows)
    t0 = time.perf_counter()
    messages = consumed = 0
    counts = dict.fromkeys(spec.TYPES, 0)
    book = itch.OrderBook(bbo=True, **(book_options or {})) if bbo else None
    try:
        # One pass: each chunk is decoded into tables and applied to the book.
        for tables, chunk in day_chunks(path, wanted, chunk_bytes, progress):
            for t in wanted:
                rows = tables[t]
                if len(rows):
                    parts.add(t, label, arrow.itch_table(t, rows, day))
            for t, n in tables.counts.items():
                counts[t] += n
            messages = tables.next_seq
            consumed += tables.consumed
            if book is not None and len(chunk):
                book.apply(chunk)
                events = book.drain_bbo()
                if len(events):
                    names = {loc: t for t, loc in book._directory_names().items()}
                    parts.add("bbo", label, arrow.bbo_table(events, names, day))
        files = parts.commit()
    except BaseException:
        parts.discard()
        raise
    result = {
        "version": _MANIFEST_VERSION,
        "format": "itch",
        "source": os.path.abspath(path),
        "source_size": os.path.getsize(path),
        "day": label,
        "options": options,
        "rows": parts.rows(),
        "counts": counts,
        "messages": messages,
        "bytes": consumed,
        "files": files,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    _write_json_atomic(manifest_path(out, "itch", path), result)
    result["skipped"] = False
    return result


_NS_PER_DAY = 86_400 * 1_000_000_000


def _utc_days(rows: np.ndarray):
    """``(labels, index arrays)``: the rows of each UTC day (by event time, else
    transaction time; rows with neither are ``undated``)."""
    t = rows["event_time"].astype(np.int64)
    if "transaction_time" in rows.dtype.names:
        t = np.where(t == 0, rows["transaction_time"], t)
    day = np.where(t > 0, t // _NS_PER_DAY, -1)
    uniq = np.unique(day)
    out = []
    for d in uniq.tolist():
        label = "undated" if d < 0 else (_dt.date(1970, 1, 1) + _dt.timedelta(days=d)).isoformat()
        out.append((label, np.flatnonzero(day == d)))
    return out


def binance_to_parquet(
    path,
    out,
    *,
    time_unit="ms",
    compression="zstd",
    row_group_rows=DEFAULT_ROW_GROUP_ROWS,
    chunk_bytes=64 << 20,
    progress=None,
    force=False,
) -> dict:
    """Convert one recorded Binance stream (NDJSON, plain or ``.gz``) to Parquet.

    Writes ``out/<kind>/day=<YYYY-MM-DD>/<stem>.parquet`` per table kind (``trades``,
    ``agg_trades``, ``book_ticker``, ``depth``, ``depth_snapshots``, ``klines``) and UTC
    day of the rows' event time (``day=undated`` for rows without one, e.g. REST
    snapshots). Same temporary-name, manifest and skip rules as
    :func:`itch_day_to_parquet`; the other parameters as there.

    Returns
    -------
    dict
        The manifest: ``rows`` per kind, ``days``, ``files``, ``counts`` per message kind.
    """
    from hftcore.binance import files as bfiles
    from hftcore.binance.schema import TABLES

    path = os.fspath(path)
    out = Path(out)
    options = {
        "time_unit": time_unit,
        "compression": compression,
        "row_group_rows": int(row_group_rows),
    }
    if not force and is_complete(out, "binance", path, options):
        done = _open_manifest_old(out, "binance", path) or {}
        done["skipped"] = True
        return done
    stem = source_stem(path)
    manifest_path(out, "binance", path).unlink(missing_ok=True)
    _remove_previous(out, stem, list(TABLES))
    parts = _Parts(out, stem, None if compression == "none" else compression, row_group_rows)
    t0 = time.perf_counter()
    counts: dict[str, int] = {}
    days: set[str] = set()
    try:
        for tables in bfiles.iter_file(path, chunk_bytes=chunk_bytes, time_unit=time_unit,
                                       progress=progress):  # fmt: skip
            for kind in tables:
                rows = tables[kind]
                if not len(rows):
                    continue
                for label, idx in _utc_days(rows):
                    days.add(label)
                    parts.add(kind, label, arrow.binance_table(kind, rows[idx]))
            for k, n in tables.counts.items():
                counts[k] = counts.get(k, 0) + int(n)
        files = parts.commit()
    except BaseException:
        parts.discard()
        raise
    result = {
        "version": _MANIFEST_VERSION,
        "format": "binance",
        "source": os.path.abspath(path),
        "source_size": os.path.getsize(path),
        "options": options,
        "rows": parts.rows(),
        "days": sorted(days),
        "counts": counts,
        "files": files,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    _write_json_atomic(manifest_path(out, "binance", path), result)
    result["skipped"] = False
    return result
