# cython: language_level=3
"""Declared interface of the fixed-size L2 (price-level) book.

Decoders that apply depth updates directly (``hftcore.binance``) cimport this and call
``set_level`` without the GIL; nothing else of the layout is part of the contract.
"""

from libc.stdint cimport int64_t, uint64_t


cdef enum BookSide:
    BID = 0
    ASK = 1


cdef class L2Book:
    cdef readonly Py_ssize_t max_levels  # capacity per side, fixed at construction
    # Each side is a sorted array with the best level at the END (index n - 1), so the
    # frequent updates near the touch move few elements. Bids ascend, asks descend.
    cdef int64_t *bid_px                 # prices, 8 implied decimals
    cdef int64_t *bid_qty                # quantities, 8 implied decimals
    cdef int64_t *ask_px
    cdef int64_t *ask_qty
    cdef Py_ssize_t n_bids               # live bid levels
    cdef Py_ssize_t n_asks               # live ask levels
    cdef readonly uint64_t dropped       # levels dropped because a side was full
    cdef readonly uint64_t updates       # set_level calls applied

    # Set the quantity at ``price`` on ``side`` (BID/ASK); qty 0 removes the level
    # (removing an absent level is a no-op). When a side is full, the level furthest
    # from the touch is dropped and counted in ``dropped``. Returns 0.
    cdef int set_level(self, int side, int64_t price, int64_t qty) noexcept nogil
    # Remove every level of one side (snapshots).
    cdef void clear_side(self, int side) noexcept nogil
