# cython: language_level=3
"""Declared interface of the nogil JSON lexer (no message schema: any exchange's decoder
builds its dispatch on these).

Every function takes ``p`` (the start of the caller's whole input), a position and the
end of the readable bytes, and returns the position after what it read, or -1 with the
:c:type:`Status` set. Offsets are absolute from ``p``, so a
:class:`hftcore.DecodeError` names the byte where the problem is. Hot primitives are
inline here; the recursive value skipper and the escape decoder live in ``json.pyx``.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from hftcore._core.bytes cimport load_le64
from hftcore._core.status cimport (
    ST_BAD_NUMBER,
    ST_BAD_SYNTAX,
    ST_BAD_VALUE,
    ST_OVERFLOW,
    ST_TRUNCATED,
    Status,
    status_set,
)
from hftcore.codec.swar cimport (
    POW10,
    is_digit,
    mul_overflow,
    swar_8_digits_value,
    swar_digit_run,
)

cdef enum:
    MAX_DEPTH = 64  # JSON nesting skipped before ST_NESTING
    MAX_INT_SWAR_DIGITS = 18  # int64 cannot overflow within this many digits


cdef inline bint is_ws(uint8_t c) noexcept nogil:
    return c == c' ' or c == c'\n' or c == c'\r' or c == c'\t'


cdef inline Py_ssize_t skip_ws(const uint8_t *p, Py_ssize_t pos,
                               Py_ssize_t end) noexcept nogil:
    while pos < end and is_ws(p[pos]):
        pos += 1
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
    if p[pos] == c',':
        done[0] = False
        return skip_ws(p, pos + 1, end)
    if p[pos] == close:
        done[0] = True
        return pos + 1
    return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)


cdef inline bint at_literal(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            const char *lit, Py_ssize_t n) noexcept nogil:
    """The ``n`` bytes at ``pos`` are ``lit`` (False when fewer are left)."""
    return end - pos >= n and memcmp(p + pos, lit, n) == 0


cdef inline bint key_is(const uint8_t *p, Py_ssize_t ks, Py_ssize_t klen,
                        const char *lit, Py_ssize_t n) noexcept nogil:
    """The key read by ``read_key`` (``ks``, ``klen``) is ``lit``."""
    return klen == n and memcmp(p + ks, lit, n) == 0


cdef inline int hexval(uint8_t c) noexcept nogil:
    if c'0' <= c <= c'9':
        return c - c'0'
    if c'a' <= c <= c'f':
        return c - c'a' + 10
    if c'A' <= c <= c'F':
        return c - c'A' + 10
    return -1


cdef inline bint is_simple_escape(uint8_t c) noexcept nogil:
    # The one-character escapes after a backslash (``\u`` takes four hex digits).
    return (c == c'"' or c == c'\\' or c == c'/' or c == c'b' or c == c'f' or c == c'n'
            or c == c'r' or c == c't')


cdef inline Py_ssize_t scan_string(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   Py_ssize_t *content_end, bint *has_escape,
                                   Status *st) noexcept nogil:
    """Scan a JSON string whose opening quote is at ``pos``. Sets ``content_end`` (offset
    of the closing quote) and ``has_escape``; returns the position after the closing
    quote. Escapes are validated, not decoded."""
    cdef uint8_t c
    cdef int i
    has_escape[0] = False
    pos += 1  # opening quote
    while pos < end:
        c = p[pos]
        if c == c'"':
            content_end[0] = pos
            return pos + 1
        if c == c'\\':
            has_escape[0] = True
            if pos + 1 >= end:
                return status_set(st, ST_TRUNCATED, pos, 2, end - pos)
            c = p[pos + 1]
            if c == c'u':  # \uXXXX
                if end - pos < 6:
                    return status_set(st, ST_TRUNCATED, pos, 6, end - pos)
                for i in range(4):
                    if hexval(p[pos + 2 + i]) < 0:
                        return status_set(st, ST_BAD_SYNTAX, pos + 2 + i, p[pos + 2 + i], 0)
                pos += 6
                continue
            if is_simple_escape(c):
                pos += 2
                continue
            return status_set(st, ST_BAD_SYNTAX, pos + 1, c, 0)
        if c < c' ':
            return status_set(st, ST_BAD_SYNTAX, pos, c, 0)
        pos += 1
    return status_set(st, ST_TRUNCATED, pos, 1, 0)


cdef inline Py_ssize_t read_string(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   char *dst, Py_ssize_t cap, Status *st) noexcept nogil:
    """Read a JSON string at ``pos`` into ``dst`` (``cap`` bytes, NUL padded), decoding
    escapes to UTF-8. A string longer than ``cap`` bytes is ST_BAD_VALUE (a = its
    length)."""
    cdef Py_ssize_t cend, after
    cdef bint esc
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    if p[pos] != c'"':
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    after = scan_string(p, pos, end, &cend, &esc, st)
    if after < 0:
        return -1
    memset(dst, 0, cap)
    if esc:
        if decode_escaped(p, pos, cend, dst, cap, st) < 0:
            return -1
        return after
    if cend - pos - 1 > cap:
        return status_set(st, ST_BAD_VALUE, pos, cend - pos - 1, cap)
    memcpy(dst, p + pos + 1, cend - pos - 1)
    return after


cdef inline Py_ssize_t match_literal(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                     const char *lit, Py_ssize_t n,
                                     Status *st) noexcept nogil:
    if end - pos < n:
        return status_set(st, ST_TRUNCATED, pos, n, end - pos)
    if memcmp(p + pos, lit, n) != 0:
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    return pos + n


cdef inline Py_ssize_t read_bool(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                 uint8_t *out, Status *st) noexcept nogil:
    """``true`` (1) or ``false`` (0) at ``pos``."""
    if pos < end and p[pos] == c't':
        out[0] = 1
        return match_literal(p, pos, end, b"true", 4, st)
    if pos < end and p[pos] == c'f':
        out[0] = 0
        return match_literal(p, pos, end, b"false", 5, st)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)


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
    if pos < end and p[pos] == c'-':
        neg = True
        pos += 1
    limit = 9223372036854775808ULL if neg else 9223372036854775807ULL
    # Eight digits at a time while no overflow is possible.
    while end - pos >= 8:
        t = load_le64(p + pos) - 0x3030303030303030ULL
        k = swar_digit_run(t)
        if k == 0 or nd + k > MAX_INT_SWAR_DIGITS:
            break
        v = v * <uint64_t>POW10[k] + swar_8_digits_value(t << (8 * (8 - k)) if k < 8 else t)
        nd += k
        pos += k
        if k < 8:
            break
    while pos < end and is_digit(p[pos]):
        d = p[pos] - c'0'
        if v > (limit - d) // 10:
            return status_set(st, ST_OVERFLOW, start, 0, 0)
        v = v * 10 + d
        nd += 1
        pos += 1
    if nd == 0:
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and (p[pos] == c'.' or p[pos] == c'e' or p[pos] == c'E'):
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if nd > 1 and p[start + neg] == c'0':  # JSON numbers have no leading zeros
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    out[0] = -<int64_t>v if neg else <int64_t>v
    return pos


cdef inline Py_ssize_t read_time(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                 int64_t mult, int64_t *out, Status *st) noexcept nogil:
    """A JSON integer time times ``mult`` (ns per unit) into ``out``; ST_OVERFLOW when
    the product leaves int64."""
    cdef int64_t v
    cdef Py_ssize_t start = pos
    pos = parse_int64(p, pos, end, &v, st)
    if pos < 0:
        return -1
    if mul_overflow(v, mult, out):
        return status_set(st, ST_OVERFLOW, start, 0, 0)
    return pos


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
    if p[pos] != c'"':
        return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
    key_start[0] = pos + 1
    if (end - pos > 3 and p[pos + 2] == c'"' and p[pos + 1] > c'"'
            and p[pos + 1] != c'\\'):
        # One-character key: no string scan needed.
        key_len[0] = 1
        pos += 3
    else:
        pos = scan_string(p, pos, end, &kend, &esc, st)
        if pos < 0:
            return -1
        key_len[0] = -1 if esc else kend - key_start[0]
    pos = expect_char(p, pos, end, c':', st)
    if pos < 0:
        return -1
    pos = skip_ws(p, pos, end)
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    return pos


# ---- implemented in json.pyx (not inline: recursive, or the rare path) --------------

# Skip one JSON value of any type at ``pos`` (no leading whitespace); ``depth`` is the
# current nesting. Returns the position after it, or -1 with ``st`` set.
cdef Py_ssize_t skip_value(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end, int depth,
                           Status *st) noexcept nogil

# Decode the escaped string whose opening quote is at ``pos`` and closing quote at
# ``cend`` (validated by scan_string) into ``dst`` (``cap`` bytes, already zeroed) as
# UTF-8; 0, or -1 with ST_BAD_VALUE (too long, or a lone surrogate).
cdef int decode_escaped(const uint8_t *p, Py_ssize_t pos, Py_ssize_t cend, char *dst,
                        Py_ssize_t cap, Status *st) noexcept nogil
