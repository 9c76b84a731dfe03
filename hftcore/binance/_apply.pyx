# cython: language_level=3
"""Binance depth messages straight into an :class:`~hftcore.book.L2Book`.

One nogil pass parses the message and buffers its levels (on the stack for up to 512
levels); only once the whole message has been validated are the levels applied with
``L2Book.set_level``, so a malformed message never leaves a half-applied book. No
update-id sequencing is checked here (``hftcore.binance.sync.BookSync`` does that):
these functions parse and apply, and return the header for the caller to check.
"""

import numpy as np

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.stdint cimport int8_t, int64_t, uint8_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

from hftcore._core.bytes cimport load_le16, load_le64
from hftcore._core.status cimport (
    ST_BAD_LENGTH,
    ST_BAD_SYNTAX,
    ST_CAPACITY,
    ST_MISSING_FIELD,
    ST_OVERFLOW,
    ST_TRUNCATED,
    ST_UNKNOWN_TYPE,
    ST_ZERO_LENGTH,
    Status,
    status_clear,
    status_reason,
    status_set,
)
from hftcore.binance._json cimport (
    level_as_printed,
    parse_int64,
    parse_level,
    read_time,
    skip_value,
    skip_ws,
    is_digit,
    read_key,
    after_item,
)
from hftcore.binance._sbe cimport (
    SBE_HEADER_SIZE,
    TPL_DEPTH_DIFF,
    TPL_DEPTH_SNAPSHOT,
    SbeHeader,
    read_header,
    scale8,
)
from hftcore.book._l2book cimport ASK, BID, L2Book

from hftcore.binance.records import DepthHeader

cdef enum:
    STACK_LEVELS = 512
    # One message releases the GIL only when it is longer than this: dropping and
    # retaking the GIL costs about as much as applying a typical diff (~20 levels).
    NOGIL_BYTES = 4096
    H_E = 0          # bits of DepthHead.seen
    H_T = 1
    H_U = 2
    H_u = 3
    H_pu = 4
    H_LAST = 5
    H_LEVELS = 6     # b/a arrays (diff)
    H_SNAP = 7       # bids/asks arrays (snapshot)
    V_APPLIED = 0    # verdicts of apply_depth_json_after
    V_STALE = 1
    V_GAP = 2
    V_NOT_A_DIFF = 3

HEAD_FIELDS = {H_U: "U", H_u: "u", H_LAST: "lastUpdateId"}


cdef inline void buf_init(LevelBuf *buf, Level *stack) noexcept nogil:
    buf.levels = stack
    buf.cap = STACK_LEVELS
    buf.on_heap = False
    buf.n = 0
    memset(buf.shapes, 0, sizeof(buf.shapes))


cdef int push_level(LevelBuf *buf, int side, int64_t price, int64_t qty,
                    Py_ssize_t pos, Status *st) noexcept nogil:
    cdef Level *grown
    cdef Py_ssize_t cap
    if buf.n == buf.cap:
        cap = buf.cap * 4
        if buf.on_heap:
            grown = <Level *>realloc(buf.levels, cap * sizeof(Level))
        else:
            grown = <Level *>malloc(cap * sizeof(Level))
            if grown != NULL:
                memcpy(grown, buf.levels, buf.n * sizeof(Level))
        if grown == NULL:
            return status_set(st, ST_CAPACITY, pos, buf.cap, 0)
        buf.levels = grown
        buf.cap = cap
        buf.on_heap = True
    buf.levels[buf.n].price = price
    buf.levels[buf.n].qty = qty
    buf.levels[buf.n].side = side
    buf.n += 1
    return 0


cdef Py_ssize_t levels_json(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end, int side,
                            LevelBuf *buf, Status *st) noexcept nogil:
    cdef bint done
    cdef int64_t price, qty
    cdef Py_ssize_t q
    pos = skip_ws(p, pos + 1, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == 93:
        return pos + 1
    while True:
        q = level_as_printed(p, pos, end, buf.shapes, &price, &qty)
        pos = q if q >= 0 else parse_level(p, pos, end, &price, &qty, st)
        if pos < 0 or push_level(buf, side, price, qty, pos, st) < 0:
            return -1
        # The compact separator ``,[`` first: no whitespace scan between levels.
        if end - pos > 1 and load_le16(p + pos) == 0x5B2C:  # ',['
            pos += 1
            continue
        pos = after_item(p, pos, end, 93, &done, st)
        if pos < 0 or done:
            return pos


cdef inline bint key2(const uint8_t *p, Py_ssize_t ks, Py_ssize_t klen,
                      const char *lit, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    if klen != n:
        return False
    for i in range(n):
        if p[ks + i] != <uint8_t>lit[i]:
            return False
    return True


cdef Py_ssize_t depth_object(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                             int64_t mult, int level, DepthHead *h, LevelBuf *buf,
                             Status *st) noexcept nogil:
    cdef bint done
    cdef Py_ssize_t ks, klen
    cdef bint num, arr
    cdef uint8_t c, v
    pos = skip_ws(p, pos + 1, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == 125:
        return pos + 1
    while True:
        pos = read_key(p, pos, end, &ks, &klen, st)
        if pos < 0:
            return -1
        v = p[pos]
        num = v == 45 or is_digit(v)
        arr = v == 91
        c = p[ks] if klen == 1 else 0
        if (c == 98 or c == 97) and arr:  # b / a
            h.seen |= 1ULL << H_LEVELS
            pos = levels_json(p, pos, end, BID if c == 98 else ASK, buf, st)
        elif c == 69 and num:
            pos = read_time(p, pos, end, mult, &h.event_time, st)
            h.seen |= 1ULL << H_E
        elif c == 84 and num:
            pos = read_time(p, pos, end, mult, &h.transaction_time, st)
            h.seen |= 1ULL << H_T
        elif c == 85 and num:
            pos = parse_int64(p, pos, end, &h.first_update_id, st)
            h.seen |= 1ULL << H_U
        elif c == 117 and num:
            pos = parse_int64(p, pos, end, &h.final_update_id, st)
            h.seen |= 1ULL << H_u
        elif num and key2(p, ks, klen, b"pu", 2):
            pos = parse_int64(p, pos, end, &h.prev_final_update_id, st)
            h.seen |= 1ULL << H_pu
        elif arr and key2(p, ks, klen, b"bids", 4):
            h.seen |= 1ULL << H_SNAP
            pos = levels_json(p, pos, end, BID, buf, st)
        elif arr and key2(p, ks, klen, b"asks", 4):
            h.seen |= 1ULL << H_SNAP
            pos = levels_json(p, pos, end, ASK, buf, st)
        elif num and key2(p, ks, klen, b"lastUpdateId", 12):
            pos = parse_int64(p, pos, end, &h.final_update_id, st)
            h.seen |= 1ULL << H_LAST
        elif level == 0 and v == 123 and key2(p, ks, klen, b"data", 4):
            pos = depth_object(p, pos, end, mult, 1, h, buf, st)
        else:
            pos = skip_value(p, pos, end, level + 1, st)
        if pos < 0:
            return -1
        pos = after_item(p, pos, end, 125, &done, st)
        if pos < 0 or done:
            return pos


cdef inline bint at_lit(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                        const char *lit, Py_ssize_t n) noexcept nogil:
    return end - pos >= n and memcmp(p + pos, lit, n) == 0


cdef Py_ssize_t diff_as_printed(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                int64_t mult, DepthHead *h, LevelBuf *buf,
                                Status *st) noexcept nogil:
    """A ``depthUpdate`` exactly as Binance prints it (spot or USD-M, keys in its order,
    no whitespace), without the general scanner's per-key dispatch: the header costs a
    few fixed compares. Returns the position after the object, or -2 when the text has
    any other shape or fails to parse; the caller then takes the general path, which
    also reports any error, so both paths accept and reject exactly the same input.
    """
    if not at_lit(p, pos, end, b'{"e":"depthUpdate","E":', 23):
        return -2
    pos = read_time(p, pos + 23, end, mult, &h.event_time, st)
    if pos < 0:
        return -2
    h.seen |= 1ULL << H_E
    if at_lit(p, pos, end, b',"T":', 5):  # USD-M: transaction time
        pos = read_time(p, pos + 5, end, mult, &h.transaction_time, st)
        if pos < 0:
            return -2
        h.seen |= 1ULL << H_T
    if not at_lit(p, pos, end, b',"s":', 5) or end - pos < 6 or p[pos + 5] != 34:
        return -2
    pos = skip_value(p, pos + 5, end, 1, st)  # the symbol: not part of the header
    if pos < 0 or not at_lit(p, pos, end, b',"U":', 5):
        return -2
    pos = parse_int64(p, pos + 5, end, &h.first_update_id, st)
    if pos < 0 or not at_lit(p, pos, end, b',"u":', 5):
        return -2
    pos = parse_int64(p, pos + 5, end, &h.final_update_id, st)
    if pos < 0:
        return -2
    h.seen |= (1ULL << H_U) | (1ULL << H_u)
    if at_lit(p, pos, end, b',"pu":', 6):  # USD-M: the previous u
        pos = parse_int64(p, pos + 6, end, &h.prev_final_update_id, st)
        if pos < 0:
            return -2
        h.seen |= 1ULL << H_pu
    if not at_lit(p, pos, end, b',"b":[', 6):
        return -2
    pos = levels_json(p, pos + 5, end, BID, buf, st)
    if pos < 0 or not at_lit(p, pos, end, b',"a":[', 6):
        return -2
    pos = levels_json(p, pos + 5, end, ASK, buf, st)
    if pos < 0 or not at_lit(p, pos, end, b'}', 1):
        return -2
    h.seen |= 1ULL << H_LEVELS
    return pos + 1


cdef void head_init(DepthHead *h) noexcept nogil:
    h.event_time = 0
    h.transaction_time = 0
    h.first_update_id = -1
    h.final_update_id = -1
    h.prev_final_update_id = -1
    h.n_bids = 0
    h.n_asks = 0
    h.is_snapshot = False
    h.seen = 0


cdef Py_ssize_t parse_depth_json(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                 int64_t mult, DepthHead *h, LevelBuf *buf,
                                 Status *st) noexcept nogil:
    """One JSON depth message (diff, partial depth or REST snapshot) into ``h``/``buf``."""
    cdef Py_ssize_t start, r
    head_init(h)
    buf.n = 0
    pos = skip_ws(p, pos, end)
    start = pos
    if pos >= end:
        return status_set(st, ST_ZERO_LENGTH, pos, 0, 0)
    if p[pos] != 123:
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    if at_lit(p, pos, end, b'{"stream":"', 11):
        # The combined-stream envelope as Binance prints it: name first, then data.
        r = skip_value(p, pos + 10, end, 1, st)
        if r >= 0 and at_lit(p, r, end, b',"data":', 8):
            r = diff_as_printed(p, r + 8, end, mult, h, buf, st)
            if r >= 0 and at_lit(p, r, end, b'}', 1):
                return r + 1
    else:
        r = diff_as_printed(p, pos, end, mult, h, buf, st)
        if r >= 0:
            return r
    # Any other shape: the general scanner, from a clean slate.
    head_init(h)
    buf.n = 0
    status_clear(st)
    pos = depth_object(p, pos, end, mult, 0, h, buf, st)
    if pos < 0:
        return -1
    if (h.seen >> H_LAST) & 1:
        h.is_snapshot = True
        h.first_update_id = -1
    elif not (h.seen >> H_U) & 1:
        return status_set(st, ST_MISSING_FIELD, start, H_U, 0)
    elif not (h.seen >> H_u) & 1:
        return status_set(st, ST_MISSING_FIELD, start, H_u, 0)
    return pos


cdef void apply_buf(L2Book book, DepthHead *h, const LevelBuf *buf) noexcept nogil:
    # Levels come in runs of one side (a message's "b" then "a" array): one inner loop
    # per run applies them with the side fixed, so there is no side test per level.
    # Each level's search starts where the previous one of its run landed: few steps
    # when a message lists its levels best first.
    cdef Py_ssize_t i = 0, j, n = buf.n, hint
    cdef const Level *lv = buf.levels
    if h.is_snapshot:
        book.clear_side(BID)
        book.clear_side(ASK)
    while i < n:
        j = i
        hint = book.max_levels  # the touch
        if lv[i].side == BID:
            while j < n and lv[j].side == BID:
                hint = book.set_level(BID, lv[j].price, lv[j].qty, hint)
                j += 1
            h.n_bids += j - i
        else:
            while j < n and lv[j].side != BID:
                hint = book.set_level(ASK, lv[j].price, lv[j].qty, hint)
                j += 1
            h.n_asks += j - i
        i = j
    book.count_updates(n)


cdef void count_sides(DepthHead *h, const LevelBuf *buf) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(buf.n):
        if buf.levels[i].side == BID:
            h.n_bids += 1
        else:
            h.n_asks += 1


cdef int64_t time_mult(str time_unit) except -1:
    if time_unit == "ms":
        return 1_000_000
    if time_unit == "us":
        return 1_000
    raise ValueError(f"time_unit must be 'ms' or 'us', not {time_unit!r}")


cdef int raise_apply(const Status *st, object source) except -1:
    from hftcore.errors import DecodeError
    if st.code == ST_MISSING_FIELD:
        reason = f"not a depth message: required field {HEAD_FIELDS.get(st.a, '?')!r} missing"
    elif st.code == ST_UNKNOWN_TYPE:
        reason = f"not a depth message: SBE template {st.a}"
    else:
        reason = status_reason(st)
    raise DecodeError(reason, st.offset, source)


cdef extern from *:
    """
    /* tuple.__new__(type, items) through the C slot: no bound-method call. tuple's own
       constructor is used (not tp_alloc and fill) because it initializes whatever the
       running CPython keeps in a tuple besides its items (3.14 caches the hash). */
    static PyObject *hft_tuple_subtype(PyObject *type, PyObject *items) {
        PyObject *args = PyTuple_Pack(1, items);
        PyObject *r;
        if (args == NULL) return NULL;
        r = PyTuple_Type.tp_new((PyTypeObject *)type, args, NULL);
        Py_DECREF(args);
        return r;
    }
    """
    object tuple_subtype "hft_tuple_subtype"(object type, object items)


cdef object head_tuple(const DepthHead *h):
    # The NamedTuple's Python-level __new__ would cost a frame per call.
    return tuple_subtype(DepthHeader, (h.event_time, h.transaction_time,
                                       h.first_update_id, h.final_update_id,
                                       h.prev_final_update_id, h.n_bids, h.n_asks,
                                       True if h.is_snapshot else False))


# Verdicts of apply_depth_json_after (what happened to the message).
APPLIED = V_APPLIED
STALE = V_STALE
GAP = V_GAP
NOT_A_DIFF = V_NOT_A_DIFF


cdef inline int continuity(const DepthHead *h, int64_t last_update_id,
                           bint usdm) noexcept nogil:
    """Binance's live rule for a diff against a book at ``last_update_id``."""
    if h.is_snapshot:
        return V_NOT_A_DIFF
    if h.final_update_id <= last_update_id:
        return V_STALE  # already in the book (repeated or out of order)
    if usdm:
        return V_GAP if h.prev_final_update_id != last_update_id else V_APPLIED
    return V_GAP if h.first_update_id > last_update_id + 1 else V_APPLIED


cdef Py_ssize_t json_one(L2Book book, const uint8_t *p, Py_ssize_t end, int64_t mult,
                         bint checked, int64_t last_update_id, bint usdm, DepthHead *h,
                         LevelBuf *buf, Status *st, int *verdict) noexcept nogil:
    cdef Py_ssize_t r = parse_depth_json(p, 0, end, mult, h, buf, st)
    if r >= 0:
        r = skip_ws(p, r, end)
        if r < end:
            return status_set(st, ST_BAD_SYNTAX, r, p[r], 0)
        if checked:
            verdict[0] = continuity(h, last_update_id, usdm)
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
                      int64_t last_update_id, bint usdm, int *verdict):
    """Parse one JSON (or ``sbe``) message; apply it unless ``checked`` and it does not
    continue the book."""
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
    cdef LevelBuf buf
    cdef DepthHead h
    cdef Status st
    cdef Py_ssize_t r
    cdef int v = V_APPLIED
    buf_init(&buf, stack)
    status_clear(&st)
    if end > NOGIL_BYTES:
        with nogil:
            r = parse_apply(sbe, book, p, end, mult, checked, last_update_id, usdm, &h,
                            &buf, &st, &v)
    else:
        r = parse_apply(sbe, book, p, end, mult, checked, last_update_id, usdm, &h, &buf,
                        &st, &v)
    if buf.on_heap:
        free(buf.levels)
    if r < 0:
        raise_apply(&st, None)
    verdict[0] = v
    return head_tuple(&h)


def apply_depth_json(L2Book book not None, msg, str time_unit="ms"):
    """Parse one Binance JSON depth message and apply its levels to ``book``.

    Diff events (``depthUpdate``, spot or USD-M, raw or in a combined-stream envelope)
    set each level; snapshots (REST ``/depth`` bodies, spot partial book depth with
    ``lastUpdateId``) replace the book. Update ids are NOT checked here: compare the
    returned header with your book's state, or use :func:`apply_depth_json_after`,
    which checks them before applying.

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
        Malformed message or not a depth message; the book is then left untouched.
    """
    cdef int64_t mult = 1_000_000 if time_unit == "ms" else time_mult(time_unit)
    cdef int v
    return apply_one(book, msg, False, mult, False, 0, False, &v)


def apply_depth_json_after(L2Book book not None, msg, int64_t last_update_id,
                           str market="spot", str time_unit="ms"):
    """Apply one JSON depth diff only if it continues a book at ``last_update_id``.

    The update ids are read and checked in the same nogil pass, before any level is
    applied, with Binance's rules for a live local book:

    - ``u <= last_update_id``: already in the book (repeated or out of order):
      :data:`STALE`, not applied;
    - spot: ``U > last_update_id + 1``; USD-M: ``pu != last_update_id``: events were
      missed: :data:`GAP`, not applied;
    - a snapshot (``lastUpdateId``): :data:`NOT_A_DIFF`, not applied;
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

    Returns
    -------
    verdict : int
        :data:`APPLIED`, :data:`STALE`, :data:`GAP` or :data:`NOT_A_DIFF`.
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
    cdef int64_t mult = 1_000_000 if time_unit == "ms" else time_mult(time_unit)
    cdef int v
    head = apply_one(book, msg, False, mult, True, last_update_id, usdm, &v)
    return v, head


cdef Py_ssize_t parse_depth_sbe(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                DepthHead *h, LevelBuf *buf, Status *st) noexcept nogil:
    cdef SbeHeader sh
    cdef Py_ssize_t body, g, count, entry, i, k, need, off
    cdef int pexp, qexp, side
    cdef int64_t price, qty
    head_init(h)
    buf.n = 0
    if read_header(p, pos, end, &sh, st) < 0:
        return -1
    body = pos + SBE_HEADER_SIZE
    if sh.template_id == TPL_DEPTH_DIFF:
        need = 26
    elif sh.template_id == TPL_DEPTH_SNAPSHOT:
        need = 18
        h.is_snapshot = True
    else:
        return status_set(st, ST_UNKNOWN_TYPE, pos + 2, sh.template_id, 0)
    if sh.block_length < need:
        return status_set(st, ST_BAD_LENGTH, pos, sh.block_length, need)
    if end - body < sh.block_length:
        return status_set(st, ST_TRUNCATED, pos, SBE_HEADER_SIZE + sh.block_length, end - pos)
    h.event_time = <int64_t>load_le64(p + body)
    if (h.event_time > 9223372036854775807LL // 1000
            or h.event_time < -9223372036854775807LL // 1000):
        return status_set(st, ST_OVERFLOW, body, 0, 0)
    h.event_time *= 1000
    if h.is_snapshot:
        h.final_update_id = <int64_t>load_le64(p + body + 8)
        pexp = <int8_t>p[body + 16]
        qexp = <int8_t>p[body + 17]
    else:
        h.first_update_id = <int64_t>load_le64(p + body + 8)
        h.final_update_id = <int64_t>load_le64(p + body + 16)
        pexp = <int8_t>p[body + 24]
        qexp = <int8_t>p[body + 25]
    g = body + sh.block_length
    for side in range(2):
        if end - g < 4:
            return status_set(st, ST_TRUNCATED, g, 4, end - g)
        entry = load_le16(p + g)
        count = load_le16(p + g + 2)
        if entry < 16:
            return status_set(st, ST_BAD_LENGTH, g, entry, 16)
        g += 4
        if end - g < count * entry:
            return status_set(st, ST_TRUNCATED, g, count * entry, end - g)
        for i in range(count):
            off = g + i * entry
            if scale8(<int64_t>load_le64(p + off), pexp, &price, off, st) < 0:
                return -1
            if scale8(<int64_t>load_le64(p + off + 8), qexp, &qty, off + 8, st) < 0:
                return -1
            if push_level(buf, side, price, qty, off, st) < 0:
                return -1
        g += count * entry
    # trailing symbol (varString8)
    if g >= end:
        return status_set(st, ST_TRUNCATED, g, 1, 0)
    k = p[g]
    if end - g - 1 < k:
        return status_set(st, ST_TRUNCATED, g, k + 1, end - g)
    return g + 1 + k


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
    cdef int64_t mult = time_mult(time_unit)
    if isinstance(data, str):
        data = data.encode("utf-8")
    cdef const uint8_t[::1] view = data
    cdef Py_ssize_t end = view.shape[0]
    cdef const uint8_t *p = &view[0] if end > 0 else NULL
    cdef Level stack[STACK_LEVELS]
    cdef LevelBuf buf
    cdef DepthHead h
    cdef Status st
    cdef Py_ssize_t pos = 0, r = 0, n = 0
    heads = np.empty(end // 40 + 16, dtype=HEAD_DTYPE)
    cdef HeadRow[::1] out = heads
    buf_init(&buf, stack)
    status_clear(&st)
    with nogil:
        while True:
            pos = skip_ws(p, pos, end)
            if pos >= end:
                break
            if n >= out.shape[0]:  # cannot happen: a message takes > 40 bytes
                r = status_set(&st, ST_CAPACITY, pos, n, 0)
                break
            r = parse_depth_json(p, pos, end, mult, &h, &buf, &st)
            if r < 0:
                break
            apply_buf(book, &h, &buf)
            store_head(&out[n], &h)
            n += 1
            pos = r
        if buf.on_heap:
            free(buf.levels)
    if r < 0:
        raise_apply(&st, f"message {n}")
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
    cdef LevelBuf buf
    cdef DepthHead h
    cdef Status st
    cdef Py_ssize_t pos = 0, r = 0, n = 0
    # The smallest depth message (header, block, two empty groups, empty symbol) is
    # 8 + 18 + 4 + 4 + 1 = 35 bytes.
    heads = np.empty(end // 35 + 1, dtype=HEAD_DTYPE)
    cdef HeadRow[::1] out = heads
    buf_init(&buf, stack)
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
        if buf.on_heap:
            free(buf.levels)
    if r < 0:
        raise_apply(&st, f"message {n}")
    return heads[:n].copy()
