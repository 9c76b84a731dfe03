# cython: language_level=3
"""Inline, nogil byte loads and a bounded cursor shared by every decoder.

Every load goes through memcpy so unaligned input is fine; compilers turn it into a
single (possibly byte-swapped) load. Callers check lengths first: these helpers never
check bounds themselves except the ``cursor_*`` functions, which do.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from *:
    """
    #include <string.h>
    #include <stdint.h>
    #if defined(_MSC_VER)
    #include <stdlib.h>
    #define HFT_BSWAP16(x) _byteswap_ushort(x)
    #define HFT_BSWAP32(x) _byteswap_ulong(x)
    #define HFT_BSWAP64(x) _byteswap_uint64(x)
    #define HFT_LITTLE_ENDIAN 1
    #else
    #define HFT_BSWAP16(x) __builtin_bswap16(x)
    #define HFT_BSWAP32(x) __builtin_bswap32(x)
    #define HFT_BSWAP64(x) __builtin_bswap64(x)
    #define HFT_LITTLE_ENDIAN (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
    #endif
    #if HFT_LITTLE_ENDIAN
    #define HFT_FROM_BE16(x) HFT_BSWAP16(x)
    #define HFT_FROM_BE32(x) HFT_BSWAP32(x)
    #define HFT_FROM_BE64(x) HFT_BSWAP64(x)
    #define HFT_FROM_LE16(x) (x)
    #define HFT_FROM_LE32(x) (x)
    #define HFT_FROM_LE64(x) (x)
    #else
    #define HFT_FROM_BE16(x) (x)
    #define HFT_FROM_BE32(x) (x)
    #define HFT_FROM_BE64(x) (x)
    #define HFT_FROM_LE16(x) HFT_BSWAP16(x)
    #define HFT_FROM_LE32(x) HFT_BSWAP32(x)
    #define HFT_FROM_LE64(x) HFT_BSWAP64(x)
    #endif
    static inline uint16_t hft_be16(const uint8_t *p) {
        uint16_t v; memcpy(&v, p, 2); return HFT_FROM_BE16(v);
    }
    static inline uint32_t hft_be32(const uint8_t *p) {
        uint32_t v; memcpy(&v, p, 4); return HFT_FROM_BE32(v);
    }
    static inline uint64_t hft_be64(const uint8_t *p) {
        uint64_t v; memcpy(&v, p, 8); return HFT_FROM_BE64(v);
    }
    /* 48-bit big-endian (ITCH timestamps): two loads, no branch. */
    static inline uint64_t hft_be48(const uint8_t *p) {
        return ((uint64_t)hft_be16(p) << 32) | (uint64_t)hft_be32(p + 2);
    }
    static inline uint16_t hft_le16(const uint8_t *p) {
        uint16_t v; memcpy(&v, p, 2); return HFT_FROM_LE16(v);
    }
    static inline uint32_t hft_le32(const uint8_t *p) {
        uint32_t v; memcpy(&v, p, 4); return HFT_FROM_LE32(v);
    }
    static inline uint64_t hft_le64(const uint8_t *p) {
        uint64_t v; memcpy(&v, p, 8); return HFT_FROM_LE64(v);
    }
    /* Unaligned native-endian stores into output rows. */
    static inline void hft_st8(uint8_t *p, uint8_t v) { *p = v; }
    static inline void hft_st16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
    static inline void hft_st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
    static inline void hft_st64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
    """
    uint16_t load_be16 "hft_be16"(const uint8_t *p) noexcept nogil
    uint32_t load_be32 "hft_be32"(const uint8_t *p) noexcept nogil
    uint64_t load_be48 "hft_be48"(const uint8_t *p) noexcept nogil
    uint64_t load_be64 "hft_be64"(const uint8_t *p) noexcept nogil
    uint16_t load_le16 "hft_le16"(const uint8_t *p) noexcept nogil
    uint32_t load_le32 "hft_le32"(const uint8_t *p) noexcept nogil
    uint64_t load_le64 "hft_le64"(const uint8_t *p) noexcept nogil
    void store8 "hft_st8"(uint8_t *p, uint8_t v) noexcept nogil
    void store16 "hft_st16"(uint8_t *p, uint16_t v) noexcept nogil
    void store32 "hft_st32"(uint8_t *p, uint32_t v) noexcept nogil
    void store64 "hft_st64"(uint8_t *p, uint64_t v) noexcept nogil


cdef struct Cursor:
    const uint8_t *base   # start of the whole input (offsets in errors are from here)
    Py_ssize_t pos        # next byte to read
    Py_ssize_t end        # one past the last readable byte


cdef inline Cursor cursor_new(const uint8_t *base, Py_ssize_t start,
                              Py_ssize_t end) noexcept nogil:
    cdef Cursor c
    c.base = base
    c.pos = start
    c.end = end
    return c


cdef inline bint cursor_has(const Cursor *c, Py_ssize_t n) noexcept nogil:
    """True when ``n`` more bytes can be read."""
    return n >= 0 and c.end - c.pos >= n


cdef inline const uint8_t *cursor_take(Cursor *c, Py_ssize_t n) noexcept nogil:
    """Advance by ``n`` bytes and return where they start, or NULL if there are fewer."""
    cdef const uint8_t *p
    if n < 0 or c.end - c.pos < n:
        return NULL
    p = c.base + c.pos
    c.pos += n
    return p
