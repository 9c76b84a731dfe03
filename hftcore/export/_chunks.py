"""One pass over an ITCH day: each chunk's decoded tables together with its bytes, so a
chunk can be decoded and applied to an order book without reading the day twice."""

from __future__ import annotations

import os

from hftcore._core.files import FIRST_BUFFER, fill, open_stream, progress_bar, skip_rest
from hftcore.itch.decoder import _decode
from hftcore.itch.files import _MAX_FRAME, _truncated, _warn_after_end


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
        buf = bytearray(min(chunk_bytes, FIRST_BUFFER))
        filled = base = seq = 0
        eof = False
        while True:
            view = memoryview(buf)
            if not eof:
                filled, eof = fill(reader, raw, view, filled, base, source)
                if not eof and filled == len(buf) < chunk_bytes:
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
            tail = filled - used
            del view
            if used:
                buf[:tail] = buf[used:filled]
            elif filled == len(buf):
                buf.extend(bytes(min(max(len(buf), 2), _MAX_FRAME)))
            base += used
            filled = tail
