"""Fuzz targets of the ITCH 5.0 entry points: decode, iter_messages, OrderBook.apply and
the file readers. Each is ``fn(data: bytes)``; see :mod:`_oracle` for the rule."""

from __future__ import annotations

import gzip
import os
import tempfile

import numpy as np

from hftcore import BookFull, itch
from hftcore.itch import spec

try:
    from . import _oracle as o
except ImportError:  # run as a script from fuzz/
    import _oracle as o

_EMPTY = itch.decode(b"")


def _check_itch_tables(tables, n: int, what: str) -> None:
    o.check_tables(tables, _EMPTY, what)
    rows = sum(len(a) for a in tables.values())
    if not 0 <= tables.consumed <= n:
        raise o.Finding(f"{what}: consumed {tables.consumed} of {n} bytes")
    for name in ("consumed", "unknown", "messages", "seq_start", "next_seq"):
        if type(getattr(tables, name)) is not int:
            raise o.Finding(f"{what}: {name} is {type(getattr(tables, name)).__name__}")
    if type(tables.end_of_session) is not bool:
        raise o.Finding(f"{what}: end_of_session is not a bool")
    # A framed message takes at least 3 bytes (2-byte prefix, type byte).
    if rows > tables.messages or tables.messages * 3 > n:
        raise o.Finding(f"{what}: {rows} rows, {tables.messages} messages from {n} bytes")


@o.target()
def itch_decode(data: bytes) -> None:
    """``itch.decode`` on the whole input, and with a type filter."""
    _check_itch_tables(itch.decode(data), len(data), "decode")
    _check_itch_tables(itch.decode(data, types="AFDEXUP"), len(data), "decode(types)")


@o.target()
def itch_iter_messages(data: bytes) -> None:
    """``itch.iter_messages``: (str, numpy.void) pairs of the spec's dtypes, in seq order."""
    last = -1
    count = 0
    for t, row in itch.iter_messages(data):
        if type(t) is not str or t not in spec.BY_TYPE:
            raise o.Finding(f"iter_messages: type {t!r}")
        if type(row) is not np.void or row.dtype != spec.dtype(t):
            raise o.Finding(f"iter_messages: row {type(row).__name__} for {t!r}")
        seq = int(row["seq"])
        if seq <= last:
            raise o.Finding(f"iter_messages: seq {seq} after {last}")
        last = seq
        count += 1
    if count * 3 > len(data):
        raise o.Finding(f"iter_messages: {count} messages from {len(data)} bytes")


def _book(strict=False):
    # Small capacities, so BookFull (documented) is reached too.
    return itch.OrderBook(max_orders=64, max_levels=32, strict=strict, bbo=True, executions=True)


def _check_book(book, n: int, walked, what: str) -> None:
    if type(walked) is not int or walked * 3 > n:
        raise o.Finding(f"{what}: returned {walked!r} for {n} bytes")
    if not 0 <= book.consumed <= n:
        raise o.Finding(f"{what}: consumed {book.consumed} of {n} bytes")
    stats = book.stats()
    for k, v in stats.items():
        if k != "by_type" and type(v) is not int:
            raise o.Finding(f"{what}: stats[{k!r}] is {type(v).__name__}")
    for loc in range(4):
        bbo = book._bbo(loc)
        if any(type(v) is not int for v in bbo):
            raise o.Finding(f"{what}: bbo {bbo!r}")
    o.check_size(n, len(book.drain_bbo()) + len(book.drain_executions()), what + " events")


@o.target(o.DecodeError, BookFull)
def itch_book_apply(data: bytes) -> None:
    """``OrderBook.apply`` (lenient), then the same bytes on a strict book."""
    book = _book()
    _check_book(book, len(data), book.apply(data), "OrderBook.apply")


def _until(data: bytes) -> tuple[int, bytes]:
    """The first 8 bytes as a signed int64 ``until`` (any value a caller could pass),
    the rest as the stream."""
    head = data[:8].ljust(8, b"\0")
    return int.from_bytes(head, "big", signed=True), data[8:]


@o.target(o.DecodeError, BookFull)
def itch_book_apply_until(data: bytes) -> None:
    """``OrderBook.apply(buf, until)`` with ``until`` from the first 8 input bytes; a
    second call continues at ``consumed``."""
    until, buf = _until(data)
    book = _book()
    if until < 0:  # documented: an argument error, raised before any message is read
        try:
            book.apply(buf, until=until)
        except ValueError:
            return
        raise o.Finding(f"apply(until={until}) did not raise ValueError")
    walked = book.apply(buf, until=until)
    if type(book.reached_until) is not bool:
        raise o.Finding("reached_until is not a bool")
    _check_book(book, len(buf), walked, "OrderBook.apply(until)")
    rest = buf[book.consumed :]
    _check_book(book, len(rest), book.apply(rest), "OrderBook.apply(rest)")


_DIR = tempfile.mkdtemp(prefix="hftcore-fuzz-")


def _tmp(data: bytes, name: str) -> str:
    path = os.path.join(_DIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _read_both(path: str, n: int, what: str) -> None:
    """``read_file`` and ``iter_file`` (small chunks, so messages are cut) on ``path``:
    each returns valid tables or raises DecodeError, and both agree on which."""
    whole = o.call(itch.read_file, path, progress=False)
    if whole is not None:
        _check_itch_tables(whole, n, what + " read_file")

    def chunks():
        return [p for p in itch.iter_file(path, chunk_bytes=4096, progress=False)]

    parts = o.call(chunks)
    if parts is not None:
        for part in parts:
            _check_itch_tables(part, n, what + " iter_file")
    if (whole is None) != (parts is None):
        raise o.Finding(f"{what}: read_file {'failed' if whole is None else 'passed'}, "
                        f"iter_file {'failed' if parts is None else 'passed'}")  # fmt: skip


@o.target()
def itch_files(data: bytes) -> None:
    """``read_file`` / ``iter_file`` on the input written plain, then gzip-compressed
    (sizes are checked against the decompressed stream)."""
    _read_both(_tmp(data, "day.itch"), len(data), "plain")
    _read_both(_tmp(gzip.compress(data, 1), "day.itch.gz"), len(data), "gzip")


@o.target()
def itch_files_raw(data: bytes) -> None:
    """The readers on the input as the file's raw bytes: corrupt gzip (bad CRC, truncated
    members, trailing garbage) is reached when the input starts with the gzip magic."""
    # A gzip stream can decompress to ~1000x its size: bound by a generous constant.
    _read_both(_tmp(data, "raw.itch.gz"), 1032 * len(data) + 64, "raw")


TARGETS = {
    "itch_decode": itch_decode,
    "itch_iter_messages": itch_iter_messages,
    "itch_book_apply": itch_book_apply,
    "itch_book_apply_until": itch_book_apply_until,
    "itch_files": itch_files,
    "itch_files_raw": itch_files_raw,
}
