"""One pass over an ITCH day: each chunk's decoded tables together with its bytes, so a
chunk can be decoded and applied to an order book without reading the day twice."""

from __future__ import annotations

import os

from hftcore._core.files import open_stream, progress_bar
from hftcore.itch.files import walk_stream


def day_chunks(path, filt, chunk_bytes, progress):
    """Yield ``(tables, view)`` per chunk: ``view`` holds exactly the chunk's whole
    messages (``tables.consumed`` bytes) and is valid until the next step.

    Same rules as :func:`hftcore.itch.iter_file`: a file that ends inside a message is a
    :class:`~hftcore.DecodeError` naming the file and offset; bytes after the
    end-of-session marker are counted and warned about, not decoded.
    """
    chunk_bytes = int(chunk_bytes)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    source = os.fspath(path)
    with open_stream(path) as (reader, raw, compressed), progress_bar(path, progress) as bar:
        yield from walk_stream(reader, raw, chunk_bytes, filt, source, bar, compressed)
