# cython: language_level=3
"""Word-at-a-time digit arithmetic shared by the JSON lexer and the decimal parser.

A *digit word* is eight bytes loaded little-endian, each byte minus ``'0'``: bytes 0..9
are digits, the first digit (most significant) in the lowest byte.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t


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
    # Two 8-decimal numbers from their digit words (see decimal.dec8_scan).
    void dec8_pair "hft_dec8_pair"(uint64_t ai, uint64_t af, uint64_t bi, uint64_t bf,
                                   uint64_t *a, uint64_t *b) noexcept nogil


cdef enum:
    POW10_MAX = 18  # the largest exponent in POW10


cdef inline bint is_digit(uint8_t c) noexcept nogil:
    return <uint8_t>(c - c'0') < 10


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
    # Eight ASCII digits (first digit in the lowest byte) to their value.
    return swar_8_digits_value(v - 0x3030303030303030ULL)
