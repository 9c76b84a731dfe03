# cython: language_level=3
"""Declared interface of the latency histogram: what nogil code cimports.

A :class:`Histogram` counts int64 nanosecond values in log-linear buckets (HDR style):
values below ``HIST_SUB`` (128) have a bucket each (exact); above, every power of two
``[2**e, 2**(e+1))`` is cut into ``HIST_SUB`` equal buckets of width ``2**(e-7)``. A
bucket is therefore at most 1/128 of its lowest value wide, and the value a percentile
reports (the bucket's middle) is within 1/256 (0.39 %) of any value in the bucket. The
range is ``[0, HIST_MAX_VALUE]`` (0 to one hour); a value outside is counted in the
bucket of the nearest bound and in ``underflow`` (negative) or ``overflow`` (above one
hour).

The hot path is :meth:`Histogram.record` (``cpdef inline``: compiled into the caller's
own code from this file, no call, no allocation, no GIL) and :meth:`record_many`.
Everything else (percentiles, merge, serialisation) is for the reporting side.

Thread safety: one thread records into a histogram; reading or resetting it from another
thread while it records gives a torn view. Give each recording thread its own
histograms and merge them (or swap them, as ``Stages.take_interval`` does) for reports.

The inline functions before the class (``hist_*``) are the bucket rule; they are here so
that the compiler can inline them into other modules.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t


cdef extern from *:
    """
    #include <stdint.h>
    /* Log-linear layout: 2**7 sub-buckets per power of two; 0 .. one hour in ns. */
    #define HFT_HIST_MAX_VALUE 3600000000000LL
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int hft_msb64(uint64_t x) {
        unsigned long i; _BitScanReverse64(&i, x); return (int)i;
    }
    static inline void hft_u128_add_sq(uint64_t *lo, uint64_t *hi, uint64_t v) {
        uint64_t h; uint64_t l = _umul128(v, v, &h);
        uint64_t s = *lo + l; *hi += h + (s < l); *lo = s;
    }
    #else
    static inline int hft_msb64(uint64_t x) { return 63 - __builtin_clzll(x); }
    static inline void hft_u128_add_sq(uint64_t *lo, uint64_t *hi, uint64_t v) {
        unsigned __int128 a = ((unsigned __int128)*hi << 64) | *lo;
        a += (unsigned __int128)v * v;
        *lo = (uint64_t)a; *hi = (uint64_t)(a >> 64);
    }
    #endif
    static inline void hft_u128_add(uint64_t *lo, uint64_t *hi, uint64_t v) {
        uint64_t s = *lo + v; *hi += (s < v); *lo = s;
    }
    """
    const int64_t HIST_MAX_VALUE "HFT_HIST_MAX_VALUE"  # largest value in range: 1 h in ns
    # Index of the highest set bit of x (x != 0).
    int hft_msb64(uint64_t x) noexcept nogil
    # (*hi:*lo) += v (128-bit unsigned accumulator).
    void hft_u128_add(uint64_t *lo, uint64_t *hi, uint64_t v) noexcept nogil
    # (*hi:*lo) += v * v.
    void hft_u128_add_sq(uint64_t *lo, uint64_t *hi, uint64_t v) noexcept nogil


cdef enum:
    HIST_SUB_BITS = 7   # log2 of the sub-buckets per power of two
    HIST_SUB = 128      # sub-buckets per power of two: bucket width <= 1/128 of its values
    # Buckets: hist_index(HIST_MAX_VALUE) + 1 (msb 41, shift 34: 34 * 128 + 209 + 1).
    HIST_BUCKETS = 4562


cdef inline int hist_index(int64_t v) noexcept nogil:
    """Bucket of ``0 <= v <= HIST_MAX_VALUE``, branch-free.

    ``e`` is the highest set bit of ``v | HIST_SUB`` (at least 7) and ``shift = e - 7``:
    ``v >> shift`` keeps the leading one and the next 7 bits, in ``[128, 256)`` (or ``v``
    itself below 128, shift 0), and each octave above the first adds 128 buckets.
    """
    cdef int shift = hft_msb64(<uint64_t>v | HIST_SUB) - HIST_SUB_BITS
    return (shift << HIST_SUB_BITS) + <int>(v >> shift)


cdef inline int64_t hist_lowest(int i) noexcept nogil:
    """Lowest value of bucket ``i`` (``0 <= i < HIST_BUCKETS``)."""
    cdef int shift
    if i < 2 * HIST_SUB:
        return i
    shift = (i >> HIST_SUB_BITS) - 1
    return <int64_t>(HIST_SUB + (i & (HIST_SUB - 1))) << shift


cdef inline int64_t hist_width(int i) noexcept nogil:
    """Number of integer values bucket ``i`` holds (a power of two)."""
    if i < 2 * HIST_SUB:
        return 1
    return <int64_t>1 << ((i >> HIST_SUB_BITS) - 1)


ctypedef struct HistData:
    # Invariants between any two operations:
    # - count == sum(counts) == number of values recorded since the last reset;
    # - underflow / overflow count the values that were < 0 / > HIST_MAX_VALUE (they are
    #   also in count, and in the bucket of the bound they were clamped to);
    # - min_value / max_value are the raw extremes (out-of-range values included);
    #   INT64_MAX / INT64_MIN while count == 0;
    # - (sum_hi:sum_lo) and (sq_hi:sq_lo) are the exact 128-bit sums of the clamped
    #   values and of their squares (exact up to 2**44 values of one hour each).
    int64_t count                   # values recorded
    int64_t underflow               # values < 0, counted as 0
    int64_t overflow                # values > HIST_MAX_VALUE, counted as HIST_MAX_VALUE
    int64_t min_value               # smallest raw value recorded
    int64_t max_value               # largest raw value recorded
    uint64_t sum_lo                 # sum of clamped values, low 64 bits
    uint64_t sum_hi                 # ... high 64 bits
    uint64_t sq_lo                  # sum of squared clamped values, low 64 bits
    uint64_t sq_hi                  # ... high 64 bits
    int64_t counts[HIST_BUCKETS]    # values per bucket (see hist_index)


cdef inline void hist_record(HistData *h, int64_t value) noexcept nogil:
    """Count one value (nanoseconds) into ``h``. No allocation, no GIL, never fails.

    A negative value is counted as 0 and in ``underflow``; a value above one hour as
    ``HIST_MAX_VALUE`` and in ``overflow``. ``min_value``/``max_value`` keep the raw value.
    """
    cdef int64_t v = value
    if v < 0:
        v = 0
        h.underflow += 1
    elif v > HIST_MAX_VALUE:
        v = HIST_MAX_VALUE
        h.overflow += 1
    h.counts[hist_index(v)] += 1
    h.count += 1
    if value < h.min_value:
        h.min_value = value
    if value > h.max_value:
        h.max_value = value
    hft_u128_add(&h.sum_lo, &h.sum_hi, <uint64_t>v)
    hft_u128_add_sq(&h.sq_lo, &h.sq_hi, <uint64_t>v)


cdef void hist_clear(HistData *h) noexcept nogil
cdef void hist_add(HistData *h, const HistData *other) noexcept nogil


@cython.final
cdef class Histogram:
    """See histogram.pyx. ``d`` is allocated by the constructor and never moves, so
    nogil code may keep the pointer while it holds a reference to the object."""
    cdef HistData *d                # the counts and sums (owned, one allocation)

    cpdef inline void record(self, int64_t value) noexcept nogil:
        """Count one value in nanoseconds (see ``hist_record``)."""
        hist_record(self.d, value)

    cdef void record_ptr(self, const int64_t *values, Py_ssize_t n) noexcept nogil
