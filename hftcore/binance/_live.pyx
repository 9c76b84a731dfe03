# cython: language_level=3
"""The live Binance consumer: each WebSocket message, straight from the receive buffer
into its symbol's book and ring tables, without the GIL.

:class:`LiveConsumer` is a :class:`hftcore.net.consumer.Consumer`: a reader (the
WebSocket of ``hftcore.net.ws``) hands it every message as a pointer and a length on the
feed thread. It parses with the decoders' one parser (``_json.parse_message``), finds the
symbol, and

- depth diffs: Binance's local-book procedure. A live book applies a diff that continues
  its update ids (``_apply.continuity``: spot ``U == last + 1``, USD-M ``pu == last``),
  ignores one already in the book (counted ``stale``) and, on a gap, counts it with the
  missing range and starts a resync: the diffs that follow are buffered (raw bytes,
  bounded) until a snapshot is installed, then replayed through the same rule. Nothing
  is dropped while the snapshot is fetched.
- trades, aggregate trades, book tickers: one row each into the symbol's ring tables,
  which other threads ``take()``; every top-of-book change of the local book too.
- ``serverShutdown``, subscription replies, errors: counted and handed to the Python
  side (``Feed``), which takes the GIL for them (rare).

Two connections at once (make-before-break, see ``binance.feed``): the consumer knows
which connection each message comes from (``conn``). Diffs of the primary connection
drive the book; a second connection's diff is applied when it continues the book,
ignored when the book already has it, and when it is ahead (the primary has not caught
up) it is counted ``ahead`` and not taken for a gap: the primary still delivers that
range. A symbol has "joined" a connection once that connection delivered a diff the book
could place; the Python side switches when every symbol has joined.

Everything the feed thread does to the books is recorded in order when a capture is
attached: frames (with their connection in the record kind), snapshot installs and
connection switches, so ``binance.replay`` of the capture runs the same steps and ends
with the same books.
"""

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset

from hftcore._core.clock cimport monotonic_ns, realtime_ns
from hftcore._core.status cimport ST_OK, Status, raise_status, status_clear, status_reason
from hftcore.binance._apply cimport (
    V_APPLIED,
    V_GAP,
    V_STALE,
    DepthHead,
    Level,
    LevelBuf,
    apply_levels,
    continuity,
)
from hftcore.binance._json cimport (
    K_AGG_TRADE,
    K_BOOK_TICKER,
    K_CONTROL,
    K_DEPTH,
    K_ERROR,
    K_SHUTDOWN,
    K_SNAPSHOT,
    K_TRADE,
    N_SHAPES,
    SYMBOL_WIDTH,
    N_TABLES,
    T_BOOK_TICKER,
    T_KINDS,
    T_TRADES,
    AggTradeRow,
    BookTickerRow,
    DepthIds,
    Fields,
    Out,
    TradeRow,
    depth_ids,
    fill_agg_trade,
    fill_book_ticker,
    fill_trade,
    parse_message,
)
from hftcore.binance._sbe cimport (
    TPL_BEST_BID_ASK,
    TPL_DEPTH_DIFF,
    TPL_TRADES,
    SbeDepth,
    decode_sbe_message,
    parse_depth,
    read_binance_header,
)
from hftcore.book._l2book cimport L2Book, L2Data
from hftcore.codec.decimal cimport NumShape
from hftcore.codec.levels cimport LevelSink, sink_free, sink_init
from hftcore.codec.sbe cimport SbeHeader
from hftcore.feed.capture cimport CaptureWriter
from hftcore.feed.ring cimport Ring, RingData, ring_claim, ring_publish
from hftcore.latency.stages cimport Stages
from hftcore.net.consumer cimport CONSUME_OK, KIND_BINARY, KIND_TEXT, Consumer, RecvStamp

import numpy as np

from hftcore.binance._json import DTYPES, FIELD_NAMES, KIND_NAMES
from hftcore.binance.schema import time_multiplier


cdef enum:
    S_SYNCING = 0       # waiting for a snapshot: the primary's diffs are buffered
    S_LIVE = 1          # the book continues from its last update id
    MAX_CONNS = 8       # connections the consumer tells apart (a bit each in ``joined``)
    DIFF_ROWS = 8192    # levels of one message held without a heap block
    MAX_ERRORS = 64     # decode errors kept with their text (all are counted)
    SBE_TRADES = 4096   # trades one SBE TradesStreamEvent may carry

# Capture record kinds besides the reader's (KIND_TEXT / KIND_BINARY, plus the
# connection index << 8): what the feed thread did that the frames do not say.
cpdef enum RecordKind:
    REC_SNAPSHOT = 64   # payload: SYMBOL, a newline, the REST snapshot body
    REC_LINK = 65       # payload: b"primary=P overlap=O" (a connection switch)


cdef struct SymState:
    char name[SYMBOL_WIDTH]     # upper case, NUL padded, as the stream prints "s"
    L2Data *book                # the symbol's L2Book (kept alive by LiveConsumer.books)
    RingData *trades            # LiveTrade rows
    RingData *agg_trades        # LiveAggTrade rows
    RingData *tops              # TopOfBook rows (local book changes and bookTicker)
    int state                   # S_SYNCING / S_LIVE
    bint bridged                # a diff was applied since the snapshot (USD-M rule)
    bint want_snapshot          # a snapshot is asked for and not installed yet
    int64_t last_update_id      # the book's update id (-1: none yet)
    # Diffs held while syncing: [int64 length][bytes] records, in arrival order.
    uint8_t *pend
    Py_ssize_t pend_len
    Py_ssize_t pend_cap
    Py_ssize_t pend_n
    # The second connection's diffs that were ahead of the book (make-before-break),
    # held the same way until the primary catches up with them.
    uint8_t *ahd
    Py_ssize_t ahd_len
    Py_ssize_t ahd_cap
    Py_ssize_t ahd_n
    int ahd_conn                # the connection they came from
    int64_t top[4]              # last published top of book (bid px, qty, ask px, qty)
    uint64_t joined             # bit per connection that delivered a placeable diff
    # counters
    uint64_t messages           # messages of any kind for this symbol
    uint64_t diffs              # depth diffs received (all connections)
    uint64_t applied            # diffs applied
    uint64_t stale              # diffs already in the book (repeats, the 2nd connection)
    uint64_t ahead              # 2nd-connection diffs ahead of the book (held, not a gap)
    uint64_t buffered           # diffs buffered while syncing
    uint64_t pend_overflows     # buffers discarded because they outgrew pend_limit
    uint64_t gaps               # breaks in the update ids
    uint64_t resyncs            # snapshots asked for (gaps, start, stale snapshots)
    uint64_t snapshots          # snapshots installed
    uint64_t stale_snapshots    # snapshots older than the buffered diffs (fetched again)
    uint64_t trade_rows         # trade and aggTrade rows written
    uint64_t ticker_rows        # bookTicker rows written
    uint64_t top_changes        # top-of-book changes of the local book written
    uint64_t duplicates         # trades / aggTrades / tickers already written (overlap)
    int64_t last_trade_id       # the last trade id written (-1: none)
    int64_t last_agg_id         # the last aggregate trade id written
    int64_t last_ticker_id      # the last bookTicker update id written
    int64_t last_ticker[4]      # ... and its bid px, qty, ask px, qty
    int64_t gap_first           # the last gap's first missing update id (-1: none)
    int64_t gap_last            # ... and its last (spot) or the pu seen (USD-M)
    int64_t snapshot_ns         # CLOCK_MONOTONIC of the last snapshot install


cdef struct LiveTrade:
    TradeRow row
    int64_t recv_time           # CLOCK_REALTIME ns when the frame was received


cdef struct LiveAggTrade:
    AggTradeRow row
    int64_t recv_time


cdef struct TopOfBook:
    int64_t event_time          # ns (the exchange's E; 0 for a spot bookTicker)
    int64_t recv_time           # CLOCK_REALTIME ns when the frame was received
    int64_t update_id           # the book's update id (u)
    int64_t bid_price
    int64_t bid_qty
    int64_t ask_price
    int64_t ask_qty
    uint8_t source              # 0: the local book (depth diffs), 1: a bookTicker


cdef inline Py_ssize_t _off(void *field, void *row) noexcept nogil:
    return <char *>field - <char *>row


def _ring_dtypes():
    cdef LiveTrade lt
    cdef LiveAggTrade la
    cdef TopOfBook tb
    out = {}
    for name, table, size, recv in (
            ("trades", 0, sizeof(LiveTrade), _off(&lt.recv_time, &lt)),
            ("agg_trades", 1, sizeof(LiveAggTrade), _off(&la.recv_time, &la))):
        base = DTYPES[table]
        names = list(base.names) + ["recv_time"]
        formats = [base.fields[n][0] for n in base.names] + [np.dtype("<i8")]
        offsets = [base.fields[n][1] for n in base.names] + [recv]
        out[name] = np.dtype({"names": names, "formats": formats, "offsets": offsets,
                              "itemsize": size})
    out["tops"] = np.dtype({
        "names": ["event_time", "recv_time", "update_id", "bid_price", "bid_qty",
                  "ask_price", "ask_qty", "source"],
        "formats": ["<i8"] * 7 + ["u1"],
        "offsets": [_off(&tb.event_time, &tb), _off(&tb.recv_time, &tb),
                    _off(&tb.update_id, &tb), _off(&tb.bid_price, &tb),
                    _off(&tb.bid_qty, &tb), _off(&tb.ask_price, &tb),
                    _off(&tb.ask_qty, &tb), _off(&tb.source, &tb)],
        "itemsize": sizeof(TopOfBook)})
    return out


#: numpy dtypes of the ring tables: "trades", "agg_trades" (decode_many's columns plus
#: ``recv_time``) and "tops" (top-of-book changes).
RING_DTYPES = _ring_dtypes()

# Stamps per message, in Stages order; stages between them (names as the report shows).
STAMPS = ("event", "kernel", "recv", "decoded", "applied")
STAGES = (("kernel", "recv"), ("event", "recv"), ("recv", "decoded"), ("recv", "applied"),
          ("event", "applied"))
cdef enum:
    ST_EVENT = 0
    ST_KERNEL = 1
    ST_RECV = 2
    ST_DECODED = 3
    ST_APPLIED = 4
    N_STAMPS = 5


cdef inline void upper_name(char *dst, const char *src, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef char c
    for i in range(n):
        c = src[i]
        dst[i] = c - 32 if c'a' <= c <= c'z' else c


@cython.final
cdef class LiveConsumer(Consumer):
    """Applies a Binance stream to books and ring tables on the feed thread.

    Made by :class:`hftcore.binance.Feed` (and ``binance.replay``); not usually built
    by hand. See the module docstring for what it does with each message.

    Parameters
    ----------
    symbols : sequence of str
        The symbols whose messages it keeps (others are counted ``unknown_symbols``).
    market : {"spot", "usdm"}
    time_unit : {"ms", "us"}
        The unit of the stream's event times (``timeUnit=MICROSECOND`` gives "us").
    max_levels : int
        Capacity per side of each book.
    ring_capacity : int
        Rows per ring table (per symbol and table).
    pend_limit : int
        Bytes of diffs one symbol may buffer while it waits for a snapshot; beyond, the
        buffer is discarded (counted ``pend_overflows``) and a newer snapshot asked for.
    capture : hftcore.feed.capture.CaptureWriter, optional
        Every frame and book step is appended to it (see ``binance.replay``).
    """

    cdef SymState *syms
    cdef readonly int n_symbols
    cdef bint usdm
    cdef int64_t time_mult
    cdef Py_ssize_t pend_limit
    cdef Level *diff_rows             # DIFF_ROWS levels: the parse target of one message
    cdef Level *snap_rows
    cdef NumShape shapes[N_SHAPES]
    cdef Out sbe_out                  # the SBE decoder's rows of one trade / BBA message
    cdef TradeRow *sbe_trades
    cdef BookTickerRow sbe_bba
    cdef uint8_t sbe_kind
    cdef Stages stages_
    cdef CaptureWriter capture_
    cdef bint capturing
    # The connection being pumped (set by the feed before each pump), the primary one,
    # and whether a second one is open (make-before-break).
    cdef public int conn
    cdef readonly int primary
    cdef readonly bint overlap
    cdef readonly uint64_t messages         # messages handed to on_message
    cdef readonly uint64_t decode_errors    # messages the parser rejected (skipped)
    cdef readonly uint64_t unknown_symbols  # messages for a symbol not followed
    cdef readonly uint64_t control          # subscription replies
    cdef readonly uint64_t exchange_errors  # error replies
    cdef readonly uint64_t shutdowns        # serverShutdown events
    cdef readonly uint64_t other            # klines, partial depth, unknown events, binary
    # Bumped whenever the Python side has something to do (snapshots to fetch, a
    # shutdown, replies or errors to log): the feed compares it after each pump.
    cdef readonly uint64_t events
    cdef readonly uint64_t shutdown_conns   # bit per connection that got serverShutdown
    cdef list notes                         # (kind, connection, bytes) for the Python side
    cdef list errors                        # the first MAX_ERRORS decode errors, as text
    cdef readonly list symbols
    cdef readonly dict books                # symbol -> L2Book
    cdef readonly dict trade_rings          # symbol -> Ring of LiveTrade
    cdef readonly dict agg_trade_rings      # symbol -> Ring of LiveAggTrade
    cdef readonly dict top_rings            # symbol -> Ring of TopOfBook
    cdef readonly str market

    def __cinit__(self):
        self.syms = NULL
        self.diff_rows = NULL
        self.snap_rows = NULL
        self.sbe_trades = NULL

    def __init__(self, symbols, str market="spot", str time_unit="ms", *,
                 Py_ssize_t max_levels=5000, Py_ssize_t ring_capacity=65536,
                 Py_ssize_t pend_limit=64 << 20, CaptureWriter capture=None):
        cdef int i
        cdef bytes name
        cdef L2Book book
        cdef Ring ring
        syms = [str(s).upper() for s in symbols]
        if not syms:
            raise ValueError("LiveConsumer needs at least one symbol")
        if len(set(syms)) != len(syms):
            raise ValueError(f"repeated symbols in {syms}")
        if market not in ("spot", "usdm"):
            raise ValueError(f"market must be 'spot' or 'usdm', got {market!r}")
        self.market = market
        self.usdm = market == "usdm"
        self.time_mult = time_multiplier(time_unit)
        self.pend_limit = pend_limit
        self.symbols = syms
        self.n_symbols = len(syms)
        self.syms = <SymState *>malloc(self.n_symbols * sizeof(SymState))
        self.diff_rows = <Level *>malloc(DIFF_ROWS * sizeof(Level))
        self.snap_rows = <Level *>malloc(DIFF_ROWS * sizeof(Level))
        self.sbe_trades = <TradeRow *>malloc(SBE_TRADES * sizeof(TradeRow))
        if (self.syms == NULL or self.diff_rows == NULL or self.snap_rows == NULL
                or self.sbe_trades == NULL):
            raise MemoryError("LiveConsumer: cannot allocate its state")
        # The SBE decoder writes trade and BBA rows into these; nothing else fits.
        memset(&self.sbe_out, 0, sizeof(Out))
        self.sbe_out.trades = self.sbe_trades
        self.sbe_out.cap[<int>T_TRADES] = SBE_TRADES
        self.sbe_out.book_ticker = &self.sbe_bba
        self.sbe_out.cap[<int>T_BOOK_TICKER] = 1
        self.sbe_out.kinds = &self.sbe_kind
        self.sbe_out.cap[<int>T_KINDS] = 1
        memset(self.syms, 0, self.n_symbols * sizeof(SymState))
        memset(self.shapes, 0, sizeof(self.shapes))
        self.books, self.trade_rings, self.agg_trade_rings, self.top_rings = {}, {}, {}, {}
        for i, sym in enumerate(syms):
            name = sym.encode("utf-8")
            if len(name) > SYMBOL_WIDTH:
                raise ValueError(f"symbol {sym!r} is longer than {SYMBOL_WIDTH} bytes")
            memcpy(self.syms[i].name, <const char *>name, len(name))
            book = L2Book(max_levels)
            self.books[sym] = book
            self.syms[i].book = &book.data
            ring = Ring(RING_DTYPES["trades"], ring_capacity)
            self.trade_rings[sym] = ring
            self.syms[i].trades = &ring.r
            ring = Ring(RING_DTYPES["agg_trades"], ring_capacity)
            self.agg_trade_rings[sym] = ring
            self.syms[i].agg_trades = &ring.r
            ring = Ring(RING_DTYPES["tops"], ring_capacity)
            self.top_rings[sym] = ring
            self.syms[i].tops = &ring.r
            self.syms[i].state = S_SYNCING
            self.syms[i].want_snapshot = True
            self.syms[i].resyncs = 1  # the first sync
            self.syms[i].last_update_id = -1
            self.syms[i].gap_first = -1
            self.syms[i].gap_last = -1
            self.syms[i].last_trade_id = -1
            self.syms[i].last_agg_id = -1
            self.syms[i].last_ticker_id = -1
        self.stages_ = Stages(STAMPS, STAGES, arrival="recv", sender="event")
        self.capture_ = capture
        self.capturing = capture is not None
        self.conn = 0
        self.primary = 0
        self.overlap = False
        self.notes = []
        self.errors = []
        self.events = 1  # the first snapshots are wanted

    def __dealloc__(self):
        cdef int i
        if self.syms != NULL:
            for i in range(self.n_symbols):
                free(self.syms[i].pend)
                free(self.syms[i].ahd)
            free(self.syms)
        free(self.diff_rows)
        free(self.snap_rows)
        free(self.sbe_trades)

    # -- the feed thread's path (no GIL) ---------------------------------------------

    cdef inline int find(self, const char *symbol) noexcept nogil:
        """Index of ``symbol`` (NUL padded, as parsed), case-insensitive; -1 if absent."""
        cdef char up[SYMBOL_WIDTH]
        cdef int i
        upper_name(up, symbol, SYMBOL_WIDTH)
        for i in range(self.n_symbols):
            if memcmp(up, self.syms[i].name, SYMBOL_WIDTH) == 0:
                return i
        return -1

    cdef inline void record(self, int kind, const uint8_t *data, Py_ssize_t size,
                            const RecvStamp *stamp) noexcept nogil:
        if self.capturing:
            self.capture_.append(data, size, kind, stamp)

    cdef int on_message(self, const uint8_t *data, Py_ssize_t size, int kind,
                        const RecvStamp *stamp) noexcept nogil:
        cdef int c = self.conn
        if kind == REC_SNAPSHOT:
            self.snapshot_record(data, size)
            return CONSUME_OK
        if kind == REC_LINK:
            self.link_record(data, size)
            return CONSUME_OK
        if kind > 0xFF:  # a captured frame of another connection (replay)
            c = kind >> 8
            kind &= 0xFF
        self.record(kind | (c << 8), data, size, stamp)
        self.message(data, size, kind, c, stamp)
        return CONSUME_OK

    cdef void message(self, const uint8_t *p, Py_ssize_t size, int kind, int c,
                      const RecvStamp *stamp) noexcept nogil:
        cdef Fields fl
        cdef LevelSink diff, snap
        cdef Status st
        cdef Py_ssize_t r
        cdef int idx, k
        cdef SymState *s
        cdef int64_t stamps[N_STAMPS]
        self.messages += 1
        if kind == KIND_BINARY:
            self.sbe_message(p, size, c, stamp)
            return
        if kind != KIND_TEXT:
            self.other += 1
            return
        sink_init(&diff, self.diff_rows, DIFF_ROWS, sizeof(Level), 0, True)
        sink_init(&snap, self.snap_rows, DIFF_ROWS, sizeof(Level), 0, True)
        r = parse_message(p, 0, size, self.time_mult, &fl, &diff, &snap, self.shapes, &st)
        stamps[ST_EVENT] = 0
        stamps[ST_KERNEL] = stamp.kernel_ns
        stamps[ST_RECV] = stamp.realtime_ns
        stamps[ST_DECODED] = stamp.realtime_ns + (monotonic_ns() - stamp.monotonic_ns)
        stamps[ST_APPLIED] = 0
        if r < 0:
            self.decode_errors += 1
            if self.decode_errors <= MAX_ERRORS:
                with gil:
                    self.note_error(p, size, &st)
        else:
            k = fl.kind
            if k == K_DEPTH or k == K_TRADE or k == K_AGG_TRADE or k == K_BOOK_TICKER:
                idx = self.find(fl.symbol)
                if idx < 0:
                    self.unknown_symbols += 1
                else:
                    s = &self.syms[idx]
                    s.messages += 1
                    stamps[ST_EVENT] = fl.E if (fl.E > 0 and k != K_BOOK_TICKER) else 0
                    if k == K_DEPTH:
                        self.depth(s, &fl, &diff, p, size, c, stamp)
                    elif k == K_TRADE:
                        self.trade(s, &fl, stamp)
                    elif k == K_AGG_TRADE:
                        self.agg_trade(s, &fl, stamp)
                    else:
                        self.ticker(s, &fl, stamp)
                    stamps[ST_APPLIED] = stamp.realtime_ns + (monotonic_ns()
                                                              - stamp.monotonic_ns)
            elif k == K_SHUTDOWN:
                self.shutdowns += 1
                self.shutdown_conns |= (<uint64_t>1) << c
                self.events += 1
                with gil:
                    self.notes.append(("shutdown", c, p[:size]))
            elif k == K_CONTROL or k == K_ERROR:
                if k == K_CONTROL:
                    self.control += 1
                else:
                    self.exchange_errors += 1
                self.events += 1
                with gil:
                    self.notes.append(("control" if k == K_CONTROL else "error", c,
                                       p[:size]))
            else:
                self.other += 1
        sink_free(&diff)
        sink_free(&snap)
        self.stages_.record_stamps(stamps)

    cdef void sbe_message(self, const uint8_t *p, Py_ssize_t size, int c,
                          const RecvStamp *stamp) noexcept nogil:
        """A binary frame: a spot SBE market-data message (schema 1, version 0)."""
        cdef SbeHeader sh
        cdef SbeDepth d
        cdef Status st
        cdef LevelSink diff
        cdef DepthHead h
        cdef LevelBuf buf
        cdef Py_ssize_t r, i
        cdef int idx, kind
        cdef SymState *s
        cdef int64_t stamps[N_STAMPS]
        stamps[ST_EVENT] = 0
        stamps[ST_KERNEL] = stamp.kernel_ns
        stamps[ST_RECV] = stamp.realtime_ns
        stamps[ST_DECODED] = 0
        stamps[ST_APPLIED] = 0
        r = read_binance_header(p, 0, size, &sh, &st)
        if r >= 0 and sh.template_id == TPL_DEPTH_DIFF:
            sink_init(&diff, self.diff_rows, DIFF_ROWS, sizeof(Level), 0, True)
            r = parse_depth(p, 0, size, &sh, &d, &diff, &st)
            if r >= 0:
                stamps[ST_DECODED] = stamp.realtime_ns + (monotonic_ns() - stamp.monotonic_ns)
                idx = self.find(d.symbol)
                if idx < 0:
                    self.unknown_symbols += 1
                else:
                    s = &self.syms[idx]
                    s.messages += 1
                    sbe_head(&h, &d)
                    buf.levels = <Level *>diff.rows
                    buf.n = diff.n
                    stamps[ST_EVENT] = d.event_time
                    self.depth_msg(s, &h, &buf, p, size, c, stamp, True)
                    stamps[ST_APPLIED] = stamp.realtime_ns + (monotonic_ns()
                                                              - stamp.monotonic_ns)
            sink_free(&diff)
        elif r >= 0 and (sh.template_id == TPL_TRADES
                         or sh.template_id == TPL_BEST_BID_ASK):
            for i in range(N_TABLES):
                self.sbe_out.n[i] = 0
            r = decode_sbe_message(p, 0, size, <int64_t>self.messages - 1, &self.sbe_out,
                                   &kind, &st)
            if r >= 0:
                stamps[ST_DECODED] = stamp.realtime_ns + (monotonic_ns() - stamp.monotonic_ns)
                if sh.template_id == TPL_TRADES:
                    for i in range(self.sbe_out.n[<int>T_TRADES]):
                        idx = self.find(self.sbe_trades[i].symbol)
                        if idx < 0:
                            self.unknown_symbols += 1
                            break
                        s = &self.syms[idx]
                        if i == 0:
                            s.messages += 1
                            stamps[ST_EVENT] = self.sbe_trades[i].event_time
                        self.trade_row(s, &self.sbe_trades[i], stamp)
                else:
                    idx = self.find(self.sbe_bba.symbol)
                    if idx < 0:
                        self.unknown_symbols += 1
                    else:
                        s = &self.syms[idx]
                        s.messages += 1
                        stamps[ST_EVENT] = self.sbe_bba.event_time
                        self.ticker_row(s, &self.sbe_bba, stamp)
                stamps[ST_APPLIED] = stamp.realtime_ns + (monotonic_ns() - stamp.monotonic_ns)
        elif r >= 0:
            self.other += 1  # depth20 snapshots: not the local book's input
        if r < 0:
            self.decode_errors += 1
            if self.decode_errors <= MAX_ERRORS:
                with gil:
                    self.note_error(p, size, &st)
        self.stages_.record_stamps(stamps)

    cdef void depth(self, SymState *s, const Fields *fl, const LevelSink *diff,
                    const uint8_t *p, Py_ssize_t size, int c,
                    const RecvStamp *stamp) noexcept nogil:
        cdef DepthIds ids
        cdef DepthHead h
        cdef LevelBuf buf
        depth_ids(fl, &ids)
        head_from(&h, &ids)
        buf.levels = <Level *>diff.rows
        buf.n = diff.n
        self.depth_msg(s, &h, &buf, p, size, c, stamp, False)

    cdef void depth_msg(self, SymState *s, DepthHead *hp, const LevelBuf *bp,
                        const uint8_t *p, Py_ssize_t size, int c, const RecvStamp *stamp,
                        bint sbe) noexcept nogil:
        """One parsed depth diff (JSON or SBE) against the symbol's book."""
        cdef DepthHead h = hp[0]
        cdef LevelBuf buf = bp[0]
        cdef int v
        s.diffs += 1
        if s.state != S_LIVE:
            if c == self.primary:
                self.hold(s, p, size, sbe)
            else:
                s.ahead += 1  # the primary's copy is the one held
            return
        v = continuity(&h, s.last_update_id, self.usdm, s.bridged)
        if self.overlap and c != self.primary and (v == V_GAP or s.ahd_n):
            # The primary has not delivered up to here yet (or older ones of this
            # connection wait already): held until it has.
            self.hold_ahead(s, p, size, c, sbe)
            return
        if c < MAX_CONNS and v != V_GAP:
            s.joined |= (<uint64_t>1) << c
        if v == V_APPLIED:
            self.apply(s, &h, &buf, stamp.realtime_ns)
            if s.ahd_n:
                self.drain_ahead(s)
        elif v == V_STALE:
            s.stale += 1
        else:
            self.gap(s, &h)
            self.hold(s, p, size, sbe)

    cdef void apply(self, SymState *s, DepthHead *h, const LevelBuf *buf,
                    int64_t recv_ns) noexcept nogil:
        apply_levels(s.book, h, buf)
        s.last_update_id = h.final_update_id
        s.bridged = True
        s.applied += 1
        self.publish_top(s, h.event_time, recv_ns)

    cdef void publish_top(self, SymState *s, int64_t event_time,
                          int64_t recv_ns) noexcept nogil:
        cdef L2Data *d = s.book
        cdef int64_t bp = 0, bq = 0, ap = 0, aq = 0
        cdef TopOfBook *row
        if d.n_bids:
            bp = d.bid_px[d.n_bids - 1]
            bq = d.bid_qty[d.n_bids - 1]
        if d.n_asks:
            ap = d.ask_px[d.n_asks - 1]
            aq = d.ask_qty[d.n_asks - 1]
        if bp == s.top[0] and bq == s.top[1] and ap == s.top[2] and aq == s.top[3]:
            return
        s.top[0] = bp
        s.top[1] = bq
        s.top[2] = ap
        s.top[3] = aq
        row = <TopOfBook *>ring_claim(s.tops)
        row.event_time = event_time
        row.recv_time = recv_ns
        row.update_id = s.last_update_id
        row.bid_price = bp
        row.bid_qty = bq
        row.ask_price = ap
        row.ask_qty = aq
        row.source = 0
        ring_publish(s.tops)
        s.top_changes += 1

    cdef void gap(self, SymState *s, const DepthHead *h) noexcept nogil:
        """Count a break in the update ids (with the missing range) and resync."""
        s.gaps += 1
        if self.usdm and s.bridged:
            s.gap_first = s.last_update_id + 1
            s.gap_last = h.prev_final_update_id  # the missing events end at u = pu
        else:
            s.gap_first = s.last_update_id + 1
            s.gap_last = h.first_update_id - 1
        self.start_sync(s)

    cdef void start_sync(self, SymState *s) noexcept nogil:
        s.state = S_SYNCING
        s.bridged = False
        s.joined = 0
        if not s.want_snapshot:
            s.want_snapshot = True
            s.resyncs += 1
            self.events += 1

    cdef void hold(self, SymState *s, const uint8_t *p, Py_ssize_t size,
                   bint sbe) noexcept nogil:
        """Buffer a diff while the symbol waits for a snapshot."""
        if held_append(&s.pend, &s.pend_len, &s.pend_cap, &s.pend_n, p, size, sbe,
                       self.pend_limit):
            s.buffered += 1
            if s.pend_n == 1 and s.want_snapshot:
                self.events += 1  # the first held diff: time to fetch the snapshot
        else:
            # Too far behind (or out of memory): a snapshot taken now is newer than
            # all of it.
            s.pend_overflows += 1

    cdef void hold_ahead(self, SymState *s, const uint8_t *p, Py_ssize_t size,
                         int c, bint sbe) noexcept nogil:
        """Hold a second connection's diff that is ahead of the book."""
        s.ahead += 1
        s.ahd_conn = c
        if not held_append(&s.ahd, &s.ahd_len, &s.ahd_cap, &s.ahd_n, p, size, sbe,
                           self.pend_limit):
            s.pend_overflows += 1

    cdef int drain_ahead(self, SymState *s) noexcept nogil:
        """Place the held second-connection diffs the book has caught up with (applied
        or already in it); returns V_GAP when one is still ahead (it and the rest stay
        held), else V_APPLIED."""
        cdef Py_ssize_t pos = 0, n
        cdef bint sbe
        cdef const uint8_t *q
        cdef int v = V_APPLIED
        while pos < s.ahd_len:
            q = held_entry(s.ahd, pos, &n, &sbe)
            v = self.replay_one(s, q, n, False, sbe)
            if v == V_GAP:
                break
            if s.ahd_conn < MAX_CONNS:
                s.joined |= (<uint64_t>1) << s.ahd_conn
            pos += sizeof(int64_t) + n
        if pos:
            n = s.ahd_len - pos
            memmove(s.ahd, s.ahd + pos, n)
            s.ahd_len = n
            s.ahd_n = held_count(s.ahd, n)
        return v

    cdef void trade(self, SymState *s, const Fields *fl,
                    const RecvStamp *stamp) noexcept nogil:
        cdef TradeRow row
        fill_trade(&row, fl, <int64_t>self.messages - 1)
        self.trade_row(s, &row, stamp)

    cdef void trade_row(self, SymState *s, const TradeRow *tr,
                        const RecvStamp *stamp) noexcept nogil:
        cdef LiveTrade *row
        # Ids grow: one not above the last written is a repeat (two connections
        # overlapping deliver everything twice).
        if tr.trade_id <= s.last_trade_id:
            s.duplicates += 1
            return
        s.last_trade_id = tr.trade_id
        row = <LiveTrade *>ring_claim(s.trades)
        row.row = tr[0]
        row.recv_time = stamp.realtime_ns
        ring_publish(s.trades)
        s.trade_rows += 1

    cdef void agg_trade(self, SymState *s, const Fields *fl,
                        const RecvStamp *stamp) noexcept nogil:
        cdef LiveAggTrade *row
        if fl.a_num <= s.last_agg_id:
            s.duplicates += 1
            return
        s.last_agg_id = fl.a_num
        row = <LiveAggTrade *>ring_claim(s.agg_trades)
        fill_agg_trade(&row.row, fl, <int64_t>self.messages - 1)
        row.recv_time = stamp.realtime_ns
        ring_publish(s.agg_trades)
        s.trade_rows += 1

    cdef void ticker(self, SymState *s, const Fields *fl,
                     const RecvStamp *stamp) noexcept nogil:
        cdef BookTickerRow bt
        fill_book_ticker(&bt, fl, 0)
        self.ticker_row(s, &bt, stamp)

    cdef void ticker_row(self, SymState *s, const BookTickerRow *btp,
                         const RecvStamp *stamp) noexcept nogil:
        cdef BookTickerRow bt = btp[0]
        cdef TopOfBook *row
        # An older update id, or the same one with the same prices and quantities: a
        # repeat (the same u with other values is news, however unlikely).
        if bt.update_id < s.last_ticker_id or (
                bt.update_id == s.last_ticker_id and bt.bid_price == s.last_ticker[0]
                and bt.bid_qty == s.last_ticker[1] and bt.ask_price == s.last_ticker[2]
                and bt.ask_qty == s.last_ticker[3]):
            s.duplicates += 1
            return
        s.last_ticker_id = bt.update_id
        s.last_ticker[0] = bt.bid_price
        s.last_ticker[1] = bt.bid_qty
        s.last_ticker[2] = bt.ask_price
        s.last_ticker[3] = bt.ask_qty
        row = <TopOfBook *>ring_claim(s.tops)
        row.event_time = bt.event_time
        row.recv_time = stamp.realtime_ns
        row.update_id = bt.update_id
        row.bid_price = bt.bid_price
        row.bid_qty = bt.bid_qty
        row.ask_price = bt.ask_price
        row.ask_qty = bt.ask_qty
        row.source = 1
        ring_publish(s.tops)
        s.ticker_rows += 1

    # -- snapshots ------------------------------------------------------------------

    cdef int install(self, SymState *s, const uint8_t *p, Py_ssize_t size,
                     Status *st) noexcept nogil:
        """Install a REST snapshot, then replay the buffered diffs through the rule.

        Returns 0 (live, or resyncing again after a gap in the buffer), 1 when the
        snapshot is older than the buffered diffs (another one is wanted), -1 when the
        body is not a snapshot (``st`` says why).
        """
        cdef Fields fl
        cdef LevelSink diff, snap
        cdef DepthIds ids
        cdef DepthHead h
        cdef LevelBuf buf
        cdef Py_ssize_t r, pos, n, keep_from
        cdef int64_t first_u = -1, last
        cdef bint sbe
        cdef const uint8_t *q
        cdef int v, result = 0
        sink_init(&diff, self.diff_rows, DIFF_ROWS, sizeof(Level), 0, True)
        sink_init(&snap, self.snap_rows, DIFF_ROWS, sizeof(Level), 0, True)
        r = parse_message(p, 0, size, self.time_mult, &fl, &diff, &snap, self.shapes, st)
        if r >= 0 and fl.kind != K_SNAPSHOT:
            status_clear(st)
            r = -2
        if r < 0:
            sink_free(&diff)
            sink_free(&snap)
            return -1
        depth_ids(&fl, &ids)
        last = ids.final_update_id
        # Spot: a snapshot strictly older than the first buffered diff's U is useless.
        if not self.usdm and s.pend_n > 0:
            q = held_entry(s.pend, 0, &n, &sbe)
            first_u = self.first_update_id(q, n, sbe)
            if first_u > last + 1:
                s.stale_snapshots += 1
                sink_free(&diff)
                sink_free(&snap)
                return 1
        head_from(&h, &ids)
        buf.levels = <Level *>snap.rows
        buf.n = snap.n
        apply_levels(s.book, &h, &buf)
        sink_free(&diff)
        sink_free(&snap)
        s.snapshots += 1
        s.snapshot_ns = monotonic_ns()
        s.last_update_id = last
        s.bridged = False
        s.want_snapshot = False
        s.state = S_LIVE
        # Replay what was held, in order, through the live rule.
        pos = 0
        keep_from = -1
        while pos < s.pend_len:
            q = held_entry(s.pend, pos, &n, &sbe)
            v = self.replay_one(s, q, n, True, sbe)
            if v == V_GAP:
                if not s.bridged and self.usdm:
                    # USD-M: the first diff starts after lastUpdateId: snapshot too old.
                    s.stale_snapshots += 1
                    s.state = S_SYNCING
                    s.want_snapshot = True
                    self.events += 1
                    result = 1
                else:
                    self.start_sync(s)
                keep_from = pos
                break
            pos += sizeof(int64_t) + n
        if keep_from >= 0:
            # Keep the diff that broke the chain and everything after it.
            n = s.pend_len - keep_from
            memmove(s.pend, s.pend + keep_from, n)
            s.pend_len = n
            s.pend_n = held_count(s.pend, n)
        else:
            s.pend_len = 0
            s.pend_n = 0
        self.publish_top(s, ids.event_time, realtime_ns())
        return result

    cdef int replay_one(self, SymState *s, const uint8_t *p, Py_ssize_t size,
                        bint count_gap, bint sbe) noexcept nogil:
        """One held diff against the book: applied, stale or V_GAP (nothing done; with
        ``count_gap``, a gap after a bridged book is counted with its range)."""
        cdef Fields fl
        cdef LevelSink diff, snap
        cdef Status st
        cdef DepthHead h
        cdef LevelBuf buf
        cdef int v
        sink_init(&diff, self.diff_rows, DIFF_ROWS, sizeof(Level), 0, True)
        sink_init(&snap, self.snap_rows, DIFF_ROWS, sizeof(Level), 0, True)
        if self.parse_diff(p, size, sbe, &fl, &diff, &snap, &h, &st) < 0:
            v = V_STALE  # it parsed when it was held: cannot happen; never applied
        else:
            buf.levels = <Level *>diff.rows
            buf.n = diff.n
            v = continuity(&h, s.last_update_id, self.usdm, s.bridged)
            if v == V_APPLIED:
                apply_levels(s.book, &h, &buf)
                s.last_update_id = h.final_update_id
                s.bridged = True
                s.applied += 1
            elif v == V_STALE:
                s.stale += 1
            elif count_gap:
                s.gaps += 1 if s.bridged else 0
                if s.bridged:
                    s.gap_first = s.last_update_id + 1
                    s.gap_last = (h.prev_final_update_id if self.usdm
                                  else h.first_update_id - 1)
        sink_free(&diff)
        sink_free(&snap)
        return v

    cdef Py_ssize_t parse_diff(self, const uint8_t *p, Py_ssize_t size, bint sbe,
                               Fields *fl, LevelSink *diff, LevelSink *snap, DepthHead *h,
                               Status *st) noexcept nogil:
        """A held diff (JSON or SBE) into ``h`` and ``diff``'s levels; -1 if it does not
        parse as a diff."""
        cdef DepthIds ids
        cdef SbeHeader sh
        cdef SbeDepth d
        cdef Py_ssize_t r
        if sbe:
            if (read_binance_header(p, 0, size, &sh, st) < 0
                    or sh.template_id != TPL_DEPTH_DIFF):
                return -1
            r = parse_depth(p, 0, size, &sh, &d, diff, st)
            if r >= 0:
                sbe_head(h, &d)
            return r
        r = parse_message(p, 0, size, self.time_mult, fl, diff, snap, self.shapes, st)
        if r < 0 or fl.kind != K_DEPTH:
            return -1
        depth_ids(fl, &ids)
        head_from(h, &ids)
        return r

    cdef int64_t first_update_id(self, const uint8_t *p, Py_ssize_t size,
                                 bint sbe) noexcept nogil:
        cdef Fields fl
        cdef LevelSink diff, snap
        cdef Status st
        cdef DepthHead h
        cdef int64_t u = -1
        sink_init(&diff, self.diff_rows, DIFF_ROWS, sizeof(Level), 0, True)
        sink_init(&snap, self.snap_rows, DIFF_ROWS, sizeof(Level), 0, True)
        if self.parse_diff(p, size, sbe, &fl, &diff, &snap, &h, &st) >= 0:
            u = h.first_update_id
        sink_free(&diff)
        sink_free(&snap)
        return u

    cdef void snapshot_record(self, const uint8_t *p, Py_ssize_t size) noexcept nogil:
        """A captured snapshot install (``REC_SNAPSHOT``): SYMBOL, newline, body."""
        cdef Py_ssize_t i = 0
        cdef char name[SYMBOL_WIDTH]
        cdef int idx
        cdef Status st
        while i < size and p[i] != c'\n':
            i += 1
        if i == size or i > SYMBOL_WIDTH:
            self.decode_errors += 1
            return
        memset(name, 0, SYMBOL_WIDTH)
        memcpy(name, p, i)
        idx = self.find(name)
        if idx < 0:
            self.unknown_symbols += 1
            return
        if self.install(&self.syms[idx], p + i + 1, size - i - 1, &st) < 0:
            self.decode_errors += 1

    cdef void link_record(self, const uint8_t *p, Py_ssize_t size) noexcept nogil:
        """A captured connection switch (``REC_LINK``): b"primary=P overlap=O"."""
        if size >= 19 and memcmp(p, b"primary=", 8) == 0:
            self.link(p[8] - c'0', p[18] == c'1')
        else:
            self.decode_errors += 1

    # -- the Python side (the feed's service calls, with the GIL) ---------------------

    cdef void note_error(self, const uint8_t *p, Py_ssize_t size, Status *st):
        text = status_reason(st, FIELD_NAMES, KIND_NAMES)
        self.errors.append(f"{text} at byte {st.offset} of {p[:min(size, 200)]!r}")

    def install_snapshot(self, symbol, body, stamp=None):
        """Install a REST depth snapshot for ``symbol`` (on the feed thread).

        Returns
        -------
        str
            "live" (the book is live, or resyncing again after a gap in the held diffs),
            "stale" (the snapshot is older than the held diffs: another is wanted).

        Raises
        ------
        hftcore.DecodeError
            For a body that is not a depth snapshot.
        """
        cdef int idx = self.index(symbol)
        cdef const uint8_t[::1] view = memoryview(body).cast("B")
        cdef Status st
        cdef int r
        cdef RecvStamp rs
        cdef bytes rec
        status_clear(&st)
        if self.capturing:
            rec = self.symbols[idx].encode() + b"\n" + bytes(body)
            if stamp is None:
                rs.realtime_ns = realtime_ns()
                rs.monotonic_ns = monotonic_ns()
                rs.kernel_ns = 0
            else:
                rs.realtime_ns, rs.monotonic_ns, rs.kernel_ns = stamp
            self.capture_.append(<const uint8_t *>rec, len(rec), REC_SNAPSHOT, &rs)
        with nogil:
            r = self.install(&self.syms[idx], &view[0] if view.shape[0] else NULL,
                             view.shape[0], &st)
        if r < 0:
            if st.code == ST_OK:
                raise ValueError(f"{self.symbols[idx]}: not a depth snapshot")
            raise_status(&st, f"{self.symbols[idx]} snapshot", FIELD_NAMES, KIND_NAMES)
        return "stale" if r == 1 else "live"

    def set_link(self, int primary, bint overlap):
        """Set the primary connection and whether another is open (make-before-break);
        recorded in the capture."""
        cdef RecvStamp rs
        cdef bytes rec = f"primary={primary} overlap={int(overlap)}".encode()
        if not 0 <= primary < MAX_CONNS:
            raise ValueError(f"connection index {primary} out of 0..{MAX_CONNS - 1}")
        if self.capturing:
            rs.realtime_ns = realtime_ns()
            rs.monotonic_ns = monotonic_ns()
            rs.kernel_ns = 0
            self.capture_.append(<const uint8_t *>rec, len(rec), REC_LINK, &rs)
        with nogil:
            self.link(primary, overlap)

    cdef void link(self, int primary, bint overlap) noexcept nogil:
        cdef int i
        cdef SymState *s
        cdef Py_ssize_t n
        cdef bint sbe
        cdef const uint8_t *q
        self.primary = primary
        self.overlap = overlap
        for i in range(self.n_symbols):
            s = &self.syms[i]
            if overlap:
                s.joined = 0
            elif s.ahd_n:
                # The switch: the held diffs of the connection that stays are its
                # stream now. One still ahead means the old primary closed before
                # delivering up to it: a real gap, resynced with everything held.
                if s.state == S_LIVE and s.ahd_conn == primary:
                    if self.drain_ahead(s) == V_GAP:
                        s.gaps += 1
                        s.gap_first = s.last_update_id + 1
                        q = held_entry(s.ahd, 0, &n, &sbe)
                        s.gap_last = self.first_update_id(q, n, sbe) - 1
                        self.start_sync(s)
                        self.move_ahead_to_pend(s)
                        continue
                s.ahd_len = 0
                s.ahd_n = 0

    cdef void move_ahead_to_pend(self, SymState *s) noexcept nogil:
        cdef Py_ssize_t pos = 0, n
        cdef bint sbe
        cdef const uint8_t *q
        while pos < s.ahd_len:
            q = held_entry(s.ahd, pos, &n, &sbe)
            self.hold(s, q, n, sbe)
            pos += sizeof(int64_t) + n
        s.ahd_len = 0
        s.ahd_n = 0

    def joined(self, int conn):
        """True when every live symbol has had a placeable diff from ``conn`` since the
        overlap began (a symbol still syncing counts as joined: it has no chain yet)."""
        cdef int i
        for i in range(self.n_symbols):
            if self.syms[i].state == S_LIVE and not (self.syms[i].joined >> conn) & 1:
                return False
        return True

    def clear_shutdown(self, int conn):
        self.shutdown_conns &= ~((<uint64_t>1) << conn)

    def index(self, symbol):
        try:
            return self.symbols.index(str(symbol).upper())
        except ValueError:
            raise KeyError(f"not a followed symbol: {symbol!r}") from None

    def wanted_snapshots(self):
        """Symbols whose snapshot should be fetched now: waiting for one, with at least
        one diff held. Binance's procedure: open the stream, buffer, note the first
        ``U``, *then* fetch the snapshot (one fetched before the stream started could be
        older than everything the stream will deliver)."""
        return [self.symbols[i] for i in range(self.n_symbols)
                if self.syms[i].want_snapshot and self.syms[i].pend_n > 0]

    def take_notes(self):
        """Shutdowns, replies and errors since the last call: (kind, connection, bytes)."""
        notes, self.notes = self.notes, []
        return notes

    def take_errors(self):
        """Decode errors kept since the last call (text; all are counted)."""
        errors, self.errors = self.errors, []
        return errors

    @property
    def stages(self):
        """The per-stage latency recorder (hftcore.latency.Stages)."""
        return self.stages_

    def symbol_stats(self, symbol):
        """Counters of one symbol, as a dict."""
        cdef SymState *s = &self.syms[self.index(symbol)]
        return {
            "state": "live" if s.state == S_LIVE else "syncing",
            "last_update_id": s.last_update_id,
            "messages": s.messages,
            "diffs": s.diffs,
            "applied": s.applied,
            "stale": s.stale,
            "ahead": s.ahead,
            "buffered": s.buffered,
            "held": s.pend_n,
            "pend_overflows": s.pend_overflows,
            "gaps": s.gaps,
            "resyncs": s.resyncs,
            "snapshots": s.snapshots,
            "stale_snapshots": s.stale_snapshots,
            "trade_rows": s.trade_rows,
            "ticker_rows": s.ticker_rows,
            "top_changes": s.top_changes,
            "duplicates": s.duplicates,
            "last_gap": None if s.gap_first < 0 else (s.gap_first, s.gap_last),
        }

    def stats(self):
        """Counters of the consumer (per symbol under "symbols")."""
        return {
            "messages": self.messages,
            "decode_errors": self.decode_errors,
            "unknown_symbols": self.unknown_symbols,
            "control": self.control,
            "exchange_errors": self.exchange_errors,
            "shutdowns": self.shutdowns,
            "other": self.other,
            "symbols": {sym: self.symbol_stats(sym) for sym in self.symbols},
        }

    def feed(self, message, int kind=KIND_TEXT, int conn=-1, stamp=None):
        """Hand one message over from Python (tests, replays from Python): the same path
        as a reader's. ``stamp`` is ``(realtime_ns, monotonic_ns, kernel_ns)``."""
        cdef const uint8_t[::1] view
        cdef RecvStamp rs
        cdef int saved = self.conn
        if isinstance(message, str):
            message = message.encode("utf-8")
        view = memoryview(message).cast("B")
        if stamp is None:
            rs.realtime_ns = realtime_ns()
            rs.monotonic_ns = monotonic_ns()
            rs.kernel_ns = 0
        else:
            rs.realtime_ns, rs.monotonic_ns, rs.kernel_ns = stamp
        if conn >= 0:
            self.conn = conn
        try:
            with nogil:
                self.on_message(&view[0] if view.shape[0] else NULL, view.shape[0], kind,
                                &rs)
        finally:
            self.conn = saved


# A held diff is ``[int64 tag][bytes]``: the tag is the size, with HELD_SBE set for an
# SBE message (else JSON text).
cdef int64_t HELD_SBE = (<int64_t>1) << 62


cdef inline const uint8_t *held_entry(const uint8_t *buf, Py_ssize_t pos, Py_ssize_t *n,
                                      bint *sbe) noexcept nogil:
    """The held diff at ``pos``: its bytes, size into ``n``, SBE or not into ``sbe``."""
    cdef int64_t tag
    memcpy(&tag, buf + pos, sizeof(int64_t))
    n[0] = <Py_ssize_t>(tag & (HELD_SBE - 1))
    sbe[0] = (tag & HELD_SBE) != 0
    return buf + pos + sizeof(int64_t)


cdef bint held_append(uint8_t **buf, Py_ssize_t *length, Py_ssize_t *cap,
                      Py_ssize_t *count, const uint8_t *p, Py_ssize_t size, bint sbe,
                      Py_ssize_t limit) noexcept nogil:
    """Append a held diff to a buffer; False (and the buffer emptied) when it would
    outgrow ``limit`` or memory runs out."""
    cdef Py_ssize_t need = length[0] + <Py_ssize_t>sizeof(int64_t) + size
    cdef Py_ssize_t c
    cdef uint8_t *grown
    cdef int64_t n64 = size | (HELD_SBE if sbe else 0)
    if need > limit:
        length[0] = 0
        count[0] = 0
        return False
    if need > cap[0]:
        c = cap[0] * 2 if cap[0] else 1 << 16
        while c < need:
            c *= 2
        grown = <uint8_t *>realloc(buf[0], c)
        if grown == NULL:
            length[0] = 0
            count[0] = 0
            return False
        buf[0] = grown
        cap[0] = c
    memcpy(buf[0] + length[0], &n64, sizeof(int64_t))
    memcpy(buf[0] + length[0] + sizeof(int64_t), p, size)
    length[0] = need
    count[0] += 1
    return True


cdef Py_ssize_t held_count(const uint8_t *buf, Py_ssize_t length) noexcept nogil:
    cdef Py_ssize_t pos = 0, k = 0, n
    cdef bint sbe
    while pos < length:
        held_entry(buf, pos, &n, &sbe)
        pos += sizeof(int64_t) + n
        k += 1
    return k


cdef inline void sbe_head(DepthHead *h, const SbeDepth *d) noexcept nogil:
    h.event_time = d.event_time
    h.transaction_time = 0
    h.first_update_id = d.first_update_id
    h.final_update_id = d.final_update_id
    h.prev_final_update_id = -1
    h.n_bids = 0
    h.n_asks = 0
    h.is_snapshot = d.is_snapshot
    h.want_symbol = NULL
    h.want_len = 0


cdef inline void head_from(DepthHead *h, const DepthIds *ids) noexcept nogil:
    h.event_time = ids.event_time
    h.transaction_time = ids.transaction_time
    h.first_update_id = ids.first_update_id
    h.final_update_id = ids.final_update_id
    h.prev_final_update_id = ids.prev_final_update_id
    h.n_bids = 0
    h.n_asks = 0
    h.is_snapshot = ids.first_update_id < 0
    h.want_symbol = NULL
    h.want_len = 0
