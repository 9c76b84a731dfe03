# cython: language_level=3
"""Binance depth messages straight into an :class:`~hftcore.book.L2Book`.

One nogil pass parses the message and buffers its levels (on the stack for up to 512
levels); only once the whole message has been validated are the levels applied with
``L2Book.set_level``, so a malformed message never leaves a half-applied book. The
parsing is the decoders' own (``_json.parse_message``, ``_sbe.parse_depth``): a message
means the same here as in ``decode_many`` / ``decode_many_sbe``, envelopes, number shapes
and error reasons included. No
update-id sequencing is checked here (``hftcore.binance.sync.BookSync`` does that):
these functions parse and apply, and return the header for the caller to check.
"""

import numpy as np

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memcpy, memset

from hftcore._core.status cimport (
    ST_BAD_LENGTH,
    ST_BAD_SYNTAX,
    ST_CAPACITY,
    ST_UNKNOWN_TYPE,
    ST_WRONG_KIND,
    Status,
    raise_status,
    status_clear,
    status_set,
)
from hftcore.binance._json cimport (
    K_BOOK_TICKER,
    K_DEPTH,
    K_SNAPSHOT,
    K_TRADE,
    SYMBOL_WIDTH,
    DepthIds,
    Fields,
    depth_ids,
    parse_message,
)
from hftcore.binance._sbe cimport (
    TPL_BEST_BID_ASK,
    TPL_DEPTH_DIFF,
    TPL_DEPTH_SNAPSHOT,
    TPL_TRADES,
    SbeDepth,
    parse_depth,
    read_binance_header,
)
from hftcore.book._l2book cimport (
    ASK,
    BID,
    L2Book,
    L2Data,
    l2_begin_write,
    l2_clear_side,
    l2_count_updates,
    l2_end_write,
    l2_set_level,
)
from hftcore.codec.json cimport skip_ws
from hftcore.codec.levels cimport LevelRow, sink_free, sink_init
from hftcore.codec.sbe cimport SbeHeader

from hftcore.binance._json import FIELD_NAMES, KIND_NAMES
from hftcore.binance.records import DepthHeader
from hftcore.binance.schema import time_multiplier

cdef enum:
    STACK_LEVELS = 512       # diff levels held on the stack before the heap is used
    SNAP_STACK_LEVELS = 128  # snapshot levels likewise (partial depth: 5-20 per side)
    # One message releases the GIL only when it is longer than this: dropping and
    # retaking the GIL costs about as much as applying a typical diff (~20 levels).
    NOGIL_BYTES = 4096
    # Size bounds of the smallest message, for the header tables of the batch appliers.
    MIN_JSON_DEPTH_BYTES = 28  # {"lastUpdateId":0,"bids":[]}
    # header, block, two empty groups, empty symbol: 8 + 18 + 4 + 4 + 1
    MIN_SBE_DEPTH_BYTES = 35

# ns per unit of the default time unit, read once (apply_depth_json's hot call).
cdef int64_t MS_TO_NS = time_multiplier("ms")

# Level sinks write Levels as codec.levels.LevelRow: the layouts must agree.
cdef Level _level
cdef LevelRow _level_row
if (sizeof(Level) != sizeof(LevelRow)
        or <char *>&_level.qty - <char *>&_level != <char *>&_level_row.qty - <char *>&_level_row
        or <char *>&_level.side - <char *>&_level
        != <char *>&_level_row.side - <char *>&_level_row):
    raise ImportError("_apply: Level is not laid out as codec.levels.LevelRow")


cdef inline void buf_init(LevelBuf *buf, Level *stack, Level *snap_stack) noexcept nogil:
    sink_init(&buf.diff, stack, STACK_LEVELS, sizeof(Level), 0, True)
    sink_init(&buf.snap, snap_stack, SNAP_STACK_LEVELS, sizeof(Level), 0, True)
    buf.levels = stack
    buf.n = 0
    memset(buf.shapes, 0, sizeof(buf.shapes))


cdef inline void buf_free(LevelBuf *buf) noexcept nogil:
    sink_free(&buf.diff)
    sink_free(&buf.snap)


cdef inline void head_init(DepthHead *h) noexcept nogil:
    h.n_bids = 0
    h.n_asks = 0


cdef Py_ssize_t parse_depth_json(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                 int64_t mult, DepthHead *h, LevelBuf *buf,
                                 Status *st) noexcept nogil:
    """One JSON depth message (diff, partial depth or REST snapshot) into ``h``/``buf``,
    with the decoder's own parser; any other kind of message is ST_WRONG_KIND."""
    cdef Fields fl
    cdef DepthIds ids
    cdef Py_ssize_t r
    head_init(h)
    r = parse_message(p, pos, end, mult, &fl, &buf.diff, &buf.snap, buf.shapes, st)
    if r < 0:
        return -1
    if fl.kind != K_DEPTH and fl.kind != K_SNAPSHOT:
        return status_set(st, ST_WRONG_KIND, fl.start, fl.kind, 0)
    depth_ids(&fl, &ids)
    h.event_time = ids.event_time
    h.transaction_time = ids.transaction_time
    h.first_update_id = ids.first_update_id
    h.final_update_id = ids.final_update_id
    h.prev_final_update_id = ids.prev_final_update_id
    h.is_snapshot = fl.kind == K_SNAPSHOT
    memcpy(h.symbol, fl.symbol, SYMBOL_WIDTH)
    if h.is_snapshot:
        buf.levels = <Level *>buf.snap.rows
        buf.n = buf.snap.n
    else:
        buf.levels = <Level *>buf.diff.rows
        buf.n = buf.diff.n
    return r


cdef Py_ssize_t parse_depth_sbe(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                DepthHead *h, LevelBuf *buf, Status *st) noexcept nogil:
    """One SBE depth message with the decoder's own depth parser; a trade or best
    bid/ask is ST_WRONG_KIND, an unknown template ST_UNKNOWN_TYPE (as decoding says)."""
    cdef SbeHeader sh
    cdef SbeDepth d
    cdef Py_ssize_t r
    head_init(h)
    buf.diff.n = 0
    if read_binance_header(p, pos, end, &sh, st) < 0:
        return -1
    if sh.template_id == TPL_TRADES:
        return status_set(st, ST_WRONG_KIND, pos + 2, K_TRADE, 0)
    if sh.template_id == TPL_BEST_BID_ASK:
        return status_set(st, ST_WRONG_KIND, pos + 2, K_BOOK_TICKER, 0)
    if sh.template_id != TPL_DEPTH_DIFF and sh.template_id != TPL_DEPTH_SNAPSHOT:
        return status_set(st, ST_UNKNOWN_TYPE, pos + 2, sh.template_id, 0)
    r = parse_depth(p, pos, end, &sh, &d, &buf.diff, st)
    if r < 0:
        return -1
    h.event_time = d.event_time
    h.transaction_time = 0
    h.first_update_id = d.first_update_id
    h.final_update_id = d.final_update_id
    h.prev_final_update_id = -1
    h.is_snapshot = d.is_snapshot
    buf.levels = <Level *>buf.diff.rows
    buf.n = buf.diff.n
    return r


cdef void apply_levels(L2Data *d, DepthHead *h, const LevelBuf *buf) noexcept nogil:
    # Levels come in runs of one side (a message's "b" then "a" array): one inner loop
    # per run applies them with the side fixed, so there is no side test per level.
    # Each level's search starts where the previous one of its run landed: few steps
    # when a message lists its levels best first.
    cdef Py_ssize_t i = 0, j, n = buf.n, hint
    cdef const Level *lv = buf.levels
    # One write for the whole message: readers on other threads see it all or none.
    l2_begin_write(d)
    if h.is_snapshot:
        l2_clear_side(d, BID)
        l2_clear_side(d, ASK)
    while i < n:
        j = i
        hint = d.max_levels  # the touch
        if lv[i].side == BID:
            while j < n and lv[j].side == BID:
                hint = l2_set_level(d, BID, lv[j].price, lv[j].qty, hint)
                j += 1
            h.n_bids += j - i
        else:
            while j < n and lv[j].side != BID:
                hint = l2_set_level(d, ASK, lv[j].price, lv[j].qty, hint)
                j += 1
            h.n_asks += j - i
        i = j
    l2_count_updates(d, n)
    l2_end_write(d)


cdef inline void apply_buf(L2Book book, DepthHead *h, const LevelBuf *buf) noexcept nogil:
    apply_levels(&book.data, h, buf)


cdef void count_sides(DepthHead *h, const LevelBuf *buf) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(buf.n):
        if buf.levels[i].side == BID:
            h.n_bids += 1
        else:
            h.n_asks += 1


cdef extern from *:
    """
    /* tuple.__new__(type, items) for a tuple subtype of 8 items, without a Python call.
       Up to CPython 3.13 a tuple is its header and its items, and tuple_subtype_new
       makes a subtype instance as the type's tp_alloc filled with the items: the same
       here, without its two temporary tuples (the items and the argument tuple). Later
       versions keep more in a tuple (3.14 caches the hash): there tuple's own
       constructor is called through its C slot, which initializes all of it. */
    static PyObject *hft_tuple_subtype8(PyObject *type, PyObject *a, PyObject *b,
                                        PyObject *c, PyObject *d, PyObject *e,
                                        PyObject *f, PyObject *g, PyObject *h) {
    #if PY_VERSION_HEX < 0x030E0000 && !defined(PYPY_VERSION)
        PyObject *r = ((PyTypeObject *)type)->tp_alloc((PyTypeObject *)type, 8);
        if (r == NULL) return NULL;
        Py_INCREF(a); PyTuple_SET_ITEM(r, 0, a);
        Py_INCREF(b); PyTuple_SET_ITEM(r, 1, b);
        Py_INCREF(c); PyTuple_SET_ITEM(r, 2, c);
        Py_INCREF(d); PyTuple_SET_ITEM(r, 3, d);
        Py_INCREF(e); PyTuple_SET_ITEM(r, 4, e);
        Py_INCREF(f); PyTuple_SET_ITEM(r, 5, f);
        Py_INCREF(g); PyTuple_SET_ITEM(r, 6, g);
        Py_INCREF(h); PyTuple_SET_ITEM(r, 7, h);
        return r;
    #else
        PyObject *items = PyTuple_Pack(8, a, b, c, d, e, f, g, h);
        PyObject *args, *r;
        if (items == NULL) return NULL;
        args = PyTuple_Pack(1, items);
        Py_DECREF(items);
        if (args == NULL) return NULL;
        r = PyTuple_Type.tp_new((PyTypeObject *)type, args, NULL);
        Py_DECREF(args);
        return r;
    #endif
    }
    """
    object tuple_subtype8 "hft_tuple_subtype8"(
        object type, object a, object b, object c, object d, object e, object f, object g,
        object h)


cdef object head_tuple(const DepthHead *h):
    # The NamedTuple's Python-level __new__ would cost a frame per call.
    return tuple_subtype8(DepthHeader, h.event_time, h.transaction_time,
                          h.first_update_id, h.final_update_id, h.prev_final_update_id,
                          h.n_bids, h.n_asks, True if h.is_snapshot else False)


# Verdicts of apply_depth_json_after (what happened to the message).
APPLIED = V_APPLIED
STALE = V_STALE
GAP = V_GAP
NOT_A_DIFF = V_NOT_A_DIFF
OTHER_SYMBOL = V_OTHER_SYMBOL


cdef inline uint8_t ascii_upper(uint8_t c) noexcept nogil:
    return c - 32 if c'a' <= c <= c'z' else c


cdef bint other_symbol(const DepthHead *h) noexcept nogil:
    """The message names a symbol (``s`` not empty) other than ``h.want_symbol``, ASCII
    case aside. Its length is decode_many's: the NUL padding stripped from the end."""
    cdef Py_ssize_t n = SYMBOL_WIDTH, i
    while n > 0 and h.symbol[n - 1] == 0:
        n -= 1
    if n == 0:
        return False  # no symbol: the record path takes it too (BookSync._as_update)
    if n != h.want_len:
        return True
    for i in range(n):
        if ascii_upper(<uint8_t>h.symbol[i]) != <uint8_t>h.want_symbol[i]:
            return True
    return False


cdef Py_ssize_t json_one(L2Book book, const uint8_t *p, Py_ssize_t end, int64_t mult,
                         bint checked, int64_t last_update_id, bint usdm, DepthHead *h,
                         LevelBuf *buf, Status *st, int *verdict) noexcept nogil:
    cdef Py_ssize_t r = parse_depth_json(p, 0, end, mult, h, buf, st)
    if r >= 0:
        r = skip_ws(p, r, end)
        if r < end:
            return status_set(st, ST_BAD_SYNTAX, r, p[r], 0)
        if checked:
            if h.want_symbol != NULL and other_symbol(h):
                verdict[0] = V_OTHER_SYMBOL
            else:
                verdict[0] = continuity(h, last_update_id, usdm, True)
        if verdict[0] == V_APPLIED:
            apply_buf(book, h, buf)
        else:
            count_sides(h, buf)
    return r


cdef Py_ssize_t parse_apply(bint sbe, L2Book book, const uint8_t *p, Py_ssize_t end,
                            int64_t mult, bint checked, int64_t last_update_id, bint usdm,
                            DepthHead *h, LevelBuf *buf, Status *st,
                            int *verdict) noexcept nogil:
    if sbe:
        return sbe_one(book, p, end, h, buf, st)
    return json_one(book, p, end, mult, checked, last_update_id, usdm, h, buf, st, verdict)


cdef object apply_one(L2Book book, object msg, bint sbe, int64_t mult, bint checked,
                      int64_t last_update_id, bint usdm, int *verdict,
                      bytes symbol=None):
    """Parse one JSON (or ``sbe``) message; apply it unless ``checked`` and it does not
    continue the book, or names another ``symbol`` (upper case) than the book's."""
    cdef const uint8_t[::1] view
    cdef Py_ssize_t end
    cdef const uint8_t *p
    if not sbe and isinstance(msg, str):
        msg = (<str>msg).encode("utf-8")
    if PyBytes_CheckExact(msg):
        # The common case (a WebSocket frame): no buffer-protocol round trip.
        p = <const uint8_t *>PyBytes_AS_STRING(msg)
        end = PyBytes_GET_SIZE(msg)
    else:
        view = msg
        end = view.shape[0]
        p = &view[0] if end > 0 else NULL
    cdef Level stack[STACK_LEVELS]
    cdef Level snap_stack[SNAP_STACK_LEVELS]
    cdef LevelBuf buf
    cdef DepthHead h
    cdef Status st
    cdef Py_ssize_t r
    cdef int v = V_APPLIED
    buf_init(&buf, stack, snap_stack)
    status_clear(&st)
    h.want_symbol = NULL
    if symbol is not None:
        h.want_symbol = symbol
        h.want_len = len(symbol)
    if end > NOGIL_BYTES:
        with nogil:
            r = parse_apply(sbe, book, p, end, mult, checked, last_update_id, usdm, &h,
                            &buf, &st, &v)
    else:
        r = parse_apply(sbe, book, p, end, mult, checked, last_update_id, usdm, &h, &buf,
                        &st, &v)
    buf_free(&buf)
    if r < 0:
        raise_status(&st, None, FIELD_NAMES, KIND_NAMES)
    verdict[0] = v
    return head_tuple(&h)


def apply_depth_json(L2Book book not None, msg, str time_unit="ms"):
    """Parse one Binance JSON depth message and apply its levels to ``book``.

    Diff events (``depthUpdate``, spot or USD-M, raw or in a combined-stream ``data`` or
    WebSocket API ``event`` envelope) set each level; snapshots (REST ``/depth`` bodies,
    spot partial book depth with ``lastUpdateId``) replace the book. Update ids are NOT
    checked here: compare the returned header with your book's state, or use
    :func:`apply_depth_json_after`, which checks them before applying.

    Parameters
    ----------
    book : hftcore.book.L2Book
    msg : bytes-like or str
        One message.
    time_unit : {"ms", "us"}

    Returns
    -------
    DepthHeader
        ``(event_time, transaction_time, first_update_id, final_update_id,
        prev_final_update_id, n_bids, n_asks, is_snapshot)``; absent times are 0, absent
        ids -1.

    Raises
    ------
    DecodeError
        Malformed message (as :func:`decode_many` reports it), or a well-formed message
        of another kind ("unexpected message kind 'trade'"); the book is then left
        untouched.
    """
    cdef int64_t mult = MS_TO_NS if time_unit == "ms" else time_multiplier(time_unit)
    cdef int v
    return apply_one(book, msg, False, mult, False, 0, False, &v)


def apply_depth_json_after(L2Book book not None, msg, int64_t last_update_id,
                           str market="spot", str time_unit="ms", str symbol=None):
    """Apply one JSON depth diff only if it continues a book at ``last_update_id``.

    The update ids are read and checked in the same nogil pass, before any level is
    applied, with Binance's rules for a live local book:

    - ``u <= last_update_id``: already in the book (repeated or out of order):
      :data:`STALE`, not applied;
    - spot: ``U > last_update_id + 1``; USD-M: ``pu != last_update_id``: events were
      missed: :data:`GAP`, not applied;
    - a snapshot (``lastUpdateId``): :data:`NOT_A_DIFF`, not applied;
    - with ``symbol``: an event whose own ``"s"`` (top level, or in the envelope's
      payload; never a nested or repeated one: a duplicated key is a DecodeError) names
      another symbol: :data:`OTHER_SYMBOL`, not applied;
    - otherwise :data:`APPLIED`.

    Parameters
    ----------
    book : hftcore.book.L2Book
    msg : bytes-like or str
        One ``depthUpdate`` (raw or in a combined-stream envelope).
    last_update_id : int
        The update id the book reflects (the last applied ``u``).
    market : {"spot", "usdm"}
    time_unit : {"ms", "us"}
    symbol : str, optional
        The book's symbol: an event for another one is not applied. Compared ignoring
        ASCII case; an event with an empty ``"s"`` matches (as in
        :class:`~hftcore.binance.BookSync`).

    Returns
    -------
    verdict : int
        :data:`APPLIED`, :data:`STALE`, :data:`GAP`, :data:`NOT_A_DIFF` or
        :data:`OTHER_SYMBOL` (checked first).
    header : DepthHeader
        As :func:`apply_depth_json` (``n_bids`` / ``n_asks`` count the message's levels
        whether applied or not).

    Raises
    ------
    DecodeError
        Malformed message or not a depth message; the book is then left untouched.
    """
    cdef bint usdm
    if market == "spot":
        usdm = False
    elif market == "usdm":
        usdm = True
    else:
        raise ValueError(f"market must be 'spot' or 'usdm', not {market!r}")
    cdef int64_t mult = MS_TO_NS if time_unit == "ms" else time_multiplier(time_unit)
    cdef int v
    cdef bytes want = None
    if symbol is not None:
        want = symbol.encode("utf-8").upper()  # bytes.upper: ASCII only
    head = apply_one(book, msg, False, mult, True, last_update_id, usdm, &v, want)
    return v, head


cdef Py_ssize_t sbe_one(L2Book book, const uint8_t *p, Py_ssize_t end, DepthHead *h,
                        LevelBuf *buf, Status *st) noexcept nogil:
    cdef Py_ssize_t r = parse_depth_sbe(p, 0, end, h, buf, st)
    if r >= 0 and r != end:
        return status_set(st, ST_BAD_LENGTH, 0, r, end)
    if r >= 0:
        apply_buf(book, h, buf)
    return r


def apply_depth_sbe(L2Book book not None, msg):
    """Parse one Binance SBE depth message and apply its levels to ``book``.

    ``DepthDiffStreamEvent`` (10003) sets each level; ``DepthSnapshotStreamEvent``
    (10002) replaces the book. Update ids are not checked here.

    Parameters
    ----------
    book : hftcore.book.L2Book
    msg : bytes-like
        One SBE message, header included.

    Returns
    -------
    DepthHeader
        As :func:`apply_depth_json` (``transaction_time`` 0, ``prev_final_update_id`` -1).

    Raises
    ------
    DecodeError
        Truncated, wrong schema, not a depth template, inexact exponent; the book is then
        left untouched.
    """
    cdef int v
    return apply_one(book, msg, True, 0, False, 0, False, &v)


cdef packed struct HeadRow:
    int64_t event_time
    int64_t transaction_time
    int64_t first_update_id
    int64_t final_update_id
    int64_t prev_final_update_id
    int64_t n_bids
    int64_t n_asks
    uint8_t is_snapshot


cdef inline void store_head(HeadRow *row, const DepthHead *h) noexcept nogil:
    """One row of the header table that the batch appliers return."""
    row.event_time = h.event_time
    row.transaction_time = h.transaction_time
    row.first_update_id = h.first_update_id
    row.final_update_id = h.final_update_id
    row.prev_final_update_id = h.prev_final_update_id
    row.n_bids = h.n_bids
    row.n_asks = h.n_asks
    row.is_snapshot = h.is_snapshot


HEAD_DTYPE = np.dtype([
    ("event_time", "<i8"), ("transaction_time", "<i8"), ("first_update_id", "<i8"),
    ("final_update_id", "<i8"), ("prev_final_update_id", "<i8"), ("n_bids", "<i8"),
    ("n_asks", "<i8"), ("is_snapshot", "?"),
])


def apply_depth_json_many(L2Book book not None, data, str time_unit="ms"):
    """Apply every depth message of a newline-delimited JSON buffer to ``book``, in
    order, in one nogil loop (replays and benchmarks; no update-id checks).

    Parameters
    ----------
    book : hftcore.book.L2Book
    data : bytes-like or str
        Depth messages separated by whitespace (newline-delimited JSON).
    time_unit : {"ms", "us"}

    Returns
    -------
    numpy.ndarray
        One row per message with the :class:`DepthHeader` fields.

    Raises
    ------
    DecodeError
        At the first bad message (``source`` names it); the messages before it have been
        applied, that one has not.
    """
    cdef int64_t mult = time_multiplier(time_unit)
    if isinstance(data, str):
        data = data.encode("utf-8")
    cdef const uint8_t[::1] view = data
    cdef Py_ssize_t end = view.shape[0]
    cdef const uint8_t *p = &view[0] if end > 0 else NULL
    cdef Level stack[STACK_LEVELS]
    cdef Level snap_stack[SNAP_STACK_LEVELS]
    cdef LevelBuf buf
    cdef DepthHead h
    cdef Status st
    cdef Py_ssize_t pos = 0, r = 0, n = 0
    cdef bint full = False
    # One row per message: a message takes at least MIN_JSON_DEPTH_BYTES, so this is
    # room for all; the table grows anyway if that bound were ever wrong (never an
    # error for valid input).
    heads = np.empty(end // MIN_JSON_DEPTH_BYTES + 16, dtype=HEAD_DTYPE)
    cdef HeadRow[::1] out = heads
    buf_init(&buf, stack, snap_stack)
    status_clear(&st)
    while True:
        with nogil:
            while True:
                pos = skip_ws(p, pos, end)
                if pos >= end:
                    break
                if n >= out.shape[0]:
                    full = True
                    break
                r = parse_depth_json(p, pos, end, mult, &h, &buf, &st)
                if r < 0:
                    break
                apply_buf(book, &h, &buf)
                store_head(&out[n], &h)
                n += 1
                pos = r
        if not full:
            break
        full = False
        heads = np.concatenate([heads, np.empty(len(heads) + 16, dtype=HEAD_DTYPE)])
        out = heads
    buf_free(&buf)
    if r < 0:
        raise_status(&st, f"message {n}", FIELD_NAMES, KIND_NAMES)
    return heads[:n].copy()


def apply_depth_sbe_many(L2Book book not None, data):
    """Apply back-to-back Binance SBE depth messages (a replay buffer) to ``book``, in
    order, in one nogil loop (replays and benchmarks; no update-id checks).

    Parameters
    ----------
    book : hftcore.book.L2Book
    data : bytes-like
        SBE depth messages (10003 diffs, 10002 snapshots), headers included, with no
        framing between them.

    Returns
    -------
    numpy.ndarray
        One row per message with the :class:`DepthHeader` fields.

    Raises
    ------
    DecodeError
        At the first bad message (``source`` names it); the messages before it have been
        applied, that one has not.
    """
    cdef const uint8_t[::1] view = data
    cdef Py_ssize_t end = view.shape[0]
    cdef const uint8_t *p = &view[0] if end > 0 else NULL
    cdef Level stack[STACK_LEVELS]
    cdef Level snap_stack[SNAP_STACK_LEVELS]
    cdef LevelBuf buf
    cdef DepthHead h
    cdef Status st
    cdef Py_ssize_t pos = 0, r = 0, n = 0
    heads = np.empty(end // MIN_SBE_DEPTH_BYTES + 1, dtype=HEAD_DTYPE)
    cdef HeadRow[::1] out = heads
    buf_init(&buf, stack, snap_stack)
    status_clear(&st)
    with nogil:
        while pos < end:
            if n >= out.shape[0]:  # cannot happen: see the bound above
                r = status_set(&st, ST_CAPACITY, pos, n, 0)
                break
            r = parse_depth_sbe(p, pos, end, &h, &buf, &st)
            if r < 0:
                break
            apply_buf(book, &h, &buf)
            store_head(&out[n], &h)
            n += 1
            pos = r
        buf_free(&buf)
    if r < 0:
        raise_status(&st, f"message {n}", FIELD_NAMES, KIND_NAMES)
    return heads[:n].copy()
