# cython: language_level=3
"""Declared interface of the Binance JSON decoder: output rows, message kinds, and the
one message parser that both the table decoder (``decode_message``) and the book
appliers (``_apply.pyx``) run.

The lexer, the exact decimals and the level sink come from :mod:`hftcore.codec`; this
file and ``_json.pyx`` hold only Binance's message schema and dispatch. The numpy dtypes
of the rows are built from ``schema.TABLES`` and these structs' field offsets.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore._core.status cimport Status
from hftcore.codec.decimal cimport NumShape
from hftcore.codec.levels cimport LevelSink

cdef enum:
    SYMBOL_WIDTH = 24    # schema.SYMBOL_BYTES: symbols are NUL-padded UTF-8
    INTERVAL_WIDTH = 8   # a kline interval, e.g. "1m"
    N_SHAPES = 2         # NumShape per level field: price, qty

# ---- output rows (numpy dtypes are built from schema.TABLES and these offsets) -------

cdef struct TradeRow:
    int64_t event_time        # E, ns
    int64_t trade_time        # T, ns
    int64_t trade_id          # t
    int64_t price             # p, 8 implied decimals
    int64_t qty               # q, 8 implied decimals
    int64_t buyer_order_id    # b; -1 when absent (SBE, newer streams)
    int64_t seller_order_id   # a; -1 when absent
    int64_t msg_index         # index of the message in the input
    char symbol[SYMBOL_WIDTH]  # s, UTF-8, NUL padded
    uint8_t buyer_is_maker    # m

cdef struct AggTradeRow:
    int64_t event_time        # E, ns
    int64_t trade_time        # T, ns
    int64_t agg_trade_id      # a
    int64_t price             # p
    int64_t qty               # q
    int64_t first_trade_id    # f
    int64_t last_trade_id     # l
    int64_t msg_index
    char symbol[SYMBOL_WIDTH]
    uint8_t buyer_is_maker    # m

cdef struct BookTickerRow:
    int64_t event_time        # E, ns; 0 on spot JSON (absent)
    int64_t transaction_time  # T, ns; 0 when absent
    int64_t update_id         # u (order book update id)
    int64_t bid_price         # b
    int64_t bid_qty           # B
    int64_t ask_price         # a
    int64_t ask_qty           # A
    int64_t msg_index
    char symbol[SYMBOL_WIDTH]

cdef struct DepthRow:
    # price, qty, side first, as codec.levels.LevelRow: level sinks write them
    int64_t price
    int64_t qty                   # 0 removes the level
    uint8_t side                  # 0 bid, 1 ask
    int64_t event_time            # E, ns; 0 when absent
    int64_t transaction_time      # T, ns; 0 when absent (spot)
    int64_t first_update_id       # U; -1 for snapshots
    int64_t final_update_id       # u, or lastUpdateId / bookUpdateId for snapshots
    int64_t prev_final_update_id  # pu (USD-M); -1 when absent
    int64_t msg_index
    char symbol[SYMBOL_WIDTH]     # "" when absent (spot partial depth, REST)

cdef struct KlineRow:
    int64_t event_time               # E, ns
    int64_t start_time               # k.t, ns
    int64_t close_time               # k.T, ns
    int64_t first_trade_id           # k.f
    int64_t last_trade_id            # k.L
    int64_t open                     # k.o
    int64_t high                     # k.h
    int64_t low                      # k.l
    int64_t close                    # k.c
    int64_t volume                   # k.v, base asset
    int64_t quote_volume             # k.q
    int64_t taker_buy_base_volume    # k.V
    int64_t taker_buy_quote_volume   # k.Q
    int64_t num_trades               # k.n
    int64_t msg_index
    char symbol[SYMBOL_WIDTH]
    char interval[INTERVAL_WIDTH]    # k.i, e.g. "1m"
    uint8_t is_closed                # k.x


# Message kinds (the per-message ``kinds`` column and the counts; names: KIND_NAMES).
cdef enum MsgKind:
    K_INVALID = 0
    K_TRADE = 1
    K_AGG_TRADE = 2
    K_DEPTH = 3
    K_SNAPSHOT = 4
    K_BOOK_TICKER = 5
    K_KLINE = 6
    K_CONTROL = 7
    K_ERROR = 8
    K_SHUTDOWN = 9
    K_UNKNOWN = 10
    N_KINDS = 11

# Output tables (names: TABLE_NAMES); a ST_CAPACITY status names one of these in ``a``.
cdef enum TableId:
    T_TRADES = 0
    T_AGG_TRADES = 1
    T_BOOK_TICKER = 2
    T_DEPTH = 3
    T_SNAPSHOTS = 4
    T_KLINES = 5
    T_KINDS = 6
    N_TABLES = 7

# Depth levels: the ``side`` column.
cdef enum Side:
    SIDE_BID = 0
    SIDE_ASK = 1


cdef struct Out:
    TradeRow *trades
    AggTradeRow *agg_trades
    BookTickerRow *book_ticker
    DepthRow *depth
    DepthRow *snapshots
    KlineRow *klines
    uint8_t *kinds                # one per message: a MsgKind
    Py_ssize_t n[N_TABLES]        # rows used per table (TableId)
    Py_ssize_t cap[N_TABLES]      # rows allocated per table
    int64_t counts[N_KINDS]       # messages per MsgKind
    NumShape shapes[N_SHAPES]     # price / qty print shapes, kept across levels
    # Level sinks over the free rows of the depth and snapshot tables (index: table -
    # T_DEPTH); commit_levels moves one past the rows a message committed.
    LevelSink sinks[2]


# The fields of one top-level message as parsed (``seen``: a bit per Field of
# _json.pyx); levels go to the caller's sinks, not here.
cdef struct Fields:
    int kind                      # MsgKind, once parse_message returned
    Py_ssize_t start              # offset of the message's '{' (missing-field errors)
    uint64_t seen                 # bit per Field
    # Keys read so far, a bit per Field (whatever the value's type): a second one is
    # ST_DUPLICATE_KEY. Envelope and payload share it (one message, one namespace).
    uint64_t keys
    # The control / error reply fields, checked once the kind is known: the first
    # byte of each value (its JSON type) and where it starts.
    uint8_t code_type
    uint8_t msg_type
    uint8_t id_type
    Py_ssize_t code_at
    Py_ssize_t id_at
    const uint8_t *ev             # event type "e" (raw bytes in the input)
    Py_ssize_t ev_len
    int64_t E
    int64_t T
    int64_t t
    int64_t price
    int64_t qty
    int64_t b_num
    int64_t a_num
    int64_t b_str
    int64_t a_str
    int64_t B
    int64_t A
    int64_t f
    int64_t l
    int64_t U
    int64_t u
    int64_t pu
    int64_t last_update_id
    uint8_t m
    bint skip_rest                # "e" named an event kind without columns: skip the rest
    char symbol[SYMBOL_WIDTH]
    KlineRow k


# The header of a depth message (K_DEPTH or K_SNAPSHOT), as decode_many's depth rows
# and the appliers' DepthHeader hold it.
cdef struct DepthIds:
    int64_t event_time            # ns; 0 when absent
    int64_t transaction_time      # ns; 0 when absent
    int64_t first_update_id       # U; -1 for snapshots
    int64_t final_update_id       # u, or lastUpdateId of a snapshot
    int64_t prev_final_update_id  # pu; -1 when absent


# One JSON message at ``pos`` (leading whitespace skipped): its fields into ``fl`` (and
# ``fl.kind``), the levels of "b"/"a" arrays into ``diff``, of "bids"/"asks" into
# ``snap`` (each from its ``n`` = 0). Raw, in a ``data`` / ``event`` envelope, any
# key order and whitespace; a depthUpdate exactly as Binance prints it takes a fast
# path that accepts and rejects exactly what the general one does. Required fields of
# the kind are checked. Returns the position after the message, or -1.
cdef Py_ssize_t parse_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                              int64_t time_mult, Fields *fl, LevelSink *diff,
                              LevelSink *snap, NumShape *shapes,
                              Status *st) noexcept nogil

# The depth header of a message parse_message found to be K_DEPTH or K_SNAPSHOT.
cdef void depth_ids(const Fields *fl, DepthIds *ids) noexcept nogil

# The row of a message parse_message found to be K_TRADE / K_AGG_TRADE / K_BOOK_TICKER
# (decode_message and the live feed fill their rows with these).
cdef void fill_trade(TradeRow *tr, const Fields *fl, int64_t msg_index) noexcept nogil
cdef void fill_agg_trade(AggTradeRow *ag, const Fields *fl, int64_t msg_index) noexcept nogil
cdef void fill_book_ticker(BookTickerRow *bt, const Fields *fl,
                           int64_t msg_index) noexcept nogil

# Decode one JSON message at ``pos`` into ``out``; returns the position after it, or -1.
# ``kind`` receives its MsgKind. Row counters in ``out`` advance only on success; with
# ``whole`` the message must fill ``p[pos:end]`` (but whitespace) to succeed.
cdef Py_ssize_t decode_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                               int64_t time_mult, int64_t msg_index, bint whole, Out *out,
                               int *kind, Status *st) noexcept nogil


# Growable output tables shared by the JSON and SBE decoders. The nogil kernels fill
# ``out``; on ST_CAPACITY the driver calls ``grow`` and resumes at the same message.
cdef class OutBuffers:
    cdef Out out
    cdef list arrays              # numpy structured arrays, one per TableId
    cdef void _bind(self)
    cdef int grow(self, int table) except -1


# A fixed sink over a depth table's free rows (``table``: T_DEPTH or T_SNAPSHOTS).
cdef void depth_table_sink(LevelSink *s, DepthRow *rows, const Out *out,
                           int table) noexcept nogil

# Count the levels of ``out.sinks[table - T_DEPTH]`` as rows of ``table`` and move the
# sink past them.
cdef void commit_levels(Out *out, int table) noexcept nogil
