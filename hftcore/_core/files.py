"""Files on disk for the batch decoders: plain or gzip-compressed (known by their magic
bytes, whatever the name), read into one reused buffer, with a progress bar over the
file's bytes. Shared by :mod:`hftcore.itch.files` and :mod:`hftcore.binance.files`."""

from __future__ import annotations

import contextlib
import gzip
import os
import zlib

from hftcore._core.progress import Progress
from hftcore.errors import DecodeError

__all__ = ["is_gzip", "progress_bar", "open_stream", "fill", "skip_rest", "FIRST_BUFFER"]

#: Bytes a chunked reader allocates first; it grows to its chunk size only when the
#: stream fills this (a small .gz file then never zeroes a 64 MiB buffer).
FIRST_BUFFER = 1 << 20


def is_gzip(path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def progress_bar(path, progress) -> Progress:
    """A bar over the file's size on disk, named after it; ``progress`` None: on a terminal."""
    enabled = None if progress is None else bool(progress)
    return Progress(os.path.getsize(path), desc=os.path.basename(os.fspath(path)),
                    enabled=enabled)  # fmt: skip


@contextlib.contextmanager
def open_stream(path):
    """``(reader, raw, compressed)``: ``raw`` is the open file (its ``tell()`` is the
    progress on disk), ``reader`` the (decompressed) stream to read from."""
    compressed = is_gzip(path)
    with open(path, "rb") as raw:
        reader = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            yield reader, raw, compressed
        finally:
            if compressed:
                reader.close()


def fill(reader, raw, view, filled: int, base: int, source) -> tuple[int, bool]:
    """Read into ``view[filled:]`` until it is full or the stream ends.

    Returns ``(filled, eof)``. A corrupt gzip stream raises :class:`DecodeError` at its
    offset in the decompressed stream (``base`` is the stream offset of ``view[0]``); an
    I/O error of a plain file is raised as is.
    """
    eof = False
    while not eof and filled < len(view):
        try:
            got = reader.readinto(view[filled:])
        except (EOFError, OSError, zlib.error) as exc:
            if reader is raw:
                raise
            raise DecodeError(f"corrupt gzip stream: {exc}", base + filled, source) from exc
        if not got:
            eof = True
        filled += got or 0
    return filled, eof


def skip_rest(reader, raw, base: int, source, chunk_bytes: int = 1 << 20) -> int:
    """Read the rest of the stream in bounded chunks and return how many bytes it held.

    For what follows an end marker: memory stays bounded whatever the size, and a corrupt
    gzip stream there raises :class:`DecodeError` like :func:`fill` (``base`` is the
    stream offset reached so far).
    """
    scratch = memoryview(bytearray(chunk_bytes))
    total = 0
    while True:
        got, eof = fill(reader, raw, scratch, 0, base + total, source)
        total += got
        if eof:
            return total
