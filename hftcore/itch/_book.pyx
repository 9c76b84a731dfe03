# cython: language_level=3
"""The ITCH 5.0 L3 order book kernel: fixed-size pools, one nogil pass over framed bytes.

See ``_book.pxd`` for the layout. Python-facing conveniences (symbol names, files, the
command line) live in :mod:`hftcore.itch.book`.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memmove, memset

import numpy as np

from hftcore._core.bytes cimport load_be16, load_be32, load_be48, load_be64
from hftcore._core.status cimport (
    ST_BAD_LENGTH,
    ST_BAD_VALUE,
    ST_CROSSED,
    ST_DUPLICATE_ORDER,
    ST_LEVELS_FULL,
    ST_NO_MEMORY,
    ST_ORDERS_FULL,
    ST_OVERCANCEL,
    ST_OVERFILL,
    ST_UNKNOWN_ORDER,
    Status,
    raise_status,
    status_clear,
    status_set,
)
from hftcore.itch._decode cimport (
    FRAME_BAD,
    FRAME_END,
    FRAME_MESSAGE,
    FRAME_UNKNOWN,
    N_TYPE_BYTES,
    itch_frame,
)
from hftcore.itch._wire cimport (
    ITCH_FRAME_PREFIX,
    ITCH_SPEC_LENGTH,
    LEN_A,
    OFF_A_PRICE,
    OFF_A_SHARES,
    OFF_A_SIDE,
    OFF_C_EXECUTION_PRICE,
    OFF_C_PRINTABLE,
    OFF_E_EXECUTED_SHARES,
    OFF_E_MATCH_NUMBER,
    OFF_E_ORDER_REF,
    OFF_H_TRADING_STATE,
    OFF_h_HALT_ACTION,
    OFF_h_MARKET_CODE,
    OFF_MESSAGE_TYPE,
    OFF_R_STOCK,
    OFF_STOCK_LOCATE,
    OFF_TIMESTAMP,
    OFF_U_NEW_ORDER_REF,
    OFF_U_PRICE,
    OFF_U_SHARES,
    SIZE_R_STOCK,
    wire_constants,
)

from hftcore.itch import spec

cdef extern from *:
    """
    #define HFT_BOOK_NIL 0xFFFFFFFFu
    #define HFT_BOOK_NO_LIMIT 0xFFFFFFFFFFFFFFFFull
    #define HFT_BOOK_FIB 0x9E3779B97F4A7C15ull
    #if defined(_MSC_VER)
    #include <xmmintrin.h>
    #define HFT_PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
    #else
    #define HFT_PREFETCH(p) __builtin_prefetch(p)
    #endif
    """
    void prefetch "HFT_PREFETCH"(const void *p) noexcept nogil
    const uint32_t NIL "HFT_BOOK_NIL"           # no slot / end of a list
    const uint64_t NO_LIMIT "HFT_BOOK_NO_LIMIT"  # apply(until=None)
    const uint64_t FIB "HFT_BOOK_FIB"            # 2**64 / golden ratio (Fibonacci hashing)

cdef enum:
    N_LOCATES = 65536       # stock_locate is a 2-byte field: every value has a Stock

# Offsets shared by the types one code path handles (type byte at 0), from the generated
# wire layout. FIELD_OFFSETS below lists every offset the book reads; the module refuses
# to import unless each equals hftcore.itch.spec's.
cdef enum:
    O_REF = OFF_E_ORDER_REF             # order_ref of A/F/E/C/X/D, original_order_ref of U
    O_ADD_SIDE = OFF_A_SIDE             # side of A/F
    O_ADD_SHARES = OFF_A_SHARES
    O_ADD_PRICE = OFF_A_PRICE
    O_EXEC_SHARES = OFF_E_EXECUTED_SHARES   # executed_shares (E/C), cancelled_shares (X)
    O_EXEC_MATCH = OFF_E_MATCH_NUMBER   # match_number of E/C
    # Bytes the prefetch of a frame ahead may read: a whole add's worth.
    PEEK_BYTES = ITCH_FRAME_PREFIX + LEN_A

FIELD_OFFSETS = {
    ("A", "order_ref"): O_REF, ("A", "side"): O_ADD_SIDE, ("A", "shares"): O_ADD_SHARES,
    ("A", "price"): O_ADD_PRICE, ("F", "order_ref"): O_REF, ("F", "side"): O_ADD_SIDE,
    ("F", "shares"): O_ADD_SHARES, ("F", "price"): O_ADD_PRICE,
    ("E", "order_ref"): O_REF, ("E", "executed_shares"): O_EXEC_SHARES,
    ("E", "match_number"): O_EXEC_MATCH, ("C", "order_ref"): O_REF,
    ("C", "executed_shares"): O_EXEC_SHARES, ("C", "match_number"): O_EXEC_MATCH,
    ("C", "printable"): OFF_C_PRINTABLE, ("C", "execution_price"): OFF_C_EXECUTION_PRICE,
    ("X", "order_ref"): O_REF, ("X", "cancelled_shares"): O_EXEC_SHARES,
    ("D", "order_ref"): O_REF, ("U", "original_order_ref"): O_REF,
    ("U", "new_order_ref"): OFF_U_NEW_ORDER_REF, ("U", "shares"): OFF_U_SHARES,
    ("U", "price"): OFF_U_PRICE, ("R", "stock"): OFF_R_STOCK,
    ("H", "trading_state"): OFF_H_TRADING_STATE,
    ("h", "market_code"): OFF_h_MARKET_CODE, ("h", "halt_action"): OFF_h_HALT_ACTION,
    ("*", "stock_locate"): OFF_STOCK_LOCATE, ("*", "timestamp"): OFF_TIMESTAMP,
}  # fmt: skip


def _stale_offsets():
    """Offsets this build reads that differ from the spec's (empty when in step)."""
    stale = [] if wire_constants() == spec.wire_constants() else ["_wire.pxd"]
    for (t, name), off in FIELD_OFFSETS.items():
        msg = spec.BY_TYPE["A" if t == "*" else t]
        if {f.name: f.offset for f in msg.all_fields}[name] != off:
            stale.append(f"{t}.{name}")
    return stale


# The offsets are compiled in: refuse to run if the spec moved under them.
if _stale_offsets():
    raise ImportError(
        f"hftcore.itch._book was built for another ITCH layout ({', '.join(_stale_offsets())}):"
        " run tools/gen_itch_decoder.py and rebuild"
    )

ANOMALY_NAMES = ("", "unknown_order", "duplicate_order", "overfill", "overcancel", "crossed")

#: Rows of :meth:`OrderBookCore.drain_bbo` (mirrors the BboEvent struct).
BBO_DTYPE = np.dtype(
    [("seq", "u8"), ("timestamp", "u8"), ("stock_locate", "u2"), ("bid_price", "u4"),
     ("bid_shares", "u8"), ("ask_price", "u4"), ("ask_shares", "u8")],
    align=True,
)  # fmt: skip
#: Rows of :meth:`OrderBookCore.drain_executions` (mirrors the ExecEvent struct).
EXEC_DTYPE = np.dtype(
    [("seq", "u8"), ("timestamp", "u8"), ("stock_locate", "u2"), ("order_ref", "u8"),
     ("side", "S1"), ("price", "u4"), ("shares", "u4"), ("match_number", "u8"),
     ("printable", "S1")],
    align=True,
)  # fmt: skip
#: Rows of :meth:`OrderBookCore.depth`: bids best first, then asks best first.
DEPTH_DTYPE = np.dtype(
    [("side", "S1"), ("price", "u4"), ("shares", "u8"), ("orders", "u4")], align=True
)
#: Rows of :meth:`OrderBookCore.orders_at`, in queue order (front first).
QUEUE_DTYPE = np.dtype([("order_ref", "u8"), ("shares", "u4")], align=True)

assert BBO_DTYPE.itemsize == sizeof(BboEvent)
assert EXEC_DTYPE.itemsize == sizeof(ExecEvent)


# ---------------------------------------------------------------- order_ref hash

cdef inline uint64_t h_home(const BookState *b, uint64_t ref) noexcept nogil:
    # NASDAQ order refs are dense and increasing through the day. Runs of GROUP
    # consecutive refs keep consecutive buckets (recent, busy orders share cache lines and
    # pages); the runs are spread by Fibonacci hashing, so a dense block of long-lived
    # orders (the pre-open build-up) never becomes one long probe run once refs wrap.
    return ((((ref >> GROUP_BITS) * FIB) >> b.shift) << GROUP_BITS) | (ref & (GROUP - 1))


# A table entry is ``(slot + 1) << 4 | displacement`` (0 = empty), the displacement from
# the home bucket capped at 15 ("15 or more": the exact value is then recomputed from the
# order record, which is rare). Robin Hood order (within a probe run, entries sit in
# order of their home bucket) lets a lookup stop at the first entry closer to its home
# than we are, and a delete stop shifting at the first entry that is at its home.
cdef enum:
    DISP_BITS = 4
    DISP_MAX = 15
    GROUP_BITS = 8          # refs per run of consecutive buckets: 256 (1 KiB)
    GROUP = 1 << GROUP_BITS


cdef inline uint64_t h_disp(const BookState *b, uint32_t e, uint64_t j) noexcept nogil:
    """Exact displacement of entry ``e`` sitting at bucket ``j``."""
    cdef uint64_t d = e & DISP_MAX
    if d == DISP_MAX:
        d = (j - h_home(b, b.orders[(e >> DISP_BITS) - 1].order_ref)) & b.mask
    return d


cdef inline uint32_t h_entry(uint32_t slot_plus_1, uint64_t d) noexcept nogil:
    return (slot_plus_1 << DISP_BITS) | <uint32_t>(d if d < DISP_MAX else DISP_MAX)


cdef inline uint32_t h_find(const BookState *b, uint64_t ref, uint64_t *bucket) noexcept nogil:
    """Pool slot of ``ref`` or NIL; ``bucket`` receives where it is or would go."""
    cdef uint64_t i = h_home(b, ref)
    cdef uint32_t e, slot
    cdef uint64_t d
    cdef uint64_t dist = 0
    while True:
        e = b.table[i]
        if e == 0:
            bucket[0] = i
            return NIL
        d = e & DISP_MAX
        if d < dist and (d < DISP_MAX or h_disp(b, e, i) < dist):
            bucket[0] = i  # Robin Hood: ``ref`` would sit before this entry
            return NIL
        # Only an entry displaced as far as we have probed can be ``ref``: skip the
        # others without loading their order records.
        if d == (dist if dist < DISP_MAX else DISP_MAX):
            slot = (e >> DISP_BITS) - 1
            if b.orders[slot].order_ref == ref:
                bucket[0] = i
                return slot
        i = (i + 1) & b.mask
        dist += 1


cdef inline void h_insert(BookState *b, uint64_t bucket, uint64_t ref,
                          uint32_t slot) noexcept nogil:
    """Index ``slot`` under ``ref`` at ``bucket`` (h_find's answer for a missing ref),
    pushing richer entries one bucket on (Robin Hood)."""
    cdef uint64_t i = bucket
    cdef uint64_t d = (bucket - h_home(b, ref)) & b.mask
    cdef uint64_t d2
    cdef uint32_t carry = slot + 1
    cdef uint32_t e
    while True:
        if d > b.max_disp:
            b.max_disp = d
        e = b.table[i]
        if e == 0:
            b.table[i] = h_entry(carry, d)
            return
        d2 = h_disp(b, e, i)
        if d2 < d:
            b.table[i] = h_entry(carry, d)
            carry = e >> DISP_BITS
            d = d2
        i = (i + 1) & b.mask
        d += 1


cdef inline void h_erase(BookState *b, uint64_t i) noexcept nogil:
    """Empty bucket ``i``, shifting the rest of its probe run back by one."""
    cdef uint64_t j
    cdef uint32_t e
    while True:
        j = (i + 1) & b.mask
        e = b.table[j]
        if e == 0 or (e & DISP_MAX) == 0:
            break
        b.table[i] = h_entry(e >> DISP_BITS, h_disp(b, e, j) - 1)
        i = j
    b.table[i] = 0


# ---------------------------------------------------------------- order_ref -> slot

# The window spans WIN_FACTOR * max_orders refs (a power of two): on NASDAQ-shaped days
# nearly every E/C/X/D/U names an order added within that many refs, so most lookups are
# one load with no hashing and no order record to compare. A slide earns WIN_CREDIT scans
# per window insert: sparse or jumping refs cannot make slides cost more than that per
# add; when the credit runs out the window is switched off (all refs in the hash).
cdef enum:
    WIN_FACTOR = 2
    WIN_CREDIT = 8


cdef inline uint32_t ref_find(const BookState *b, uint64_t ref, uint64_t *bucket) noexcept nogil:
    """Pool slot of ``ref`` or NIL; ``bucket`` receives its hash bucket when it is not a
    window ref (pass it to ref_erase / ref_insert before the index changes)."""
    if ref - b.wbase < b.wsize:
        return b.win[ref & b.wmask] - 1     # an empty entry (0) gives NIL
    if ref >= b.wbase and b.wsize != 0:
        return NIL                          # ahead of the window: not indexed yet
    return h_find(b, ref, bucket)


cdef inline void ref_erase(BookState *b, uint64_t ref, uint64_t bucket) noexcept nogil:
    if ref - b.wbase < b.wsize:
        b.win[ref & b.wmask] = 0
        b.win_live -= 1
    else:
        h_erase(b, bucket)


cdef void win_evict(BookState *b, uint64_t end) noexcept nogil:
    """Move the window's entries for refs in [wbase, end) to the hash and charge the
    scan to the slide credit (``end`` at most wbase + wsize)."""
    cdef uint64_t r = b.wbase
    cdef uint64_t bk
    cdef uint32_t e
    while r != end and b.win_live != 0:
        e = b.win[r & b.wmask]
        if e != 0:
            b.win[r & b.wmask] = 0
            b.win_live -= 1
            h_find(b, r, &bk)
            h_insert(b, bk, r, e - 1)
        r += 1
    r -= b.wbase
    b.win_budget = b.win_budget - r if r < b.win_budget else 0


cdef void win_slide(BookState *b, uint64_t ref) noexcept nogil:
    """Move the window up so that it ends at ``ref`` (ahead of it), or switch it off."""
    cdef uint64_t new_base = ref - b.wsize + 1
    cdef uint64_t step = new_base - b.wbase
    if (step if step < b.wsize else b.wsize) > b.win_budget:
        win_evict(b, b.wbase + b.wsize)   # too costly for this stream: hash only
        b.wsize = 0
        b.wbase = 0
        return
    win_evict(b, new_base if step < b.wsize else b.wbase + b.wsize)
    b.wbase = new_base


cdef inline void ref_insert(BookState *b, uint64_t ref, uint32_t slot,
                            uint64_t bucket) noexcept nogil:
    """Index ``slot`` under ``ref`` (missing: ``bucket`` from ref_find)."""
    if ref - b.wbase >= b.wsize:
        if ref < b.wbase or b.wsize == 0:
            h_insert(b, bucket, ref, slot)
            return
        if ref - b.wbase == b.wsize and b.win[ref & b.wmask] == 0:
            b.wbase += 1   # the usual step of dense refs: the ref leaving has no order
        else:
            win_slide(b, ref)
            if b.wsize == 0:
                h_find(b, ref, &bucket)      # the eviction moved the hash's entries
                h_insert(b, bucket, ref, slot)
                return
    b.win[ref & b.wmask] = slot + 1
    b.win_live += 1
    b.win_budget += WIN_CREDIT


# ---------------------------------------------------------------- price levels

cdef inline uint64_t price_key(uint32_t price, int side) noexcept nogil:
    # Bids: the price; asks: NIL - price (== ~price), so the best level sorts last on both
    # sides. Branch-free: sides arrive in random order.
    return price ^ (<uint32_t>0 - <uint32_t>side)


cdef inline Py_ssize_t side_search(const SideBook *sb, uint64_t pk, bint *found) noexcept nogil:
    """Index of the level with key ``pk`` (found) or where it would be inserted."""
    cdef Py_ssize_t i = sb.n
    cdef Py_ssize_t base, half, count
    cdef uint64_t k
    cdef uint64_t target = pk << 32   # keys[j] < target  <=>  price key of j < pk
    cdef int steps = 0
    # Most activity is at the touch (the array's end): look there first.
    while i > 0 and steps < 4:
        k = sb.keys[i - 1] >> 32
        if k == pk:
            found[0] = True
            return i - 1
        if k < pk:
            found[0] = False
            return i
        i -= 1
        steps += 1
    if i == 0:
        found[0] = False
        return 0
    # Branch-free lower bound over keys[0:i] (the compiler emits conditional moves).
    base = 0
    count = i
    while count > 1:
        half = count >> 1
        base = base + half if sb.keys[base + half - 1] < target else base
        count -= half
    base = base + 1 if sb.keys[base] < target else base
    found[0] = base < sb.n and (sb.keys[base] >> 32) == pk
    return base


cdef inline int side_reserve(SideBook *sb) noexcept nogil:
    cdef uint32_t cap
    cdef uint64_t *p
    if sb.n < sb.cap:
        return 0
    cap = sb.cap * 2 if sb.cap else 16
    p = <uint64_t *>realloc(sb.keys, cap * sizeof(uint64_t))
    if p == NULL:
        return -1
    sb.keys = p
    sb.cap = cap
    return 0


cdef inline uint32_t best_level(const BookState *b, uint16_t loc, int side) noexcept nogil:
    cdef const SideBook *sb = &b.stocks[loc].side[side]
    if sb.n == 0:
        return NIL
    return <uint32_t>(sb.keys[sb.n - 1] & NIL)


cdef inline bint would_cross(const BookState *b, uint16_t loc, int side,
                             uint32_t price) noexcept nogil:
    # With keys k_bid = bid and k_ask = NIL - ask, "bid >= ask" reads k_new + k_opposite
    # >= NIL from either side: no branch on the side, no level touched.
    cdef const SideBook *sb = &b.stocks[loc].side[1 - side]
    if sb.n == 0:
        return False
    return price_key(price, side) + (sb.keys[sb.n - 1] >> 32) >= NIL


# ---------------------------------------------------------------- order operations

cdef inline int fail_anomaly(BookState *b, int what, uint64_t ref) noexcept nogil:
    """Count an anomaly; in strict mode it is an error (returns -1)."""
    b.anomalies[what] += 1
    if b.strict:
        b.err_anomaly = what
        b.err_ref = ref
        return -1
    return 0


cdef int link_order(BookState *b, uint32_t slot, uint16_t loc, int side,
                    uint32_t price) noexcept nogil:
    """Put order ``slot`` at the back of the queue at ``price`` (creating the level)."""
    cdef Stock *st = &b.stocks[loc]
    cdef SideBook *sb = &st.side[side]
    cdef uint64_t pk = price_key(price, side)
    cdef bint found
    cdef Py_ssize_t i = side_search(sb, pk, &found)
    cdef uint32_t lv
    cdef Level *L
    cdef Order *o = &b.orders[slot]
    if found:
        lv = <uint32_t>(sb.keys[i] & NIL)
        L = &b.levels[lv]
        o.prev = L.tail
        o.next = NIL
        b.orders[L.tail].next = slot
        L.tail = slot
        L.count += 1
        L.shares += o.shares
    else:
        if b.level_free != NIL:
            lv = b.level_free
            b.level_free = b.levels[lv].head
        elif b.level_used < b.max_levels:
            lv = b.level_used
            b.level_used += 1
        else:
            b.err_capacity = CAP_LEVELS
            return -1
        if side_reserve(sb) < 0:
            b.err_capacity = CAP_MEMORY
            return -1
        if i < sb.n:
            memmove(&sb.keys[i + 1], &sb.keys[i], (sb.n - i) * sizeof(uint64_t))
        sb.keys[i] = (pk << 32) | lv
        sb.n += 1
        L = &b.levels[lv]
        L.price = price
        L.count = 1
        L.shares = o.shares
        L.head = slot
        L.tail = slot
        o.prev = NIL
        o.next = NIL
        b.live_levels += 1
        if b.live_levels > b.peak_levels:
            b.peak_levels = b.live_levels
    o.level = lv
    return 0


cdef void unlink_order(BookState *b, uint32_t slot) noexcept nogil:
    """Take order ``slot`` out of its level's queue (freeing the level when emptied)."""
    cdef Order *o = &b.orders[slot]
    cdef uint32_t lv = o.level
    cdef Level *L = &b.levels[lv]
    cdef SideBook *sb
    cdef bint found
    cdef Py_ssize_t i
    L.count -= 1
    L.shares -= o.shares
    if L.count == 0:
        sb = &b.stocks[o.stock_locate].side[o.side]
        i = side_search(sb, price_key(L.price, o.side), &found)
        if found:  # always, unless the pools were corrupted
            sb.n -= 1
            if i < sb.n:
                memmove(&sb.keys[i], &sb.keys[i + 1], (sb.n - i) * sizeof(uint64_t))
        L.head = b.level_free
        b.level_free = lv
        b.live_levels -= 1
        return
    if o.prev != NIL:
        b.orders[o.prev].next = o.next
    else:
        L.head = o.next
    if o.next != NIL:
        b.orders[o.next].prev = o.prev
    else:
        L.tail = o.prev


cdef inline void free_order(BookState *b, uint32_t slot, uint64_t bucket) noexcept nogil:
    unlink_order(b, slot)
    ref_erase(b, b.orders[slot].order_ref, bucket)
    b.orders[slot].next = b.order_free
    b.order_free = slot
    b.live_orders -= 1


cdef inline uint32_t take_slot(BookState *b, uint32_t *free_next) noexcept nogil:
    """A free order slot (not yet taken: call commit_slot once the order is linked)."""
    cdef uint32_t slot
    if b.order_free != NIL:
        slot = b.order_free
        free_next[0] = b.orders[slot].next
        return slot
    if b.order_used < b.max_orders:
        free_next[0] = NIL
        return b.order_used
    b.err_capacity = CAP_ORDERS
    return NIL


cdef inline void commit_slot(BookState *b, uint32_t slot, uint32_t free_next) noexcept nogil:
    if slot == b.order_free:
        b.order_free = free_next
    else:
        b.order_used += 1
    b.live_orders += 1
    if b.live_orders > b.peak_orders:
        b.peak_orders = b.live_orders


cdef int add_order(BookState *b, uint64_t ref, int side, uint32_t shares, uint32_t price,
                   uint16_t loc) noexcept nogil:
    cdef uint64_t bucket
    cdef uint32_t slot, free_next
    cdef Order *o
    if ref_find(b, ref, &bucket) != NIL:
        return fail_anomaly(b, AN_DUPLICATE_ORDER, ref)
    if would_cross(b, loc, side, price):
        if fail_anomaly(b, AN_CROSSED, ref) < 0:
            return -1
    slot = take_slot(b, &free_next)
    if slot == NIL:
        return -1
    o = &b.orders[slot]
    o.order_ref = ref
    o.price = price
    o.shares = shares
    o.stock_locate = loc
    o.side = <uint8_t>side
    o.pad = 0
    if link_order(b, slot, loc, side, price) < 0:
        return -1
    commit_slot(b, slot, free_next)
    ref_insert(b, ref, slot, bucket)
    return 0


cdef inline int emit_exec(BookState *b, const Order *o, const uint8_t *m, uint32_t price,
                          uint32_t shares, char printable) noexcept nogil:
    cdef ExecEvent *e
    cdef ExecEvent *p
    cdef Py_ssize_t cap
    if b.exec_n == b.exec_cap:
        cap = b.exec_cap * 2 if b.exec_cap else 4096
        p = <ExecEvent *>realloc(b.exec_buf, cap * sizeof(ExecEvent))
        if p == NULL:
            b.err_capacity = CAP_MEMORY
            return -1
        b.exec_buf = p
        b.exec_cap = cap
    e = &b.exec_buf[b.exec_n]
    memset(e, 0, sizeof(ExecEvent))
    e.seq = b.seq
    e.timestamp = load_be48(m + OFF_TIMESTAMP)
    e.stock_locate = o.stock_locate
    e.order_ref = o.order_ref
    e.side = b'B' if o.side == BID else b'S'
    e.price = price
    e.shares = shares
    e.match_number = load_be64(m + O_EXEC_MATCH)
    e.printable = printable
    b.exec_n += 1
    return 0


cdef inline int emit_bbo(BookState *b, uint16_t loc, const uint8_t *m) noexcept nogil:
    """Append a BBO row when the top of ``loc``'s book differs from the last one emitted."""
    cdef Stock *st = &b.stocks[loc]
    cdef uint32_t lb = best_level(b, loc, BID)
    cdef uint32_t la = best_level(b, loc, ASK)
    cdef uint32_t bpx = 0, apx = 0
    cdef uint64_t bsh = 0, ash = 0
    cdef BboEvent *e
    cdef BboEvent *p
    cdef Py_ssize_t cap
    if lb != NIL:
        bpx = b.levels[lb].price
        bsh = b.levels[lb].shares
    if la != NIL:
        apx = b.levels[la].price
        ash = b.levels[la].shares
    if (bpx == st.last_bid_px and bsh == st.last_bid_sh and apx == st.last_ask_px
            and ash == st.last_ask_sh):
        return 0
    if b.bbo_n == b.bbo_cap:
        cap = b.bbo_cap * 2 if b.bbo_cap else 4096
        p = <BboEvent *>realloc(b.bbo_buf, cap * sizeof(BboEvent))
        if p == NULL:
            b.err_capacity = CAP_MEMORY
            return -1
        b.bbo_buf = p
        b.bbo_cap = cap
    e = &b.bbo_buf[b.bbo_n]
    memset(e, 0, sizeof(BboEvent))
    e.seq = b.seq
    e.timestamp = load_be48(m + OFF_TIMESTAMP)
    e.stock_locate = loc
    e.bid_price = bpx
    e.bid_shares = bsh
    e.ask_price = apx
    e.ask_shares = ash
    st.last_bid_px = bpx
    st.last_bid_sh = bsh
    st.last_ask_px = apx
    st.last_ask_sh = ash
    b.bbo_n += 1
    return 0


# The three messages that take shares off an order (reduce_order's ``kind``).
cdef enum:
    RED_EXECUTE = 0         # E: executed at the order's price
    RED_EXECUTE_PRICE = 1   # C: executed at the message's price
    RED_CANCEL = 2          # X: cancelled


cdef int reduce_order(BookState *b, const uint8_t *m, int kind) noexcept nogil:
    """E, C or X (``kind``: a RED_ constant): take shares off an order, removing it at
    zero."""
    cdef uint64_t ref = load_be64(m + O_REF)
    cdef uint32_t n = load_be32(m + O_EXEC_SHARES)
    cdef uint64_t bucket
    cdef uint32_t slot = ref_find(b, ref, &bucket)
    cdef Order *o
    cdef uint32_t take
    if slot == NIL:
        return fail_anomaly(b, AN_UNKNOWN_ORDER, ref)
    o = &b.orders[slot]
    take = n
    if n > o.shares:
        if fail_anomaly(b, AN_OVERCANCEL if kind == RED_CANCEL else AN_OVERFILL, ref) < 0:
            return -1
        take = o.shares
    if kind != RED_CANCEL and b.track_executions:
        if kind == RED_EXECUTE:
            if emit_exec(b, o, m, o.price, n, b'Y') < 0:
                return -1
        elif emit_exec(b, o, m, load_be32(m + OFF_C_EXECUTION_PRICE), n,
                       <char>m[OFF_C_PRINTABLE]) < 0:
            return -1
    if take == o.shares:
        free_order(b, slot, bucket)
    else:
        o.shares -= take
        b.levels[o.level].shares -= take
    return 0


cdef int delete_order(BookState *b, const uint8_t *m) noexcept nogil:
    cdef uint64_t ref = load_be64(m + O_REF)
    cdef uint64_t bucket
    cdef uint32_t slot = ref_find(b, ref, &bucket)
    if slot == NIL:
        return fail_anomaly(b, AN_UNKNOWN_ORDER, ref)
    free_order(b, slot, bucket)
    return 0


cdef int replace_order(BookState *b, const uint8_t *m) noexcept nogil:
    """U: a new reference, price and size for an order; it goes to the back of the queue."""
    cdef uint64_t ref = load_be64(m + O_REF)
    cdef uint64_t new_ref = load_be64(m + OFF_U_NEW_ORDER_REF)
    cdef uint32_t shares = load_be32(m + OFF_U_SHARES)
    cdef uint32_t price = load_be32(m + OFF_U_PRICE)
    cdef uint64_t bucket, new_bucket
    cdef uint32_t slot = ref_find(b, ref, &bucket)
    cdef Order *o
    cdef int side
    cdef uint16_t loc
    cdef bint found, frees_level
    cdef Level *L
    if slot == NIL:
        return fail_anomaly(b, AN_UNKNOWN_ORDER, ref)
    if new_ref != ref and ref_find(b, new_ref, &new_bucket) != NIL:
        return fail_anomaly(b, AN_DUPLICATE_ORDER, new_ref)
    o = &b.orders[slot]
    side = o.side
    loc = o.stock_locate
    # Check the level pool before touching anything: the replace must apply whole or not.
    L = &b.levels[o.level]
    frees_level = L.count == 1
    if not frees_level or L.price != price:
        side_search(&b.stocks[loc].side[side], price_key(price, side), &found)
        if (not found and not frees_level and b.level_free == NIL
                and b.level_used >= b.max_levels):
            b.err_capacity = CAP_LEVELS
            return -1
    # The opposite side is untouched by taking this order out: check the cross first.
    if would_cross(b, loc, side, price):
        if fail_anomaly(b, AN_CROSSED, new_ref) < 0:
            return -1
    unlink_order(b, slot)
    ref_erase(b, ref, bucket)
    ref_find(b, new_ref, &new_bucket)   # the erase may have moved hash entries
    o.order_ref = new_ref
    o.price = price
    o.shares = shares
    if link_order(b, slot, loc, side, price) < 0:
        # Only when growing the side's key array runs out of memory: drop the order.
        o.next = b.order_free
        b.order_free = slot
        b.live_orders -= 1
        return -1
    ref_insert(b, new_ref, slot, new_bucket)
    return 0


# ---------------------------------------------------------------- the message loop

cdef inline int apply_one(BookState *b, const uint8_t *m, uint8_t t) noexcept nogil:
    """Apply one message whose length was checked; -1 on error (details in ``b``)."""
    cdef uint16_t loc = load_be16(m + OFF_STOCK_LOCATE)
    cdef uint8_t side
    cdef Stock *st
    cdef int rc = 0
    if t == b'A' or t == b'F':
        if not b.keep[loc]:
            return 0
        side = m[O_ADD_SIDE]
        if side != b'B' and side != b'S':
            b.err_anomaly = AN_BAD_SIDE   # a field value outside the spec: a decode error
            return -1
        rc = add_order(b, load_be64(m + O_REF), side == b'S', load_be32(m + O_ADD_SHARES),
                       load_be32(m + O_ADD_PRICE), loc)
    elif t == b'E':
        if not b.keep[loc]:
            return 0
        rc = reduce_order(b, m, RED_EXECUTE)
    elif t == b'C':
        if not b.keep[loc]:
            return 0
        rc = reduce_order(b, m, RED_EXECUTE_PRICE)
    elif t == b'X':
        if not b.keep[loc]:
            return 0
        rc = reduce_order(b, m, RED_CANCEL)
    elif t == b'D':
        if not b.keep[loc]:
            return 0
        rc = delete_order(b, m)
    elif t == b'U':
        if not b.keep[loc]:
            return 0
        rc = replace_order(b, m)
    elif t == b'P':
        b.trades += 1
        return 0
    elif t == b'Q':
        b.cross_trades += 1
        return 0
    elif t == b'B':
        b.broken_trades += 1
        return 0
    elif t == b'R':
        directory_entry(b, m, loc)
        return 0
    elif t == b'H':
        b.stocks[loc].trading_state = m[OFF_H_TRADING_STATE]
        return 0
    elif t == b'h':
        st = &b.stocks[loc]
        st.halt_market = m[OFF_h_MARKET_CODE]
        st.halt_action = m[OFF_h_HALT_ACTION]
        return 0
    else:
        return 0
    if rc < 0:
        return -1
    if b.track_bbo:
        return emit_bbo(b, loc, m)
    return 0


cdef void directory_entry(BookState *b, const uint8_t *m, uint16_t loc) noexcept nogil:
    cdef Stock *st = &b.stocks[loc]
    cdef uint64_t key = load_be64(m + OFF_R_STOCK)
    cdef Py_ssize_t lo = 0, hi = b.n_wanted, mid
    memcpy(st.ticker, m + OFF_R_STOCK, SIZE_R_STOCK)
    st.in_directory = 1
    if b.n_wanted == 0:
        return
    while lo < hi:
        mid = (lo + hi) >> 1
        if b.wanted[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < b.n_wanted and b.wanted[lo] == key:
        b.keep[loc] = 1


# Types whose message starts with an order_ref at O_REF that names a resting order.
cdef uint8_t REF_TYPES[N_TYPE_BYTES]
memset(REF_TYPES, 0, N_TYPE_BYTES)
for _t in "ECXDU":
    REF_TYPES[ord(_t)] = 1


cdef inline void prefetch_far(const BookState *b, const uint8_t *m) noexcept nogil:
    cdef uint64_t ref
    if REF_TYPES[m[OFF_MESSAGE_TYPE]]:
        ref = load_be64(m + O_REF)
        if ref - b.wbase < b.wsize:
            prefetch(&b.win[ref & b.wmask])
        else:
            prefetch(&b.table[h_home(b, ref)])
    elif m[OFF_MESSAGE_TYPE] == b'A' or m[OFF_MESSAGE_TYPE] == b'F':
        prefetch(&b.stocks[load_be16(m + OFF_STOCK_LOCATE)])


cdef inline void prefetch_near(const BookState *b, const uint8_t *m) noexcept nogil:
    cdef uint32_t e
    cdef uint64_t ref
    cdef const Stock *st
    if REF_TYPES[m[OFF_MESSAGE_TYPE]]:
        ref = load_be64(m + O_REF)
        if ref - b.wbase < b.wsize:
            e = b.win[ref & b.wmask]
        else:
            e = b.table[h_home(b, ref)] >> DISP_BITS
        if e != 0 and e <= b.order_used:
            prefetch(&b.orders[e - 1])
    elif m[OFF_MESSAGE_TYPE] == b'A' or m[OFF_MESSAGE_TYPE] == b'F':
        st = &b.stocks[load_be16(m + OFF_STOCK_LOCATE)]
        if st.side[BID].n:
            prefetch(&st.side[BID].keys[st.side[BID].n - 1])
        if st.side[ASK].n:
            prefetch(&st.side[ASK].keys[st.side[ASK].n - 1])


cdef inline int anomaly_status(int an) noexcept nogil:
    """The status code that raises an anomaly as BookError (strict mode)."""
    if an == AN_UNKNOWN_ORDER:
        return ST_UNKNOWN_ORDER
    if an == AN_DUPLICATE_ORDER:
        return ST_DUPLICATE_ORDER
    if an == AN_OVERFILL:
        return ST_OVERFILL
    if an == AN_OVERCANCEL:
        return ST_OVERCANCEL
    return ST_CROSSED


cdef int book_status(BookState *b, Status *st, Py_ssize_t pos,
                     const uint8_t *m) noexcept nogil:
    """Move the error of the message at ``pos`` that apply_one left in ``b`` into ``st``."""
    cdef int an = b.err_anomaly
    cdef int cap = b.err_capacity
    b.err_anomaly = AN_NONE
    b.err_capacity = CAP_NONE
    if an == AN_BAD_SIDE:  # a field value outside the spec: a decode error
        return status_set(st, ST_BAD_VALUE, pos + ITCH_FRAME_PREFIX + O_ADD_SIDE,
                          m[O_ADD_SIDE], 0)
    if cap == CAP_ORDERS:
        return status_set(st, ST_ORDERS_FULL, pos, b.max_orders, 0)
    if cap == CAP_LEVELS:
        return status_set(st, ST_LEVELS_FULL, pos, b.max_levels, 0)
    if cap == CAP_MEMORY:
        return status_set(st, ST_NO_MEMORY, pos, 0, 0)
    return status_set(st, anomaly_status(an), pos, <int64_t>b.err_ref, <int64_t>b.seq)


cdef Py_ssize_t apply_buffer(BookState *b, const uint8_t *buf, Py_ssize_t n, uint64_t until,
                             Py_ssize_t *consumed, Py_ssize_t *applied,
                             Status *st) noexcept nogil:
    """Walk framed messages of ``buf``; returns 0, 1 (stopped by ``until``) or -1 (error).

    ``consumed`` receives the bytes used (whole messages only; on error, the offending
    message's start) and ``applied`` the messages walked.
    """
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t count = 0
    cdef Py_ssize_t mlen = 0
    cdef const uint8_t *m
    cdef uint8_t t
    cdef int rc = 0
    cdef int frame
    cdef Py_ssize_t ahead
    while True:
        frame = itch_frame(buf, n, pos, &mlen, st)
        m = buf + pos + ITCH_FRAME_PREFIX
        if frame == FRAME_MESSAGE:
            t = m[OFF_MESSAGE_TYPE]
            # Hide memory latency on big books with a software pipeline: two messages
            # ahead, start loading the window entry or hash bucket (or the stock's book for
            # an add); one ahead, the order record (or the best keys of both sides). Only
            # bytes inside the buffer are read and every slot read is range-checked;
            # prefetches never fault.
            ahead = pos + ITCH_FRAME_PREFIX + mlen
            if n - ahead >= PEEK_BYTES:
                prefetch_near(b, buf + ahead + ITCH_FRAME_PREFIX)
                ahead += ITCH_FRAME_PREFIX + load_be16(buf + ahead)
                if n - ahead >= PEEK_BYTES:
                    prefetch_far(b, buf + ahead + ITCH_FRAME_PREFIX)
            if until != NO_LIMIT and load_be48(m + OFF_TIMESTAMP) > until:
                rc = 1
                break
            if apply_one(b, m, t) < 0:
                rc = book_status(b, st, pos, m)
                break
            b.timestamp = load_be48(m + OFF_TIMESTAMP)
        else:
            # (Not an elif chain: Cython would make it a switch, a jump table per message.)
            if frame != FRAME_UNKNOWN:
                if frame == FRAME_END:
                    b.ended = True
                    pos += ITCH_FRAME_PREFIX
                elif frame == FRAME_BAD:
                    rc = -1
                break  # FRAME_PARTIAL: left for the next call
            t = m[OFF_MESSAGE_TYPE]
            b.unknown_types += 1  # not an ITCH 5.0 type: skipped by its length, counted
        b.type_counts[t] += 1
        b.seq += 1
        count += 1
        pos += ITCH_FRAME_PREFIX + mlen
    consumed[0] = pos
    applied[0] = count
    return rc


cdef int book_apply_message(BookState *b, const uint8_t *m, Py_ssize_t n,
                            Status *st) noexcept nogil:
    """Apply one unframed message (a transport's payload: MoldUDP64, SoupBinTCP).

    The per-message body of :func:`apply_buffer` for messages that arrive one by one: the
    same length check against the spec, the same ``apply_one``, the same counters. A type
    the spec does not define (or an empty message) is skipped and counted; -1 with ``st``
    set (offsets from the message's type byte) on a bad length or a book error.
    """
    cdef uint8_t t
    cdef uint16_t expected
    if n <= 0:
        b.unknown_types += 1
        b.seq += 1
        return 0
    t = m[OFF_MESSAGE_TYPE]
    expected = ITCH_SPEC_LENGTH[t]
    if expected == 0:
        b.unknown_types += 1
    elif n != expected:
        return status_set(st, ST_BAD_LENGTH, 0, n, expected)
    else:
        if apply_one(b, m, t) < 0:
            return book_status(b, st, -ITCH_FRAME_PREFIX, m)
        b.timestamp = load_be48(m + OFF_TIMESTAMP)
    b.type_counts[t] += 1
    b.seq += 1
    return 0


# ---------------------------------------------------------------- the Python face

#: Defaults of the constructor: room for a busy NASDAQ day (pages are touched lazily).
DEFAULT_MAX_ORDERS = 8_000_000
DEFAULT_MAX_LEVELS = 2_000_000
#: Largest max_orders: slot + 1 must fit the 28 high bits of a hash table entry.
MAX_ORDERS_LIMIT = (1 << 28) - 2


def _split_symbols(symbols):
    """``symbols=`` as (stock locates, sorted tickers as big-endian u64)."""
    if symbols is None:
        return [], []
    if isinstance(symbols, (str, bytes, int)):
        symbols = [symbols]
    locates = []
    tickers = set()
    for s in symbols:
        if isinstance(s, str):
            s = s.encode("ascii")
        if isinstance(s, bytes):
            if not 1 <= len(s.rstrip(b" ")) <= 8:
                raise ValueError(f"ticker {s!r} must have 1 to 8 characters")
            tickers.add(int.from_bytes(s.ljust(8, b" "), "big"))
        elif isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            if not 0 <= s < N_LOCATES:
                raise ValueError(f"stock_locate {s} out of range [0, 65535]")
            locates.append(int(s))
        else:
            raise TypeError(f"symbols must be tickers (str) or stock locates (int), not {s!r}")
    return locates, sorted(tickers)


cdef int _side_index(object side) except -1:
    if side in (BID, "B", b"B", "bid", "buy"):
        return BID
    if side in (ASK, "S", b"S", "ask", "sell"):
        return ASK
    raise ValueError(f"side must be 'B' (bid) or 'S' (ask), not {side!r}")


cdef class OrderBookCore:
    """Kernel of :class:`hftcore.itch.OrderBook`: use that class (same constructor)."""

    def __cinit__(self, Py_ssize_t max_orders=DEFAULT_MAX_ORDERS,
                  Py_ssize_t max_levels=DEFAULT_MAX_LEVELS, symbols=None, *,
                  bint strict=False, bint bbo=False, bint executions=False):
        cdef BookState *b = &self.b
        cdef uint64_t size = 2 * GROUP   # at least two groups: the shift stays < 64
        cdef int bits = GROUP_BITS + 1
        cdef uint64_t wsize
        cdef Py_ssize_t i
        memset(b, 0, sizeof(BookState))
        if not 1 <= max_orders <= MAX_ORDERS_LIMIT:
            raise ValueError(f"max_orders must be in [1, {MAX_ORDERS_LIMIT}], got {max_orders}")
        if not 1 <= max_levels < NIL:
            raise ValueError(f"max_levels must be in [1, {NIL - 1}], got {max_levels}")
        # Load factor at most 1/2 when the store is full.
        while size < 2 * <uint64_t>max_orders:
            size <<= 1
            bits += 1
        b.max_orders = <uint32_t>max_orders
        b.max_levels = <uint32_t>max_levels
        b.mask = size - 1
        b.shift = 64 - (bits - GROUP_BITS)
        b.order_free = NIL
        b.level_free = NIL
        # Untouched pages of these stay virtual: memory grows with the live book.
        b.orders = <Order *>malloc(max_orders * sizeof(Order))
        b.table = <uint32_t *>calloc(size, sizeof(uint32_t))
        wsize = 1024
        while wsize < WIN_FACTOR * <uint64_t>max_orders:
            wsize <<= 1
        b.win = <uint32_t *>calloc(wsize, sizeof(uint32_t))
        b.wsize = wsize
        b.wmask = wsize - 1
        b.win_budget = 2 * wsize
        b.levels = <Level *>malloc(max_levels * sizeof(Level))
        b.stocks = <Stock *>calloc(N_LOCATES, sizeof(Stock))
        b.keep = <uint8_t *>calloc(N_LOCATES, 1)
        if not (b.orders and b.table and b.win and b.levels and b.stocks and b.keep):
            raise MemoryError("cannot allocate the order book's pools")
        locates, tickers = _split_symbols(symbols)
        if symbols is None:
            memset(b.keep, 1, N_LOCATES)
        else:
            for loc in locates:
                b.keep[loc] = 1
        if tickers:
            b.wanted = <uint64_t *>malloc(len(tickers) * sizeof(uint64_t))
            if b.wanted == NULL:
                raise MemoryError()
            for i in range(len(tickers)):
                b.wanted[i] = tickers[i]
            b.n_wanted = len(tickers)
        b.strict = strict
        b.track_bbo = bbo
        b.track_executions = executions

    def __dealloc__(self):
        cdef BookState *b = &self.b
        cdef Py_ssize_t i
        if b.stocks != NULL:
            for i in range(N_LOCATES):
                free(b.stocks[i].side[BID].keys)
                free(b.stocks[i].side[ASK].keys)
        free(b.stocks)
        free(b.orders)
        free(b.table)
        free(b.win)
        free(b.levels)
        free(b.keep)
        free(b.wanted)
        free(b.bbo_buf)
        free(b.exec_buf)

    def apply(self, const uint8_t[::1] buf, until=None, *, Py_ssize_t base_offset=0,
              source=None):
        """Apply the BinaryFILE-framed messages of ``buf``; see :meth:`OrderBook.apply`."""
        cdef Status st
        cdef Py_ssize_t consumed = 0, applied = 0, rc
        cdef uint64_t limit = NO_LIMIT if until is None else <uint64_t>until
        cdef Py_ssize_t n = buf.shape[0]
        cdef const uint8_t *p = &buf[0] if n > 0 else NULL
        status_clear(&st)
        self.consumed = 0
        if n == 0 or self.b.ended:
            return 0
        if self.busy:
            raise RuntimeError("OrderBook.apply is already running in another thread")
        self.busy = True
        try:
            with nogil:
                rc = apply_buffer(&self.b, p, n, limit, &consumed, &applied, &st)
        finally:
            self.busy = False
        self.consumed = consumed
        self.reached_until = rc == 1
        if rc < 0:
            st.offset += base_offset
            raise_status(&st, source)
        return applied

    # ------------------------------------------------------------ state

    @property
    def seq(self):
        """Messages walked so far: the next message's ``seq``."""
        return self.b.seq

    @property
    def timestamp(self):
        """Timestamp (ns since midnight) of the last message applied."""
        return self.b.timestamp

    @property
    def ended(self):
        """True once the session's end marker (a zero length prefix) was read."""
        return bool(self.b.ended)

    @property
    def live_orders(self):
        """Orders resting in the book now."""
        return self.b.live_orders

    @property
    def live_levels(self):
        """Price levels in use now, over every stock and side."""
        return self.b.live_levels

    @property
    def strict(self):
        return bool(self.b.strict)

    @property
    def max_orders(self):
        return self.b.max_orders

    @property
    def max_levels(self):
        return self.b.max_levels

    def _stats(self):
        cdef BookState *b = &self.b
        out = {
            "messages": b.seq,
            "live_orders": b.live_orders,
            "live_levels": b.live_levels,
            "peak_orders": b.peak_orders,
            "peak_levels": b.peak_levels,
            "max_orders": b.max_orders,
            "max_levels": b.max_levels,
            "trades": b.trades,
            "cross_trades": b.cross_trades,
            "broken_trades": b.broken_trades,
            "unknown_types": b.unknown_types,
            "hash_max_displacement": b.max_disp,
            "ref_window": b.wsize,
            "by_type": {
                chr(i): b.type_counts[i] for i in range(N_TYPE_BYTES) if b.type_counts[i]
            },
        }
        for i in range(1, AN_COUNT):
            out[ANOMALY_NAMES[i]] = b.anomalies[i]
        out["anomalies"] = sum(b.anomalies[i] for i in range(1, AN_COUNT))
        return out

    def _directory(self):
        """``[(stock_locate, ticker bytes)]`` of every stock seen in an R message."""
        cdef BookState *b = &self.b
        cdef Py_ssize_t i
        out = []
        for i in range(N_LOCATES):
            if b.stocks[i].in_directory:
                out.append((i, b.stocks[i].ticker[:SIZE_R_STOCK]))
        return out

    def _directory_version(self):
        """Changes whenever the stock directory may have changed (R messages seen)."""
        return self.b.type_counts[<int>b'R']

    def _kept(self, Py_ssize_t loc):
        return bool(self.b.keep[loc & 0xFFFF])

    def _trading_state(self, Py_ssize_t loc):
        cdef Stock *st = &self.b.stocks[loc & 0xFFFF]
        return (chr(st.trading_state) if st.trading_state else "",
                chr(st.halt_action) if st.halt_action else "",
                chr(st.halt_market) if st.halt_market else "")

    # ------------------------------------------------------------ queries

    def _bbo(self, Py_ssize_t loc):
        cdef BookState *b = &self.b
        cdef uint32_t lb = best_level(b, <uint16_t>loc, BID)
        cdef uint32_t la = best_level(b, <uint16_t>loc, ASK)
        return (
            b.levels[lb].price if lb != NIL else 0,
            b.levels[lb].shares if lb != NIL else 0,
            b.levels[la].price if la != NIL else 0,
            b.levels[la].shares if la != NIL else 0,
        )

    def _depth(self, Py_ssize_t loc, Py_ssize_t levels):
        cdef BookState *b = &self.b
        cdef SideBook *sb
        cdef Level *L
        cdef Py_ssize_t i, k, row = 0
        cdef int side
        nb = min(levels, b.stocks[loc].side[BID].n)
        na = min(levels, b.stocks[loc].side[ASK].n)
        out = np.zeros(nb + na, dtype=DEPTH_DTYPE)
        for side in range(N_SIDES):
            sb = &b.stocks[loc].side[side]
            k = nb if side == BID else na
            for i in range(k):
                L = &b.levels[sb.keys[sb.n - 1 - i] & NIL]
                out[row] = (b"B" if side == BID else b"S", L.price, L.shares, L.count)
                row += 1
        return out

    def _orders_at(self, Py_ssize_t loc, side, Py_ssize_t price):
        cdef BookState *b = &self.b
        cdef int s = _side_index(side)
        cdef SideBook *sb = &b.stocks[loc].side[s]
        cdef bint found
        cdef Py_ssize_t i
        cdef uint32_t slot
        cdef Level *L
        if not 0 <= price <= 0xFFFFFFFF:
            return np.zeros(0, dtype=QUEUE_DTYPE)
        i = side_search(sb, price_key(<uint32_t>price, s), &found)
        if not found:
            return np.zeros(0, dtype=QUEUE_DTYPE)
        L = &b.levels[sb.keys[i] & NIL]
        out = np.zeros(L.count, dtype=QUEUE_DTYPE)
        slot = L.head
        i = 0
        while slot != NIL and i < L.count:
            out[i] = (b.orders[slot].order_ref, b.orders[slot].shares)
            slot = b.orders[slot].next
            i += 1
        return out

    def _order(self, uint64_t order_ref):
        cdef uint64_t bucket
        cdef uint32_t slot = ref_find(&self.b, order_ref, &bucket)
        cdef Order *o
        if slot == NIL:
            return None
        o = &self.b.orders[slot]
        return (o.order_ref, o.stock_locate, "B" if o.side == BID else "S", o.price, o.shares)

    def _queue_position(self, uint64_t order_ref):
        cdef BookState *b = &self.b
        cdef uint64_t bucket
        cdef uint32_t slot = ref_find(b, order_ref, &bucket)
        cdef uint32_t cur
        cdef uint64_t ahead = 0, shares = 0
        if slot == NIL:
            return None
        cur = b.levels[b.orders[slot].level].head
        while cur != slot and cur != NIL:
            ahead += 1
            shares += b.orders[cur].shares
            cur = b.orders[cur].next
        return ahead, shares

    # ------------------------------------------------------------ event tables

    def drain_bbo(self):
        """Top-of-book changes recorded since the last drain (a ``BBO_DTYPE`` array).

        Raises
        ------
        RuntimeError
            The book was built without ``bbo=True``.
        """
        cdef BookState *b = &self.b
        if not b.track_bbo:
            raise RuntimeError("top-of-book events are off: build the book with bbo=True")
        out = np.empty(b.bbo_n, dtype=BBO_DTYPE)
        cdef uint8_t[::1] view = out.view(np.uint8)
        if b.bbo_n:
            memcpy(&view[0], b.bbo_buf, b.bbo_n * sizeof(BboEvent))
        b.bbo_n = 0
        return out

    def drain_executions(self):
        """Executions recorded since the last drain (an ``EXEC_DTYPE`` array).

        Raises
        ------
        RuntimeError
            The book was built without ``executions=True``.
        """
        cdef BookState *b = &self.b
        if not b.track_executions:
            raise RuntimeError("execution events are off: build the book with executions=True")
        out = np.empty(b.exec_n, dtype=EXEC_DTYPE)
        cdef uint8_t[::1] view = out.view(np.uint8)
        if b.exec_n:
            memcpy(&view[0], b.exec_buf, b.exec_n * sizeof(ExecEvent))
        b.exec_n = 0
        return out
