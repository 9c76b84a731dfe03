# cython: language_level=3
"""Declared interface of the Binance JSON scanner: nogil primitives and output rows.

The scanner never builds a Python object per field. Hot primitives (whitespace, strings,
integers, 8-decimal fixed point, one ``[price, qty]`` level) are inline here so both the
table decoder (``_json.pyx``) and the book applier (``_apply.pyx``) get them inlined.
All offsets are absolute from ``p`` (the start of the caller's whole input), so a
:class:`hftcore.DecodeError` names the byte where the problem is.

Decimal strings are parsed to int64 with 8 implied decimals, exactly: digits after the
8th must be zeros, otherwise ``ST_TOO_MANY_DECIMALS``. Exponent notation (``"1e5"``) and a
leading ``+`` are rejected as malformed: Binance never sends them and accepting them would
invite silent misreads.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore._core.bytes cimport load_le16, load_le64


cdef extern from *:
    """
    #include <stdint.h>
    static const int64_t hft_pow10[19] = {
        1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
        1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
        100000000000000LL, 1000000000000000LL, 10000000000000000LL,
        100000000000000000LL, 1000000000000000000LL};
    /* 0x80 / 0xFF in the n low bytes of a word, n = 0..8. */
    static const uint64_t hft_low_bytes_80[9] = {
        0x0ULL, 0x80ULL, 0x8080ULL, 0x808080ULL, 0x80808080ULL, 0x8080808080ULL,
        0x808080808080ULL, 0x80808080808080ULL, 0x8080808080808080ULL};
    static const uint64_t hft_low_bytes_ff[9] = {
        0x0ULL, 0xFFULL, 0xFFFFULL, 0xFFFFFFULL, 0xFFFFFFFFULL, 0xFFFFFFFFFFULL,
        0xFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFULL, 0xFFFFFFFFFFFFFFFFULL};
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int hft_ctz64(unsigned long long x) {
        unsigned long i; _BitScanForward64(&i, x); return (int)i;
    }
    static inline int hft_mul_ovf(int64_t a, int64_t b, int64_t *out) {
        if (b != 0 && (a > INT64_MAX / b || a < INT64_MIN / b)) return 1;
        *out = a * b; return 0;
    }
    #else
    static inline int hft_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int hft_mul_ovf(int64_t a, int64_t b, int64_t *out) {
        return __builtin_mul_overflow(a, b, out);
    }
    #endif

    /* Eight digit values 0..9 (most significant in the lowest byte) to their value, in
       three multiply steps: pairs, then quads, then the two halves. */
    static inline uint64_t hft_digits8(uint64_t v) {
        v = v * 10 + (v >> 8);
        return (((v & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
                (((v >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
    }

    /* Two 8-decimal numbers from their digit words (integer part right-aligned with
       leading zero digits, then the eight fraction digits): a = ai.af, b = bi.bf.
       On x86-64 the four conversions share one SSE2 sequence (SSE2 is part of the
       x86-64 baseline, so every wheel has it). */
    #if (defined(__x86_64__) || defined(_M_X64)) && !defined(HFTCORE_NO_SIMD)
    #define HFT_DIGITS_SSE2 1
    #include <emmintrin.h>
    static inline __m128i hft_digits16_quads(uint64_t hi, uint64_t lo) {
        __m128i v = _mm_set_epi64x((long long)lo, (long long)hi);
        /* A 16-bit lane holds d0 + 256*d1; times 10*256 + 1 its high byte is 10*d0 + d1. */
        v = _mm_srli_epi16(_mm_mullo_epi16(v, _mm_set1_epi16(10 * 256 + 1)), 8);
        /* Pairs (p0, p1) to 100*p0 + p1 in 32-bit lanes. */
        return _mm_madd_epi16(v, _mm_set1_epi32((1 << 16) | 100));
    }
    static inline void hft_dec8_pair(uint64_t ai, uint64_t af, uint64_t bi, uint64_t bf,
                                     uint64_t *a, uint64_t *b) {
        /* Quads (< 10000) to 16 bits, then 10000*q0 + q1: the four 8-digit values. */
        __m128i v = _mm_packs_epi32(hft_digits16_quads(ai, af), hft_digits16_quads(bi, bf));
        v = _mm_madd_epi16(v, _mm_set1_epi32((1 << 16) | 10000));
        uint64_t x = (uint64_t)_mm_cvtsi128_si64(v);
        uint64_t y = (uint64_t)_mm_cvtsi128_si64(_mm_srli_si128(v, 8));
        *a = (x & 0xFFFFFFFFULL) * 100000000ULL + (x >> 32);
        *b = (y & 0xFFFFFFFFULL) * 100000000ULL + (y >> 32);
    }
    #else
    #define HFT_DIGITS_SSE2 0
    static inline void hft_dec8_pair(uint64_t ai, uint64_t af, uint64_t bi, uint64_t bf,
                                     uint64_t *a, uint64_t *b) {
        *a = hft_digits8(ai) * 100000000ULL + hft_digits8(af);
        *b = hft_digits8(bi) * 100000000ULL + hft_digits8(bf);
    }
    #endif
    """
    int count_trailing_zeros "hft_ctz64"(uint64_t x) noexcept nogil
    const int64_t *POW10 "hft_pow10"  # 10**0 .. 10**18
    const uint64_t *LOW_BYTES_80 "hft_low_bytes_80"  # 0x80 in the n low bytes, n = 0..8
    const uint64_t *LOW_BYTES_FF "hft_low_bytes_ff"  # 0xFF in the n low bytes
    # a * b into ``out``; nonzero (and ``out`` unspecified) when it overflows int64
    int mul_overflow "hft_mul_ovf"(int64_t a, int64_t b, int64_t *out) noexcept nogil
    # Eight digit values 0..9 (most significant in the lowest byte) to their value.
    uint64_t swar_8_digits_value "hft_digits8"(uint64_t v) noexcept nogil
    # 1 when dec8_pair is the SSE2 sequence, 0 for the portable one (other CPUs, and
    # builds with HFTCORE_NO_SIMD: the debug build tests that path).
    int DIGITS_SSE2 "HFT_DIGITS_SSE2"
    # Two 8-decimal numbers from their digit words (see dec8_scan).
    void dec8_pair "hft_dec8_pair"(uint64_t ai, uint64_t af, uint64_t bi, uint64_t bf,
                                   uint64_t *a, uint64_t *b) noexcept nogil


from hftcore._core.status cimport (
    ST_BAD_NUMBER,
    ST_BAD_SYNTAX,
    ST_OVERFLOW,
    ST_TOO_MANY_DECIMALS,
    ST_TRUNCATED,
    Status,
    status_set,
)

# ---- output rows (numpy dtypes are built from these layouts with offsetof) ----------

cdef struct TradeRow:
    int64_t event_time        # E, ns
    int64_t trade_time        # T, ns
    int64_t trade_id          # t
    int64_t price             # p, 8 implied decimals
    int64_t qty               # q, 8 implied decimals
    int64_t buyer_order_id    # b; -1 when absent (SBE, newer streams)
    int64_t seller_order_id   # a; -1 when absent
    int64_t msg_index         # index of the message in the input
    char symbol[24]           # s, UTF-8, NUL padded
    uint8_t buyer_is_maker    # m

cdef struct AggTradeRow:
    int64_t event_time        # E, ns
    int64_t trade_time        # T, ns
    int64_t agg_trade_id      # a
    int64_t price             # p
    int64_t qty               # q
    int64_t first_trade_id    # f
    int64_t last_trade_id     # l
    int64_t msg_index
    char symbol[24]
    uint8_t buyer_is_maker    # m

cdef struct BookTickerRow:
    int64_t event_time        # E, ns; 0 on spot JSON (absent)
    int64_t transaction_time  # T, ns; 0 when absent
    int64_t update_id         # u (order book update id)
    int64_t bid_price         # b
    int64_t bid_qty           # B
    int64_t ask_price         # a
    int64_t ask_qty           # A
    int64_t msg_index
    char symbol[24]

cdef struct DepthRow:
    int64_t event_time            # E, ns; 0 when absent
    int64_t transaction_time      # T, ns; 0 when absent (spot)
    int64_t first_update_id       # U; -1 for snapshots
    int64_t final_update_id       # u, or lastUpdateId / bookUpdateId for snapshots
    int64_t prev_final_update_id  # pu (USD-M); -1 when absent
    int64_t price
    int64_t qty                   # 0 removes the level
    int64_t msg_index
    char symbol[24]               # "" when absent (spot partial depth, REST)
    uint8_t side                  # 0 bid, 1 ask

cdef struct KlineRow:
    int64_t event_time               # E, ns
    int64_t start_time               # k.t, ns
    int64_t close_time               # k.T, ns
    int64_t first_trade_id           # k.f
    int64_t last_trade_id            # k.L
    int64_t open                     # k.o
    int64_t high                     # k.h
    int64_t low                      # k.l
    int64_t close                    # k.c
    int64_t volume                   # k.v, base asset
    int64_t quote_volume             # k.q
    int64_t taker_buy_base_volume    # k.V
    int64_t taker_buy_quote_volume   # k.Q
    int64_t num_trades               # k.n
    int64_t msg_index
    char symbol[24]
    char interval[8]                 # k.i, e.g. "1m"
    uint8_t is_closed                # k.x


# Message kinds (the per-message ``kinds`` column and the counts).
cdef enum MsgKind:
    K_INVALID = 0
    K_TRADE = 1
    K_AGG_TRADE = 2
    K_DEPTH = 3
    K_SNAPSHOT = 4
    K_BOOK_TICKER = 5
    K_KLINE = 6
    K_CONTROL = 7
    K_ERROR = 8
    K_SHUTDOWN = 9
    K_UNKNOWN = 10
    N_KINDS = 11

# Output tables; a ST_CAPACITY status names one of these in ``a``.
cdef enum TableId:
    T_TRADES = 0
    T_AGG_TRADES = 1
    T_BOOK_TICKER = 2
    T_DEPTH = 3
    T_SNAPSHOTS = 4
    T_KLINES = 5
    T_KINDS = 6
    N_TABLES = 7


cdef enum:
    # A number shape is guessed once the field has kept it this many times in a row.
    GUESS_AFTER = 16


cdef struct NumShape:
    # How the previous numbers of one field (a level's price, or its qty) were printed;
    # start with all zeros. See dec8_scan_guess.
    Py_ssize_t int_len    # integer digits (1..7); 0: none seen yet
    Py_ssize_t frac_len   # fraction digits (1..8)
    Py_ssize_t streak     # how many numbers in a row had this shape


cdef struct Out:
    TradeRow *trades
    AggTradeRow *agg_trades
    BookTickerRow *book_ticker
    DepthRow *depth
    DepthRow *snapshots
    KlineRow *klines
    uint8_t *kinds                # one per message: a MsgKind
    Py_ssize_t n[7]               # rows used per table (TableId)
    Py_ssize_t cap[7]             # rows allocated per table
    int64_t counts[11]            # messages per MsgKind
    NumShape shapes[2]            # price / qty print shapes, kept across levels


# ---- scanner primitives --------------------------------------------------------------

cdef inline bint is_digit(uint8_t c) noexcept nogil:
    return <uint8_t>(c - 48) < 10


cdef inline Py_ssize_t skip_ws(const uint8_t *p, Py_ssize_t pos,
                               Py_ssize_t end) noexcept nogil:
    cdef uint8_t c
    while pos < end:
        c = p[pos]
        if c == 32 or c == 10 or c == 13 or c == 9:
            pos += 1
        else:
            break
    return pos


cdef inline Py_ssize_t expect_char(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   uint8_t ch, Status *st) noexcept nogil:
    """Skip whitespace, require ``ch``, return the position after it (or -1)."""
    pos = skip_ws(p, pos, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] != ch:
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    return pos + 1


cdef inline Py_ssize_t after_item(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                  uint8_t close, bint *done, Status *st) noexcept nogil:
    """After an object member or array element: skip ``,`` and whitespace to the next
    item, or consume ``close`` (``}`` or ``]``) and set ``done``. Returns the new
    position, or -1 with ``st`` set."""
    pos = skip_ws(p, pos, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == 44:
        done[0] = False
        return skip_ws(p, pos + 1, end)
    if p[pos] == close:
        done[0] = True
        return pos + 1
    return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)


cdef inline bint swar_8_digits(uint64_t v) noexcept nogil:
    # Every byte in '0'..'9': high nibble 3, and adding 6 does not carry into it.
    return ((v & 0xF0F0F0F0F0F0F0F0ULL) == 0x3030303030303030ULL and
            ((v + 0x0606060606060606ULL) & 0xF0F0F0F0F0F0F0F0ULL) == 0x3030303030303030ULL)


cdef inline int swar_digit_run(uint64_t t) noexcept nogil:
    # ``t`` = 8 input bytes minus '0' each. Bytes 0..9 are digits; the index of the
    # first other byte (8 if none). Borrows from non-digits only reach later bytes.
    cdef uint64_t mask = (t | (t + 0x7676767676767676ULL)) & 0x8080808080808080ULL
    if mask == 0:
        return 8
    return count_trailing_zeros(mask) >> 3


cdef inline uint64_t swar_8_value(uint64_t v) noexcept nogil:
    # Eight ASCII digits (first digit in the lowest byte) to their value, in three
    # multiply steps: pairs, then quads, then the two halves.
    return swar_8_digits_value(v - 0x3030303030303030ULL)


cdef inline Py_ssize_t parse_decimal8(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                      int64_t *out, Status *st) noexcept nogil:
    """Parse ``-?digits(.digits)?`` at ``pos`` into int64 with 8 implied decimals.

    Returns the position after the last digit, or -1 with ``st`` set. The caller checks
    what follows (a closing quote, or a JSON delimiter for bare numbers).
    """
    cdef Py_ssize_t start = pos
    cdef bint neg = False
    cdef uint64_t ip = 0
    cdef uint64_t frac = 0
    cdef uint64_t val
    cdef int nd = 0
    cdef int nf = 0
    cdef int extra_nonzero = 0
    cdef uint64_t t
    cdef uint8_t c
    if pos < end and p[pos] == 45:  # '-'
        neg = True
        pos += 1
    if end - pos >= 8:
        # Up to 7 integer digits in one step (no loop, no mispredicted exit).
        t = load_le64(p + pos) - 0x3030303030303030ULL
        nd = swar_digit_run(t)
        if 0 < nd < 8:
            ip = swar_8_digits_value(t << (8 * (8 - nd)))
            pos += nd
        else:
            nd = 0
    while pos < end and is_digit(p[pos]):
        ip = ip * 10 + (p[pos] - 48)
        if ip > 92233720368ULL:  # int64 max / 1e8: the integer part cannot fit
            return status_set(st, ST_OVERFLOW, start, 0, 0)
        nd += 1
        pos += 1
    if nd == 0:
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and p[pos] == 46:  # '.'
        pos += 1
        if end - pos >= 8 and swar_8_digits(load_le64(p + pos)):
            frac = swar_8_value(load_le64(p + pos))
            nf = 8
            pos += 8
        else:
            while pos < end and nf < 8 and is_digit(p[pos]):
                frac = frac * 10 + (p[pos] - 48)
                nf += 1
                pos += 1
            if nf == 0:
                if pos >= end:
                    return status_set(st, ST_TRUNCATED, pos, 1, 0)
                return status_set(st, ST_BAD_NUMBER, start, 0, 0)
        if nf == 8:
            # Digits beyond the 8th are fine only when they are zeros.
            while pos < end and is_digit(p[pos]):
                c = p[pos]
                if c != 48:
                    extra_nonzero = 1
                nf += 1
                pos += 1
            if extra_nonzero:
                return status_set(st, ST_TOO_MANY_DECIMALS, start, nf, 8)
        else:
            while nf < 8:
                frac *= 10
                nf += 1
    else:
        frac = 0
    val = ip * 100000000ULL + frac
    if val > 9223372036854775807ULL:
        return status_set(st, ST_OVERFLOW, start, 0, 0)
    out[0] = -<int64_t>val if neg else <int64_t>val
    return pos


cdef inline Py_ssize_t parse_int64(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t *out, Status *st) noexcept nogil:
    """Parse a bare JSON integer at ``pos``; fractions and exponents are malformed."""
    cdef Py_ssize_t start = pos
    cdef bint neg = False
    cdef uint64_t v = 0
    cdef uint64_t limit, t
    cdef int nd = 0
    cdef int k
    cdef uint8_t d
    if pos < end and p[pos] == 45:
        neg = True
        pos += 1
    limit = 9223372036854775808ULL if neg else 9223372036854775807ULL
    # Eight digits at a time while no overflow is possible (at most 18 digits).
    while end - pos >= 8:
        t = load_le64(p + pos) - 0x3030303030303030ULL
        k = swar_digit_run(t)
        if k == 0 or nd + k > 18:
            break
        v = v * <uint64_t>POW10[k] + swar_8_digits_value(t << (8 * (8 - k)) if k < 8 else t)
        nd += k
        pos += k
        if k < 8:
            break
    while pos < end and is_digit(p[pos]):
        d = p[pos] - 48
        if v > (limit - d) // 10:
            return status_set(st, ST_OVERFLOW, start, 0, 0)
        v = v * 10 + d
        nd += 1
        pos += 1
    if nd == 0:
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and (p[pos] == 46 or p[pos] == 101 or p[pos] == 69):  # . e E
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if nd > 1 and p[start + neg] == 48:  # JSON numbers have no leading zeros
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    out[0] = -<int64_t>v if neg else <int64_t>v
    return pos


cdef inline Py_ssize_t dec8_scan(const uint8_t *p, Py_ssize_t pos, uint64_t *int_digits,
                                 uint64_t *frac_digits, int *int_len) noexcept nogil:
    """Check ``1-7 digits . 1-8 digits "`` at ``pos`` (the caller guarantees 17
    readable bytes, the longest such form) and return the position after the quote, or
    -1 for any other shape. Spot prints every price and quantity with 8 decimals, USD-M
    with the instrument's precision. The digit words (values 0..9, most significant in
    the lowest byte) are left for ``swar_8_digits_value`` or ``dec8_pair``: the integer
    part right-aligned behind leading zero digits, the fraction left-aligned and padded
    with zero digits to eight. ``int_len`` receives the number of integer digits."""
    cdef uint64_t t, f
    cdef int nd, nf
    t = load_le64(p + pos) - 0x3030303030303030ULL
    nd = swar_digit_run(t)
    # 1..7 integer digits, then the point; 7 digits keep the value far below int64 max.
    if nd == 0 or nd == 8 or p[pos + nd] != 46:
        return -1
    pos += nd + 1
    f = load_le64(p + pos) - 0x3030303030303030ULL
    nf = swar_digit_run(f)
    # A 9th decimal digit is no closing quote: the general parser decides about it.
    if nf == 0 or p[pos + nf] != 34:
        return -1
    int_digits[0] = t << (8 * (8 - nd))
    # Keep the nf digits; the bytes after them become zero digits.
    frac_digits[0] = f & LOW_BYTES_FF[nf]
    int_len[0] = nd
    return pos + nf + 1


cdef inline Py_ssize_t dec8_scan_guess(const uint8_t *p, Py_ssize_t pos, NumShape *sh,
                                       uint64_t *int_digits,
                                       uint64_t *frac_digits) noexcept nogil:
    """``dec8_scan`` that first checks the text against the shape of the previous numbers
    of the same field (``sh``), then records the shape it found.

    Why: the position of the next number depends on this one's digit counts, and
    computing them is a chain of dependent operations on the loaded bytes; a guessed
    shape that is checked (a predictable branch) lets the CPU start on the next number
    before the check completes. Prices keep their shape from level to level (a symbol's
    prices have the same number of digits); quantities often do not, and a wrong guess
    costs more than none, so a shape is guessed only after GUESS_AFTER numbers in a row
    had it.
    """
    cdef uint64_t t, f
    cdef Py_ssize_t fpos, q, frac_len
    cdef int nd
    if sh.streak >= GUESS_AFTER:
        t = load_le64(p + pos) - 0x3030303030303030ULL
        fpos = pos + sh.int_len + 1
        f = load_le64(p + fpos) - 0x3030303030303030ULL
        # The high bit of each byte that must be a digit (table lookups, not shifts:
        # x86 shifts by a variable count all need CL).
        if ((((t | (t + 0x7676767676767676ULL)) & LOW_BYTES_80[sh.int_len])
                | ((f | (f + 0x7676767676767676ULL)) & LOW_BYTES_80[sh.frac_len])) == 0
                and p[fpos - 1] == 46 and p[fpos + sh.frac_len] == 34):
            int_digits[0] = t << (8 * (8 - sh.int_len))
            frac_digits[0] = f & LOW_BYTES_FF[sh.frac_len]
            return fpos + sh.frac_len + 1
    q = dec8_scan(p, pos, int_digits, frac_digits, &nd)
    if q >= 0:
        # Branch-free: whether the shape changed is itself hard to predict.
        frac_len = q - pos - nd - 2
        sh.streak = (sh.streak + 1) * ((nd == sh.int_len) & (frac_len == sh.frac_len))
        sh.int_len = nd
        sh.frac_len = frac_len
    return q


cdef inline Py_ssize_t quoted_dec8_at(const uint8_t *p, Py_ssize_t pos,
                                      int64_t *out) noexcept nogil:
    """``quoted_dec8`` without its length check: the caller guarantees at least 17
    readable bytes at ``pos`` (the longest accepted form, ``dddddddd.dddddddd"``, reads
    that far)."""
    cdef uint64_t i, f
    cdef int nd
    pos = dec8_scan(p, pos, &i, &f, &nd)
    if pos >= 0:
        out[0] = <int64_t>(swar_8_digits_value(i) * 100000000ULL + swar_8_digits_value(f))
    return pos


cdef inline Py_ssize_t quoted_dec8(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t *out) noexcept nogil:
    """``1-7 digits . 1-8 digits "`` at ``pos`` (how Binance prints every price and
    quantity) into ``out``; returns the position after the closing quote, or -1 when the
    text has any other shape (the caller then takes the general parser)."""
    if end - pos < 17:
        return -1
    return quoted_dec8_at(p, pos, out)


cdef inline Py_ssize_t parse_decimal_value(const uint8_t *p, Py_ssize_t pos,
                                           Py_ssize_t end, int64_t *out,
                                           Status *st) noexcept nogil:
    """A decimal as a JSON string (``"0.1"``) or a bare JSON number (``0.1``)."""
    cdef Py_ssize_t start = pos
    cdef Py_ssize_t fast
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == 34:  # '"'
        fast = quoted_dec8(p, pos + 1, end, out)  # Binance's usual print shape
        if fast >= 0:
            return fast
        pos = parse_decimal8(p, pos + 1, end, out, st)
        if pos < 0:
            return -1
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        if p[pos] != 34:
            return status_set(st, ST_BAD_NUMBER, pos, p[pos], 0)
        return pos + 1
    pos = parse_decimal8(p, pos, end, out, st)
    if pos < 0:
        return -1
    if pos < end and (p[pos] == 101 or p[pos] == 69 or p[pos] == 46):
        return status_set(st, ST_BAD_NUMBER, pos, p[pos], 0)
    if p[start] == 45:
        start += 1
    if p[start] == 48 and start + 1 < end and is_digit(p[start + 1]):  # no leading zeros
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    return pos


cdef inline Py_ssize_t level_as_printed(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                        NumShape *shapes, int64_t *price,
                                        int64_t *qty) noexcept nogil:
    """One ``["price","qty"]`` level exactly as Binance prints it (compact; each number
    1-7 integer digits and 1-8 decimals) at ``pos``; returns the position after its
    ``]``, or -1 for any other shape (the caller then takes ``parse_level``, which
    decides about spaces, signs, a 9th decimal, ...). ``shapes``: the price and qty
    NumShape kept across levels (see dec8_scan_guess)."""
    cdef uint64_t pi, pf, qi, qf
    cdef Py_ssize_t q
    # One length check covers the longest such level (2 + 17 + 2 + 17 + 1 bytes), so
    # the loads inside need none.
    if end - pos < 39 or load_le16(p + pos) != 0x225B:  # '["'
        return -1
    q = dec8_scan_guess(p, pos + 2, &shapes[0], &pi, &pf)
    if q < 0 or load_le16(p + q) != 0x222C:  # ',"'
        return -1
    q = dec8_scan_guess(p, q + 2, &shapes[1], &qi, &qf)
    if q < 0 or p[q] != 93:
        return -1
    # Both numbers validated: their four digit groups convert together.
    dec8_pair(pi, pf, qi, qf, <uint64_t *>price, <uint64_t *>qty)
    return q + 1


cdef inline Py_ssize_t parse_level(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t *price, int64_t *qty,
                                   Status *st) noexcept nogil:
    """One ``[price, qty]`` pair starting at ``pos`` (at its ``[``); extra elements are
    skipped. Returns the position after the closing ``]``."""
    cdef Py_ssize_t q
    if end - pos > 2 and p[pos] == 91 and p[pos + 1] == 34:
        # Compact form ``["price","qty"]`` (what Binance sends): no whitespace checks.
        q = parse_decimal8(p, pos + 2, end, price, st)
        if q < 0:
            return -1
        if end - q > 3 and p[q] == 34 and p[q + 1] == 44 and p[q + 2] == 34:
            q = parse_decimal8(p, q + 3, end, qty, st)
            if q < 0:
                return -1
            if end - q >= 2 and p[q] == 34 and p[q + 1] == 93:
                return q + 2
        # anything else: the general path below re-reads the level
    pos = expect_char(p, pos, end, 91, st)  # '['
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    pos = parse_decimal_value(p, pos, end, price, st)
    if pos < 0:
        return -1
    pos = expect_char(p, pos, end, 44, st)  # ','
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    pos = parse_decimal_value(p, pos, end, qty, st)
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    if pos < end and p[pos] == 93:  # ']'
        return pos + 1
    while True:
        # Tolerate trailing elements (older futures payloads carried a third one).
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        if p[pos] == 93:
            return pos + 1
        if p[pos] != 44:
            return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
        pos = skip_ws(p, pos + 1, end)
        pos = skip_value(p, pos, end, 1, st)
        if pos < 0:
            return -1
        pos = skip_ws(p, pos, end)


# ---- non-inline helpers (implemented in _json.pyx) -----------------------------------

# Skip one JSON value of any type at ``pos`` (no leading whitespace); ``depth`` is the
# current nesting. Returns the position after it, or -1 with ``st`` set.
cdef Py_ssize_t skip_value(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end, int depth,
                           Status *st) noexcept nogil

# Scan a JSON string whose opening quote is at ``pos``. Sets ``content_end`` (offset of
# the closing quote) and ``has_escape``; returns the position after the closing quote.
cdef Py_ssize_t scan_string(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            Py_ssize_t *content_end, bint *has_escape,
                            Status *st) noexcept nogil

# Read a JSON string at ``pos`` into ``dst`` (``cap`` bytes, NUL padded), decoding
# escapes to UTF-8. A string longer than ``cap`` bytes is ST_BAD_VALUE (a = its length).
cdef Py_ssize_t read_string(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            char *dst, Py_ssize_t cap, Status *st) noexcept nogil

# Read a JSON integer time and scale it by ``mult`` to ns (overflow is ST_OVERFLOW).
cdef Py_ssize_t read_time(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                          int64_t mult, int64_t *out, Status *st) noexcept nogil

# Decode one JSON message at ``pos`` into ``out``; returns the position after it, or -1.
# ``kind`` receives its MsgKind. Row counters in ``out`` advance only on success.
cdef Py_ssize_t decode_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                               int64_t time_mult, int64_t msg_index, Out *out,
                               int *kind, Status *st) noexcept nogil


# Growable output tables shared by the JSON and SBE decoders. The nogil kernels fill
# ``out``; on ST_CAPACITY the driver calls ``grow`` and resumes at the same message.
cdef class OutBuffers:
    cdef Out out
    cdef list arrays              # numpy structured arrays, one per TableId
    cdef void _bind(self)
    cdef int grow(self, int table) except -1


cdef inline Py_ssize_t read_key(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                Py_ssize_t *key_start, Py_ssize_t *key_len,
                                Status *st) noexcept nogil:
    """Read an object member's ``"key":`` at ``pos`` (which must be the opening quote).

    Sets ``key_start`` and ``key_len`` (-1 when the key has escapes: it then matches no
    field) and returns the position of the value's first byte, or -1 with ``st`` set.
    """
    cdef Py_ssize_t kend
    cdef bint esc
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] != 34:
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    key_start[0] = pos + 1
    if end - pos > 3 and p[pos + 2] == 34 and p[pos + 1] > 34 and p[pos + 1] != 92:
        # One-character key (most Binance keys): no string scan needed.
        key_len[0] = 1
        pos += 3
    else:
        pos = scan_string(p, pos, end, &kend, &esc, st)
        if pos < 0:
            return -1
        key_len[0] = -1 if esc else kend - key_start[0]
    pos = expect_char(p, pos, end, 58, st)
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    return pos
