# cython: language_level=3
"""The bulk of a synthetic ITCH day: a seeded order-flow simulator writing wire bytes."""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t


cdef struct Rng:
    uint64_t s0            # xoshiro256** state, seeded through splitmix64
    uint64_t s1
    uint64_t s2
    uint64_t s3


cdef class DayGenerator:
    cdef Rng rng
    cdef int nsym               # symbols; stock_locate = index + 1
    cdef int levels             # price levels per side and symbol (the simulated window)
    cdef int64_t bulk_total     # order-flow messages to generate
    cdef int64_t bulk_done      # order-flow messages generated so far
    cdef uint64_t next_time     # timestamp of the next order-flow message (drawn ahead)
    cdef uint64_t last_time     # timestamp of the last message written
    cdef uint64_t next_ref      # next order reference number
    cdef uint64_t next_match    # next match number
    cdef int knot               # current segment of the intraday time curve
    # per symbol
    cdef int64_t *base_ticks    # price, in cents, of level 0
    cdef int32_t *mid           # current mid level (random walk)
    cdef int32_t *best_bid      # highest level with a live buy, -1 when none
    cdef int32_t *best_ask      # lowest level with a live sell, ``levels`` when none
    cdef int32_t *head          # per (symbol, side, level): first order of the FIFO queue, -1
    cdef int32_t *tail          # ... and its last order, -1 when the level is empty
    # live orders (a pool with swap-remove; picking one is O(1))
    cdef int64_t pool_cap
    cdef int64_t pool_n
    cdef uint64_t *o_ref
    cdef uint32_t *o_shares
    cdef int32_t *o_level
    cdef int32_t *o_sym
    cdef uint8_t *o_side
    cdef int32_t *o_prev        # neighbours in the level's FIFO queue (pool slots), -1
    cdef int32_t *o_next
    # inputs kept alive for the nogil loop
    cdef object _keep
    cdef const uint8_t[:, ::1] tickers     # (nsym, 8) space-padded stock symbols
    cdef const uint8_t[:, ::1] mpids       # (n, 4) attributions for F messages
    cdef const double[::1] zipf_cdf        # cumulative activity by rank
    cdef const int32_t[::1] zipf_sym       # symbol index of each rank
    cdef const double[::1] knot_frac       # intraday curve: fraction of the flow ...
    cdef const double[::1] knot_time       # ... reached at this time (ns)
    cdef const uint64_t[::1] sp_time      # pre-encoded scheduled messages: timestamps
    cdef const int64_t[::1] sp_off         # their offsets in sp_blob (n + 1 entries)
    cdef const uint8_t[::1] sp_blob        # framed messages
    cdef int64_t sp_next                   # next scheduled message to write

    cdef uint64_t _draw_time(self) noexcept nogil
    cdef Py_ssize_t _key(self, int sym, int side, int level) noexcept nogil
    cdef void _link(self, int64_t i) noexcept nogil
    cdef void _unlink(self, int64_t i) noexcept nogil
    cdef int64_t _front(self, int64_t i) noexcept nogil
    cdef int _pick_symbol(self) noexcept nogil
    cdef uint32_t _lot(self) noexcept nogil
    cdef int _place(self, int sym, int side) noexcept nogil
    cdef uint32_t _price(self, int sym, int level) noexcept nogil
    cdef void _pool_remove(self, int64_t i) noexcept nogil
    cdef Py_ssize_t _add(self, uint8_t *p, uint64_t ts, bint mpid) noexcept nogil
    cdef Py_ssize_t _delete(self, uint8_t *p, uint64_t ts, int64_t i) noexcept nogil
    cdef Py_ssize_t _replace(self, uint8_t *p, uint64_t ts, int64_t i) noexcept nogil
    cdef Py_ssize_t _execute(self, uint8_t *p, uint64_t ts, int64_t i,
                             bint with_price) noexcept nogil
    cdef Py_ssize_t _cancel(self, uint8_t *p, uint64_t ts, int64_t i) noexcept nogil
    cdef Py_ssize_t _trade(self, uint8_t *p, uint64_t ts) noexcept nogil
    cdef Py_ssize_t _broken(self, uint8_t *p, uint64_t ts) noexcept nogil
    cdef Py_ssize_t _flow(self, uint8_t *p, uint64_t ts) noexcept nogil
    cdef Py_ssize_t _scheduled(self, uint8_t *p, Py_ssize_t room) noexcept nogil
    cdef Py_ssize_t _fill(self, uint8_t *out, Py_ssize_t cap, int64_t *nmsg) noexcept nogil
