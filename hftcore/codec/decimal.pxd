# cython: language_level=3
"""Exact fixed-point decimals: text to int64 with 8 implied decimals, and ``[price, qty]``
levels into a :c:type:`LevelSink`.

Decimal strings are parsed exactly: digits after the 8th must be zeros, otherwise
``ST_TOO_MANY_DECIMALS``. Exponent notation (``"1e5"``) and a leading ``+`` are
rejected as malformed: market data never uses them and accepting them would invite
silent misreads. The usual print shape (1-7 integer digits, a point, 1-8 decimals, in
quotes) takes a word-at-a-time path; any other shape the general parser, which alone
decides what is accepted.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore._core.bytes cimport load_le16, load_le64
from hftcore._core.status cimport (
    ST_BAD_NUMBER,
    ST_BAD_SYNTAX,
    ST_OVERFLOW,
    ST_TOO_MANY_DECIMALS,
    ST_TRUNCATED,
    Status,
    status_set,
)
from hftcore.codec.json cimport after_item, expect_char, skip_value, skip_ws
from hftcore.codec.levels cimport LevelSink, sink_grow, sink_put
from hftcore.codec.swar cimport (
    LOW_BYTES_80,
    LOW_BYTES_FF,
    dec8_pair,
    is_digit,
    swar_8_digits,
    swar_8_digits_value,
    swar_8_value,
    swar_digit_run,
)

cdef enum:
    DECIMALS = 8          # implied decimals of every parsed value
    GUESS_AFTER = 16      # a number shape is guessed once a field kept it this many times
    MAX_FAST_INT = 7      # integer digits of the word-at-a-time shape
    FAST_NUMBER_BYTES = 17  # its longest text: 7 digits . 8 digits and the closing quote
    FAST_LEVEL_BYTES = 39   # the longest compact level: ["17 bytes,"17 bytes]


cdef struct NumShape:
    # How the previous numbers of one field (a level's price, or its qty) were printed;
    # start with all zeros. See dec8_scan_guess.
    Py_ssize_t int_len    # integer digits (1..7); 0: none seen yet
    Py_ssize_t frac_len   # fraction digits (1..8)
    Py_ssize_t streak     # how many numbers in a row had this shape


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
    if pos < end and p[pos] == c'-':
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
        ip = ip * 10 + (p[pos] - c'0')
        if ip > 92233720368ULL:  # int64 max / 1e8: the integer part cannot fit
            return status_set(st, ST_OVERFLOW, start, 0, 0)
        nd += 1
        pos += 1
    if nd == 0:
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and p[pos] == c'.':
        pos += 1
        if end - pos >= 8 and swar_8_digits(load_le64(p + pos)):
            frac = swar_8_value(load_le64(p + pos))
            nf = DECIMALS
            pos += 8
        else:
            while pos < end and nf < DECIMALS and is_digit(p[pos]):
                frac = frac * 10 + (p[pos] - c'0')
                nf += 1
                pos += 1
            if nf == 0:
                if pos >= end:
                    return status_set(st, ST_TRUNCATED, pos, 1, 0)
                return status_set(st, ST_BAD_NUMBER, start, 0, 0)
        if nf == DECIMALS:
            # Digits beyond the 8th are fine only when they are zeros.
            while pos < end and is_digit(p[pos]):
                if p[pos] != c'0':
                    extra_nonzero = 1
                nf += 1
                pos += 1
            if extra_nonzero:
                return status_set(st, ST_TOO_MANY_DECIMALS, start, nf, DECIMALS)
        else:
            while nf < DECIMALS:
                frac *= 10
                nf += 1
    else:
        frac = 0
    val = ip * 100000000ULL + frac
    if val > 9223372036854775807ULL:
        return status_set(st, ST_OVERFLOW, start, 0, 0)
    out[0] = -<int64_t>val if neg else <int64_t>val
    return pos


cdef inline Py_ssize_t dec8_scan(const uint8_t *p, Py_ssize_t pos, uint64_t *int_digits,
                                 uint64_t *frac_digits, int *int_len) noexcept nogil:
    """Check ``1-7 digits . 1-8 digits "`` at ``pos`` (the caller guarantees
    FAST_NUMBER_BYTES readable bytes, the longest such form) and return the position
    after the quote, or -1 for any other shape. The digit words (values 0..9, most
    significant in the lowest byte) are left for ``swar_8_digits_value`` or
    ``dec8_pair``: the integer part right-aligned behind leading zero digits, the
    fraction left-aligned and padded with zero digits to eight. ``int_len`` receives the
    number of integer digits."""
    cdef uint64_t t, f
    cdef int nd, nf
    t = load_le64(p + pos) - 0x3030303030303030ULL
    nd = swar_digit_run(t)
    # 1..7 integer digits, then the point; 7 digits keep the value far below int64 max.
    if nd == 0 or nd > MAX_FAST_INT or p[pos + nd] != c'.':
        return -1
    pos += nd + 1
    f = load_le64(p + pos) - 0x3030303030303030ULL
    nf = swar_digit_run(f)
    # A 9th decimal digit is no closing quote: the general parser decides about it.
    if nf == 0 or p[pos + nf] != c'"':
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
                and p[fpos - 1] == c'.' and p[fpos + sh.frac_len] == c'"'):
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
    """``quoted_dec8`` without its length check: the caller guarantees at least
    FAST_NUMBER_BYTES readable bytes at ``pos``."""
    cdef uint64_t i, f
    cdef int nd
    pos = dec8_scan(p, pos, &i, &f, &nd)
    if pos >= 0:
        out[0] = <int64_t>(swar_8_digits_value(i) * 100000000ULL + swar_8_digits_value(f))
    return pos


cdef inline Py_ssize_t quoted_dec8(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t *out) noexcept nogil:
    """``1-7 digits . 1-8 digits "`` at ``pos`` into ``out``; returns the position after
    the closing quote, or -1 when the text has any other shape (the caller then takes
    the general parser)."""
    if end - pos < FAST_NUMBER_BYTES:
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
    if p[pos] == c'"':
        fast = quoted_dec8(p, pos + 1, end, out)  # the usual print shape
        if fast >= 0:
            return fast
        pos = parse_decimal8(p, pos + 1, end, out, st)
        if pos < 0:
            return -1
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        if p[pos] != c'"':
            return status_set(st, ST_BAD_NUMBER, pos, p[pos], 0)
        return pos + 1
    pos = parse_decimal8(p, pos, end, out, st)
    if pos < 0:
        return -1
    if pos < end and (p[pos] == c'e' or p[pos] == c'E' or p[pos] == c'.'):
        return status_set(st, ST_BAD_NUMBER, pos, p[pos], 0)
    if p[start] == c'-':
        start += 1
    if p[start] == c'0' and start + 1 < end and is_digit(p[start + 1]):  # no leading zeros
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    return pos


cdef inline Py_ssize_t level_as_printed(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                        NumShape *shapes, int64_t *price,
                                        int64_t *qty) noexcept nogil:
    """One compact ``["price","qty"]`` level (each number 1-7 integer digits and 1-8
    decimals) at ``pos``; returns the position after its ``]``, or -1 for any other
    shape (the caller then takes ``parse_level``, which decides about spaces, signs, a
    9th decimal, ...). ``shapes``: the price and qty NumShape kept across levels (see
    dec8_scan_guess)."""
    cdef uint64_t pi, pf, qi, qf
    cdef Py_ssize_t q
    # One length check covers the longest such level, so the loads inside need none.
    if end - pos < FAST_LEVEL_BYTES or load_le16(p + pos) != 0x225B:  # '["'
        return -1
    q = dec8_scan_guess(p, pos + 2, &shapes[0], &pi, &pf)
    if q < 0 or load_le16(p + q) != 0x222C:  # ',"'
        return -1
    q = dec8_scan_guess(p, q + 2, &shapes[1], &qi, &qf)
    if q < 0 or p[q] != c']':
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
    if end - pos > 2 and p[pos] == c'[' and p[pos + 1] == c'"':
        # Compact form ``["price","qty"]``: no whitespace checks.
        q = parse_decimal8(p, pos + 2, end, price, st)
        if q < 0:
            return -1
        if end - q > 3 and p[q] == c'"' and p[q + 1] == c',' and p[q + 2] == c'"':
            q = parse_decimal8(p, q + 3, end, qty, st)
            if q < 0:
                return -1
            if end - q >= 2 and p[q] == c'"' and p[q + 1] == c']':
                return q + 2
        # anything else: the general path below re-reads the level
    pos = expect_char(p, pos, end, c'[', st)
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    pos = parse_decimal_value(p, pos, end, price, st)
    if pos < 0:
        return -1
    pos = expect_char(p, pos, end, c',', st)
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    pos = parse_decimal_value(p, pos, end, qty, st)
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    if pos < end and p[pos] == c']':
        return pos + 1
    while True:
        # Tolerate trailing elements (older futures payloads carried a third one).
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        if p[pos] == c']':
            return pos + 1
        if p[pos] != c',':
            return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
        pos = skip_ws(p, pos + 1, end)
        pos = skip_value(p, pos, end, 1, st)
        if pos < 0:
            return -1
        pos = skip_ws(p, pos, end)


cdef inline bint is_level_array(const uint8_t *p, Py_ssize_t pos,
                                Py_ssize_t end) noexcept nogil:
    """``pos`` is at '[': an array of levels (arrays), or an empty array."""
    pos = skip_ws(p, pos + 1, end)
    return pos < end and (p[pos] == c'[' or p[pos] == c']')


cdef inline Py_ssize_t read_levels(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   LevelSink *sink, uint8_t side, NumShape *shapes,
                                   Status *st) noexcept nogil:
    """An array of ``[price, qty]`` levels at ``pos`` (its ``[``) appended to ``sink``
    with ``side``; returns the position after the array's ``]``."""
    cdef bint done
    cdef int64_t price, qty
    cdef Py_ssize_t q
    # The sink's cursor in locals: a store into a row could alias the sink's fields, so
    # the compiler would reload them (and chain each level on the last store of n).
    cdef char *rows = sink.rows
    cdef Py_ssize_t n = sink.n, cap = sink.cap, stride = sink.stride
    pos = skip_ws(p, pos + 1, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] == c']':
        return pos + 1
    while True:
        q = level_as_printed(p, pos, end, shapes, &price, &qty)
        pos = q if q >= 0 else parse_level(p, pos, end, &price, &qty, st)
        if pos < 0:
            sink.n = n
            return -1
        if n >= cap:
            sink.n = n
            if sink_grow(sink, pos, st) < 0:
                return -1
            rows = sink.rows
            cap = sink.cap
        sink_put(rows + n * stride, price, qty, side)
        n += 1
        # The compact separator ``,[`` first: no whitespace scan between levels.
        if end - pos > 1 and load_le16(p + pos) == 0x5B2C:  # ',['
            pos += 1
            continue
        sink.n = n
        pos = after_item(p, pos, end, c']', &done, st)
        if pos < 0 or done:
            return pos
