"""ITCH 5.0 encoder: tables or keyword fields back to BinaryFILE-framed wire bytes.

Used by tests, the simulators and the synthetic-data generator. Vectorized with numpy
(big-endian packed dtypes derived from :mod:`hftcore.itch.spec`), so encoding millions of
messages is fast enough for generating day-sized files.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hftcore.itch import spec

__all__ = ["encode", "encode_table", "encode_stream", "wire_dtype"]

_WIRE: dict[str, np.dtype] = {}


def wire_dtype(type_: str) -> np.dtype:
    """Packed big-endian dtype of one framed message: 2-byte length prefix, then the body.

    The 6-byte timestamp is split into ``timestamp_hi`` (2 bytes) and ``timestamp_lo``
    (4 bytes), since numpy has no 48-bit integer.
    """
    dt = _WIRE.get(type_)
    if dt is None:
        msg = spec.BY_TYPE[type_]
        cols = [("length", ">u2"), ("message_type", "S1")]
        for f in msg.all_fields:
            if f.name == "timestamp":
                cols += [("timestamp_hi", ">u2"), ("timestamp_lo", ">u4")]
            elif f.kind in ("alpha", "enum"):
                cols.append((f.name, f"S{f.size}"))
            else:
                cols.append((f.name, f">u{f.size}"))
        dt = np.dtype(cols)  # packed: the wire has no padding
        assert dt.itemsize == msg.length + 2
        _WIRE[type_] = dt
    return dt


def _pad_alpha(values, width):
    """Space-pad byte strings to the field's width, as the wire wants (numpy pads NUL)."""
    arr = np.asarray(values, dtype=f"S{width}")
    if arr.size == 0:  # np.char.ljust cannot reduce over an empty array
        return arr
    return np.char.ljust(arr, width, b" ")


def encode_table(type_: str, table) -> bytes:
    """Encode every row of ``table`` as framed messages of ``type_``, in row order.

    Parameters
    ----------
    type_ : str
        Message type character, e.g. ``"A"``.
    table : numpy structured array or mapping of column name to array-like
        Columns named as in :func:`hftcore.itch.spec.dtype` (``seq`` is ignored).
        Missing columns encode as 0 (integers) or spaces (alphas and enums).

    Returns
    -------
    bytes
        ``len(table)`` messages, each with its 2-byte big-endian length prefix.

    Raises
    ------
    KeyError
        ``type_`` is not an ITCH 5.0 message type.
    ValueError
        A value does not fit its field.
    """
    if isinstance(table, np.ndarray):
        names = table.dtype.names or ()
        return _encode_columns(type_, {n: table[n] for n in names}, len(table))
    cols = dict(table)
    lens = {len(np.atleast_1d(v)) for v in cols.values()}
    if len(lens) > 1:
        raise ValueError(f"columns of different lengths: {sorted(lens)}")
    return _encode_columns(type_, cols, lens.pop() if lens else 0)


def _encode_columns(type_: str, cols: dict, n: int) -> bytes:
    """``n`` framed messages of ``type_`` from columns (absent ones encode as 0/spaces)."""
    msg = spec.BY_TYPE[type_]
    known = {f.name for f in msg.all_fields} | {"seq"}
    extra = set(cols) - known
    if extra:
        raise ValueError(f"unknown field(s) for ITCH message {type_!r}: {sorted(extra)}")
    out = np.zeros(n, dtype=wire_dtype(type_))
    out["length"] = msg.length
    out["message_type"] = type_.encode()
    for f in msg.all_fields:
        if f.name not in cols:
            if f.kind in ("alpha", "enum"):
                out[f.name] = b" " * f.size
            continue
        v = np.broadcast_to(np.asarray(cols[f.name]), (n,))
        if f.kind in ("alpha", "enum"):
            if v.dtype.kind == "U":
                v = np.char.encode(v, "ascii")
            if v.dtype.kind == "S" and v.dtype.itemsize > f.size:
                too_long = np.char.str_len(v) > f.size
                if too_long.any():
                    bad = v[np.argmax(too_long)]
                    raise ValueError(f"{f.name}={bad!r} is wider than {f.size} bytes")
            out[f.name] = _pad_alpha(v, f.size)
            continue
        iv = v.astype(np.int64) if v.dtype.kind != "u" else v.astype(np.uint64)
        limit = (1 << (8 * f.size)) - 1
        if iv.size and (int(iv.min()) < 0 or int(iv.max()) > limit):
            raise ValueError(f"{f.name} out of range for a {f.size}-byte field")
        if f.name == "timestamp":
            u = iv.astype(np.uint64)
            out["timestamp_hi"] = (u >> np.uint64(32)).astype(np.uint16)
            out["timestamp_lo"] = (u & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        else:
            out[f.name] = iv
    return out.tobytes()


def encode(type_: str, **fields) -> bytes:
    """Encode one message of ``type_`` from keyword fields, with its length prefix.

    Parameters
    ----------
    type_ : str
        Message type character.
    **fields
        Field values by name (see :mod:`hftcore.itch.spec`); ``str`` is accepted for
        alpha and enum fields. Missing fields encode as 0 or spaces.

    Returns
    -------
    bytes

    Examples
    --------
    >>> from hftcore import itch
    >>> wire = itch.encode("A", timestamp=34_200_000_000_000, order_ref=1, side="B",
    ...                    shares=100, stock="AAPL", price=1_892_500)
    >>> len(wire)
    38
    """
    return _encode_columns(type_, {k: [v] for k, v in fields.items()}, 1)


def encode_stream(tables: Mapping[str, np.ndarray]) -> bytes:
    """Encode decoded tables back into one stream, messages ordered by their ``seq``.

    Parameters
    ----------
    tables : mapping of type character to structured array
        As returned by :func:`hftcore.itch.decode` (each array must have ``seq``).
        ``seq`` values must be unique across tables.

    Returns
    -------
    bytes
        The BinaryFILE-framed stream.
    """
    parts = []
    for t, arr in tables.items():
        if len(arr) == 0:
            continue
        wire = np.frombuffer(encode_table(t, arr), dtype=np.uint8)
        parts.append((t, np.asarray(arr["seq"], dtype=np.int64), wire))
    if not parts:
        return b""
    seqs = np.concatenate([p[1] for p in parts])
    sizes = np.concatenate([np.full(len(p[1]), spec.BY_TYPE[p[0]].length + 2) for p in parts])
    order = np.argsort(seqs, kind="stable")
    if len(seqs) > 1 and (np.diff(seqs[order]) == 0).any():
        raise ValueError("duplicate seq values across tables")
    starts_sorted = np.concatenate([[0], np.cumsum(sizes[order])[:-1]])
    starts = np.empty_like(starts_sorted)
    starts[order] = starts_sorted
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    pos = 0
    for t, s, wire in parts:
        size = spec.BY_TYPE[t].length + 2
        mine = starts[pos : pos + len(s)]
        pos += len(s)
        idx = mine[:, None] + np.arange(size)
        out[idx.ravel()] = wire
    return out.tobytes()
