# cython: language_level=3
"""Order-flow simulator for synthetic ITCH 5.0 days, writing framed wire bytes directly.

:class:`DayGenerator` keeps a small model of every symbol's book (live orders per price
level, best bid and ask) and a pool of live orders, and draws one event at a time from its
own xoshiro256** generator: adds (A/F), executions (E/C), cancels (X), deletes (D),
replaces (U), hidden trades (P) and broken trades (B). Scheduled messages prepared in
Python (directory, system events, crosses, NOII, ...) are merged in by timestamp. The
generator is resumable: :meth:`DayGenerator.fill` writes as many whole messages as fit and
continues on the next call, so the bytes do not depend on the chunk size.
See :mod:`hftcore.sim.itch` for the invariants the output keeps.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from hftcore._core.bytes cimport load_be16
from hftcore.itch._wire cimport (
    ITCH_FRAME_PREFIX,
    LEN_A,
    LEN_B,
    LEN_C,
    LEN_D,
    LEN_E,
    LEN_F,
    LEN_P,
    LEN_Q,
    LEN_U,
    LEN_X,
    OFF_A_ORDER_REF,
    OFF_A_PRICE,
    OFF_A_SHARES,
    OFF_A_SIDE,
    OFF_A_STOCK,
    OFF_B_MATCH_NUMBER,
    OFF_C_EXECUTION_PRICE,
    OFF_C_PRINTABLE,
    OFF_D_ORDER_REF,
    OFF_E_EXECUTED_SHARES,
    OFF_E_MATCH_NUMBER,
    OFF_E_ORDER_REF,
    OFF_F_ATTRIBUTION,
    OFF_MESSAGE_TYPE,
    OFF_P_MATCH_NUMBER,
    OFF_P_ORDER_REF,
    OFF_P_PRICE,
    OFF_P_SHARES,
    OFF_P_SIDE,
    OFF_P_STOCK,
    OFF_Q_CROSS_PRICE,
    OFF_Q_MATCH_NUMBER,
    OFF_STOCK_LOCATE,
    OFF_TIMESTAMP,
    OFF_TRACKING_NUMBER,
    OFF_U_NEW_ORDER_REF,
    OFF_U_ORIGINAL_ORDER_REF,
    OFF_U_PRICE,
    OFF_U_SHARES,
    OFF_X_CANCELLED_SHARES,
    OFF_X_ORDER_REF,
    SIZE_A_STOCK,
    SIZE_F_ATTRIBUTION,
    SIZE_P_STOCK,
    wire_constants,
)

import numpy as np

from hftcore.itch import spec as _spec

# Largest framed message the flow writes (P, checked below); scheduled ones are checked
# one by one.
cdef enum:
    FLOW_MAX_FRAME = ITCH_FRAME_PREFIX + LEN_P


def _fields(str type_):
    return [(f.name, f.offset) for f in _spec.BY_TYPE[type_].fields]


def _stale_layout():
    """True when the wire constants compiled in differ from the spec, or the shortcuts
    below no longer hold: an F is an A plus its attribution (one writer for both; C is E
    plus its own fields, likewise) and no flow message is longer than a P."""
    add = _fields("A")
    execute = _fields("E")
    flow = [LEN_A, LEN_F, LEN_D, LEN_U, LEN_E, LEN_C, LEN_X, LEN_P, LEN_B]
    return (wire_constants() != _spec.wire_constants()
            or _fields("F")[:len(add)] != add or _fields("C")[:len(execute)] != execute
            or max(flow) != LEN_P)


# The offsets are compiled in: refuse to run if the spec moved under them.
if _stale_layout():
    raise ImportError(
        "hftcore.sim._itchgen was built for another ITCH layout: run"
        " tools/gen_itch_decoder.py and rebuild"
    )

# Cumulative probabilities of the order-flow events (of the bulk of the day).
cdef double P_ADD_A = 0.420
cdef double P_ADD_F = 0.450
cdef double P_DELETE = 0.842
cdef double P_REPLACE = 0.920
cdef double P_EXEC = 0.963
cdef double P_EXEC_PRICE = 0.967
cdef double P_CANCEL = 0.982
cdef double P_TRADE = 0.9998
# the rest: broken trades (B)


cdef inline uint64_t _rotl(uint64_t x, int k) noexcept nogil:
    return (x << k) | (x >> (64 - k))


cdef inline uint64_t _splitmix(uint64_t *x) noexcept nogil:
    x[0] += 0x9E3779B97F4A7C15ULL
    cdef uint64_t z = x[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline uint64_t _next(Rng *r) noexcept nogil:
    cdef uint64_t result = _rotl(r.s1 * 5, 7) * 9
    cdef uint64_t t = r.s1 << 17
    r.s2 ^= r.s0
    r.s3 ^= r.s1
    r.s1 ^= r.s2
    r.s0 ^= r.s3
    r.s2 ^= t
    r.s3 = _rotl(r.s3, 45)
    return result


cdef inline double _uniform(Rng *r) noexcept nogil:
    """Uniform double in [0, 1)."""
    return <double>(_next(r) >> 11) * (1.0 / 9007199254740992.0)


cdef inline int64_t _below(Rng *r, int64_t n) noexcept nogil:
    """Uniform integer in [0, n); n > 0 (the tiny modulo bias is irrelevant here)."""
    return <int64_t>(_next(r) % <uint64_t>n)


cdef inline void _be16(uint8_t *p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>v


cdef inline void _be32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef inline void _be48(uint8_t *p, uint64_t v) noexcept nogil:
    _be16(p, <uint16_t>(v >> 32))
    _be32(p + 2, <uint32_t>v)


cdef inline void _be64(uint8_t *p, uint64_t v) noexcept nogil:
    _be32(p, <uint32_t>(v >> 32))
    _be32(p + 4, <uint32_t>v)


cdef inline uint8_t *_header(uint8_t *p, int length, char type_, int locate,
                             uint64_t ts) noexcept nogil:
    """Write the length prefix and the header; return where the message starts."""
    cdef uint8_t *m = p + ITCH_FRAME_PREFIX
    _be16(p, <uint16_t>length)
    m[OFF_MESSAGE_TYPE] = <uint8_t>type_
    _be16(m + OFF_STOCK_LOCATE, <uint16_t>locate)
    _be16(m + OFF_TRACKING_NUMBER, 0)
    _be48(m + OFF_TIMESTAMP, ts)
    return m


cdef class DayGenerator:
    """Resumable order-flow generator (built by :mod:`hftcore.sim.itch`, not by users).

    Parameters
    ----------
    seed : int
        Seeds the generator's own PRNG.
    bulk : int
        Number of order-flow messages to generate.
    base_ticks : int64 array (nsym,)
        Price in cents of level 0 of each symbol's window (>= 1).
    levels : int
        Price levels in each symbol's window (>= 16).
    tickers : uint8 array (nsym, 8)
        Space-padded stock symbols.
    mpids : uint8 array (n, 4)
        Attributions for F messages.
    zipf_cdf, zipf_sym : arrays (nsym,)
        Cumulative activity by rank, and the symbol index of each rank.
    knot_frac, knot_time : float64 arrays
        Intraday curve: fraction of the flow done at each time (ns since midnight).
    pool_cap : int
        Most live orders at once (adds become deletes at the cap).
    sp_time, sp_off, sp_blob : arrays
        Scheduled, pre-encoded framed messages sorted by timestamp.
    """

    def __cinit__(self):
        self.base_ticks = NULL
        self.mid = NULL
        self.best_bid = NULL
        self.best_ask = NULL
        self.head = NULL
        self.tail = NULL
        self.o_prev = NULL
        self.o_next = NULL
        self.o_ref = NULL
        self.o_shares = NULL
        self.o_level = NULL
        self.o_sym = NULL
        self.o_side = NULL

    def __init__(self, uint64_t seed, int64_t bulk, base_ticks, int levels, tickers, mpids,
                 zipf_cdf, zipf_sym, knot_frac, knot_time, int64_t pool_cap, sp_time,
                 sp_off, sp_blob):
        cdef int i
        cdef uint64_t sm = seed ^ 0x6A09E667F3BCC909ULL
        cdef int64_t[::1] bt = np.ascontiguousarray(base_ticks, dtype=np.int64)
        self.rng.s0 = _splitmix(&sm)
        self.rng.s1 = _splitmix(&sm)
        self.rng.s2 = _splitmix(&sm)
        self.rng.s3 = _splitmix(&sm)
        self.nsym = bt.shape[0]
        if self.nsym < 1 or self.nsym > 65535:
            raise ValueError(f"symbols must be in 1..65535, got {self.nsym}")
        if levels < 16:
            raise ValueError("levels must be >= 16")
        self.levels = levels
        self.bulk_total = max(bulk, 0)
        self.bulk_done = 0
        self.next_ref = 1
        self.next_match = 1
        self.knot = 0
        self.last_time = 0
        self.pool_cap = max(pool_cap, 16)
        self.pool_n = 0
        self.tickers = np.ascontiguousarray(tickers, dtype=np.uint8)
        self.mpids = np.ascontiguousarray(mpids, dtype=np.uint8)
        self.zipf_cdf = np.ascontiguousarray(zipf_cdf, dtype=np.float64)
        self.zipf_sym = np.ascontiguousarray(zipf_sym, dtype=np.int32)
        self.knot_frac = np.ascontiguousarray(knot_frac, dtype=np.float64)
        self.knot_time = np.ascontiguousarray(knot_time, dtype=np.float64)
        self.sp_time = np.ascontiguousarray(sp_time, dtype=np.uint64)
        self.sp_off = np.ascontiguousarray(sp_off, dtype=np.int64)
        self.sp_blob = np.ascontiguousarray(sp_blob, dtype=np.uint8)
        self.sp_next = 0
        if (self.tickers.shape[0] != self.nsym or self.tickers.shape[1] != SIZE_A_STOCK
                or self.zipf_cdf.shape[0] != self.nsym
                or self.zipf_sym.shape[0] != self.nsym
                or self.mpids.shape[0] < 1 or self.mpids.shape[1] != SIZE_F_ATTRIBUTION
                or self.knot_frac.shape[0] < 2
                or self.knot_time.shape[0] != self.knot_frac.shape[0]
                or self.sp_off.shape[0] != self.sp_time.shape[0] + 1):
            raise ValueError("inconsistent generator inputs")

        self.base_ticks = <int64_t *>calloc(self.nsym, sizeof(int64_t))
        self.mid = <int32_t *>calloc(self.nsym, sizeof(int32_t))
        self.best_bid = <int32_t *>calloc(self.nsym, sizeof(int32_t))
        self.best_ask = <int32_t *>calloc(self.nsym, sizeof(int32_t))
        self.head = <int32_t *>malloc(<size_t>self.nsym * 2 * levels * sizeof(int32_t))
        self.tail = <int32_t *>malloc(<size_t>self.nsym * 2 * levels * sizeof(int32_t))
        self.o_prev = <int32_t *>calloc(self.pool_cap, sizeof(int32_t))
        self.o_next = <int32_t *>calloc(self.pool_cap, sizeof(int32_t))
        self.o_ref = <uint64_t *>calloc(self.pool_cap, sizeof(uint64_t))
        self.o_shares = <uint32_t *>calloc(self.pool_cap, sizeof(uint32_t))
        self.o_level = <int32_t *>calloc(self.pool_cap, sizeof(int32_t))
        self.o_sym = <int32_t *>calloc(self.pool_cap, sizeof(int32_t))
        self.o_side = <uint8_t *>calloc(self.pool_cap, sizeof(uint8_t))
        if (self.base_ticks == NULL or self.mid == NULL or self.best_bid == NULL
                or self.best_ask == NULL or self.head == NULL or self.tail == NULL
                or self.o_ref == NULL or self.o_shares == NULL or self.o_level == NULL
                or self.o_sym == NULL or self.o_side == NULL or self.o_prev == NULL
                or self.o_next == NULL):
            raise MemoryError("cannot allocate the ITCH generator's state")
        memset(self.head, 0xFF, <size_t>self.nsym * 2 * levels * sizeof(int32_t))  # all -1
        memset(self.tail, 0xFF, <size_t>self.nsym * 2 * levels * sizeof(int32_t))
        for i in range(self.nsym):
            if bt[i] < 1:
                raise ValueError("base_ticks must be >= 1")
            self.base_ticks[i] = bt[i]
            self.mid[i] = levels // 2
            self.best_bid[i] = -1
            self.best_ask[i] = levels
        self.next_time = self._draw_time()

    def __dealloc__(self):
        free(self.base_ticks)
        free(self.mid)
        free(self.best_bid)
        free(self.best_ask)
        free(self.head)
        free(self.tail)
        free(self.o_prev)
        free(self.o_next)
        free(self.o_ref)
        free(self.o_shares)
        free(self.o_level)
        free(self.o_sym)
        free(self.o_side)

    @property
    def done(self):
        """True when every message of the day has been written."""
        return self.bulk_done >= self.bulk_total and self.sp_next >= self.sp_time.shape[0]

    @property
    def live_orders(self):
        """Orders currently resting in the simulated books."""
        return self.pool_n

    @property
    def last_order_ref(self):
        """Highest order reference number used so far (0 before the first add)."""
        return self.next_ref - 1

    def fill(self, uint8_t[::1] out):
        """Write as many whole messages as fit into ``out``.

        Returns
        -------
        (int, int)
            Bytes written and messages written; ``(0, 0)`` once :attr:`done`.
        """
        cdef int64_t nmsg = 0
        cdef Py_ssize_t n
        cdef Py_ssize_t cap = out.shape[0]
        if cap == 0:
            return 0, 0
        with nogil:
            n = self._fill(&out[0], cap, &nmsg)
        if n == 0 and nmsg == 0 and not self.done:
            raise ValueError(f"output buffer of {cap} bytes is too small for one message")
        return n, nmsg

    # -- time ---------------------------------------------------------------------

    cdef uint64_t _draw_time(self) noexcept nogil:
        """Timestamp of the next order-flow message, from the intraday curve."""
        cdef double frac, t, f0, f1
        cdef int last = self.knot_frac.shape[0] - 1
        cdef uint64_t ts
        if self.bulk_total == 0:
            return self.last_time
        frac = (self.bulk_done + _uniform(&self.rng)) / self.bulk_total
        while self.knot < last - 1 and self.knot_frac[self.knot + 1] <= frac:
            self.knot += 1
        f0 = self.knot_frac[self.knot]
        f1 = self.knot_frac[self.knot + 1]
        t = self.knot_time[self.knot]
        if f1 > f0:
            t += (frac - f0) / (f1 - f0) * (self.knot_time[self.knot + 1] - t)
        ts = <uint64_t>t
        return ts if ts > self.last_time else self.last_time

    # -- books --------------------------------------------------------------------

    cdef inline Py_ssize_t _key(self, int sym, int side, int level) noexcept nogil:
        return (<Py_ssize_t>sym * 2 + side) * self.levels + level

    cdef void _link(self, int64_t i) noexcept nogil:
        """Queue pool slot ``i`` at the back of its level; update the best price."""
        cdef int sym = self.o_sym[i]
        cdef int side = self.o_side[i]
        cdef int level = self.o_level[i]
        cdef Py_ssize_t k = self._key(sym, side, level)
        cdef int32_t last = self.tail[k]
        self.o_prev[i] = last
        self.o_next[i] = -1
        if last >= 0:
            self.o_next[last] = <int32_t>i
        else:
            self.head[k] = <int32_t>i
        self.tail[k] = <int32_t>i
        if side == 0:
            if level > self.best_bid[sym]:
                self.best_bid[sym] = level
        elif level < self.best_ask[sym]:
            self.best_ask[sym] = level

    cdef void _unlink(self, int64_t i) noexcept nogil:
        """Take pool slot ``i`` out of its level's queue; update the best price."""
        cdef int sym = self.o_sym[i]
        cdef int side = self.o_side[i]
        cdef int level = self.o_level[i]
        cdef Py_ssize_t k = self._key(sym, side, level)
        cdef int32_t prev = self.o_prev[i]
        cdef int32_t nxt = self.o_next[i]
        cdef int lv
        if prev >= 0:
            self.o_next[prev] = nxt
        else:
            self.head[k] = nxt
        if nxt >= 0:
            self.o_prev[nxt] = prev
        else:
            self.tail[k] = prev
        if self.head[k] >= 0:
            return
        if side == 0 and level == self.best_bid[sym]:
            lv = level - 1
            while lv >= 0 and self.head[self._key(sym, 0, lv)] < 0:
                lv -= 1
            self.best_bid[sym] = lv
        elif side == 1 and level == self.best_ask[sym]:
            lv = level + 1
            while lv < self.levels and self.head[self._key(sym, 1, lv)] < 0:
                lv += 1
            self.best_ask[sym] = lv

    cdef int64_t _front(self, int64_t i) noexcept nogil:
        """The order an execution hits: the front of the queue at the best bid or ask of
        order ``i``'s symbol (a random side; the other side, then ``i`` when empty)."""
        cdef int sym = self.o_sym[i]
        cdef int side = <int>(_next(&self.rng) & 1)
        cdef int level
        for _ in range(2):
            level = self.best_bid[sym] if side == 0 else self.best_ask[sym]
            if 0 <= level < self.levels:
                return self.head[self._key(sym, side, level)]
            side ^= 1
        return i

    cdef int _pick_symbol(self) noexcept nogil:
        """A symbol drawn from the skewed (Zipf-like) activity distribution."""
        cdef double u = _uniform(&self.rng)
        cdef Py_ssize_t lo = 0
        cdef Py_ssize_t hi = self.nsym - 1
        cdef Py_ssize_t m
        while lo < hi:
            m = (lo + hi) >> 1
            if self.zipf_cdf[m] < u:
                lo = m + 1
            else:
                hi = m
        return self.zipf_sym[lo]

    cdef uint32_t _lot(self) noexcept nogil:
        """Order size: mostly round lots of 100-1000, some odd lots, a few blocks."""
        cdef double u = _uniform(&self.rng)
        if u < 0.12:
            return <uint32_t>(1 + _below(&self.rng, 99))
        if u < 0.97:
            return <uint32_t>(100 * (1 + _below(&self.rng, 10)))
        return <uint32_t>(100 * (10 + _below(&self.rng, 90)))

    cdef int _place(self, int sym, int side) noexcept nogil:
        """A non-crossing price level for a new order near the symbol's mid."""
        cdef int quarter = self.levels // 4
        cdef int off = 0
        cdef int lv
        # the mid drifts by one tick now and then, reflecting inside the middle half
        if _uniform(&self.rng) < 0.08:
            if _next(&self.rng) & 1:
                self.mid[sym] += 1 if self.mid[sym] < self.levels - quarter else -1
            else:
                self.mid[sym] += -1 if self.mid[sym] > quarter else 1
        # the mid follows the book: never beyond the touch (else every order would pile up
        # at one tick from the other side), and inside the middle half of the window
        if self.mid[sym] > self.best_ask[sym]:
            self.mid[sym] = self.best_ask[sym]
        elif self.mid[sym] < self.best_bid[sym]:
            self.mid[sym] = self.best_bid[sym]
        if self.mid[sym] < quarter:
            self.mid[sym] = quarter
        elif self.mid[sym] > self.levels - quarter:
            self.mid[sym] = self.levels - quarter
        while off < quarter - 2 and _uniform(&self.rng) < 0.55:
            off += 1
        if side == 0:
            lv = self.mid[sym] - 1 - off
            if lv >= self.best_ask[sym]:
                lv = self.best_ask[sym] - 1
        else:
            lv = self.mid[sym] + 1 + off
            if lv <= self.best_bid[sym]:
                lv = self.best_bid[sym] + 1
        return lv

    cdef uint32_t _price(self, int sym, int level) noexcept nogil:
        return <uint32_t>((self.base_ticks[sym] + level) * 100)

    cdef void _pool_remove(self, int64_t i) noexcept nogil:
        cdef int64_t j
        cdef int32_t prev
        cdef int32_t nxt
        self._unlink(i)
        self.pool_n -= 1
        j = self.pool_n
        if i == j:
            return
        # move the last slot into the hole, and repoint its queue neighbours
        self.o_ref[i] = self.o_ref[j]
        self.o_shares[i] = self.o_shares[j]
        self.o_level[i] = self.o_level[j]
        self.o_sym[i] = self.o_sym[j]
        self.o_side[i] = self.o_side[j]
        prev = self.o_prev[j]
        nxt = self.o_next[j]
        self.o_prev[i] = prev
        self.o_next[i] = nxt
        if prev >= 0:
            self.o_next[prev] = <int32_t>i
        else:
            self.head[self._key(self.o_sym[i], self.o_side[i], self.o_level[i])] = <int32_t>i
        if nxt >= 0:
            self.o_prev[nxt] = <int32_t>i
        else:
            self.tail[self._key(self.o_sym[i], self.o_side[i], self.o_level[i])] = <int32_t>i

    # -- messages -----------------------------------------------------------------

    cdef Py_ssize_t _add(self, uint8_t *p, uint64_t ts, bint mpid) noexcept nogil:
        cdef int sym = self._pick_symbol()
        cdef int side = <int>(_next(&self.rng) & 1)
        cdef int level = self._place(sym, side)
        cdef uint32_t shares = self._lot()
        cdef int64_t i = self.pool_n
        cdef uint64_t ref = self.next_ref
        cdef int length = LEN_F if mpid else LEN_A
        cdef uint8_t *b = _header(p, length, b'F' if mpid else b'A', sym + 1, ts)
        self.next_ref += 1
        _be64(b + OFF_A_ORDER_REF, ref)  # F: the same fields, then the attribution
        b[OFF_A_SIDE] = b'B' if side == 0 else b'S'
        _be32(b + OFF_A_SHARES, shares)
        memcpy(b + OFF_A_STOCK, &self.tickers[sym, 0], SIZE_A_STOCK)
        _be32(b + OFF_A_PRICE, self._price(sym, level))
        if mpid:
            memcpy(b + OFF_F_ATTRIBUTION, &self.mpids[_below(&self.rng, self.mpids.shape[0]), 0],
                   SIZE_F_ATTRIBUTION)
        self.o_ref[i] = ref
        self.o_shares[i] = shares
        self.o_level[i] = level
        self.o_sym[i] = sym
        self.o_side[i] = <uint8_t>side
        self.pool_n += 1
        self._link(i)
        return ITCH_FRAME_PREFIX + length

    cdef Py_ssize_t _delete(self, uint8_t *p, uint64_t ts, int64_t i) noexcept nogil:
        cdef uint8_t *b = _header(p, LEN_D, b'D', self.o_sym[i] + 1, ts)
        _be64(b + OFF_D_ORDER_REF, self.o_ref[i])
        self._pool_remove(i)
        return ITCH_FRAME_PREFIX + LEN_D

    cdef Py_ssize_t _replace(self, uint8_t *p, uint64_t ts, int64_t i) noexcept nogil:
        cdef int sym = self.o_sym[i]
        cdef int side = self.o_side[i]
        cdef int level = self.o_level[i] + <int>_below(&self.rng, 5) - 2
        cdef uint32_t shares = self._lot()
        cdef uint64_t ref = self.next_ref
        cdef uint8_t *b = _header(p, LEN_U, b'U', sym + 1, ts)
        self.next_ref += 1
        _be64(b + OFF_U_ORIGINAL_ORDER_REF, self.o_ref[i])
        _be64(b + OFF_U_NEW_ORDER_REF, ref)
        self._unlink(i)
        # keep inside the window, then never cross the other side
        if level < 1:
            level = 1
        elif level > self.levels - 2:
            level = self.levels - 2
        if side == 0 and level >= self.best_ask[sym]:
            level = self.best_ask[sym] - 1
        elif side == 1 and level <= self.best_bid[sym]:
            level = self.best_bid[sym] + 1
        _be32(b + OFF_U_SHARES, shares)
        _be32(b + OFF_U_PRICE, self._price(sym, level))
        self.o_ref[i] = ref
        self.o_shares[i] = shares
        self.o_level[i] = level
        self._link(i)  # a replace loses its place in the queue
        return ITCH_FRAME_PREFIX + LEN_U

    cdef Py_ssize_t _execute(self, uint8_t *p, uint64_t ts, int64_t i,
                             bint with_price) noexcept nogil:
        cdef uint32_t have = self.o_shares[i]
        cdef uint32_t qty = have
        cdef int sym = self.o_sym[i]
        cdef int length
        cdef uint8_t *b
        if _uniform(&self.rng) < 0.45:
            qty = self._lot()
            if qty > have:
                qty = have
        length = LEN_C if with_price else LEN_E
        b = _header(p, length, b'C' if with_price else b'E', sym + 1, ts)
        _be64(b + OFF_E_ORDER_REF, self.o_ref[i])  # C: the same fields, then its own
        _be32(b + OFF_E_EXECUTED_SHARES, qty)
        _be64(b + OFF_E_MATCH_NUMBER, self.next_match)
        self.next_match += 1
        if with_price:
            b[OFF_C_PRINTABLE] = b'Y' if _uniform(&self.rng) < 0.7 else b'N'
            # a little above the displayed price (price improvement is not modelled)
            _be32(b + OFF_C_EXECUTION_PRICE, self._price(sym, self.o_level[i])
                  + <uint32_t>(100 * _below(&self.rng, 3)))
        if qty == have:
            self._pool_remove(i)
        else:
            self.o_shares[i] = have - qty
        return ITCH_FRAME_PREFIX + length

    cdef Py_ssize_t _cancel(self, uint8_t *p, uint64_t ts, int64_t i) noexcept nogil:
        cdef uint32_t have = self.o_shares[i]
        cdef uint32_t qty
        cdef uint8_t *b
        if have < 2:
            return self._delete(p, ts, i)
        qty = 1 + <uint32_t>_below(&self.rng, have - 1)  # partial: 1 .. have - 1
        b = _header(p, LEN_X, b'X', self.o_sym[i] + 1, ts)
        _be64(b + OFF_X_ORDER_REF, self.o_ref[i])
        _be32(b + OFF_X_CANCELLED_SHARES, qty)
        self.o_shares[i] = have - qty
        return ITCH_FRAME_PREFIX + LEN_X

    cdef Py_ssize_t _trade(self, uint8_t *p, uint64_t ts) noexcept nogil:
        """A non-displayed (hidden) order executing: P, order_ref 0 as NASDAQ sends it."""
        cdef int sym = self._pick_symbol()
        cdef uint8_t *b = _header(p, LEN_P, b'P', sym + 1, ts)
        _be64(b + OFF_P_ORDER_REF, 0)
        b[OFF_P_SIDE] = b'B' if (_next(&self.rng) & 1) else b'S'
        _be32(b + OFF_P_SHARES, self._lot())
        memcpy(b + OFF_P_STOCK, &self.tickers[sym, 0], SIZE_P_STOCK)
        _be32(b + OFF_P_PRICE, self._price(sym, self.mid[sym]))
        _be64(b + OFF_P_MATCH_NUMBER, self.next_match)
        self.next_match += 1
        return ITCH_FRAME_PREFIX + LEN_P

    cdef Py_ssize_t _broken(self, uint8_t *p, uint64_t ts) noexcept nogil:
        cdef uint64_t made = self.next_match - 1
        cdef uint64_t back = <uint64_t>_below(&self.rng, <int64_t>(made if made < 1000 else 1000))
        cdef uint8_t *b = _header(p, LEN_B, b'B', 0, ts)
        _be64(b + OFF_B_MATCH_NUMBER, made - back)
        return ITCH_FRAME_PREFIX + LEN_B

    cdef Py_ssize_t _flow(self, uint8_t *p, uint64_t ts) noexcept nogil:
        """One order-flow message at ``ts``; returns its framed size."""
        cdef double u = _uniform(&self.rng)
        cdef int64_t i
        if u >= P_TRADE and self.next_match == 1:
            u = 0.0  # nothing to break yet
        if u < P_ADD_F or (u < P_CANCEL and self.pool_n == 0):
            if self.pool_n < self.pool_cap:
                return self._add(p, ts, u >= P_ADD_A and u < P_ADD_F)
            u = P_ADD_F  # the pool is full: delete instead
        if u < P_CANCEL:
            i = _below(&self.rng, self.pool_n)
            if u < P_DELETE:
                return self._delete(p, ts, i)
            if u < P_REPLACE:
                return self._replace(p, ts, i)
            if u < P_EXEC_PRICE:
                return self._execute(p, ts, self._front(i), u >= P_EXEC)
            return self._cancel(p, ts, i)
        if u < P_TRADE:
            return self._trade(p, ts)
        return self._broken(p, ts)

    cdef Py_ssize_t _scheduled(self, uint8_t *p, Py_ssize_t room) noexcept nogil:
        """Copy the next scheduled message; 0 when it does not fit in ``room``."""
        cdef int64_t k = self.sp_next
        cdef Py_ssize_t n = self.sp_off[k + 1] - self.sp_off[k]
        cdef uint8_t *m = p + ITCH_FRAME_PREFIX
        cdef int sym
        if n > room:
            return 0
        memcpy(p, &self.sp_blob[self.sp_off[k]], n)
        if n == ITCH_FRAME_PREFIX + LEN_Q and m[OFF_MESSAGE_TYPE] == b'Q':
            # cross trades take the next match number and the symbol's current mid
            sym = <int>load_be16(m + OFF_STOCK_LOCATE) - 1
            if 0 <= sym < self.nsym:
                _be32(m + OFF_Q_CROSS_PRICE, self._price(sym, self.mid[sym]))
            _be64(m + OFF_Q_MATCH_NUMBER, self.next_match)
            self.next_match += 1
        self.last_time = self.sp_time[k]
        self.sp_next += 1
        return n

    cdef Py_ssize_t _fill(self, uint8_t *out, Py_ssize_t cap, int64_t *nmsg) noexcept nogil:
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t n
        cdef int64_t nsp = self.sp_time.shape[0]
        while True:
            if self.sp_next < nsp and (self.bulk_done >= self.bulk_total
                                       or self.sp_time[self.sp_next] <= self.next_time):
                n = self._scheduled(out + pos, cap - pos)
                if n == 0:
                    break
            elif self.bulk_done < self.bulk_total:
                if cap - pos < FLOW_MAX_FRAME:
                    break
                n = self._flow(out + pos, self.next_time)
                self.last_time = self.next_time
                self.bulk_done += 1
                self.next_time = self._draw_time()
            else:
                break
            pos += n
            nmsg[0] += 1
        return pos
