# cython: language_level=3
"""The few atomic operations a single-writer / many-reader structure needs (the books'
seqlock, the ring tables), readable without the GIL.

GCC and clang builtins where available, MSVC's interlocked and barrier intrinsics
otherwise (x86 and ARM64 both keep these semantics). Plain loads and stores of the data
the seqlock guards stay plain: the sequence numbers and the fences order them.
"""

from libc.stdint cimport uint64_t


cdef extern from *:
    """
    #if defined(_MSC_VER) && !defined(__clang__)
    #include <intrin.h>
    static __inline unsigned __int64 hft_load_acquire(const volatile unsigned __int64 *p) {
        unsigned __int64 v = *p; _ReadWriteBarrier(); return v; }
    static __inline void hft_store_release(volatile unsigned __int64 *p, unsigned __int64 v) {
        _ReadWriteBarrier(); *p = v; }
    static __inline void hft_fence_acquire(void) { _ReadWriteBarrier(); }
    static __inline void hft_fence_release(void) { _ReadWriteBarrier(); }
    static __inline void hft_fence_full(void) { MemoryBarrier(); }
    #else
    #define hft_load_acquire(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
    #define hft_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
    #define hft_fence_acquire() __atomic_thread_fence(__ATOMIC_ACQUIRE)
    #define hft_fence_release() __atomic_thread_fence(__ATOMIC_RELEASE)
    #define hft_fence_full() __atomic_thread_fence(__ATOMIC_SEQ_CST)
    #endif
    """
    uint64_t load_acquire "hft_load_acquire"(const uint64_t *p) noexcept nogil
    void store_release "hft_store_release"(uint64_t *p, uint64_t v) noexcept nogil
    void fence_acquire "hft_fence_acquire"() noexcept nogil
    void fence_release "hft_fence_release"() noexcept nogil
    void fence_full "hft_fence_full"() noexcept nogil
