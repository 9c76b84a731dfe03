"""ITCH 5.0 decoding, the Python face: :func:`decode`, :class:`Tables`, :func:`iter_messages`.

The work happens in the nogil kernel :mod:`hftcore.itch._decode`; this module validates
arguments and wraps the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from hftcore.errors import DecodeError
from hftcore.itch import spec
from hftcore.itch._decode import decode_buffer

__all__ = ["Tables", "decode", "iter_messages", "concat_tables"]


def _type_filter(types) -> str | None:
    """Validate ``types`` (None or an iterable of type characters) into a str or None."""
    if types is None:
        return None
    if isinstance(types, str):
        chars = list(types)
    elif isinstance(types, bytes):
        chars = [chr(b) for b in types]
    else:
        chars = []
        for t in types:
            if isinstance(t, bytes):
                t = t.decode("ascii")
            if not isinstance(t, str) or len(t) != 1:
                raise ValueError(f"types must be single message type characters, got {t!r}")
            chars.append(t)
    bad = sorted({t for t in chars if t not in spec.BY_TYPE})
    if bad:
        raise ValueError(f"unknown ITCH 5.0 message type(s) {bad}; known: {''.join(spec.TYPES)}")
    return "".join(sorted(set(chars)))


class Tables(Mapping):
    """Decoded ITCH messages: one numpy structured array per message type.

    A read-only mapping from type character (``"A"``, ``"D"``, ...) to an array of dtype
    :func:`hftcore.itch.spec.dtype`, one row per message, in stream order. All 23 types
    are keys; types absent from the input, or not asked for with ``types=``, map to empty
    arrays. Every row has ``seq``, the message's 0-based index in the whole stream.

    Attributes
    ----------
    counts : dict of str to int
        Messages walked per type, including types that were not decoded into tables.
    consumed : int
        Bytes of whole messages decoded (and of an end-of-session marker). A trailing
        partial message is not consumed: resume there with ``seq_start=next_seq``.
    unknown : int
        Messages of types that are not ITCH 5.0, skipped by their length prefix.
    messages : int
        Messages walked, unknown types included.
    seq_start, next_seq : int
        ``seq`` of the first message, and of the message after the last one.
    end_of_session : bool
        A zero length prefix (BinaryFILE end of session) ended the input.
    decoded : str
        The type characters decoded into tables.
    """

    __slots__ = (
        "_tables",
        "counts",
        "consumed",
        "unknown",
        "messages",
        "seq_start",
        "next_seq",
        "end_of_session",
        "decoded",
    )

    def __init__(
        self,
        tables,
        counts,
        *,
        consumed=0,
        unknown=0,
        messages=0,
        seq_start=0,
        end_of_session=False,
        decoded=None,
    ):
        self._tables = {t: tables.get(t, _empty(t)) for t in spec.TYPES}
        self.counts = {t: int(counts.get(t, 0)) for t in spec.TYPES}
        self.consumed = int(consumed)
        self.unknown = int(unknown)
        self.messages = int(messages)
        self.seq_start = int(seq_start)
        self.next_seq = self.seq_start + self.messages
        self.end_of_session = bool(end_of_session)
        self.decoded = "".join(spec.TYPES) if decoded is None else decoded

    def __getitem__(self, type_):
        return self._tables[type_]

    def __iter__(self):
        return iter(self._tables)

    def __len__(self):
        return len(self._tables)

    def __repr__(self):
        nonzero = ", ".join(f"{t}={n:,}" for t, n in self.counts.items() if n)
        extra = f", unknown={self.unknown:,}" if self.unknown else ""
        eos = ", end_of_session" if self.end_of_session else ""
        return (
            f"<Tables messages={self.messages:,} seq={self.seq_start}..{self.next_seq} "
            f"consumed={self.consumed:,} bytes{extra}{eos} counts: {nonzero or 'none'}>"
        )


def _empty(type_):
    return np.empty(0, dtype=spec.dtype(type_))


def decode(buf, types=None, *, seq_start=0, source=None) -> Tables:
    """Decode BinaryFILE-framed ITCH 5.0 messages into one table per message type.

    Each message is preceded by its 2-byte big-endian length; a length of 0 marks the end
    of the session (decoding stops there). The buffer is read in place, never copied, with
    the GIL released.

    Parameters
    ----------
    buf : bytes, bytearray, memoryview, mmap.mmap or uint8 numpy array
        The framed messages (C-contiguous; read-only buffers are fine).
    types : iterable of str, optional
        Type characters to decode into tables (e.g. ``"ADU"`` or ``["A", "D"]``). Other
        types are still walked, validated and counted, which is faster. Default: all.
    seq_start : int, default 0
        ``seq`` of the first message, to continue numbering across chunks of one stream.
    source : str, optional
        Name of the input, used in error messages.

    Returns
    -------
    Tables
        Mapping of type character to numpy structured array, with ``counts``,
        ``consumed``, ``unknown``, ``messages``, ``next_seq`` and ``end_of_session``.
        A trailing partial message is left unconsumed, not an error.

    Raises
    ------
    DecodeError
        A known message type whose length prefix disagrees with the specification; the
        error's ``offset`` is the byte offset of that length prefix.
    ValueError
        ``types`` names something that is not an ITCH 5.0 message type.

    Examples
    --------
    >>> from hftcore import itch
    >>> wire = itch.encode("D", timestamp=34_200_000_000_000, order_ref=42)
    >>> tables = itch.decode(wire)
    >>> int(tables["D"]["order_ref"][0]), tables.consumed
    (42, 21)
    """
    return _decode(buf, _type_filter(types), seq_start, source, 0)


def _decode(buf, filt, seq_start, source, base_offset, progress=None) -> Tables:
    """:func:`decode` with validated ``types``, offsets in errors moved by ``base_offset``
    and an optional ``progress(bytes_done)`` callback."""
    if seq_start < 0:
        raise ValueError(f"seq_start must be >= 0, got {seq_start}")
    if isinstance(buf, np.ndarray) and buf.dtype != np.uint8:
        raise TypeError(f"numpy input must be a uint8 array, got dtype {buf.dtype}")
    tables, counts, consumed, unknown, messages, eos = decode_buffer(
        buf, filt, seq_start, source, base_offset, progress
    )
    return Tables(
        tables,
        counts,
        consumed=consumed,
        unknown=unknown,
        messages=messages,
        seq_start=seq_start,
        end_of_session=eos,
        decoded=filt,
    )


def concat_tables(parts: Iterable[Tables]) -> Tables:
    """Join the tables of consecutive chunks of one stream (as from :func:`iter_file`).

    Parameters
    ----------
    parts : iterable of Tables
        In stream order.

    Returns
    -------
    Tables
        One table per type; ``counts``, ``consumed``, ``unknown`` and ``messages`` summed,
        ``seq_start`` of the first part, ``end_of_session`` of the last.
    """
    parts = list(parts)
    if not parts:
        return Tables({}, {})
    tables = {}
    for t in spec.TYPES:
        arrays = [p[t] for p in parts if len(p[t])]
        if len(arrays) > 1:
            # Join as raw rows: a plain memcpy, and padding bytes stay as decoded (zero).
            raw = np.dtype((np.void, spec.dtype(t).itemsize))
            tables[t] = np.concatenate([a.view(raw) for a in arrays]).view(spec.dtype(t))
        else:
            tables[t] = arrays[0] if arrays else _empty(t)
    counts = {t: sum(p.counts[t] for p in parts) for t in spec.TYPES}
    return Tables(
        tables,
        counts,
        consumed=sum(p.consumed for p in parts),
        unknown=sum(p.unknown for p in parts),
        messages=sum(p.messages for p in parts),
        seq_start=parts[0].seq_start,
        end_of_session=parts[-1].end_of_session,
        decoded=parts[0].decoded,
    )


#: Bytes decoded at a time by :func:`iter_messages`.
_ITER_WINDOW = 1 << 20


def iter_messages(buf, types=None, *, seq_start=0, source=None) -> Iterator[tuple[str, np.void]]:
    """Yield messages one at a time as ``(type_char, row)``: the slow, convenient path.

    ``row`` is a ``numpy.void`` record of dtype :func:`hftcore.itch.spec.dtype`, so
    ``row["seq"]``, ``row["price"]`` work. Messages come in stream order; unknown types
    are skipped (they still use up a ``seq``). Decoding runs in windows of about 1 MiB
    through :func:`decode`, so memory stays small, but building a Python object per
    message costs about a microsecond each: use :func:`decode` for volume.

    Parameters
    ----------
    buf : bytes-like
        As for :func:`decode`.
    types : iterable of str, optional
        Only yield these types.
    seq_start : int, default 0
        ``seq`` of the first message.
    source : str, optional
        Name of the input, used in error messages.

    Yields
    ------
    (str, numpy.void)

    Raises
    ------
    DecodeError
        As :func:`decode`; also when the buffer ends inside a message (unlike
        :func:`decode`, there is no way to resume, so a partial tail is an error).

    Examples
    --------
    >>> from hftcore import itch
    >>> wire = itch.encode("S", event_code="O") + itch.encode("D", order_ref=7)
    >>> [(t, int(row["seq"])) for t, row in itch.iter_messages(wire)]
    [('S', 0), ('D', 1)]
    """
    filt = _type_filter(types)
    mv = memoryview(buf).cast("B") if not isinstance(buf, np.ndarray) else buf
    n = len(mv)
    pos = 0
    seq = seq_start
    while pos < n:
        end = min(n, pos + _ITER_WINDOW)
        part = _decode(mv[pos:end], filt, seq, source, pos)
        if part.messages == 0 and not part.end_of_session:
            if end == n:
                _raise_truncated(mv, pos, n, source)
            # One message longer than the window: widen it to that message.
            need = 2 + int.from_bytes(bytes(mv[pos : pos + 2]), "big")
            part = _decode(mv[pos : pos + need], filt, seq, source, pos)
        yield from _interleave(part)
        pos += part.consumed
        seq = part.next_seq
        if part.end_of_session:
            return


def _raise_truncated(mv, pos, n, source):
    left = n - pos
    need = 2 + int.from_bytes(bytes(mv[pos : pos + 2]), "big") if left >= 2 else 2
    raise DecodeError(f"truncated input: message needs {need} bytes, {left} left", pos, source)


def _interleave(part: Tables):
    """Rows of all tables of ``part`` in seq order."""
    present = [(t, a) for t, a in part.items() if len(a)]
    if not present:
        return
    seqs = np.concatenate([a["seq"] for _, a in present])
    which = np.concatenate([np.full(len(a), i, dtype=np.intp) for i, (_, a) in enumerate(present)])
    rows = np.concatenate([np.arange(len(a)) for _, a in present])
    order = np.argsort(seqs, kind="stable")
    for i, r in zip(which[order].tolist(), rows[order].tolist(), strict=True):
        t, a = present[i]
        yield t, a[r]
