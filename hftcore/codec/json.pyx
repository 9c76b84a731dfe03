# cython: language_level=3
"""The non-inline half of the nogil JSON lexer (see ``json.pxd``): the recursive value
skipper and the escape decoder, both off the hot path of a well-known message."""

from libc.stdint cimport uint8_t, uint32_t

from hftcore._core.status cimport ST_NESTING

# Backslash escapes that stand for a control character (the others stand for themselves).
cdef enum:
    BACKSPACE = 8
    FORM_FEED = 12
    LINE_FEED = 10
    CARRIAGE_RETURN = 13
    TAB = 9


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


cdef int decode_escaped(const uint8_t *p, Py_ssize_t pos, Py_ssize_t cend, char *dst,
                        Py_ssize_t cap, Status *st) noexcept nogil:
    cdef Py_ssize_t i = pos + 1, n = 0
    cdef uint8_t c
    cdef uint32_t cp, lo
    while i < cend:
        c = p[i]
        if c != c'\\':
            if n >= cap:
                return status_set(st, ST_BAD_VALUE, pos, n + 1, cap)
            dst[n] = <char>c
            n += 1
            i += 1
            continue
        c = p[i + 1]
        if c == c'u':
            cp = hex4(p + i + 2)
            i += 6
            if 0xD800 <= cp < 0xDC00:
                # High surrogate: a low one must follow to form one code point.
                if (i + 6 > cend or p[i] != c'\\' or p[i + 1] != c'u'):
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
        if c == c'b':
            c = BACKSPACE
        elif c == c'f':
            c = FORM_FEED
        elif c == c'n':
            c = LINE_FEED
        elif c == c'r':
            c = CARRIAGE_RETURN
        elif c == c't':
            c = TAB
        # \" \\ \/ stand for themselves
        if n >= cap:
            return status_set(st, ST_BAD_VALUE, pos, n + 1, cap)
        dst[n] = <char>c
        n += 1
        i += 2
    return 0


cdef Py_ssize_t skip_number(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            Status *st) noexcept nogil:
    # JSON number grammar: -? int frac? exp?
    cdef Py_ssize_t start = pos
    cdef int nd = 0
    if pos < end and p[pos] == c'-':
        pos += 1
    while pos < end and is_digit(p[pos]):
        pos += 1
        nd += 1
    if nd == 0:
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if nd > 1 and p[pos - nd] == c'0':  # no leading zeros in JSON numbers
        return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and p[pos] == c'.':
        pos += 1
        nd = 0
        while pos < end and is_digit(p[pos]):
            pos += 1
            nd += 1
        if nd == 0:
            return status_set(st, ST_BAD_NUMBER, start, 0, 0)
    if pos < end and (p[pos] == c'e' or p[pos] == c'E'):
        pos += 1
        if pos < end and (p[pos] == c'+' or p[pos] == c'-'):
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
    cdef uint8_t c, close
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    c = p[pos]
    if c == c'"':
        return scan_string(p, pos, end, &cend, &esc, st)
    if c == c'{' or c == c'[':
        if depth >= MAX_DEPTH:
            return status_set(st, ST_NESTING, pos, MAX_DEPTH, 0)
        close = c'}' if c == c'{' else c']'
        pos = skip_ws(p, pos + 1, end)
        if pos >= end:
            return status_set(st, ST_TRUNCATED, pos, 1, 0)
        if p[pos] == close:
            return pos + 1
        while True:
            if c == c'{':
                if pos >= end:
                    return status_set(st, ST_TRUNCATED, pos, 1, 0)
                if p[pos] != c'"':
                    return status_set(st, ST_BAD_SYNTAX, pos, p[pos], 0)
                pos = scan_string(p, pos, end, &cend, &esc, st)
                if pos < 0:
                    return -1
                pos = expect_char(p, pos, end, c':', st)
                if pos < 0:
                    return -1
                pos = skip_ws(p, pos, end)
            pos = skip_value(p, pos, end, depth + 1, st)
            if pos < 0:
                return -1
            pos = after_item(p, pos, end, close, &done, st)
            if pos < 0 or done:
                return pos
    if c == c't':
        return match_literal(p, pos, end, b"true", 4, st)
    if c == c'f':
        return match_literal(p, pos, end, b"false", 5, st)
    if c == c'n':
        return match_literal(p, pos, end, b"null", 4, st)
    if c == c'-' or is_digit(c):
        return skip_number(p, pos, end, st)
    return status_set(st, ST_BAD_SYNTAX, pos, c, 0)
