# cython: language_level=3
"""NASDAQ TotalView-ITCH 5.0 batch decoder: BinaryFILE-framed bytes to numpy tables.

Two nogil passes over the buffer:

1. :func:`itch_walk` follows the 2-byte big-endian length prefixes, checks every known
   type's length against the spec, counts messages per type and finds where the last whole
   message ends. It is the only code that looks at untrusted lengths.
2. :func:`itch_fill` walks the same, now validated, messages again, block by block: it
   buckets a block's messages by type, then writes each bucket with one tight loop around
   the type's straight-line row writer, generated from the spec (``_decode_gen.pxi``, by
   ``tools/gen_itch_decoder.py``). No data-dependent branch per message.

Between the passes the tables are allocated at their exact sizes, so nothing grows and
nothing is allocated per message. The Python layer is :mod:`hftcore.itch.decoder`.
"""

cimport numpy as cnp
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from hftcore._core.bytes cimport load_be16, load_be32, load_be48, load_be64
from hftcore._core.bytes cimport store16, store32, store64
from hftcore._core.status cimport Status, raise_status, status_clear
from hftcore.itch._wire cimport ITCH_FRAME_PREFIX, wire_constants

import numpy as np

from hftcore.itch import spec as _spec

cnp.import_array()

include "_decode_gen.pxi"


def _layout(msg):
    dt = _spec.dtype(msg.type)
    return (
        dt.itemsize,
        tuple((f.name, f.kind, f.offset, f.size, dt.fields[f.name][1]) for f in msg.all_fields),
    )


# The generated writers and _wire.pxd hard-code offsets; refuse to run if the spec moved
# under them.
if GEN_TYPES != "".join(_spec.TYPES) or any(
    GEN_LAYOUT[m.type] != _layout(m) for m in _spec.MESSAGES
) or wire_constants() != _spec.wire_constants():
    raise ImportError(
        "hftcore/itch/_decode_gen.pxi or _wire.pxd is stale: run tools/gen_itch_decoder.py"
        " and rebuild"
    )


cdef int itch_walk(const uint8_t *buf, Py_ssize_t n, ItchWalk *w,
                   Status *st) noexcept nogil:
    """Walk whole messages of ``buf[:n]``; fill ``w``. Returns 0, or -1 with ``st`` set.

    Stops without error at a partial tail (even a partial length prefix), which is left
    unconsumed so a stream can resume there. A zero length prefix ends the session.
    """
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t messages = 0
    cdef Py_ssize_t unknown = 0
    cdef Py_ssize_t length = 0
    cdef int frame
    memset(w, 0, sizeof(ItchWalk))
    while True:
        frame = itch_frame(buf, n, pos, &length, st)
        # Nested ifs, not a chain on ``frame``: Cython would make that a switch.
        if frame != FRAME_MESSAGE:
            if frame != FRAME_UNKNOWN:
                if frame == FRAME_END:
                    w.end_of_session = True
                    pos += ITCH_FRAME_PREFIX
                break
            unknown += 1
        w.counts[buf[pos + ITCH_FRAME_PREFIX]] += 1
        messages += 1
        pos += ITCH_FRAME_PREFIX + length
    w.consumed = pos
    w.messages = messages
    w.unknown = unknown
    return -1 if frame == FRAME_BAD else 0


cdef Py_ssize_t itch_fill(const uint8_t *buf, Py_ssize_t messages, const uint8_t *dispatch,
                          uint8_t **rows, uint64_t seq_start,
                          uint64_t *index) noexcept nogil:
    """Write the first ``messages`` messages of ``buf`` (already walked) into ``rows``.

    Returns the bytes those messages take, so a caller can fill in slices.

    ``dispatch[type byte]`` is the table index to write to, 0 to skip the message;
    ``rows[k]`` is the next free row of table ``k`` and is advanced. ``index`` is scratch
    space of ``(N_ITCH_TYPES + 1) * ITCH_BLOCK`` entries.

    Block by block, the messages are first bucketed by table (a branch-free walk), then
    each bucket is written by its own tight loop: a per-message switch on the type would
    mispredict on most messages of a real day's mix.
    """
    cdef Py_ssize_t count[N_ITCH_TYPES + 1]
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t start
    cdef Py_ssize_t done = 0
    cdef Py_ssize_t nb
    cdef Py_ssize_t j
    cdef int k
    while done < messages:
        nb = messages - done
        if nb > ITCH_BLOCK:
            nb = ITCH_BLOCK
        start = pos
        memset(count, 0, sizeof(count))
        for j in range(nb):
            k = dispatch[buf[pos + ITCH_FRAME_PREFIX]]
            index[k * ITCH_BLOCK + count[k]] = (<uint64_t>j << 32) | <uint64_t>(pos - start)
            count[k] += 1
            pos += ITCH_FRAME_PREFIX + <Py_ssize_t>load_be16(buf + pos)
        count[0] = 0
        fill_block(rows, count, index, buf + start + ITCH_FRAME_PREFIX,
                   seq_start + <uint64_t>done)
        done += nb
    return pos


def decode_buffer(const uint8_t[::1] buf, str types=None, uint64_t seq_start=0,
                  object source=None, Py_ssize_t base_offset=0, object progress=None,
                  Py_ssize_t progress_every=1 << 22):
    """Decode ``buf``; the kernel behind :func:`hftcore.itch.decode`.

    Parameters
    ----------
    buf : buffer of bytes
        BinaryFILE-framed ITCH 5.0 messages.
    types : str, optional
        Type characters to decode into tables (already validated); ``None``: all.
    seq_start : int
        ``seq`` of the first message.
    source : str, optional
        Input name for error messages.
    base_offset : int
        Added to byte offsets in errors (position of ``buf`` in a larger stream).
    progress : callable, optional
        Called as ``progress(bytes_done)`` after every ``progress_every`` messages of the
        fill pass (the GIL is taken back in between).

    Returns
    -------
    tuple
        ``(tables, counts, consumed, unknown, messages, end_of_session)`` with
        ``tables`` a dict of type to array (every type) and ``counts`` a dict of type to
        messages walked (every type).
    """
    cdef Py_ssize_t n = buf.shape[0]
    cdef const uint8_t *p = &buf[0] if n > 0 else NULL
    cdef ItchWalk w
    cdef Status st
    cdef uint8_t dispatch[N_TYPE_BYTES]
    cdef uint8_t *rows[N_ITCH_TYPES + 1]
    cdef int k
    cdef int rc
    cdef Py_ssize_t done = 0
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t step
    cdef cnp.ndarray arr
    cdef cnp.ndarray scratch
    cdef uint64_t *index
    status_clear(&st)
    memset(rows, 0, sizeof(rows))
    memset(dispatch, 0, sizeof(dispatch))
    with nogil:
        rc = itch_walk(p, n, &w, &st)
    if rc != 0:
        st.offset += base_offset
        raise_status(&st, source)
    tables = {}
    counts = {}
    any_rows = False
    for k in range(N_ITCH_TYPES):
        t = GEN_TYPES[k]
        c = ord(t)
        count = w.counts[c]
        counts[t] = count
        if (types is None or t in types) and count:
            arr = np.empty(count, dtype=_spec.dtype(t))
            rows[k + 1] = <uint8_t *>cnp.PyArray_DATA(arr)
            dispatch[c] = k + 1
            any_rows = True
        else:
            arr = np.empty(0, dtype=_spec.dtype(t))
        tables[t] = arr
    if any_rows:
        scratch = np.empty((N_ITCH_TYPES + 1) * ITCH_BLOCK, dtype=np.uint64)
        index = <uint64_t *>cnp.PyArray_DATA(scratch)
        step = w.messages if progress is None else max(progress_every, 1)
        while done < w.messages:
            if step > w.messages - done:
                step = w.messages - done
            with nogil:
                pos += itch_fill(p + pos, step, dispatch, rows, seq_start + <uint64_t>done,
                                 index)
            done += step
            if progress is not None:
                progress(pos)
    return tables, counts, w.consumed, w.unknown, w.messages, bool(w.end_of_session)
