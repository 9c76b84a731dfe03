"""ITCH 5.0 day files: :func:`read_file` and :func:`iter_file`, plain or gzip-compressed.

Plain files are memory-mapped and decoded in place. ``.gz`` files (NASDAQ publishes days
as ``MMDDYYYY.NASDAQ_ITCH50.gz``) are decompressed as a stream, chunk by chunk, so the
whole decompressed day is never in memory. Unlike :func:`hftcore.itch.decode`, which
leaves a partial tail for the next chunk, a file that ends inside a message is an error.
"""

from __future__ import annotations

import mmap
import os
import warnings
from collections.abc import Iterator

from hftcore._core.files import FIRST_BUFFER, fill, is_gzip, open_stream, progress_bar, skip_rest
from hftcore.errors import DecodeError
from hftcore.itch.decoder import Tables, _decode, _type_filter, concat_tables

__all__ = ["read_file", "iter_file"]

#: Largest framed message: 2-byte prefix plus a 65535-byte body.
_MAX_FRAME = 2 + 0xFFFF


def _truncated(path, offset, tail: bytes, compressed: bool):
    need = 2 + int.from_bytes(tail[:2], "big") if len(tail) >= 2 else 2
    where = " of the decompressed stream" if compressed else ""
    return DecodeError(
        f"file ends inside a message: it needs {need} bytes, {len(tail)} left "
        f"(message starts at byte offset {offset}{where})",
        offset,
        os.fspath(path),
    )


def _warn_after_end(path, offset, extra):
    if extra:
        warnings.warn(
            f"{os.fspath(path)}: {extra} byte(s) after the end-of-session marker at byte "
            f"offset {offset - 2} were not decoded",
            stacklevel=3,
        )


def read_file(path, types=None, *, progress=None) -> Tables:
    """Decode a whole ITCH 5.0 BinaryFILE day (plain or ``.gz``) into tables.

    Parameters
    ----------
    path : str or os.PathLike
        The file. Gzip files are recognized by their magic bytes, whatever the name.
    types : iterable of str, optional
        Type characters to decode into tables; other types are only counted.
    progress : bool, optional
        Show a progress bar on stderr over the file's (compressed) bytes. Default: when
        stderr is a terminal.

    Returns
    -------
    Tables
        As :func:`hftcore.itch.decode`; ``consumed`` is the decoded byte count of the
        (decompressed) stream.

    Raises
    ------
    DecodeError
        The file ends inside a message, or a message's length disagrees with the spec;
        the error names the file and the byte offset (in the decompressed stream for
        ``.gz``).

    Examples
    --------
    >>> tables = read_file("01302020.NASDAQ_ITCH50.gz", types="AFDEXU")  # doctest: +SKIP
    """
    filt = _type_filter(types)
    if is_gzip(path):
        return concat_tables(iter_file(path, types=filt, progress=progress))
    size = os.path.getsize(path)
    with progress_bar(path, progress) as bar:
        if size == 0:
            return _decode(b"", filt, 0, os.fspath(path), 0)
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            report = bar.update if bar.enabled else None
            tables = _decode(mm, filt, 0, os.fspath(path), 0, report)
            if tables.end_of_session:
                _warn_after_end(path, tables.consumed, size - tables.consumed)
            elif tables.consumed < size:
                raise _truncated(path, tables.consumed, mm[tables.consumed :], False)
        bar.update(size)
    return tables


def iter_file(path, chunk_bytes=64 << 20, types=None, *, progress=None) -> Iterator[Tables]:
    """Decode an ITCH 5.0 file chunk by chunk, with bounded memory.

    Reads about ``chunk_bytes`` of (decompressed) stream at a time into one reused buffer
    and yields its :class:`~hftcore.itch.Tables`. A message cut by the chunk's end is
    carried over to the next chunk; ``seq`` keeps counting across chunks, so
    ``concat_tables(iter_file(p))`` equals ``read_file(p)``.

    Parameters
    ----------
    path : str or os.PathLike
        Plain or gzip-compressed BinaryFILE.
    chunk_bytes : int, default 64 MiB
        Bytes read per chunk (the buffer grows if a single message is larger).
    types : iterable of str, optional
        Type characters to decode into tables; other types are only counted.
    progress : bool, optional
        Progress bar on stderr over the file's (compressed) bytes; default: when stderr
        is a terminal.

    Yields
    ------
    Tables
        One per chunk (chunks holding no whole message are not yielded).

    Raises
    ------
    DecodeError
        As :func:`read_file`, with offsets from the start of the (decompressed) stream.
    """
    chunk_bytes = int(chunk_bytes)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    filt = _type_filter(types)
    source = os.fspath(path)
    with open_stream(path) as (reader, raw, compressed), progress_bar(path, progress) as bar:
        yield from _iter_stream(reader, raw, chunk_bytes, filt, source, bar, compressed)


def _iter_stream(reader, raw, chunk_bytes, filt, source, bar, compressed):
    for tables, _ in walk_stream(reader, raw, chunk_bytes, filt, source, bar, compressed):
        if tables.messages or tables.end_of_session:
            yield tables


def walk_stream(reader, raw, chunk_bytes, filt, source, bar, compressed):
    """Yield ``(tables, chunk)`` for every decode of a day's stream, ``chunk`` a view of
    exactly the bytes of its whole messages (``tables.consumed``), valid until the next
    step. The one chunking walk behind :func:`iter_file` and the exporters (which decode
    and apply a chunk to a book in the same pass).
    """
    buf = bytearray(min(chunk_bytes, FIRST_BUFFER))
    filled = 0  # bytes in buf: a carried partial message, then fresh data
    base = 0  # stream offset of buf[0]
    seq = 0
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
        tables = _decode(view[:filled], filt, seq, source, base)
        used = tables.consumed
        with view[:used] as chunk:
            yield tables, chunk
        seq = tables.next_seq
        if tables.end_of_session:
            extra = filled - used
            if not eof:
                extra += skip_rest(reader, raw, base + filled, source)
            _warn_after_end(source, base + used, extra)
            return
        if eof:
            if used < filled:
                raise _truncated(source, base + used, bytes(view[used:filled]), compressed)
            return
        # Carry the partial tail to the front of the buffer for the next read.
        tail = filled - used
        del view
        if used:
            buf[:tail] = buf[used:filled]
        elif filled == len(buf):
            # One message larger than the whole buffer: grow to fit it.
            buf.extend(bytes(min(max(len(buf), 2), _MAX_FRAME)))
        base += used
        filled = tail
