# cython: language_level=3
"""Declared interface of the fixed-size L2 (price-level) book.

Code that applies updates without the GIL (an exchange's depth applier) cimports
:class:`L2Book` and calls its nogil operations: ``set_level``, ``clear_side`` and
``count_updates``. They are final ``inline`` methods, so they compile into the caller's
own loop (no virtual call). Nothing outside ``book/`` reads or writes the fields: the
layout may change, the operations are the contract.

The book knows no exchange: prices and quantities are int64 with implied decimals
(``price_decimals`` / ``qty_decimals``, used only to format and for the float views).

The same operations exist on the book's data, ``L2Data`` (``l2_set_level``,
``l2_clear_side``, ``l2_count_updates``, ``l2_begin_write``, ``l2_end_write``), for code
that keeps many books and picks one per message without the GIL (a live feed): it holds
``&book.data`` pointers (taken with the GIL, valid while it holds the books) where it
could not hold typed references without touching reference counts.

The other inline functions before the class (``l2_side_set``, ``move_short``...) are
the update rule the operations compile from; they are here only so that the compiler
can inline them into other modules, not for use outside ``book/``.
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy, memmove

from hftcore._core.atomic cimport fence_release, store_release


cdef enum BookSide:
    BID = 0
    ASK = 1


cdef enum:
    # Levels this close to the touch are found by a linear scan before falling back to
    # binary search: near-touch updates dominate real depth streams.
    TOUCH_SCAN = 8
    # Shifts of at most this many levels move a fixed-size block, not a counted range;
    # each side's arrays have this many slots of slack past max_levels for it.
    SHORT_SHIFT = 16
    # Largest implied decimals: 10**18 is the largest power of ten in an int64.
    MAX_DECIMALS = 18


cdef inline bint l2_worse(bint bid, int64_t a, int64_t b) noexcept nogil:
    """True when price ``a`` is further from the touch than ``b`` (bid: lower)."""
    return a < b if bid else a > b


cdef inline Py_ssize_t l2_lower_bound(bint bid, const int64_t *px, Py_ssize_t n,
                                      int64_t price, Py_ssize_t hint) noexcept nogil:
    """Index of the first level not worse than ``price`` (``n`` if all are worse).

    ``hint`` (``0 <= hint <= n``) is where the search starts: the touch (``n``), or the
    index the previous level of the same message landed on. When a message lists its
    levels best first, the next answer is then at or just below the hint; when it is
    not (``price`` better than ``px[hint]``), the search starts at the touch.
    """
    cdef Py_ssize_t i
    cdef Py_ssize_t base = 0, half
    cdef Py_ssize_t k, better = 0
    if hint < n and l2_worse(bid, px[hint], price):
        hint = n
    if hint < TOUCH_SCAN:
        i = hint
        while i > 0 and not l2_worse(bid, px[i - 1], price):
            i -= 1
        return i
    # The levels next to the start first (most updates land there): count those not
    # worse than ``price``, branch-free (the array is sorted).
    for k in range(1, TOUCH_SCAN + 1):
        better += not l2_worse(bid, px[hint - k], price)
    if better < TOUCH_SCAN:
        return hint - better
    i = hint - TOUCH_SCAN
    if i == 0:
        return 0
    # Branch-free binary search of levels 0 .. i-1 (a conditional move per step, no
    # mispredicted branches): the answer stays within [base, base + i].
    while i > 1:
        half = i >> 1
        base += half if l2_worse(bid, px[base + half - 1], price) else 0
        i -= half
    return base + 1 if l2_worse(bid, px[base], price) else base


cdef inline void move_short(int64_t *dst, const int64_t *src) noexcept nogil:
    """Move SHORT_SHIFT values (the ranges may overlap): a fixed size, so no loop
    whose trip count the branch predictor would have to guess."""
    cdef int64_t tmp[SHORT_SHIFT]
    memcpy(tmp, src, sizeof(tmp))
    memcpy(dst, tmp, sizeof(tmp))


cdef inline void l2_shift_up(int64_t *px, int64_t *qt, Py_ssize_t i,
                             Py_ssize_t n) noexcept nogil:
    """Move levels ``i .. n-1`` one slot up (making room at ``i``)."""
    if n - i > SHORT_SHIFT:
        memmove(px + i + 1, px + i, (n - i) * sizeof(int64_t))
        memmove(qt + i + 1, qt + i, (n - i) * sizeof(int64_t))
    else:
        # Moves a whole SHORT_SHIFT block; the slack allocated past max_levels
        # absorbs whatever lies beyond ``n``.
        move_short(px + i + 1, px + i)
        move_short(qt + i + 1, qt + i)


cdef inline void l2_shift_down(int64_t *px, int64_t *qt, Py_ssize_t i,
                               Py_ssize_t n) noexcept nogil:
    """Move levels ``i+1 .. n-1`` one slot down (closing the hole at ``i``)."""
    if n - 1 - i > SHORT_SHIFT:
        memmove(px + i, px + i + 1, (n - 1 - i) * sizeof(int64_t))
        memmove(qt + i, qt + i + 1, (n - 1 - i) * sizeof(int64_t))
    else:
        move_short(px + i, px + i + 1)
        move_short(qt + i, qt + i + 1)


cdef inline Py_ssize_t l2_side_set(bint bid, int64_t *px, int64_t *qt,
                                   Py_ssize_t *count, Py_ssize_t cap, uint64_t *dropped,
                                   int64_t price, int64_t qty,
                                   Py_ssize_t hint) noexcept nogil:
    """The update rule of one side (see ``L2Book.set_level``).

    ``hint``: where to start looking (see ``l2_lower_bound``; any value above the
    side's count means the touch). Returns the hint for the next, worse, level of the
    same message: the index this one landed on.
    """
    cdef Py_ssize_t n = count[0]
    cdef Py_ssize_t i
    if hint > n:
        hint = n
    i = l2_lower_bound(bid, px, n, price, hint)
    if i < n and px[i] == price:
        if qty > 0:
            qt[i] = qty
            return i
        l2_shift_down(px, qt, i, n)  # remove: close the hole
        count[0] = n - 1
    elif qty <= 0:
        return i  # removing an absent level
    elif n < cap:
        l2_shift_up(px, qt, i, n)
        px[i] = price
        qt[i] = qty
        count[0] = n + 1
    else:
        # Full: the level furthest from the touch (index 0) goes, or the new level
        # itself when it is the worst of all.
        dropped[0] += 1
        if i == 0:
            return 0
        memmove(px, px + 1, (i - 1) * sizeof(int64_t))
        memmove(qt, qt + 1, (i - 1) * sizeof(int64_t))
        px[i - 1] = price
        qt[i - 1] = qty
        return i - 1
    return i


cdef struct L2Data:
    # Invariants, for each side (bid / ask), between any two operations:
    # - 0 <= n <= max_levels levels live at indices [0, n) of its px/qty arrays;
    # - prices strictly monotonic with the best level LAST (index n - 1), so updates
    #   near the touch move few elements: bids ascend, asks descend;
    # - every live quantity is > 0 (a level set to 0 is removed, not stored);
    # - each array has max_levels + SHORT_SHIFT slots; the slack past max_levels is
    #   scratch for move_short's fixed-size moves (never read as levels).
    Py_ssize_t max_levels  # capacity per side (>= 1), fixed at construction
    int64_t *bid_px        # bid prices, ascending (best at n_bids - 1)
    int64_t *bid_qty       # bid quantities, > 0, parallel to bid_px
    int64_t *ask_px        # ask prices, descending (best at n_asks - 1)
    int64_t *ask_qty       # ask quantities, > 0, parallel to ask_px
    Py_ssize_t n_bids      # live bid levels, 0 <= n_bids <= max_levels
    Py_ssize_t n_asks      # live ask levels, 0 <= n_asks <= max_levels
    uint64_t dropped       # levels dropped because a side was full
    uint64_t updates       # level updates applied (see l2_count_updates)
    # Seqlock of the levels: odd while a write is in progress, +2 per write. One writer
    # (the thread applying updates) brackets each whole update with l2_begin_write /
    # l2_end_write; readers on other threads copy, then retry if it moved.
    uint64_t version


# -- the nogil operations (the contract for appliers) --------------------------------

cdef inline Py_ssize_t l2_set_level(L2Data *d, BookSide side, int64_t price, int64_t qty,
                                    Py_ssize_t hint) noexcept nogil:
    """Set the quantity at ``price`` on ``side`` (BID/ASK); returns the next hint.

    ``qty`` 0 removes the level (removing an absent level is a no-op); ``qty`` must
    not be negative (the caller checks: a negative one is treated as 0). When the
    side is full, the level furthest from the touch (or the new level itself, if
    it is the furthest) is dropped and counted in ``dropped``.

    ``hint`` only sets where the search starts, never the result: pass
    ``max_levels`` (any value >= the side's count means the touch) for a first
    level, then the value the previous call on the same side returned. Levels
    given best first (as depth messages list them) are then found in a few steps.

    Does not count in ``updates``: call ``l2_count_updates`` once per batch.
    """
    if side == BID:
        return l2_side_set(True, d.bid_px, d.bid_qty, &d.n_bids,
                           d.max_levels, &d.dropped, price, qty, hint)
    return l2_side_set(False, d.ask_px, d.ask_qty, &d.n_asks,
                       d.max_levels, &d.dropped, price, qty, hint)


cdef inline void l2_begin_write(L2Data *d) noexcept nogil:
    """Open a write (a whole depth message, a snapshot): readers on other threads
    retry until ``l2_end_write``. One writer at a time; writes do not nest."""
    d.version += 1
    # The odd version must be visible before any level changes.
    fence_release()


cdef inline void l2_end_write(L2Data *d) noexcept nogil:
    """Close the write opened by ``l2_begin_write``: the levels are consistent again."""
    store_release(&d.version, d.version + 1)


cdef inline void l2_clear_side(L2Data *d, BookSide side) noexcept nogil:
    """Remove every level of one side (snapshots); the counters are kept."""
    if side == BID:
        d.n_bids = 0
    else:
        d.n_asks = 0


cdef inline void l2_count_updates(L2Data *d, uint64_t n) noexcept nogil:
    """Add ``n`` level updates (``l2_set_level`` calls, removals included) to
    ``updates``."""
    d.updates += n


cdef class L2Book:
    cdef readonly Py_ssize_t max_levels  # capacity per side (>= 1), = data.max_levels
    cdef readonly int price_decimals     # implied decimals of prices, 0..MAX_DECIMALS
    cdef readonly int qty_decimals       # implied decimals of quantities, 0..MAX_DECIMALS
    cdef L2Data data                     # the levels and counters (see L2Data)

    # The operations as methods: the same inline functions on this book's data.

    @cython.final
    cdef inline Py_ssize_t set_level(self, BookSide side, int64_t price, int64_t qty,
                                     Py_ssize_t hint) noexcept nogil:
        """See ``l2_set_level``."""
        return l2_set_level(&self.data, side, price, qty, hint)

    @cython.final
    cdef inline void begin_write(self) noexcept nogil:
        """See ``l2_begin_write``."""
        l2_begin_write(&self.data)

    @cython.final
    cdef inline void end_write(self) noexcept nogil:
        """See ``l2_end_write``."""
        l2_end_write(&self.data)

    @cython.final
    cdef inline void clear_side(self, BookSide side) noexcept nogil:
        """See ``l2_clear_side``."""
        l2_clear_side(&self.data, side)

    @cython.final
    cdef inline void count_updates(self, uint64_t n) noexcept nogil:
        """See ``l2_count_updates``."""
        l2_count_updates(&self.data, n)
