# cython: language_level=3
"""Binance JSON market data: the message schema and dispatch over the nogil
:mod:`hftcore.codec` lexer, into columnar tables.

One pass per message, any key order, any whitespace, unknown keys (nested too) skipped.
Fields are recognised by key and by the JSON type of their value, so the meaning of keys
that Binance reuses (``"b"``: bids array, best bid price string or buyer order id number)
is known before the event type, which may come last. Depth levels are written straight
into a level sink (the depth table's rows here, a level buffer in ``_apply.pyx``); the
message header is filled in once the object is closed. ``parse_message`` is the one
parser of a Binance JSON message: the book appliers run it too.
"""

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

from hftcore._core.status cimport (
    ST_BAD_SYNTAX,
    ST_CAPACITY,
    ST_DUPLICATE_KEY,
    ST_MISSING_FIELD,
    ST_TRUNCATED,
    ST_WRONG_TYPE,
    ST_ZERO_LENGTH,
    Status,
    raise_status,
    status_clear,
    status_set,
)
from hftcore.codec.decimal cimport (
    DECIMALS,
    is_level_array,
    parse_decimal_value,
    read_levels,
)
from hftcore.codec.json cimport (
    after_item,
    at_literal,
    key_is,
    parse_int64,
    read_bool,
    read_key,
    read_string,
    read_time,
    scan_string,
    skip_value,
    skip_ws,
)
from hftcore.codec.levels cimport LevelRow, sink_free, sink_init
from hftcore.codec.swar cimport DIGITS_SSE2, count_trailing_zeros, is_digit

from hftcore.binance.schema import SCALE, SYMBOL_BYTES, TABLES

cnp.import_array()

if SCALE != 10**DECIMALS or SYMBOL_BYTES != SYMBOL_WIDTH:
    raise ImportError("hftcore.binance.schema disagrees with the compiled decoder "
                      f"(SCALE {SCALE}, SYMBOL_BYTES {SYMBOL_BYTES})")

# Field bits of a top-level message (``seen`` mask); FIELD_NAMES are the JSON keys, used
# in "required field missing" errors.
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
    # keys read for no field of their own (named in duplicate-key errors)
    F_M
    F_data
    F_event
    F_k_f
    F_k_L
    F_k_q
    F_k_V
    F_k_Q
    F_k_n
    F_k_x
    N_FIELDS

FIELD_NAMES = (
    "e", "E", "T", "s", "t", "p", "q", "b", "a", "b", "a", "B", "A", "m", "f", "l", "U",
    "u", "pu", "lastUpdateId", "k", "b", "a", "bids", "asks", "result", "id", "code", "msg",
    "k.t", "k.T", "k.i", "k.o", "k.c", "k.h", "k.l", "k.v",
    "M", "data", "event", "k.f", "k.L", "k.q", "k.V", "k.Q", "k.n", "k.x",
)  # fmt: skip

# The Field bit of each one-letter key (0: not a key the decoders read), top level and
# inside a kline's "k": the duplicate-key check. Bits, not Field numbers: the check is
# then a load, a test and an or per key, with no branch on whether the key is known.
cdef uint64_t KEY1[256]
cdef uint64_t KLINE_KEY1[256]
memset(KEY1, 0, sizeof(KEY1))
memset(KLINE_KEY1, 0, sizeof(KLINE_KEY1))
for _key, _field in (("e", F_e), ("E", F_E), ("T", F_T), ("s", F_s), ("t", F_t), ("p", F_p),
                     ("q", F_q), ("b", F_b_num), ("a", F_a_num), ("B", F_B), ("A", F_A),
                     ("m", F_m), ("M", F_M), ("f", F_f), ("l", F_l), ("U", F_U), ("u", F_u),
                     ("k", F_k)):
    KEY1[ord(_key)] = (<uint64_t>1) << _field
for _key, _field in (("t", F_k_t), ("T", F_k_T), ("i", F_k_i), ("o", F_k_o), ("c", F_k_c),
                     ("h", F_k_h), ("l", F_k_l), ("v", F_k_v), ("f", F_k_f), ("L", F_k_L),
                     ("q", F_k_q), ("V", F_k_V), ("Q", F_k_Q), ("n", F_k_n), ("x", F_k_x)):
    KLINE_KEY1[ord(_key)] = (<uint64_t>1) << _field
if N_FIELDS > 64:
    raise ImportError("_json: more Fields than bits in Fields.seen")

KIND_NAMES = (
    "invalid", "trade", "aggTrade", "depthUpdate", "depthSnapshot", "bookTicker", "kline",
    "control", "error", "serverShutdown", "unknown",
)  # fmt: skip

TABLE_NAMES = ("trades", "agg_trades", "book_ticker", "depth", "depth_snapshots", "klines",
               "kinds")

if len(FIELD_NAMES) != N_FIELDS or len(KIND_NAMES) != N_KINDS or len(TABLE_NAMES) != N_TABLES:
    raise ImportError("_json: a names tuple disagrees with its enum")


cdef inline bint ev_is(const Fields *fl, const char *lit, Py_ssize_t n) noexcept nogil:
    return fl.ev_len == n and memcmp(fl.ev, lit, n) == 0


cdef inline int first_key(Fields *fl, int field, Py_ssize_t at, Status *st) noexcept nogil:
    """Mark key ``field`` read; a second one in the message is ST_DUPLICATE_KEY (one
    documented rule on every path: docs/guides/binance.rst, "Duplicate keys"). ``at``:
    the key's first character (the error names its opening quote)."""
    return first_key_bit(fl, (<uint64_t>1) << field, at, st)


cdef inline int first_key_bit(Fields *fl, uint64_t b, Py_ssize_t at,
                              Status *st) noexcept nogil:
    """``first_key`` of the key whose Field bit is ``b`` (0: a key of no Field, never a
    duplicate)."""
    if fl.keys & b:
        return status_set(st, ST_DUPLICATE_KEY, at - 1, count_trailing_zeros(b), 0)
    fl.keys |= b
    return 0


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


cdef Py_ssize_t parse_kline(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            int64_t mult, Fields *fl, Status *st) noexcept nogil:
    """The nested ``"k"`` object of a kline event (``pos`` at its ``{``)."""
    cdef bint done
    cdef Py_ssize_t ks, klen
    cdef uint8_t c
    cdef KlineRow *k = &fl.k
    pos = skip_ws(p, pos + 1, end)
    if pos < end and p[pos] == c'}':
        return pos + 1
    while True:
        pos = read_key(p, pos, end, &ks, &klen, st)
        if pos < 0:
            return -1
        c = p[ks] if klen == 1 else 0
        if first_key_bit(fl, KLINE_KEY1[c], ks, st) < 0:
            return -1
        if c == c't':
            pos = read_time(p, pos, end, mult, &k.start_time, st)
            fl.seen |= 1ULL << F_k_t
        elif c == c'T':
            pos = read_time(p, pos, end, mult, &k.close_time, st)
            fl.seen |= 1ULL << F_k_T
        elif c == c'i':
            pos = read_string(p, pos, end, k.interval, INTERVAL_WIDTH, st)
            fl.seen |= 1ULL << F_k_i
        elif c == c'f':
            pos = parse_int64(p, pos, end, &k.first_trade_id, st)
        elif c == c'L':
            pos = parse_int64(p, pos, end, &k.last_trade_id, st)
        elif c == c'o':
            pos = parse_decimal_value(p, pos, end, &k.open, st)
            fl.seen |= 1ULL << F_k_o
        elif c == c'c':
            pos = parse_decimal_value(p, pos, end, &k.close, st)
            fl.seen |= 1ULL << F_k_c
        elif c == c'h':
            pos = parse_decimal_value(p, pos, end, &k.high, st)
            fl.seen |= 1ULL << F_k_h
        elif c == c'l':
            pos = parse_decimal_value(p, pos, end, &k.low, st)
            fl.seen |= 1ULL << F_k_l
        elif c == c'v':
            pos = parse_decimal_value(p, pos, end, &k.volume, st)
            fl.seen |= 1ULL << F_k_v
        elif c == c'q':
            pos = parse_decimal_value(p, pos, end, &k.quote_volume, st)
        elif c == c'V':
            pos = parse_decimal_value(p, pos, end, &k.taker_buy_base_volume, st)
        elif c == c'Q':
            pos = parse_decimal_value(p, pos, end, &k.taker_buy_quote_volume, st)
        elif c == c'n':
            pos = parse_int64(p, pos, end, &k.num_trades, st)
        elif c == c'x':
            pos = read_bool(p, pos, end, &k.is_closed, st)
        else:  # s (repeats the event's symbol), B (ignore), unknown keys
            pos = skip_value(p, pos, end, 2, st)
        if pos < 0:
            return -1
        pos = after_item(p, pos, end, c'}', &done, st)
        if pos < 0 or done:
            return pos


cdef Py_ssize_t parse_object(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                             int64_t mult, Fields *fl, LevelSink *diff, LevelSink *snap,
                             NumShape *shapes, int level, Status *st) noexcept nogil:
    """Fields of one object (``pos`` at its ``{``) into ``fl``; ``level`` 0 is the top,
    1 the payload of a combined-stream ``data`` (or WebSocket API ``event``) envelope."""
    cdef bint done
    cdef Py_ssize_t ks, kend, klen
    cdef bint esc, num
    cdef uint8_t c, v, ignored
    pos = skip_ws(p, pos + 1, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == c'}':
        return pos + 1
    while True:
        pos = read_key(p, pos, end, &ks, &klen, st)
        if pos < 0:
            return -1
        v = p[pos]  # first byte of the value tells its JSON type
        num = v == c'-' or is_digit(v)
        if fl.skip_rest:
            pos = skip_value(p, pos, end, level + 1, st)
        elif klen == 1:
            c = p[ks]
            if first_key_bit(fl, KEY1[c], ks, st) < 0:
                return -1
            if c != c'e' and c != c'b' and c != c'a' and c != c'k':
                # Typed fields take only their JSON type; anything else is skipped (and
                # a required field then reported missing).
                if c == c's' or c == c'B' or c == c'A':
                    if v != c'"':
                        c = 0
                elif c == c'p' or c == c'q':
                    if v != c'"' and not num:
                        c = 0
                elif c == c'm' or c == c'M':
                    if v != c't' and v != c'f':
                        c = 0
                elif not num:
                    c = 0
            if c == c'b' or c == c'a':
                if v == c'[' and is_level_array(p, pos, end):
                    if c == c'b':
                        fl.seen |= 1ULL << F_b_arr
                    else:
                        fl.seen |= 1ULL << F_a_arr
                    pos = read_levels(p, pos, end, diff, SIDE_BID if c == c'b' else SIDE_ASK,
                                      shapes, st)
                elif v == c'"':
                    if c == c'b':
                        fl.seen |= 1ULL << F_b_str
                        pos = parse_decimal_value(p, pos, end, &fl.b_str, st)
                    else:
                        fl.seen |= 1ULL << F_a_str
                        pos = parse_decimal_value(p, pos, end, &fl.a_str, st)
                elif num:
                    if c == c'b':
                        fl.seen |= 1ULL << F_b_num
                        pos = parse_int64(p, pos, end, &fl.b_num, st)
                    else:
                        fl.seen |= 1ULL << F_a_num
                        pos = parse_int64(p, pos, end, &fl.a_num, st)
                else:
                    pos = skip_value(p, pos, end, level + 1, st)
            elif c == c'e':
                if v == c'"':
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
            elif c == c'E':
                pos = read_time(p, pos, end, mult, &fl.E, st)
                fl.seen |= 1ULL << F_E
            elif c == c'T':
                pos = read_time(p, pos, end, mult, &fl.T, st)
                fl.seen |= 1ULL << F_T
            elif c == c's':
                pos = read_string(p, pos, end, fl.symbol, SYMBOL_WIDTH, st)
                fl.seen |= 1ULL << F_s
            elif c == c't':
                pos = parse_int64(p, pos, end, &fl.t, st)
                fl.seen |= 1ULL << F_t
            elif c == c'p':
                pos = parse_decimal_value(p, pos, end, &fl.price, st)
                fl.seen |= 1ULL << F_p
            elif c == c'q':
                pos = parse_decimal_value(p, pos, end, &fl.qty, st)
                fl.seen |= 1ULL << F_q
            elif c == c'B':
                pos = parse_decimal_value(p, pos, end, &fl.B, st)
                fl.seen |= 1ULL << F_B
            elif c == c'A':
                pos = parse_decimal_value(p, pos, end, &fl.A, st)
                fl.seen |= 1ULL << F_A
            elif c == c'm':
                pos = read_bool(p, pos, end, &fl.m, st)
                fl.seen |= 1ULL << F_m
            elif c == c'M':  # "ignore" in the docs: read inline, cheaper than a skip
                pos = read_bool(p, pos, end, &ignored, st)
            elif c == c'f':
                pos = parse_int64(p, pos, end, &fl.f, st)
                fl.seen |= 1ULL << F_f
            elif c == c'l':
                pos = parse_int64(p, pos, end, &fl.l, st)
                fl.seen |= 1ULL << F_l
            elif c == c'U':
                pos = parse_int64(p, pos, end, &fl.U, st)
                fl.seen |= 1ULL << F_U
            elif c == c'u':
                pos = parse_int64(p, pos, end, &fl.u, st)
                fl.seen |= 1ULL << F_u
            elif c == c'k' and v == c'{':
                memset(&fl.k, 0, sizeof(KlineRow))
                pos = parse_kline(p, pos, end, mult, fl, st)
                fl.seen |= 1ULL << F_k
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"pu", 2):
            if first_key(fl, F_pu, ks, st) < 0:
                return -1
            if num:
                pos = parse_int64(p, pos, end, &fl.pu, st)
                fl.seen |= 1ULL << F_pu
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"bids", 4):
            if first_key(fl, F_bids, ks, st) < 0:
                return -1
            if v == c'[':
                fl.seen |= 1ULL << F_bids
                pos = read_levels(p, pos, end, snap, SIDE_BID, shapes, st)
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"asks", 4):
            if first_key(fl, F_asks, ks, st) < 0:
                return -1
            if v == c'[':
                fl.seen |= 1ULL << F_asks
                pos = read_levels(p, pos, end, snap, SIDE_ASK, shapes, st)
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"lastUpdateId", 12):
            if first_key(fl, F_lastUpdateId, ks, st) < 0:
                return -1
            if num:
                pos = parse_int64(p, pos, end, &fl.last_update_id, st)
                fl.seen |= 1ULL << F_lastUpdateId
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif level == 0 and key_is(p, ks, klen, b"data", 4):
            if first_key(fl, F_data, ks, st) < 0:
                return -1
            if v == c'{':
                pos = parse_object(p, pos, end, mult, fl, diff, snap, shapes, 1, st)
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif level == 0 and key_is(p, ks, klen, b"event", 5):
            if first_key(fl, F_event, ks, st) < 0:
                return -1
            if v == c'{':
                pos = parse_object(p, pos, end, mult, fl, diff, snap, shapes, 1, st)
            else:
                pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"result", 6):
            if first_key(fl, F_result, ks, st) < 0:
                return -1
            fl.seen |= 1ULL << F_result
            pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"id", 2):
            if first_key(fl, F_id, ks, st) < 0:
                return -1
            fl.seen |= 1ULL << F_id
            fl.id_type = v
            fl.id_at = pos
            pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"code", 4):
            if first_key(fl, F_code, ks, st) < 0:
                return -1
            fl.seen |= 1ULL << F_code
            fl.code_type = v
            fl.code_at = pos
            pos = skip_value(p, pos, end, level + 1, st)
        elif key_is(p, ks, klen, b"msg", 3):
            if first_key(fl, F_msg, ks, st) < 0:
                return -1
            fl.seen |= 1ULL << F_msg
            fl.msg_type = v
            pos = skip_value(p, pos, end, level + 1, st)
        else:
            pos = skip_value(p, pos, end, level + 1, st)
        if pos < 0:
            return -1
        pos = after_item(p, pos, end, c'}', &done, st)
        if pos < 0 or done:
            return pos


cdef enum:
    STACK_ROWS = 64      # message_header: levels held on the stack before the heap
    NOT_AS_PRINTED = -2  # diff_as_printed: another shape (the general parser decides)


cdef Py_ssize_t diff_as_printed(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                int64_t mult, Fields *fl, LevelSink *diff,
                                NumShape *shapes, Status *st) noexcept nogil:
    """A ``depthUpdate`` exactly as Binance prints it (spot or USD-M, keys in its order,
    no whitespace), without the general parser's per-key dispatch: the header costs a
    few fixed compares. Returns the position after the object, or NOT_AS_PRINTED when
    the text has any other shape or fails to parse; the caller then takes the general
    parser, which also reports any error, so both accept and reject exactly the same
    input with the same values.
    """
    if not at_literal(p, pos, end, b'{"e":"depthUpdate","E":', 23):
        return NOT_AS_PRINTED
    fl.ev = p + pos + 7
    fl.ev_len = 11
    pos = read_time(p, pos + 23, end, mult, &fl.E, st)
    if pos < 0:
        return NOT_AS_PRINTED
    fl.seen |= (1ULL << F_e) | (1ULL << F_E)
    if at_literal(p, pos, end, b',"T":', 5):  # USD-M: transaction time
        pos = read_time(p, pos + 5, end, mult, &fl.T, st)
        if pos < 0:
            return NOT_AS_PRINTED
        fl.seen |= 1ULL << F_T
    if not at_literal(p, pos, end, b',"s":"', 6):
        return NOT_AS_PRINTED
    pos = read_string(p, pos + 5, end, fl.symbol, SYMBOL_WIDTH, st)
    if pos < 0 or not at_literal(p, pos, end, b',"U":', 5):
        return NOT_AS_PRINTED
    pos = parse_int64(p, pos + 5, end, &fl.U, st)
    if pos < 0 or not at_literal(p, pos, end, b',"u":', 5):
        return NOT_AS_PRINTED
    pos = parse_int64(p, pos + 5, end, &fl.u, st)
    if pos < 0:
        return NOT_AS_PRINTED
    fl.seen |= (1ULL << F_s) | (1ULL << F_U) | (1ULL << F_u)
    if at_literal(p, pos, end, b',"pu":', 6):  # USD-M: the previous u
        pos = parse_int64(p, pos + 6, end, &fl.pu, st)
        if pos < 0:
            return NOT_AS_PRINTED
        fl.seen |= 1ULL << F_pu
    if not at_literal(p, pos, end, b',"b":[', 6):
        return NOT_AS_PRINTED
    pos = read_levels(p, pos + 5, end, diff, SIDE_BID, shapes, st)
    if pos < 0 or not at_literal(p, pos, end, b',"a":[', 6):
        return NOT_AS_PRINTED
    pos = read_levels(p, pos + 5, end, diff, SIDE_ASK, shapes, st)
    if pos < 0 or not at_literal(p, pos, end, b'}', 1):
        return NOT_AS_PRINTED
    fl.seen |= (1ULL << F_b_arr) | (1ULL << F_a_arr)
    return pos + 1


cdef Py_ssize_t message_as_printed(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t mult, Fields *fl, LevelSink *diff,
                                   NumShape *shapes, Status *st) noexcept nogil:
    """``diff_as_printed``, raw or in the combined-stream envelope as Binance prints it
    (stream name first, then data)."""
    cdef Py_ssize_t r
    if at_literal(p, pos, end, b'{"stream":"', 11):
        r = skip_value(p, pos + 10, end, 1, st)
        if r < 0 or not at_literal(p, r, end, b',"data":', 8):
            return NOT_AS_PRINTED
        r = diff_as_printed(p, r + 8, end, mult, fl, diff, shapes, st)
        if r < 0 or not at_literal(p, r, end, b'}', 1):
            return NOT_AS_PRINTED
        return r + 1
    return diff_as_printed(p, pos, end, mult, fl, diff, shapes, st)


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


cdef inline int require(const Fields *fl, uint64_t mask, Status *st) noexcept nogil:
    cdef uint64_t missing = mask & ~fl.seen
    cdef int b = 0
    if missing == 0:
        return 0
    while not (missing >> b) & 1:
        b += 1
    return status_set(st, ST_MISSING_FIELD, fl.start, b, 0)


cdef inline bint is_number(uint8_t v) noexcept nogil:
    return v == c'-' or is_digit(v)


cdef int check_int(const uint8_t *p, Py_ssize_t at, Py_ssize_t end, int field,
                   Status *st) noexcept nogil:
    """The number at ``at`` (already scanned) is a JSON integer that fits int64."""
    cdef int64_t ignored
    if parse_int64(p, at, end, &ignored, st) < 0:
        return -1
    return 0


cdef int check_reply(const uint8_t *p, Py_ssize_t end, const Fields *fl, int k,
                     Status *st) noexcept nogil:
    """The typed fields of a control / error reply: ``code`` an int64 integer, ``msg`` a
    string, ``id`` an int64 integer, a string or null (or absent); else ST_WRONG_TYPE,
    so a record's field types never depend on the input."""
    cdef uint8_t t
    if k == K_ERROR:
        if not is_number(fl.code_type):
            return status_set(st, ST_WRONG_TYPE, fl.code_at, F_code, 0)
        if check_int(p, fl.code_at, end, F_code, st) < 0:
            return -1
        if fl.msg_type != c'"':
            return status_set(st, ST_WRONG_TYPE, fl.start, F_msg, 0)
    if (fl.seen >> F_id) & 1:
        t = fl.id_type
        if is_number(t):
            return check_int(p, fl.id_at, end, F_id, st)
        if t != c'"' and t != c'n':
            return status_set(st, ST_WRONG_TYPE, fl.id_at, F_id, 0)
    return 0


cdef inline void fields_init(Fields *fl) noexcept nogil:
    fl.kind = K_UNKNOWN
    fl.seen = 0
    fl.ev_len = 0
    fl.skip_rest = False
    memset(fl.symbol, 0, SYMBOL_WIDTH)


cdef int message_kind(const uint8_t *p, Py_ssize_t end, const Fields *fl,
                      Status *st) noexcept nogil:
    """The kind of a parsed message, its required fields checked (or -1)."""
    cdef uint64_t seen = fl.seen
    cdef int k = K_UNKNOWN
    if (seen >> F_e) & 1:
        k = event_kind(fl)
    elif (seen >> F_lastUpdateId) & 1 and seen & (bit(F_bids) | bit(F_asks)):
        k = K_SNAPSHOT
    elif seen & M_BOOK == M_BOOK:
        k = K_BOOK_TICKER
    elif (seen >> F_result) & 1:
        k = K_CONTROL
    elif (seen >> F_code) & 1 and (seen >> F_msg) & 1:
        k = K_ERROR
    if k == K_DEPTH:
        return -1 if require(fl, M_DEPTH, st) < 0 else k
    if k == K_TRADE:
        return -1 if require(fl, M_TRADE, st) < 0 else k
    if k == K_BOOK_TICKER:
        return -1 if require(fl, M_BOOK, st) < 0 else k
    if k == K_AGG_TRADE:
        return -1 if require(fl, M_AGG, st) < 0 else k
    if k == K_KLINE:
        return -1 if require(fl, M_KLINE, st) < 0 else k
    if k == K_CONTROL or k == K_ERROR:
        return -1 if check_reply(p, end, fl, k, st) < 0 else k
    return k


cdef Py_ssize_t depth_as_printed(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                 int64_t time_mult, Fields *fl, LevelSink *diff,
                                 NumShape *shapes, Status *st) noexcept nogil:
    """``message_as_printed``; when it does not match, ``fl``, ``diff`` and ``st`` are
    left as the general parser needs them. Out of line: small messages never take it,
    and it would keep ``message_fields`` from being inlined."""
    cdef Py_ssize_t after = message_as_printed(p, pos, end, time_mult, fl, diff, shapes, st)
    if after >= 0:
        fl.kind = K_DEPTH
        return after
    # Any other shape: the general parser, from a clean slate (the fast path writes
    # nothing before it has matched the event type, which sets ev_len).
    if fl.ev_len:
        fields_init(fl)
        diff.n = 0
    status_clear(st)
    return NOT_AS_PRINTED


cdef inline Py_ssize_t message_fields(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                      int64_t time_mult, Fields *fl, LevelSink *diff,
                                      LevelSink *snap, NumShape *shapes,
                                      Status *st) noexcept nogil:
    """``parse_message``, inline in ``decode_message`` (a call between them, and one
    more frame per message, cost the small messages several percent)."""
    cdef Py_ssize_t after
    cdef int k
    fields_init(fl)
    diff.n = 0
    snap.n = 0
    pos = skip_ws(p, pos, end)
    fl.start = pos
    if pos >= end:
        return status_set(st, ST_ZERO_LENGTH, pos, 0, 0)
    if p[pos] != c'{':
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    # Two bytes tell the fast path's shapes from the rest: '{"e":"d...' or '{"s...'.
    if end - pos > 7 and (p[pos + 6] == c'd' or p[pos + 2] == c's'):
        after = depth_as_printed(p, pos, end, time_mult, fl, diff, shapes, st)
        if after >= 0:
            return after
    fl.keys = 0  # the duplicate-key check (the fast path has each key once by shape)
    fl.id_type = 0
    after = parse_object(p, pos, end, time_mult, fl, diff, snap, shapes, 0, st)
    if after < 0:
        return -1
    k = message_kind(p, end, fl, st)
    if k < 0:
        return -1
    fl.kind = k
    return after


cdef Py_ssize_t parse_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                              int64_t time_mult, Fields *fl, LevelSink *diff,
                              LevelSink *snap, NumShape *shapes,
                              Status *st) noexcept nogil:
    return message_fields(p, pos, end, time_mult, fl, diff, snap, shapes, st)


cdef inline int64_t opt(const Fields *fl, int field, int64_t value,
                        int64_t absent) noexcept nogil:
    return value if (fl.seen >> field) & 1 else absent


cdef void depth_ids(const Fields *fl, DepthIds *ids) noexcept nogil:
    ids.event_time = opt(fl, F_E, fl.E, 0)
    ids.transaction_time = opt(fl, F_T, fl.T, 0)
    ids.prev_final_update_id = opt(fl, F_pu, fl.pu, -1)
    if fl.kind == K_SNAPSHOT:
        ids.first_update_id = -1
        ids.final_update_id = fl.last_update_id
    else:
        ids.first_update_id = fl.U
        ids.final_update_id = fl.u


# ---- one message -> rows -------------------------------------------------------------

cdef void depth_table_sink(LevelSink *s, DepthRow *rows, const Out *out,
                           int table) noexcept nogil:
    sink_init(s, rows + out.n[table], out.cap[table] - out.n[table], sizeof(DepthRow),
              table, False)


cdef void commit_levels(Out *out, int table) noexcept nogil:
    cdef LevelSink *s = &out.sinks[table - T_DEPTH]
    out.n[table] += s.n
    s.rows += s.n * s.stride
    s.cap -= s.n
    s.n = 0


cdef inline int room(Out *out, int table, Py_ssize_t need, Py_ssize_t pos,
                     Status *st) noexcept nogil:
    if out.n[table] + need > out.cap[table]:
        return status_set(st, ST_CAPACITY, pos, table, out.cap[table])
    return 0


cdef void fill_depth_header(DepthRow *rows, Py_ssize_t n, const Fields *fl,
                            int64_t msg_index) noexcept nogil:
    cdef Py_ssize_t i
    cdef DepthIds ids
    depth_ids(fl, &ids)
    # In locals: stores into the rows could alias ``ids`` and ``fl``.
    cdef int64_t ev = ids.event_time, tt = ids.transaction_time
    cdef int64_t first_id = ids.first_update_id, final_id = ids.final_update_id
    cdef int64_t pu = ids.prev_final_update_id
    for i in range(n):
        rows[i].event_time = ev
        rows[i].transaction_time = tt
        rows[i].first_update_id = first_id
        rows[i].final_update_id = final_id
        rows[i].prev_final_update_id = pu
        rows[i].msg_index = msg_index
        memcpy(rows[i].symbol, fl.symbol, SYMBOL_WIDTH)


cdef void fill_trade(TradeRow *tr, const Fields *fl, int64_t msg_index) noexcept nogil:
    tr.event_time = fl.E
    tr.trade_time = fl.T
    tr.trade_id = fl.t
    tr.price = fl.price
    tr.qty = fl.qty
    tr.buyer_order_id = opt(fl, F_b_num, fl.b_num, -1)
    tr.seller_order_id = opt(fl, F_a_num, fl.a_num, -1)
    tr.msg_index = msg_index
    memcpy(tr.symbol, fl.symbol, SYMBOL_WIDTH)
    tr.buyer_is_maker = fl.m


cdef void fill_agg_trade(AggTradeRow *ag, const Fields *fl, int64_t msg_index) noexcept nogil:
    ag.event_time = fl.E
    ag.trade_time = fl.T
    ag.agg_trade_id = fl.a_num
    ag.price = fl.price
    ag.qty = fl.qty
    ag.first_trade_id = fl.f
    ag.last_trade_id = fl.l
    ag.msg_index = msg_index
    memcpy(ag.symbol, fl.symbol, SYMBOL_WIDTH)
    ag.buyer_is_maker = fl.m


cdef void fill_book_ticker(BookTickerRow *bt, const Fields *fl,
                           int64_t msg_index) noexcept nogil:
    bt.event_time = opt(fl, F_E, fl.E, 0)
    bt.transaction_time = opt(fl, F_T, fl.T, 0)
    bt.update_id = fl.u
    bt.bid_price = fl.b_str
    bt.bid_qty = fl.B
    bt.ask_price = fl.a_str
    bt.ask_qty = fl.A
    bt.msg_index = msg_index
    memcpy(bt.symbol, fl.symbol, SYMBOL_WIDTH)


cdef Py_ssize_t decode_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                               int64_t time_mult, int64_t msg_index, bint whole, Out *out,
                               int *kind, Status *st) noexcept nogil:
    cdef Fields fl
    cdef LevelSink *diff = &out.sinks[0]
    cdef LevelSink *snap = &out.sinks[1]
    cdef Py_ssize_t after
    cdef int k
    cdef KlineRow *kl
    if room(out, T_KINDS, 1, pos, st) < 0:
        return -1
    after = message_fields(p, pos, end, time_mult, &fl, diff, snap, out.shapes, st)
    if after < 0:
        return -1
    if whole:
        # The message is all of p[pos:end]: bytes after it reject it before any row
        # is committed (a rejected message leaves no row).
        after = skip_ws(p, after, end)
        if after < end:
            return status_set(st, ST_BAD_SYNTAX, after, p[after], 0)
    k = fl.kind
    if k == K_DEPTH:
        fill_depth_header(out.depth + out.n[<int>T_DEPTH], diff.n, &fl, msg_index)
        commit_levels(out, T_DEPTH)
    elif k == K_SNAPSHOT:
        fill_depth_header(out.snapshots + out.n[<int>T_SNAPSHOTS], snap.n, &fl, msg_index)
        commit_levels(out, T_SNAPSHOTS)
    elif k == K_TRADE:
        if room(out, T_TRADES, 1, fl.start, st) < 0:
            return -1
        fill_trade(out.trades + out.n[<int>T_TRADES], &fl, msg_index)
        out.n[<int>T_TRADES] += 1
    elif k == K_BOOK_TICKER:
        if room(out, T_BOOK_TICKER, 1, fl.start, st) < 0:
            return -1
        fill_book_ticker(out.book_ticker + out.n[<int>T_BOOK_TICKER], &fl, msg_index)
        out.n[<int>T_BOOK_TICKER] += 1
    elif k == K_AGG_TRADE:
        if room(out, T_AGG_TRADES, 1, fl.start, st) < 0:
            return -1
        fill_agg_trade(out.agg_trades + out.n[<int>T_AGG_TRADES], &fl, msg_index)
        out.n[<int>T_AGG_TRADES] += 1
    elif k == K_KLINE:
        if room(out, T_KLINES, 1, fl.start, st) < 0:
            return -1
        kl = out.klines + out.n[<int>T_KLINES]
        memcpy(kl, &fl.k, sizeof(KlineRow))
        kl.event_time = fl.E
        kl.msg_index = msg_index
        memcpy(kl.symbol, fl.symbol, SYMBOL_WIDTH)
        out.n[<int>T_KLINES] += 1
    out.kinds[out.n[<int>T_KINDS]] = <uint8_t>k
    out.n[<int>T_KINDS] += 1
    out.counts[k] += 1
    kind[0] = k
    return after


# ---- tables --------------------------------------------------------------------------

cdef inline tuple _at(void *field, void *row, Py_ssize_t size):
    return (<char *>field - <char *>row, size)


cdef dict _struct_fields():
    """Per table: column name -> (offset, size) of its field in the row struct."""
    cdef TradeRow tr
    cdef AggTradeRow ag
    cdef BookTickerRow bt
    cdef DepthRow dr
    cdef KlineRow kl
    trade = {
        "event_time": _at(&tr.event_time, &tr, sizeof(tr.event_time)),
        "trade_time": _at(&tr.trade_time, &tr, sizeof(tr.trade_time)),
        "symbol": _at(&tr.symbol, &tr, sizeof(tr.symbol)),
        "trade_id": _at(&tr.trade_id, &tr, sizeof(tr.trade_id)),
        "price": _at(&tr.price, &tr, sizeof(tr.price)),
        "qty": _at(&tr.qty, &tr, sizeof(tr.qty)),
        "buyer_is_maker": _at(&tr.buyer_is_maker, &tr, sizeof(tr.buyer_is_maker)),
        "buyer_order_id": _at(&tr.buyer_order_id, &tr, sizeof(tr.buyer_order_id)),
        "seller_order_id": _at(&tr.seller_order_id, &tr, sizeof(tr.seller_order_id)),
        "msg_index": _at(&tr.msg_index, &tr, sizeof(tr.msg_index)),
    }
    agg = {
        "event_time": _at(&ag.event_time, &ag, sizeof(ag.event_time)),
        "trade_time": _at(&ag.trade_time, &ag, sizeof(ag.trade_time)),
        "symbol": _at(&ag.symbol, &ag, sizeof(ag.symbol)),
        "agg_trade_id": _at(&ag.agg_trade_id, &ag, sizeof(ag.agg_trade_id)),
        "price": _at(&ag.price, &ag, sizeof(ag.price)),
        "qty": _at(&ag.qty, &ag, sizeof(ag.qty)),
        "first_trade_id": _at(&ag.first_trade_id, &ag, sizeof(ag.first_trade_id)),
        "last_trade_id": _at(&ag.last_trade_id, &ag, sizeof(ag.last_trade_id)),
        "buyer_is_maker": _at(&ag.buyer_is_maker, &ag, sizeof(ag.buyer_is_maker)),
        "msg_index": _at(&ag.msg_index, &ag, sizeof(ag.msg_index)),
    }
    book = {
        "event_time": _at(&bt.event_time, &bt, sizeof(bt.event_time)),
        "transaction_time": _at(&bt.transaction_time, &bt, sizeof(bt.transaction_time)),
        "symbol": _at(&bt.symbol, &bt, sizeof(bt.symbol)),
        "update_id": _at(&bt.update_id, &bt, sizeof(bt.update_id)),
        "bid_price": _at(&bt.bid_price, &bt, sizeof(bt.bid_price)),
        "bid_qty": _at(&bt.bid_qty, &bt, sizeof(bt.bid_qty)),
        "ask_price": _at(&bt.ask_price, &bt, sizeof(bt.ask_price)),
        "ask_qty": _at(&bt.ask_qty, &bt, sizeof(bt.ask_qty)),
        "msg_index": _at(&bt.msg_index, &bt, sizeof(bt.msg_index)),
    }
    depth = {
        "event_time": _at(&dr.event_time, &dr, sizeof(dr.event_time)),
        "transaction_time": _at(&dr.transaction_time, &dr, sizeof(dr.transaction_time)),
        "symbol": _at(&dr.symbol, &dr, sizeof(dr.symbol)),
        "first_update_id": _at(&dr.first_update_id, &dr, sizeof(dr.first_update_id)),
        "final_update_id": _at(&dr.final_update_id, &dr, sizeof(dr.final_update_id)),
        "prev_final_update_id": _at(&dr.prev_final_update_id, &dr,
                                    sizeof(dr.prev_final_update_id)),
        "side": _at(&dr.side, &dr, sizeof(dr.side)),
        "price": _at(&dr.price, &dr, sizeof(dr.price)),
        "qty": _at(&dr.qty, &dr, sizeof(dr.qty)),
        "msg_index": _at(&dr.msg_index, &dr, sizeof(dr.msg_index)),
    }
    kline = {
        "event_time": _at(&kl.event_time, &kl, sizeof(kl.event_time)),
        "symbol": _at(&kl.symbol, &kl, sizeof(kl.symbol)),
        "interval": _at(&kl.interval, &kl, sizeof(kl.interval)),
        "start_time": _at(&kl.start_time, &kl, sizeof(kl.start_time)),
        "close_time": _at(&kl.close_time, &kl, sizeof(kl.close_time)),
        "first_trade_id": _at(&kl.first_trade_id, &kl, sizeof(kl.first_trade_id)),
        "last_trade_id": _at(&kl.last_trade_id, &kl, sizeof(kl.last_trade_id)),
        "open": _at(&kl.open, &kl, sizeof(kl.open)),
        "high": _at(&kl.high, &kl, sizeof(kl.high)),
        "low": _at(&kl.low, &kl, sizeof(kl.low)),
        "close": _at(&kl.close, &kl, sizeof(kl.close)),
        "volume": _at(&kl.volume, &kl, sizeof(kl.volume)),
        "quote_volume": _at(&kl.quote_volume, &kl, sizeof(kl.quote_volume)),
        "taker_buy_base_volume": _at(&kl.taker_buy_base_volume, &kl,
                                     sizeof(kl.taker_buy_base_volume)),
        "taker_buy_quote_volume": _at(&kl.taker_buy_quote_volume, &kl,
                                      sizeof(kl.taker_buy_quote_volume)),
        "num_trades": _at(&kl.num_trades, &kl, sizeof(kl.num_trades)),
        "is_closed": _at(&kl.is_closed, &kl, sizeof(kl.is_closed)),
        "msg_index": _at(&kl.msg_index, &kl, sizeof(kl.msg_index)),
    }
    return {"trades": (trade, sizeof(TradeRow)), "agg_trades": (agg, sizeof(AggTradeRow)),
            "book_ticker": (book, sizeof(BookTickerRow)), "depth": (depth, sizeof(DepthRow)),
            "depth_snapshots": (depth, sizeof(DepthRow)),
            "klines": (kline, sizeof(KlineRow))}


def _dtypes():
    """One dtype per TableId: the columns of ``schema.TABLES`` (names and types, in
    order) at their row struct's offsets. Refuses a column without a struct field, or
    whose type's size is not the field's."""
    structs = _struct_fields()
    dtypes = []
    for name in TABLE_NAMES[:T_KINDS]:
        fields, itemsize = structs[name]
        names, formats, offsets = [], [], []
        for col in TABLES[name]:
            if col.name not in fields:
                raise ImportError(f"schema column {name}.{col.name} has no row struct field")
            offset, size = fields[col.name]
            if np.dtype(col.dtype).itemsize != size:
                raise ImportError(f"schema column {name}.{col.name} ({col.dtype}) does not "
                                  f"fit its {size}-byte row struct field")
            names.append(col.name)
            formats.append(col.dtype)
            offsets.append(offset)
        dtypes.append(np.dtype({"names": names, "formats": formats, "offsets": offsets,
                                "itemsize": itemsize}))
    dtypes.append(np.dtype(np.uint8))  # T_KINDS
    return tuple(dtypes)


DTYPES = _dtypes()


cdef DepthRow _depth_row
cdef LevelRow _level_row
if (<char *>&_depth_row.qty - <char *>&_depth_row.price
        != <char *>&_level_row.qty - <char *>&_level_row.price
        or <char *>&_depth_row.side - <char *>&_depth_row.price
        != <char *>&_level_row.side - <char *>&_level_row.price
        or <char *>&_depth_row.price != <char *>&_depth_row):
    raise ImportError("_json: DepthRow does not start with codec.levels.LevelRow")


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
        # The level sinks over the free rows of the (maybe moved) depth tables.
        depth_table_sink(&self.out.sinks[0], self.out.depth, &self.out, T_DEPTH)
        depth_table_sink(&self.out.sinks[1], self.out.snapshots, &self.out, T_SNAPSHOTS)

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
            r = decode_message(p, pos, end, mult, i, False, out, &kind, st)
            if r < 0:
                pos_io[0] = pos
                msg_io[0] = i
                return -1
            pos = r
            i += 1
    else:
        while i < n_msgs:
            e = ends[i]
            r = decode_message(p, starts[i], e, mult, i, True, out, &kind, st)
            if r < 0:
                msg_io[0] = i
                return -1
            i += 1
    pos_io[0] = pos
    msg_io[0] = i
    return 0


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
            raise_status(&st, f"message {msg}", FIELD_NAMES)
        # Skip mode: count the message as invalid, keep the error, resume after it.
        if len(errors) < MAX_KEPT_ERRORS:
            try:
                raise_status(&st, f"message {msg}", FIELD_NAMES)
            except Exception as exc:
                errors.append(exc)
        ob.add_invalid()
        msg += 1
        if sp == NULL:
            pos = next_line(p, pos, end)
    return ob.result() + (errors,)


def message_header(const uint8_t[::1] buf, int64_t time_mult):
    """Parse one whole message (``buf``, whitespace around it allowed) with
    ``parse_message`` and return its kind and header, the fields ``decode`` needs besides
    the table rows (a depth message with no levels has no row to carry them).

    Returns ``(kind, event_time, transaction_time, first_update_id, final_update_id,
    prev_final_update_id, symbol)``: ints (as the depth rows hold them: absent times 0,
    absent ids -1; ``first_update_id`` -1 for a snapshot) and the symbol as bytes
    (b"" when absent). Raises DecodeError as ``decode_many`` would.
    """
    cdef Fields fl
    cdef DepthIds ids
    cdef LevelRow diff_rows[STACK_ROWS]
    cdef LevelRow snap_rows[STACK_ROWS]
    cdef LevelSink diff, snap
    cdef NumShape shapes[N_SHAPES]
    cdef Status st
    cdef Py_ssize_t end = buf.shape[0]
    cdef const uint8_t *p = &buf[0] if end > 0 else NULL
    cdef Py_ssize_t r
    sink_init(&diff, diff_rows, STACK_ROWS, sizeof(LevelRow), T_DEPTH, True)
    sink_init(&snap, snap_rows, STACK_ROWS, sizeof(LevelRow), T_SNAPSHOTS, True)
    memset(shapes, 0, sizeof(shapes))
    status_clear(&st)
    r = parse_message(p, 0, end, time_mult, &fl, &diff, &snap, shapes, &st)
    if r >= 0:
        r = skip_ws(p, r, end)
        if r < end:
            r = status_set(&st, ST_BAD_SYNTAX, r, p[r], 0)
    sink_free(&diff)
    sink_free(&snap)
    if r < 0:
        raise_status(&st, None, FIELD_NAMES)
    depth_ids(&fl, &ids)
    if fl.kind != K_DEPTH and fl.kind != K_SNAPSHOT:  # only the times mean anything
        ids.first_update_id = ids.final_update_id = ids.prev_final_update_id = -1
    sym = fl.symbol[:SYMBOL_WIDTH].rstrip(b"\0")
    return (fl.kind, ids.event_time, ids.transaction_time, ids.first_update_id,
            ids.final_update_id, ids.prev_final_update_id, sym)


cdef Py_ssize_t next_line(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end) noexcept:
    """Offset after the next newline at or after ``pos`` (``end`` if none): where a
    newline-delimited stream resumes after a bad line."""
    cdef const void *q = memchr(p + pos, c'\n', end - pos)
    if q == NULL:
        return end
    return (<const uint8_t *>q - p) + 1


# Errors kept by ``errors="skip"`` (all are counted).
MAX_KEPT_ERRORS = 100

# The digit conversion this build uses for prices and quantities: SSE2 on x86-64
# release builds, the portable one elsewhere and in the debug build (same values).
SIMD_DIGITS = bool(DIGITS_SSE2)
