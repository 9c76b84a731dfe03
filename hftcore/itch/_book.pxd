# cython: language_level=3
"""Declared interface of the fixed-size ITCH 5.0 L3 order book (every order of every stock).

Layout: an order pool (compact 32-byte records, free list), ``order_ref`` to pool slot
through a direct-indexed window over the newest refs, backed by a Robin Hood hash for
older refs (runs of 256 consecutive refs share consecutive buckets), a
price-level pool (free list), and per stock and side a sorted array of level keys with
the best level at the END, so the frequent changes near the touch move few elements.
Every order sits in the intrusive FIFO list of its level
(price-time priority), so a delete is O(1).
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from hftcore._core.status cimport Status
from hftcore.itch._decode cimport N_TYPE_BYTES
from hftcore.itch._wire cimport SIZE_R_STOCK


cdef struct Order:
    uint64_t order_ref      # NASDAQ order reference number (unique within the day)
    uint32_t price          # limit price, 4 implied decimals
    uint32_t shares         # remaining (displayed) shares
    uint32_t prev           # previous order in the level's FIFO (NIL at the front)
    uint32_t next           # next order in the level's FIFO (NIL at the back)
    uint32_t level          # slot of its price level in the level pool
    uint16_t stock_locate   # stock the order belongs to
    uint8_t side            # BID (buy) or ASK (sell)
    uint8_t pad             # keeps the record at 32 bytes


cdef struct Level:
    uint64_t shares         # total remaining shares of the orders at this price
    uint32_t price          # 4 implied decimals
    uint32_t count          # number of orders in the FIFO
    uint32_t head           # first order slot (front of the queue)
    uint32_t tail           # last order slot (back of the queue)


cdef struct SideBook:
    # Ascending keys ``(price_key << 32) | level_slot`` with price_key = price for bids and
    # 0xFFFFFFFF - price for asks: the best level of either side is keys[n - 1].
    uint64_t *keys
    uint32_t n              # live levels
    uint32_t cap            # allocated entries of ``keys`` (grows by doubling)


# Index of a book side (Order.side, Stock.side).
cdef enum:
    BID = 0
    ASK = 1
    N_SIDES


cdef struct Stock:
    SideBook side[N_SIDES]  # BID, ASK
    char ticker[SIZE_R_STOCK]   # from the stock directory (R), space padded; zero if unseen
    uint32_t last_bid_px    # last top of book emitted to the BBO table
    uint32_t last_ask_px
    uint64_t last_bid_sh
    uint64_t last_ask_sh
    uint8_t in_directory    # an R message was seen for this stock_locate
    uint8_t trading_state   # H message: 'H' halted, 'P' paused, 'Q' quotation only, 'T' trading
    uint8_t halt_action     # h message: 'H' halted, 'T' resumed (0 if none seen)
    uint8_t halt_market     # h message market code: 'Q', 'B' or 'X'


# Rows of the opt-in event tables; the numpy dtypes in _book.pyx mirror these (aligned).
cdef struct BboEvent:
    uint64_t seq            # message index in the stream
    uint64_t timestamp      # ns since midnight
    uint16_t stock_locate
    uint32_t bid_price      # 0 for an empty side
    uint64_t bid_shares
    uint32_t ask_price
    uint64_t ask_shares


cdef struct ExecEvent:
    uint64_t seq            # message index in the stream
    uint64_t timestamp      # ns since midnight
    uint16_t stock_locate
    uint64_t order_ref      # the resting order
    char side               # b'B' or b'S': side of the resting order
    uint32_t price          # execution price (C: the message's price, E: the order's)
    uint32_t shares         # executed shares
    uint64_t match_number
    char printable          # b'Y' / b'N' (E executions are printable)


cdef enum Anomaly:
    AN_BAD_SIDE = -1        # not an anomaly: an add's side is neither B nor S (DecodeError)
    AN_NONE = 0
    AN_UNKNOWN_ORDER        # E/C/X/D/U references an order that is not in the book
    AN_DUPLICATE_ORDER      # A/F/U adds an order_ref that is already live
    AN_OVERFILL             # executed shares larger than the order's remaining shares
    AN_OVERCANCEL           # cancelled shares larger than the order's remaining shares
    AN_CROSSED              # an add leaves the best bid >= the best ask
    AN_COUNT


# Which fixed-size structure a failed step ran out of.
cdef enum Capacity:
    CAP_NONE = 0
    CAP_ORDERS              # the order store (max_orders)
    CAP_LEVELS              # the price levels (max_levels)
    CAP_MEMORY              # growing an event table or a side's key array failed


cdef struct BookState:
    # Capacities (constructor arguments) and pools.
    uint32_t max_orders
    uint32_t max_levels
    Order *orders
    uint32_t order_used        # slots ever handed out (never-used slots follow)
    uint32_t order_free        # head of the free list (NIL if empty)
    uint32_t *table            # order_ref hash (linear probing): pool slot + 1, 0 = empty
    uint64_t mask              # table size - 1 (a power of two)
    int shift                  # 64 - log2(table size / GROUP): Fibonacci hash of the run
    uint64_t max_disp          # largest displacement from its home bucket ever inserted
    # Direct-indexed window over the newest refs (NASDAQ refs are dense and increasing):
    # win[ref & wmask] = slot + 1 (0 = none) for refs in [wbase, wbase + wsize); older
    # refs live in the hash, newer ones are never indexed yet.
    uint32_t *win
    uint64_t wmask
    uint64_t wbase
    uint64_t wsize             # window span; 0 once switched off (every ref in the hash)
    uint64_t win_live          # entries in the window
    uint64_t win_budget        # slots a slide may still scan (earned by window inserts)
    Level *levels
    uint32_t level_used
    uint32_t level_free
    Stock *stocks              # indexed by stock_locate (65536 entries)
    uint8_t *keep              # per stock_locate: 1 = keep its book
    uint64_t *wanted           # tickers asked for in symbols= (sorted big-endian u64)
    Py_ssize_t n_wanted
    # Options.
    bint strict
    bint track_bbo
    bint track_executions
    # Event tables (grow by doubling; never dropped).
    BboEvent *bbo_buf
    Py_ssize_t bbo_n
    Py_ssize_t bbo_cap
    ExecEvent *exec_buf
    Py_ssize_t exec_n
    Py_ssize_t exec_cap
    # Stream position and counters.
    uint64_t seq               # messages walked so far (the next message's seq)
    uint64_t timestamp         # timestamp of the last message applied
    bint ended                 # the session's zero-length end marker was seen
    uint64_t live_orders
    uint64_t live_levels
    uint64_t peak_orders
    uint64_t peak_levels
    uint64_t type_counts[N_TYPE_BYTES]
    uint64_t anomalies[AN_COUNT]   # indexed by Anomaly
    uint64_t trades            # P
    uint64_t cross_trades      # Q
    uint64_t broken_trades     # B
    uint64_t unknown_types     # messages of a type the spec does not define (skipped)
    # The error of the last failing message (set when a nogil step returns -1).
    int err_anomaly            # an Anomaly in strict mode, or AN_BAD_SIDE
    int err_capacity           # a Capacity
    uint64_t err_ref           # order_ref involved


cdef class OrderBookCore:
    cdef BookState b
    cdef readonly Py_ssize_t consumed   # bytes consumed by the last apply()
    cdef readonly bint reached_until    # the last apply() stopped at a message after `until`
    cdef bint busy                      # apply() is running (it releases the GIL)


# Apply one unframed message (``n`` bytes from its type byte) without the GIL: the path of
# the live feeds (hftcore.itch.Feed), sharing apply_one and the counters with the file
# path. 0, or -1 with ``st`` set (offsets relative to the message's type byte).
cdef int book_apply_message(BookState *b, const uint8_t *m, Py_ssize_t n,
                            Status *st) noexcept nogil
