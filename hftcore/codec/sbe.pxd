# cython: language_level=3
"""SBE (Simple Binary Encoding) primitives: the message header, ``groupSize16Encoding``
groups, ``varString8`` strings, and the exact scaling of ``mantissa * 10**exponent`` to
int64 with 8 implied decimals. Every length is checked before a load."""

from libc.stdint cimport int64_t, uint8_t, uint16_t
from libc.string cimport memcpy, memset

from hftcore._core.bytes cimport load_le16
from hftcore._core.status cimport (
    ST_BAD_LENGTH,
    ST_BAD_SCHEMA,
    ST_BAD_VALUE,
    ST_OVERFLOW,
    ST_TOO_MANY_DECIMALS,
    ST_TRUNCATED,
    Status,
    status_set,
)
from hftcore.codec.swar cimport POW10

cdef enum:
    SBE_HEADER_SIZE = 8      # messageHeader: blockLength, templateId, schemaId, version
    GROUP16_HEADER_SIZE = 4  # groupSize16Encoding: uint16 blockLength, uint16 numInGroup
    SCALE_DECIMALS = 8       # implied decimals of scale8's result


cdef struct SbeHeader:
    uint16_t block_length   # root block size in bytes
    uint16_t template_id    # message type
    uint16_t schema_id
    uint16_t version


cdef inline int read_header(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            uint16_t schema_id, uint16_t version, SbeHeader *h,
                            Status *st) noexcept nogil:
    """The message header at ``pos``; ST_BAD_SCHEMA unless it names ``schema_id`` /
    ``version``."""
    if end - pos < SBE_HEADER_SIZE:
        return status_set(st, ST_TRUNCATED, pos, SBE_HEADER_SIZE, end - pos)
    h.block_length = load_le16(p + pos)
    h.template_id = load_le16(p + pos + 2)
    h.schema_id = load_le16(p + pos + 4)
    h.version = load_le16(p + pos + 6)
    if h.schema_id != schema_id or h.version != version:
        return status_set(st, ST_BAD_SCHEMA, pos + 4, h.schema_id, h.version)
    return 0


cdef inline int check_block(const SbeHeader *h, Py_ssize_t pos, Py_ssize_t end,
                            Py_ssize_t need, Status *st) noexcept nogil:
    """The root block of the message at ``pos`` is at least ``need`` bytes (longer
    blocks carry fields of later minor versions) and fits the input."""
    if h.block_length < need:
        return status_set(st, ST_BAD_LENGTH, pos, h.block_length, need)
    if end - pos - SBE_HEADER_SIZE < h.block_length:
        return status_set(st, ST_TRUNCATED, pos, SBE_HEADER_SIZE + h.block_length,
                          end - pos)
    return 0


cdef inline Py_ssize_t read_group16(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                    Py_ssize_t min_entry, Py_ssize_t *count,
                                    Py_ssize_t *entry, Status *st) noexcept nogil:
    """A ``groupSize16Encoding`` group at ``pos``: returns where its entries start; the
    group spans ``count * entry`` bytes after that (checked), each entry at least
    ``min_entry`` bytes."""
    if end - pos < GROUP16_HEADER_SIZE:
        return status_set(st, ST_TRUNCATED, pos, GROUP16_HEADER_SIZE, end - pos)
    entry[0] = load_le16(p + pos)
    count[0] = load_le16(p + pos + 2)
    if entry[0] < min_entry:
        return status_set(st, ST_BAD_LENGTH, pos, entry[0], min_entry)
    if (end - pos - GROUP16_HEADER_SIZE) < count[0] * entry[0]:
        return status_set(st, ST_TRUNCATED, pos, GROUP16_HEADER_SIZE + count[0] * entry[0],
                          end - pos)
    return pos + GROUP16_HEADER_SIZE


cdef inline Py_ssize_t read_var_string8(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                        char *dst, Py_ssize_t cap,
                                        Status *st) noexcept nogil:
    """A ``varString8`` (uint8 length, then the bytes) into ``dst`` (``cap`` bytes, NUL
    padded; longer is ST_BAD_VALUE); returns the position after it."""
    cdef Py_ssize_t n
    if pos >= end:
        return status_set(st, ST_TRUNCATED, pos, 1, 0)
    n = p[pos]
    if end - pos - 1 < n:
        return status_set(st, ST_TRUNCATED, pos, n + 1, end - pos)
    if n > cap:
        return status_set(st, ST_BAD_VALUE, pos, n, cap)
    memset(dst, 0, cap)
    memcpy(dst, p + pos + 1, n)
    return pos + 1 + n


cdef extern from *:
    """
    #include <stdint.h>
    #if defined(__GNUC__)
    #define HFT_ALWAYS_INLINE static inline __attribute__((always_inline))
    #else
    #define HFT_ALWAYS_INLINE static inline
    #endif
    /* m * 10**exponent as int64 with 8 implied decimals, exactly: 0, 1 when it
       overflows, 2 when it has more than 8 decimals. Forced inline: a decoder calls it
       for every price and quantity. */
    HFT_ALWAYS_INLINE int hft_scale8(int64_t m, int exponent, const int64_t *pow10,
                                     int64_t *out) {
        int shift = exponent + 8;
        int64_t f;
        if (shift == 0) { *out = m; return 0; }
        if (m == 0) { *out = 0; return 0; }
        if (shift > 0) {
            if (shift > 18) return 1;
            f = pow10[shift];
            if (m > INT64_MAX / f || m < -INT64_MAX / f) return 1;
            *out = m * f;
            return 0;
        }
        if (-shift > 18 || m % pow10[-shift] != 0) return 2;
        *out = m / pow10[-shift];
        return 0;
    }
    """
    int scale8_code "hft_scale8"(int64_t m, int exponent, const int64_t *pow10,
                                 int64_t *out) noexcept nogil


cdef inline int scale8(int64_t m, int exponent, int64_t *out, Py_ssize_t offset,
                       Status *st) noexcept nogil:
    """``m * 10**exponent`` as int64 with SCALE_DECIMALS implied decimals, exactly, or -1
    (ST_OVERFLOW, or ST_TOO_MANY_DECIMALS)."""
    cdef int code = scale8_code(m, exponent, POW10, out)
    if code == 0:
        return 0
    if code == 1:
        return status_set(st, ST_OVERFLOW, offset, 0, 0)
    return status_set(st, ST_TOO_MANY_DECIMALS, offset, -exponent, SCALE_DECIMALS)
