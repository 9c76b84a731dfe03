# cython: language_level=3
"""The two clocks of the hot path, readable without the GIL.

CLOCK_REALTIME is the one to compare with an exchange's or the kernel's timestamps;
CLOCK_MONOTONIC is the one to subtract between two local stages (it never steps).
Both in int64 nanoseconds.
"""

from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec


cdef inline int64_t realtime_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int64_t monotonic_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec
