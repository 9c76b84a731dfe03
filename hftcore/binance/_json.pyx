# cython: language_level=3
"""Binance JSON market data: a hand-written nogil scanner into columnar tables.

One pass per message, any key order, any whitespace, unknown keys (nested too) skipped.
Fields are recognised by key and by the JSON type of their value, so the meaning of keys
that Binance reuses (``"b"``: bids array, best bid price string or buyer order id number)
is known before the event type, which may come last. Depth levels are written straight
into the depth rows; the message header is filled in once the object is closed.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

from hftcore._core.status cimport (
    ST_BAD_SYNTAX,
    ST_BAD_VALUE,
    ST_CAPACITY,
    ST_MISSING_FIELD,
    ST_NESTING,
    ST_OVERFLOW,
    ST_TRUNCATED,
    ST_ZERO_LENGTH,
    Status,
    status_clear,
    status_reason,
    status_set,
)

cnp.import_array()

cdef enum:
    MAX_DEPTH = 64  # JSON nesting skipped before ST_NESTING

# Field bits of a top-level message (``seen`` mask); the names are the JSON keys, used in
# "required field missing" errors.
cdef enum Field:
    F_e = 0
    F_E
    F_T
    F_s
    F_t
    F_p
    F_q
    F_b_num
    F_a_num
    F_b_str
    F_a_str
    F_B
    F_A
    F_m
    F_f
    F_l
    F_U
    F_u
    F_pu
    F_lastUpdateId
    F_k
    F_b_arr
    F_a_arr
    F_bids
    F_asks
    F_result
    F_id
    F_code
    F_msg
    # kline object fields
    F_k_t
    F_k_T
    F_k_i
    F_k_o
    F_k_c
    F_k_h
    F_k_l
    F_k_v

FIELD_NAMES = (
    "e", "E", "T", "s", "t", "p", "q", "b", "a", "b", "a", "B", "A", "m", "f", "l", "U",
    "u", "pu", "lastUpdateId", "k", "b", "a", "bids", "asks", "result", "id", "code", "msg",
    "k.t", "k.T", "k.i", "k.o", "k.c", "k.h", "k.l", "k.v",
)  # fmt: skip

KIND_NAMES = (
    "invalid", "trade", "aggTrade", "depthUpdate", "depthSnapshot", "bookTicker", "kline",
    "control", "error", "serverShutdown", "unknown",
)  # fmt: skip

TABLE_NAMES = ("trades", "agg_trades", "book_ticker", "depth", "depth_snapshots", "klines",
               "kinds")


cdef struct Fields:
    uint64_t seen                 # bit per Field
    const uint8_t *ev             # event type "e" (raw bytes in the input)
    Py_ssize_t ev_len
    int64_t E
    int64_t T
    int64_t t
    int64_t price
    int64_t qty
    int64_t b_num
    int64_t a_num
    int64_t b_str
    int64_t a_str
    int64_t B
    int64_t A
    int64_t f
    int64_t l
    int64_t U
    int64_t u
    int64_t pu
    int64_t last_update_id
    uint8_t m
    bint skip_rest                # "e" named an event kind without columns: skip the rest
    char symbol[24]
    Py_ssize_t n_depth            # level rows written for this message (uncommitted)
    Py_ssize_t n_snap
    KlineRow k


cdef inline bint key_is(const uint8_t *p, Py_ssize_t ks, Py_ssize_t klen,
                        const char *lit, Py_ssize_t n) noexcept nogil:
    return klen == n and memcmp(p + ks, lit, n) == 0


cdef inline int hexval(uint8_t c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return -1


cdef Py_ssize_t scan_string(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            Py_ssize_t *content_end, bint *has_escape,
                            Status *st) noexcept nogil:
    cdef uint8_t c
    cdef int i
    has_escape[0] = False
    pos += 1  # opening quote
    while pos < end:
        c = p[pos]
        if c == 34:
            content_end[0] = pos
            return pos + 1
        if c == 92:  # backslash
            has_escape[0] = True
            if pos + 1 >= end:
                return status_set(st, ST_TRUNCATED, pos, 2, end - pos)
            c = p[pos + 1]
            if c == 117:  # \uXXXX
                if end - pos < 6:
                    return status_set(st, ST_TRUNCATED, pos, 6, end - pos)
                for i in range(4):
                    if hexval(p[pos + 2 + i]) < 0:
                        return status_set(st, ST_BAD_SYNTAX, pos + 2 + i, p[pos + 2 + i], 0)
                pos += 6
                continue
            if (c == 34 or c == 92 or c == 47 or c == 98 or c == 102 or c == 110
                    or c == 114 or c == 116):
                pos += 2
                continue
            return status_set(st, ST_BAD_SYNTAX, pos + 1, c, 0)
        if c < 32:
            return status_set(st, ST_BAD_SYNTAX, pos, c, 0)
        pos += 1
    return status_set(st, ST_TRUNCATED, pos, 1, 0)


cdef inline int put_utf8(char *dst, Py_ssize_t *n, Py_ssize_t cap, uint32_t cp) noexcept nogil:
    cdef Py_ssize_t k = n[0]
    if cp < 0x80:
        if k + 1 > cap:
            return -1
        dst[k] = <char>cp
        n[0] = k + 1
    elif cp < 0x800:
        if k + 2 > cap:
            return -1
        dst[k] = <char>(0xC0 | (cp >> 6))
        dst[k + 1] = <char>(0x80 | (cp & 0x3F))
        n[0] = k + 2
    elif cp < 0x10000:
        if k + 3 > cap:
            return -1
        dst[k] = <char>(0xE0 | (cp >> 12))
        dst[k + 1] = <char>(0x80 | ((cp >> 6) & 0x3F))
        dst[k + 2] = <char>(0x80 | (cp & 0x3F))
        n[0] = k + 3
    else:
        if k + 4 > cap:
            return -1
        dst[k] = <char>(0xF0 | (cp >> 18))
        dst[k + 1] = <char>(0x80 | ((cp >> 12) & 0x3F))
        dst[k + 2] = <char>(0x80 | ((cp >> 6) & 0x3F))
        dst[k + 3] = <char>(0x80 | (cp & 0x3F))
        n[0] = k + 4
    return 0


cdef inline uint32_t hex4(const uint8_t *q) noexcept nogil:
    return ((<uint32_t>hexval(q[0]) << 12) | (<uint32_t>hexval(q[1]) << 8)
            | (<uint32_t>hexval(q[2]) << 4) | <uint32_t>hexval(q[3]))


cdef Py_ssize_t read_string(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            char *dst, Py_ssize_t cap, Status *st) noexcept nogil:
    cdef Py_ssize_t cend, i, n = 0
    cdef bint esc
    cdef Py_ssize_t after
    cdef uint8_t c
    cdef uint32_t cp, lo
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] != 34:
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    after = scan_string(p, pos, end, &cend, &esc, st)
    if after < 0:
        return -1
    memset(dst, 0, cap)
    if not esc:
        if cend - pos - 1 > cap:
            return status_set(st, ST_BAD_VALUE, pos, cend - pos - 1, cap)
        memcpy(dst, p + pos + 1, cend - pos - 1)
        return after
    # Escapes were validated by scan_string; decode them to UTF-8.
    i = pos + 1
    while i < cend:
        c = p[i]
        if c != 92:
            if n >= cap:
                return status_set(st, ST_BAD_VALUE, pos, n + 1, cap)
            dst[n] = <char>c
            n += 1
            i += 1
            continue
        c = p[i + 1]
        if c == 117:
            cp = hex4(p + i + 2)
            i += 6
            if 0xD800 <= cp < 0xDC00:
                # High surrogate: a low one must follow to form one code point.
                if (i + 6 > cend or p[i] != 92 or p[i + 1] != 117):
                    return status_set(st, ST_BAD_VALUE, i - 6, cp, 0)
                lo = hex4(p + i + 2)
                if not (0xDC00 <= lo < 0xE000):
                    return status_set(st, ST_BAD_VALUE, i, lo, 0)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                i += 6
            elif 0xDC00 <= cp < 0xE000:
                return status_set(st, ST_BAD_VALUE, i - 6, cp, 0)
            if put_utf8(dst, &n, cap, cp) < 0:
                return status_set(st, ST_BAD_VALUE, pos, n + 4, cap)
            continue
        if c == 98:
            c = 8
        elif c == 102:
            c = 12
        elif c == 110:
            c = 10
        elif c == 114:
            c = 13
        elif c == 116:
            c = 9
        # \" \\ \/ stand for themselves
        if n >= cap:
            return status_set(st, ST_BAD_VALUE, pos, n + 1, cap)
        dst[n] = <char>c
        n += 1
        i += 2
    return after


cdef inline Py_ssize_t match_literal(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                     const char *lit, Py_ssize_t n,
                                     Status *st) noexcept nogil:
    if end - pos < n:
        return status_set(st, ST_TRUNCATED, pos, n, end - pos)
    if memcmp(p + pos, lit, n) != 0:
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    return pos + n


cdef Py_ssize_t skip_number(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            Status *st) noexcept nogil:
    # JSON number grammar: -? int frac? exp?
    cdef Py_ssize_t start = pos
    cdef int nd = 0
    if pos < end and p[pos] == 45:
        pos += 1
    while pos < end and is_digit(p[pos]):
        pos += 1
        nd += 1
    if nd == 0:
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if nd > 1 and p[pos - nd] == 48:  # no leading zeros in JSON numbers
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and p[pos] == 46:
        pos += 1
        nd = 0
        while pos < end and is_digit(p[pos]):
            pos += 1
            nd += 1
        if nd == 0:
            return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and (p[pos] == 101 or p[pos] == 69):
        pos += 1
        if pos < end and (p[pos] == 43 or p[pos] == 45):
            pos += 1
        nd = 0
        while pos < end and is_digit(p[pos]):
            pos += 1
            nd += 1
        if nd == 0:
            return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    return pos


cdef Py_ssize_t skip_value(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end, int depth,
                           Status *st) noexcept nogil:
    cdef bint done
    cdef Py_ssize_t cend
    cdef bint esc
    cdef uint8_t c
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    c = p[pos]
    if c == 34:
        return scan_string(p, pos, end, &cend, &esc, st)
    if c == 123 or c == 91:  # { [
        if depth >= MAX_DEPTH:
            return status_set(st, ST_NESTING, pos, MAX_DEPTH, 0)
        pos = skip_ws(p, pos + 1, end)
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        if p[pos] == c + 2:  # } or ]
            return pos + 1
        while True:
            if c == 123:
                if pos >= end:
                    return status_set(st, ST_TRUNCATED, pos, 1, 0)
                if p[pos] != 34:
                    return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
                pos = scan_string(p, pos, end, &cend, &esc, st)
                if pos < 0:
                    return -1
                pos = expect_char(p, pos, end, 58, st)  # ':'
                if pos < 0:
                    return -1
                pos = skip_ws(p, pos, end)
            pos = skip_value(p, pos, end, depth + 1, st)
            if pos < 0:
                return -1
            pos = after_item(p, pos, end, c + 2, &done, st)
            if pos < 0 or done:
                return pos
    if c == 116:
        return match_literal(p, pos, end, b"true", 4, st)
    if c == 102:
        return match_literal(p, pos, end, b"false", 5, st)
    if c == 110:
        return match_literal(p, pos, end, b"null", 4, st)
    if c == 45 or is_digit(c):
        return skip_number(p, pos, end, st)
    return status_set(st, ST_BAD_SYNTAX, pos, c, 0)


cdef Py_ssize_t read_time(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                          int64_t mult, int64_t *out, Status *st) noexcept nogil:
    cdef int64_t v
    cdef Py_ssize_t start = pos
    pos = parse_int64(p, pos, end, &v, st)
    if pos < 0:
        return -1
    if mul_overflow(v, mult, out):
        return status_set(st, ST_OVERFLOW, start, 0, 0)
    return pos


cdef inline Py_ssize_t read_bool(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                 uint8_t *out, Status *st) noexcept nogil:
    if pos < end and p[pos] == 116:
        out[0] = 1
        return match_literal(p, pos, end, b"true", 4, st)
    if pos < end and p[pos] == 102:
        out[0] = 0
        return match_literal(p, pos, end, b"false", 5, st)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)


cdef Py_ssize_t read_levels(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            DepthRow *rows, Py_ssize_t base, Py_ssize_t cap,
                            Py_ssize_t *count, uint8_t side, int table,
                            int64_t msg_index, NumShape *shapes,
                            Status *st) noexcept nogil:
    """An array of levels at ``pos`` (its ``[``) into ``rows[base + count ...]``."""
    cdef bint done
    cdef int64_t price, qty
    cdef DepthRow *r
    cdef Py_ssize_t i, q
    pos = skip_ws(p, pos + 1, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == 93:
        return pos + 1
    while True:
        q = level_as_printed(p, pos, end, shapes, &price, &qty)
        pos = q if q >= 0 else parse_level(p, pos, end, &price, &qty, st)
        if pos < 0:
            return -1
        i = base + count[0]
        if i >= cap:
            return status_set(st, ST_CAPACITY, pos, table, cap)
        r = rows + i
        r.price = price
        r.qty = qty
        r.side = side
        r.msg_index = msg_index
        count[0] += 1
        # The compact separator ``,[`` first: no whitespace scan between levels.
        if end - pos > 1 and p[pos] == 44 and p[pos + 1] == 91:
            pos += 1
            continue
        pos = after_item(p, pos, end, 93, &done, st)
        if pos < 0 or done:
            return pos


cdef Py_ssize_t parse_kline(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            int64_t mult, Fields *fl, Status *st) noexcept nogil:
    """The nested ``"k"`` object of a kline event (``pos`` at its ``{``)."""
    cdef bint done
    cdef Py_ssize_t ks, klen
    cdef uint8_t c
    cdef KlineRow *k = &fl.k
    pos = skip_ws(p, pos + 1, end)
    if pos < end and p[pos] == 125:
        return pos + 1
    while True:
        pos = read_key(p, pos, end, &ks, &klen, st)
        if pos < 0:
            return -1
        c = p[ks] if klen == 1 else 0
        if c == 116:  # t
            pos = read_time(p, pos, end, mult, &k.start_time, st)
            fl.seen |= 1ULL << F_k_t
        elif c == 84:  # T
            pos = read_time(p, pos, end, mult, &k.close_time, st)
            fl.seen |= 1ULL << F_k_T
        elif c == 105:  # i
            pos = read_string(p, pos, end, k.interval, 8, st)
            fl.seen |= 1ULL << F_k_i
        elif c == 102:  # f
            pos = parse_int64(p, pos, end, &k.first_trade_id, st)
        elif c == 76:  # L
            pos = parse_int64(p, pos, end, &k.last_trade_id, st)
        elif c == 111:  # o
            pos = parse_decimal_value(p, pos, end, &k.open, st)
            fl.seen |= 1ULL << F_k_o
        elif c == 99:  # c
            pos = parse_decimal_value(p, pos, end, &k.close, st)
            fl.seen |= 1ULL << F_k_c
        elif c == 104:  # h
            pos = parse_decimal_value(p, pos, end, &k.high, st)
            fl.seen |= 1ULL << F_k_h
        elif c == 108:  # l
            pos = parse_decimal_value(p, pos, end, &k.low, st)
            fl.seen |= 1ULL << F_k_l
        elif c == 118:  # v
            pos = parse_decimal_value(p, pos, end, &k.volume, st)
            fl.seen |= 1ULL << F_k_v
        elif c == 113:  # q
            pos = parse_decimal_value(p, pos, end, &k.quote_volume, st)
        elif c == 86:  # V
            pos = parse_decimal_value(p, pos, end, &k.taker_buy_base_volume, st)
        elif c == 81:  # Q
            pos = parse_decimal_value(p, pos, end, &k.taker_buy_quote_volume, st)
        elif c == 110:  # n
            pos = parse_int64(p, pos, end, &k.num_trades, st)
        elif c == 120:  # x
            pos = read_bool(p, pos, end, &k.is_closed, st)
        else:  # s (repeats the event's symbol), B (ignore), unknown keys
            pos = skip_value(p, pos, end, 2, st)
        if pos < 0:
            return -1
        pos = after_item(p, pos, end, 125, &done, st)
        if pos < 0 or done:
            return pos


cdef inline bint is_level_array(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end) noexcept nogil:
    # ``pos`` is at '['; levels are arrays of arrays (or an empty array).
    pos = skip_ws(p, pos + 1, end)
    return pos < end and (p[pos] == 91 or p[pos] == 93)


cdef inline bint ev_is(const Fields *fl, const char *lit, Py_ssize_t n) noexcept nogil:
    return fl.ev_len == n and memcmp(fl.ev, lit, n) == 0


cdef int event_kind(const Fields *fl) noexcept nogil:
    if ev_is(fl, b"depthUpdate", 11):
        return K_DEPTH
    if ev_is(fl, b"trade", 5):
        return K_TRADE
    if ev_is(fl, b"bookTicker", 10):
        return K_BOOK_TICKER
    if ev_is(fl, b"aggTrade", 8):
        return K_AGG_TRADE
    if ev_is(fl, b"kline", 5):
        return K_KLINE
    if ev_is(fl, b"serverShutdown", 14):
        return K_SHUTDOWN
    return K_UNKNOWN


cdef Py_ssize_t parse_object(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                             int64_t mult, int64_t msg_index, Out *out, Fields *fl,
                             int level, Status *st) noexcept nogil:
    """Fields of one object (``pos`` at its ``{``) into ``fl``; ``level`` 0 is the top,
    1 the payload of a combined-stream ``data`` (or ``event``) envelope."""
    cdef bint done
    cdef Py_ssize_t ks, kend, klen
    cdef bint esc, num
    cdef uint8_t c, v, ignored
    pos = skip_ws(p, pos + 1, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == 125:
        return pos + 1
    while True:
        pos = read_key(p, pos, end, &ks, &klen, st)
        if pos < 0:
            return -1
        v = p[pos]  # first byte of the value tells its JSON type
        num = v == 45 or is_digit(v)
        if fl.skip_rest:
            pos = skip_value(p, pos, end, level + 1, st)
        elif klen == 1:
            c = p[ks]
            if c != 101 and c != 98 and c != 97 and c != 107:
                # Typed fields take only their JSON type; anything else is skipped (and
                # a required field then reported missing).
                if c == 115 or c == 66 or c == 65:
                    if v != 34:
                        c = 0
                elif c == 112 or c == 113:
                    if v != 34 and not num:
                        c = 0
                elif c == 109 or c == 77:
                    if v != 116 and v != 102:
                        c = 0
                elif not num:
                    c = 0
            if c == 98 or c == 97:  # b / a
                if v == 91 and is_level_array(p, pos, end):
                    if c == 98:
                        fl.seen |= 1ULL << F_b_arr
                    else:
                        fl.seen |= 1ULL << F_a_arr
                    pos = read_levels(p, pos, end, out.depth, out.n[<int>T_DEPTH],
                                      out.cap[<int>T_DEPTH], &fl.n_depth,
                                      0 if c == 98 else 1, T_DEPTH, msg_index,
                                      out.shapes, st)
                elif v == 34:
                    if c == 98:
                        fl.seen |= 1ULL << F_b_str
                        pos = parse_decimal_value(p, pos, end, &fl.b_str, st)
                    else:
                        fl.seen |= 1ULL << F_a_str
                        pos = parse_decimal_value(p, pos, end, &fl.a_str, st)
                elif v == 45 or is_digit(v):
                    if c == 98:
                        fl.seen |= 1ULL << F_b_num
                        pos = parse_int64(p, pos, end, &fl.b_num, st)
                    else:
                        fl.seen |= 1ULL << F_a_num
                        pos = parse_int64(p, pos, end, &fl.a_num, st)
                else:
                    pos = skip_value(p, pos, end, level + 1, st)
            elif c == 101:  # e
                if v == 34:
                    ks = pos + 1
                    pos = scan_string(p, pos, end, &kend, &esc, st)
                    if pos >= 0 and not esc:  # an escaped event type is never a known one
                        fl.ev = p + ks
                        fl.ev_len = kend - ks
                        fl.seen |= 1ULL << F_e
                        # Other event kinds reuse these keys with other meanings (and
                        # unchecked decimals): once "e" says so, skip their fields.
                        fl.skip_rest = event_kind(fl) == K_UNKNOWN
                    elif pos >= 0:
                        fl.skip_rest = True
                else:
                    pos = skip_value(p, pos, end, level + 1, st)
            elif c == 69:  # E
                pos = read_time(p, pos, end, mult, &fl.E, st)
                fl.seen |= 1ULL << F_E
            elif c == 84:  # T
                pos = read_time(p, pos, end, mult, &fl.T, st)
                fl.seen |= 1ULL << F_T
            elif c == 115:  # s
                pos = read_string(p, pos, end, fl.symbol, 24, st)
                fl.seen |= 1ULL << F_s
            elif c == 116:  # t
                pos = parse_int64(p, pos, end, &fl.t, st)
                fl.seen |= 1ULL << F_t
            elif c == 112:  # p
                pos = parse_decimal_value(p, pos, end, &fl.price, st)
                fl.seen |= 1ULL << F_p
            elif c == 113:  # q
                pos = parse_decimal_value(p, pos, end, &fl.qty, st)
                fl.seen |= 1ULL << F_q
            elif c == 66 and v == 34:  # B
                pos = parse_decimal_value(p, pos, end, &fl.B, st)
                fl.seen |= 1ULL << F_B
            elif c == 65 and v == 34:  # A
                pos = parse_decimal_value(p, pos, end, &fl.A, st)
                fl.seen |= 1ULL << F_A
            elif c == 109:  # m
                pos = read_bool(p, pos, end, &fl.m, st)
                fl.seen |= 1ULL << F_m
            elif c == 77:  # M ("ignore" in the docs): read inline, cheaper than a skip
                pos = read_bool(p, pos, end, &ignored, st)
            elif c == 102:  # f
                pos = parse_int64(p, pos, end, &fl.f, st)
                fl.seen |= 1ULL << F_f
            elif c == 108:  # l
                pos = parse_int64(p, pos, end, &fl.l, st)
                fl.seen |= 1ULL << F_l
            elif c == 85:  # U
                pos = parse_int64(p, pos, end, &fl.U, st)
                fl.seen |= 1ULL << F_U
            elif c == 117:  # u
                pos = parse_int64(p, pos, end, &fl.u, st)
                fl.seen |= 1ULL << F_u
            elif c == 107 and v == 123:  # k
                memset(&fl.k, 0, sizeof(KlineRow))
                pos = parse_kline(p, pos, end, mult, fl, st)
                fl.seen |= 1ULL << F_k
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"pu", 2) and num:
            pos = parse_int64(p, pos, end, &fl.pu, st)
            fl.seen |= 1ULL << F_pu
        elif key_is(p, ks, klen, b"bids", 4) and v == 91:
            fl.seen |= 1ULL << F_bids
            pos = read_levels(p, pos, end, out.snapshots, out.n[<int>T_SNAPSHOTS],
                              out.cap[<int>T_SNAPSHOTS], &fl.n_snap, 0, T_SNAPSHOTS,
                              msg_index, out.shapes, st)
        elif key_is(p, ks, klen, b"asks", 4) and v == 91:
            fl.seen |= 1ULL << F_asks
            pos = read_levels(p, pos, end, out.snapshots, out.n[<int>T_SNAPSHOTS],
                              out.cap[<int>T_SNAPSHOTS], &fl.n_snap, 1, T_SNAPSHOTS,
                              msg_index, out.shapes, st)
        elif key_is(p, ks, klen, b"lastUpdateId", 12) and num:
            pos = parse_int64(p, pos, end, &fl.last_update_id, st)
            fl.seen |= 1ULL << F_lastUpdateId
        elif level == 0 and v == 123 and (key_is(p, ks, klen, b"data", 4)
                                          or key_is(p, ks, klen, b"event", 5)):
            pos = parse_object(p, pos, end, mult, msg_index, out, fl, 1, st)
        elif key_is(p, ks, klen, b"result", 6):
            fl.seen |= 1ULL << F_result
            pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"id", 2):
            fl.seen |= 1ULL << F_id
            pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"code", 4):
            fl.seen |= 1ULL << F_code
            pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"msg", 3):
            fl.seen |= 1ULL << F_msg
            pos = skip_value(p, pos, end, level + 1, st)
        else:
            pos = skip_value(p, pos, end, level + 1, st)
        if pos < 0:
            return -1
        pos = after_item(p, pos, end, 125, &done, st)
        if pos < 0 or done:
            return pos


# ---- one message -> rows -------------------------------------------------------------


cdef inline int require(const Fields *fl, uint64_t mask, Py_ssize_t start,
                        Status *st) noexcept nogil:
    cdef uint64_t missing = mask & ~fl.seen
    cdef int bit = 0
    if missing == 0:
        return 0
    while not (missing >> bit) & 1:
        bit += 1
    return status_set(st, ST_MISSING_FIELD, start, bit, 0)


cdef inline int room(Out *out, int table, Py_ssize_t need, Py_ssize_t pos,
                     Status *st) noexcept nogil:
    if out.n[table] + need > out.cap[table]:
        return status_set(st, ST_CAPACITY, pos, table, out.cap[table])
    return 0


cdef inline int64_t opt(const Fields *fl, int bit, int64_t value,
                        int64_t absent) noexcept nogil:
    return value if (fl.seen >> bit) & 1 else absent


cdef void fill_depth_header(DepthRow *rows, Py_ssize_t n, const Fields *fl,
                            int64_t first_id, int64_t final_id) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t ev = opt(fl, F_E, fl.E, 0)
    cdef int64_t tt = opt(fl, F_T, fl.T, 0)
    cdef int64_t pu = opt(fl, F_pu, fl.pu, -1)
    for i in range(n):
        rows[i].event_time = ev
        rows[i].transaction_time = tt
        rows[i].first_update_id = first_id
        rows[i].final_update_id = final_id
        rows[i].prev_final_update_id = pu
        memcpy(rows[i].symbol, fl.symbol, 24)


cdef inline uint64_t bit(int field) noexcept nogil:
    return (<uint64_t>1) << field


# Fields each event needs (a missing one is a DecodeError naming the key).
cdef uint64_t M_TRADE = (bit(F_E) | bit(F_s) | bit(F_t) | bit(F_p) | bit(F_q) | bit(F_T)
                         | bit(F_m))
cdef uint64_t M_AGG = (bit(F_E) | bit(F_s) | bit(F_a_num) | bit(F_p) | bit(F_q) | bit(F_f)
                       | bit(F_l) | bit(F_T) | bit(F_m))
cdef uint64_t M_DEPTH = bit(F_E) | bit(F_s) | bit(F_U) | bit(F_u)
cdef uint64_t M_BOOK = (bit(F_u) | bit(F_s) | bit(F_b_str) | bit(F_B) | bit(F_a_str)
                        | bit(F_A))
cdef uint64_t M_KLINE = (bit(F_E) | bit(F_s) | bit(F_k) | bit(F_k_t) | bit(F_k_T) | bit(F_k_i)
                         | bit(F_k_o) | bit(F_k_c) | bit(F_k_h) | bit(F_k_l) | bit(F_k_v))


cdef Py_ssize_t decode_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                               int64_t time_mult, int64_t msg_index, Out *out,
                               int *kind, Status *st) noexcept nogil:
    cdef Fields fl
    cdef Py_ssize_t start, after
    cdef int k = K_UNKNOWN
    cdef TradeRow *tr
    cdef AggTradeRow *ag
    cdef BookTickerRow *bt
    cdef KlineRow *kl
    fl.seen = 0
    fl.n_depth = 0
    fl.n_snap = 0
    fl.ev_len = 0
    fl.skip_rest = False
    memset(fl.symbol, 0, 24)
    pos = skip_ws(p, pos, end)
    start = pos
    if pos >= end:
        return status_set(st, ST_ZERO_LENGTH, pos, 0, 0)
    if room(out, T_KINDS, 1, start, st) < 0:
        return -1
    if p[pos] != 123:
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    after = parse_object(p, pos, end, time_mult, msg_index, out, &fl, 0, st)
    if after < 0:
        return -1

    if (fl.seen >> F_e) & 1:
        k = event_kind(&fl)
    elif (fl.seen >> F_lastUpdateId) & 1 and fl.seen & ((1ULL << F_bids) | (1ULL << F_asks)):
        k = K_SNAPSHOT
    elif fl.seen & M_BOOK == M_BOOK:
        k = K_BOOK_TICKER
    elif (fl.seen >> F_result) & 1:
        k = K_CONTROL
    elif (fl.seen >> F_code) & 1 and (fl.seen >> F_msg) & 1:
        k = K_ERROR

    if k == K_DEPTH:
        if require(&fl, M_DEPTH, start, st) < 0:
            return -1
        fill_depth_header(out.depth + out.n[<int>T_DEPTH], fl.n_depth, &fl, fl.U, fl.u)
        out.n[<int>T_DEPTH] += fl.n_depth
    elif k == K_SNAPSHOT:
        fill_depth_header(out.snapshots + out.n[<int>T_SNAPSHOTS], fl.n_snap, &fl, -1,
                          fl.last_update_id)
        out.n[<int>T_SNAPSHOTS] += fl.n_snap
    elif k == K_TRADE:
        if require(&fl, M_TRADE, start, st) < 0 or room(out, T_TRADES, 1, start, st) < 0:
            return -1
        tr = out.trades + out.n[<int>T_TRADES]
        tr.event_time = fl.E
        tr.trade_time = fl.T
        tr.trade_id = fl.t
        tr.price = fl.price
        tr.qty = fl.qty
        tr.buyer_order_id = opt(&fl, F_b_num, fl.b_num, -1)
        tr.seller_order_id = opt(&fl, F_a_num, fl.a_num, -1)
        tr.msg_index = msg_index
        memcpy(tr.symbol, fl.symbol, 24)
        tr.buyer_is_maker = fl.m
        out.n[<int>T_TRADES] += 1
    elif k == K_BOOK_TICKER:
        if require(&fl, M_BOOK, start, st) < 0 or room(out, T_BOOK_TICKER, 1, start, st) < 0:
            return -1
        bt = out.book_ticker + out.n[<int>T_BOOK_TICKER]
        bt.event_time = opt(&fl, F_E, fl.E, 0)
        bt.transaction_time = opt(&fl, F_T, fl.T, 0)
        bt.update_id = fl.u
        bt.bid_price = fl.b_str
        bt.bid_qty = fl.B
        bt.ask_price = fl.a_str
        bt.ask_qty = fl.A
        bt.msg_index = msg_index
        memcpy(bt.symbol, fl.symbol, 24)
        out.n[<int>T_BOOK_TICKER] += 1
    elif k == K_AGG_TRADE:
        if require(&fl, M_AGG, start, st) < 0 or room(out, T_AGG_TRADES, 1, start, st) < 0:
            return -1
        ag = out.agg_trades + out.n[<int>T_AGG_TRADES]
        ag.event_time = fl.E
        ag.trade_time = fl.T
        ag.agg_trade_id = fl.a_num
        ag.price = fl.price
        ag.qty = fl.qty
        ag.first_trade_id = fl.f
        ag.last_trade_id = fl.l
        ag.msg_index = msg_index
        memcpy(ag.symbol, fl.symbol, 24)
        ag.buyer_is_maker = fl.m
        out.n[<int>T_AGG_TRADES] += 1
    elif k == K_KLINE:
        if require(&fl, M_KLINE, start, st) < 0 or room(out, T_KLINES, 1, start, st) < 0:
            return -1
        kl = out.klines + out.n[<int>T_KLINES]
        memcpy(kl, &fl.k, sizeof(KlineRow))
        kl.event_time = fl.E
        kl.msg_index = msg_index
        memcpy(kl.symbol, fl.symbol, 24)
        out.n[<int>T_KLINES] += 1
    out.kinds[out.n[<int>T_KINDS]] = <uint8_t>k
    out.n[<int>T_KINDS] += 1
    out.counts[k] += 1
    kind[0] = k
    return after


cdef int run_json(const uint8_t *p, Py_ssize_t end, const int64_t *starts,
                  const int64_t *ends, Py_ssize_t n_msgs, Py_ssize_t *pos_io,
                  Py_ssize_t *msg_io, int64_t mult, Out *out, Status *st) noexcept nogil:
    """Decode messages from ``msg_io``/``pos_io`` on. With ``starts``/``ends`` (a list
    input) message i is exactly ``p[starts[i]:ends[i]]``; without, messages follow each
    other separated by whitespace (newline-delimited JSON). On error the two cursors
    name the failing message, so the caller can grow a table and resume."""
    cdef int kind
    cdef Py_ssize_t pos = pos_io[0]
    cdef Py_ssize_t i = msg_io[0]
    cdef Py_ssize_t r, e
    if starts == NULL:
        while True:
            pos = skip_ws(p, pos, end)
            if pos >= end:
                break
            r = decode_message(p, pos, end, mult, i, out, &kind, st)
            if r < 0:
                pos_io[0] = pos
                msg_io[0] = i
                return -1
            pos = r
            i += 1
    else:
        while i < n_msgs:
            e = ends[i]
            r = decode_message(p, starts[i], e, mult, i, out, &kind, st)
            if r >= 0:
                r = skip_ws(p, r, e)
                if r < e:
                    r = status_set(st, ST_BAD_SYNTAX, r, p[r], 0)
            if r < 0:
                msg_io[0] = i
                return -1
            i += 1
    pos_io[0] = pos
    msg_io[0] = i
    return 0


# ---- tables --------------------------------------------------------------------------

cdef dict _layout(list cols, Py_ssize_t itemsize):
    return {"names": [c[0] for c in cols], "formats": [c[1] for c in cols],
            "offsets": [c[2] for c in cols], "itemsize": itemsize}


cdef list _dtypes():
    cdef TradeRow tr
    cdef AggTradeRow ag
    cdef BookTickerRow bt
    cdef DepthRow dr
    cdef KlineRow kl
    cdef char *b
    b = <char *>&tr
    trade = _layout([
        ("event_time", "<i8", <char *>&tr.event_time - b),
        ("trade_time", "<i8", <char *>&tr.trade_time - b),
        ("symbol", "S24", <char *>&tr.symbol - b),
        ("trade_id", "<i8", <char *>&tr.trade_id - b),
        ("price", "<i8", <char *>&tr.price - b),
        ("qty", "<i8", <char *>&tr.qty - b),
        ("buyer_is_maker", "?", <char *>&tr.buyer_is_maker - b),
        ("buyer_order_id", "<i8", <char *>&tr.buyer_order_id - b),
        ("seller_order_id", "<i8", <char *>&tr.seller_order_id - b),
        ("msg_index", "<i8", <char *>&tr.msg_index - b),
    ], sizeof(TradeRow))
    b = <char *>&ag
    agg = _layout([
        ("event_time", "<i8", <char *>&ag.event_time - b),
        ("trade_time", "<i8", <char *>&ag.trade_time - b),
        ("symbol", "S24", <char *>&ag.symbol - b),
        ("agg_trade_id", "<i8", <char *>&ag.agg_trade_id - b),
        ("price", "<i8", <char *>&ag.price - b),
        ("qty", "<i8", <char *>&ag.qty - b),
        ("first_trade_id", "<i8", <char *>&ag.first_trade_id - b),
        ("last_trade_id", "<i8", <char *>&ag.last_trade_id - b),
        ("buyer_is_maker", "?", <char *>&ag.buyer_is_maker - b),
        ("msg_index", "<i8", <char *>&ag.msg_index - b),
    ], sizeof(AggTradeRow))
    b = <char *>&bt
    book = _layout([
        ("event_time", "<i8", <char *>&bt.event_time - b),
        ("transaction_time", "<i8", <char *>&bt.transaction_time - b),
        ("symbol", "S24", <char *>&bt.symbol - b),
        ("update_id", "<i8", <char *>&bt.update_id - b),
        ("bid_price", "<i8", <char *>&bt.bid_price - b),
        ("bid_qty", "<i8", <char *>&bt.bid_qty - b),
        ("ask_price", "<i8", <char *>&bt.ask_price - b),
        ("ask_qty", "<i8", <char *>&bt.ask_qty - b),
        ("msg_index", "<i8", <char *>&bt.msg_index - b),
    ], sizeof(BookTickerRow))
    b = <char *>&dr
    depth = _layout([
        ("event_time", "<i8", <char *>&dr.event_time - b),
        ("transaction_time", "<i8", <char *>&dr.transaction_time - b),
        ("symbol", "S24", <char *>&dr.symbol - b),
        ("first_update_id", "<i8", <char *>&dr.first_update_id - b),
        ("final_update_id", "<i8", <char *>&dr.final_update_id - b),
        ("prev_final_update_id", "<i8", <char *>&dr.prev_final_update_id - b),
        ("side", "u1", <char *>&dr.side - b),
        ("price", "<i8", <char *>&dr.price - b),
        ("qty", "<i8", <char *>&dr.qty - b),
        ("msg_index", "<i8", <char *>&dr.msg_index - b),
    ], sizeof(DepthRow))
    b = <char *>&kl
    kline = _layout([
        ("event_time", "<i8", <char *>&kl.event_time - b),
        ("symbol", "S24", <char *>&kl.symbol - b),
        ("interval", "S8", <char *>&kl.interval - b),
        ("start_time", "<i8", <char *>&kl.start_time - b),
        ("close_time", "<i8", <char *>&kl.close_time - b),
        ("first_trade_id", "<i8", <char *>&kl.first_trade_id - b),
        ("last_trade_id", "<i8", <char *>&kl.last_trade_id - b),
        ("open", "<i8", <char *>&kl.open - b),
        ("high", "<i8", <char *>&kl.high - b),
        ("low", "<i8", <char *>&kl.low - b),
        ("close", "<i8", <char *>&kl.close - b),
        ("volume", "<i8", <char *>&kl.volume - b),
        ("quote_volume", "<i8", <char *>&kl.quote_volume - b),
        ("taker_buy_base_volume", "<i8", <char *>&kl.taker_buy_base_volume - b),
        ("taker_buy_quote_volume", "<i8", <char *>&kl.taker_buy_quote_volume - b),
        ("num_trades", "<i8", <char *>&kl.num_trades - b),
        ("is_closed", "?", <char *>&kl.is_closed - b),
        ("msg_index", "<i8", <char *>&kl.msg_index - b),
    ], sizeof(KlineRow))
    return [np.dtype(trade), np.dtype(agg), np.dtype(book), np.dtype(depth),
            np.dtype(depth), np.dtype(kline), np.dtype(np.uint8)]


DTYPES = tuple(_dtypes())


cdef class OutBuffers:
    """Growable output tables (one numpy array per table) for the nogil kernels."""

    def __cinit__(self, caps):
        cdef int t
        self.arrays = []
        for t in range(N_TABLES):
            self.arrays.append(np.empty(max(int(caps[t]), 4), dtype=DTYPES[t]))
            self.out.n[t] = 0
        for t in range(N_KINDS):
            self.out.counts[t] = 0
        memset(self.out.shapes, 0, sizeof(self.out.shapes))
        self._bind()

    cdef void _bind(self):
        cdef int t
        cdef cnp.ndarray a
        for t in range(N_TABLES):
            a = self.arrays[t]
            self.out.cap[t] = a.shape[0]
        self.out.trades = <TradeRow *>cnp.PyArray_DATA(self.arrays[T_TRADES])
        self.out.agg_trades = <AggTradeRow *>cnp.PyArray_DATA(self.arrays[T_AGG_TRADES])
        self.out.book_ticker = <BookTickerRow *>cnp.PyArray_DATA(self.arrays[T_BOOK_TICKER])
        self.out.depth = <DepthRow *>cnp.PyArray_DATA(self.arrays[T_DEPTH])
        self.out.snapshots = <DepthRow *>cnp.PyArray_DATA(self.arrays[T_SNAPSHOTS])
        self.out.klines = <KlineRow *>cnp.PyArray_DATA(self.arrays[T_KLINES])
        self.out.kinds = <uint8_t *>cnp.PyArray_DATA(self.arrays[T_KINDS])

    cdef int grow(self, int table) except -1:
        old = self.arrays[table]
        new = np.empty(2 * len(old) + 64, dtype=old.dtype)
        new[:self.out.n[table]] = old[:self.out.n[table]]
        self.arrays[table] = new
        self._bind()
        return 0

    def add_invalid(self):
        """Record one undecodable message (skip mode)."""
        if self.out.n[<int>T_KINDS] >= self.out.cap[<int>T_KINDS]:
            self.grow(T_KINDS)
        self.out.kinds[self.out.n[<int>T_KINDS]] = K_INVALID
        self.out.n[<int>T_KINDS] += 1
        self.out.counts[<int>K_INVALID] += 1

    def result(self):
        """``(tables dict, counts dict)``, arrays trimmed to the rows used."""
        cdef int t
        tables = {}
        for t in range(N_TABLES):
            a = self.arrays[t]
            self.arrays[t] = None  # the buffers leave with the result
            n = self.out.n[t]
            # Shrink in place (realloc, normally no copy) so the tables hold no slack.
            a.resize(n, refcheck=False)
            tables[TABLE_NAMES[t]] = a
        counts = {KIND_NAMES[k]: int(self.out.counts[k]) for k in range(1, N_KINDS)}
        counts["invalid"] = int(self.out.counts[<int>K_INVALID])
        return tables, counts


cdef int raise_decode(const Status *st, object source) except -1:
    from hftcore.errors import DecodeError
    if st.code == ST_MISSING_FIELD:
        reason = f"required field {FIELD_NAMES[st.a]!r} missing"
    else:
        reason = status_reason(st)
    raise DecodeError(reason, st.offset, source)


def decode_json(const uint8_t[::1] buf, starts, ends, int64_t time_mult, caps,
                bint skip_errors=False):
    """Decode JSON messages from ``buf`` into tables (the engine of ``decode_many``).

    ``starts``/``ends`` (int64 arrays) delimit the messages of a list input, or are None
    for newline-delimited (whitespace-separated) JSON. With ``skip_errors`` a bad message
    is counted as ``invalid`` and decoding resumes with the next one (the next line of a
    buffer). Returns ``(tables, counts, errors)``.
    """
    cdef OutBuffers ob = OutBuffers(caps)
    cdef Status st
    cdef Py_ssize_t pos = 0, msg = 0, n_msgs = 0
    cdef Py_ssize_t end = buf.shape[0]
    cdef const uint8_t *p = &buf[0] if end > 0 else NULL
    cdef const int64_t[::1] s_view
    cdef const int64_t[::1] e_view
    cdef const int64_t *sp = NULL
    cdef const int64_t *ep = NULL
    cdef int rc
    if starts is not None:
        s_view = starts
        e_view = ends
        n_msgs = s_view.shape[0]
        if n_msgs != e_view.shape[0]:
            raise ValueError("starts and ends differ in length")
        if n_msgs:
            sp = &s_view[0]
            ep = &e_view[0]
            for i in range(n_msgs):
                if not 0 <= sp[i] <= ep[i] <= end:
                    raise ValueError(f"message {i} bounds outside the buffer")
    errors = []
    if end == 0 and sp == NULL:
        return ob.result() + (errors,)
    while True:
        status_clear(&st)
        with nogil:
            rc = run_json(p, end, sp, ep, n_msgs, &pos, &msg, time_mult, &ob.out, &st)
        if rc == 0:
            break
        if st.code == ST_CAPACITY:
            ob.grow(<int>st.a)
            continue
        if sp != NULL:
            # Offsets within the failing message read better for a list input.
            st.offset -= sp[msg]
        if not skip_errors:
            raise_decode(&st, f"message {msg}")
        # Skip mode: count the message as invalid, keep the error, resume after it.
        if len(errors) < MAX_KEPT_ERRORS:
            try:
                raise_decode(&st, f"message {msg}")
            except Exception as exc:
                errors.append(exc)
        ob.add_invalid()
        msg += 1
        if sp == NULL:
            pos = next_line(p, pos, end)
    return ob.result() + (errors,)


cdef Py_ssize_t next_line(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end) noexcept:
    """Offset after the next newline at or after ``pos`` (``end`` if none): where a
    newline-delimited stream resumes after a bad line."""
    cdef const void *q = memchr(p + pos, 10, end - pos)
    if q == NULL:
        return end
    return (<const uint8_t *>q - p) + 1


# Errors kept by ``errors="skip"`` (all are counted).
MAX_KEPT_ERRORS = 100

# The digit conversion this build uses for prices and quantities: SSE2 on x86-64
# release builds, the portable one elsewhere and in the debug build (same values).
SIMD_DIGITS = bool(DIGITS_SSE2)
