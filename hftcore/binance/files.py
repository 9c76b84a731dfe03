"""Recorded Binance JSON streams on disk: one message per line (NDJSON), plain or gzip.

:func:`iter_file` decodes a recording of any size chunk by chunk with bounded memory;
:func:`read_file` decodes a whole file into one :class:`~hftcore.binance.BinanceTables`.
Row ``msg_index`` values, error offsets and message numbers count from the start of the
file (of the decompressed stream for ``.gz``), so a bad line is found with ``sed -n``.
"""

from __future__ import annotations

import mmap
import os
import re
from collections.abc import Iterable, Iterator

import numpy as np

from hftcore._core.files import FIRST_BUFFER, fill, is_gzip, open_stream, progress_bar
from hftcore.binance.decode import BinanceTables, decode_many
from hftcore.binance.schema import time_multiplier
from hftcore.errors import DecodeError

__all__ = ["read_file", "iter_file", "concat_tables"]

_MESSAGE = re.compile(r"message (\d+)")


def _rebased(err: DecodeError, source: str, base: int, first_msg: int) -> DecodeError:
    """``err`` from a chunk's decode, with file offsets and file message numbers."""
    m = _MESSAGE.fullmatch(str(err.source or ""))
    where = f"{source}: message {first_msg + int(m.group(1))}" if m else source
    return DecodeError(err.reason, base + err.offset if err.offset >= 0 else -1, where)


def _decode_chunk(view, source, base, first_msg, time_unit, errors) -> BinanceTables:
    err = None
    try:
        tables = decode_many(view, time_unit=time_unit, errors=errors)
    except DecodeError as e:
        err = _rebased(e, source, base, first_msg)
    if err is not None:
        # Raised outside the handler: the original error's traceback (which holds a
        # view of the caller's buffer or mmap) must not stay alive as its context.
        raise err
    if first_msg:
        for name in tables:
            tables[name]["msg_index"] += first_msg
    tables.errors = [_rebased(e, source, base, first_msg) for e in tables.errors]
    return tables


def iter_file(
    path,
    chunk_bytes: int = 64 << 20,
    *,
    time_unit: str = "ms",
    errors: str = "raise",
    progress=None,
) -> Iterator[BinanceTables]:
    """Decode a recorded Binance JSON stream chunk by chunk, with bounded memory.

    Reads about ``chunk_bytes`` of the (decompressed) file at a time into one reused
    buffer, decodes the whole lines in it with :func:`~hftcore.binance.decode_many`, and
    carries the cut line over to the next chunk.

    Parameters
    ----------
    path : str or os.PathLike
        Newline-delimited JSON: one or more whole messages per line (what stream
        recorders write), optionally gzip-compressed (recognized by its magic bytes,
        whatever the name). The last line needs no newline.
    chunk_bytes : int, default 64 MiB
        Bytes read per chunk (the buffer grows if a single line is longer).
    time_unit : {"ms", "us"}
        Unit of the stream's times, as for :func:`~hftcore.binance.decode_many`.
    errors : {"raise", "skip"}
        As for :func:`~hftcore.binance.decode_many`: ``"skip"`` counts a bad message as
        ``invalid``, keeps the first 100 errors of each chunk in ``errors`` and goes on.
    progress : bool, optional
        Progress bar on stderr over the file's (compressed) bytes; default: when stderr
        is a terminal.

    Yields
    ------
    BinanceTables
        One per chunk holding at least one line. ``msg_index`` counts messages from the
        start of the file, so ``concat_tables(iter_file(p))`` equals ``read_file(p)``;
        ``consumed`` is the number of (decompressed) file bytes the chunk covered.

    Raises
    ------
    DecodeError
        A malformed message (see :func:`~hftcore.binance.decode_many`), or a corrupt
        gzip stream. The error names the file and the message number, and its offset
        is the byte offset in the (decompressed) file.
    """
    time_multiplier(time_unit)  # a bad unit fails here, even for an empty file
    chunk_bytes = int(chunk_bytes)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    source = os.fspath(path)
    with open_stream(path) as (reader, raw, compressed), progress_bar(path, progress) as bar:
        if not compressed:
            # A small file needs no 64 MiB buffer (zeroing it costs more than decoding).
            chunk_bytes = min(chunk_bytes, os.path.getsize(path) + 1)
        yield from _iter_stream(reader, raw, chunk_bytes, source, bar, time_unit, errors)


def _iter_stream(reader, raw, chunk_bytes, source, bar, time_unit, errors):
    buf = bytearray(min(chunk_bytes, FIRST_BUFFER))
    filled = 0  # bytes in buf: a carried partial line, then fresh data
    base = 0  # file offset of buf[0]
    first_msg = 0  # file message number of the chunk's first message
    eof = False
    while True:
        view = memoryview(buf)
        if not eof:
            filled, eof = fill(reader, raw, view, filled, base, source)
            if not eof and filled == len(buf) < chunk_bytes:
                # More than the first buffer: grow to the chunk size once, read on.
                del view
                buf.extend(bytes(chunk_bytes - len(buf)))
                continue
        bar.update(raw.tell())
        # Decode up to the last newline; at the end of the file, everything.
        used = filled if eof else buf.rfind(b"\n", 0, filled) + 1
        if used == 0 and not eof:
            # One line longer than the whole buffer: grow it and read on.
            del view
            buf.extend(bytes(len(buf)))
            continue
        if used:
            tables = _decode_chunk(view[:used], source, base, first_msg, time_unit, errors)
            tables.consumed = used
            first_msg += tables.n_messages
            if tables.n_messages:  # not only blank lines
                yield tables
        if eof:
            return
        tail = filled - used
        del view
        buf[:tail] = buf[used:filled]
        base += used
        filled = tail


def concat_tables(chunks: Iterable[BinanceTables]) -> BinanceTables:
    """Join the tables of several chunks (e.g. from :func:`iter_file`) into one.

    Rows keep their ``msg_index``; ``counts`` are summed; ``errors`` keeps the first 100.
    """
    chunks = list(chunks)
    if not chunks:
        return decode_many(b"")
    tables = {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}
    tables["kinds"] = np.concatenate([c.kinds for c in chunks])
    counts = {k: sum(c.counts[k] for c in chunks) for k in chunks[0].counts}
    errs = [e for c in chunks for e in c.errors][:100]
    return BinanceTables(tables, counts, errs)


def read_file(path, *, time_unit: str = "ms", errors: str = "raise", progress=None):
    """Decode a whole recorded Binance JSON stream (plain or ``.gz``) into tables.

    A plain file is memory-mapped and decoded in place in one pass; a gzip file is
    decompressed chunk by chunk (:func:`iter_file`). For recordings larger than memory,
    use :func:`iter_file`.

    Parameters
    ----------
    path : str or os.PathLike
        Newline-delimited JSON (see :func:`iter_file`).
    time_unit, errors, progress
        As for :func:`iter_file`.

    Returns
    -------
    BinanceTables
        As :func:`~hftcore.binance.decode_many` on the whole file.

    Raises
    ------
    DecodeError
        As :func:`iter_file`: the file, the message number and the byte offset.

    Examples
    --------
    >>> t = read_file("btcusdt-2026-11-24.ndjson.gz")  # doctest: +SKIP
    >>> t["depth"][["final_update_id", "side", "price", "qty"]][:3]  # doctest: +SKIP
    """
    if is_gzip(path):
        return concat_tables(iter_file(path, time_unit=time_unit, errors=errors,
                                       progress=progress))  # fmt: skip
    source = os.fspath(path)
    size = os.path.getsize(path)
    with progress_bar(path, progress) as bar:
        if size == 0:
            return decode_many(b"", time_unit=time_unit, errors=errors)
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            tables = _decode_chunk(mm, source, 0, 0, time_unit, errors)
        bar.update(size)
    return tables
