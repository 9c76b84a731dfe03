# cython: language_level=3
"""Binance spot SBE market data (``stream_1_0.xml``) into the same tables as the JSON
decoder. Every length (root block, group entries, symbol) is checked before a load;
block lengths larger than this schema's are honoured (fields appended by later minor
versions are skipped), smaller ones are an error."""

from libc.stdint cimport int8_t, int64_t, uint8_t
from libc.string cimport memcpy

from hftcore._core.bytes cimport load_le16, load_le32, load_le64
from hftcore._core.status cimport (
    ST_BAD_LENGTH,
    ST_BAD_VALUE,
    ST_CAPACITY,
    ST_OVERFLOW,
    ST_TRUNCATED,
    ST_UNKNOWN_TYPE,
    Status,
    raise_status,
    status_clear,
    status_set,
)
from hftcore.binance._json cimport (
    K_BOOK_TICKER,
    K_DEPTH,
    K_SNAPSHOT,
    K_TRADE,
    SIDE_ASK,
    SIDE_BID,
    T_BOOK_TICKER,
    T_DEPTH,
    T_KINDS,
    T_SNAPSHOTS,
    T_TRADES,
    BookTickerRow,
    DepthRow,
    OutBuffers,
    TradeRow,
    commit_levels,
)
from hftcore.codec.levels cimport sink_claim, sink_put, sink_reserve
from hftcore.codec.sbe cimport (
    SBE_HEADER_SIZE,
    check_block,
    read_group16,
    read_header,
    read_var_string8,
    scale8,
)
from hftcore.codec.swar cimport mul_overflow

from hftcore.binance.schema import time_multiplier

# Root block sizes and group entry sizes of schema 1 version 0.
cdef enum:
    TRADES_BLOCK = 18        # eventTime, transactTime, priceExponent, qtyExponent
    TRADE_ENTRY = 25         # id, price, qty, isBuyerMaker (isBestMatch is constant)
    TRADE_MAKER_AT = 24      # isBuyerMaker in a trade entry
    GROUP_HEADER = 6         # groupSizeEncoding: uint16 blockLength, uint32 numInGroup
    BBA_BLOCK = 50           # eventTime, bookUpdateId, 2 exponents, 4 mantissas
    SNAPSHOT_BLOCK = 18      # eventTime, bookUpdateId, 2 exponents
    DIFF_BLOCK = 26          # eventTime, first/lastBookUpdateId, 2 exponents
    LEVEL_ENTRY = 16         # price, qty
    MAX_GROUP_COUNT = 2147483647  # numInGroup above this is refused

# SBE times are microseconds; a constant here so the multiply folds, checked against
# the schema's one table of time units.
cdef enum:
    US_TO_NS = 1000

if time_multiplier("us") != US_TO_NS:
    raise ImportError("_sbe: schema.TIME_UNITS['us'] is not the compiled multiplier")


cdef inline int time_us(int64_t v, int64_t *out, Py_ssize_t offset,
                        Status *st) noexcept nogil:
    if mul_overflow(v, US_TO_NS, out):
        return status_set(st, ST_OVERFLOW, offset, 0, 0)
    return 0


cdef int read_binance_header(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                             SbeHeader *h, Status *st) noexcept nogil:
    return read_header(p, pos, end, SBE_SCHEMA_ID, SBE_SCHEMA_VERSION, h, st)


cdef inline int levels_into(const uint8_t *p, Py_ssize_t g, Py_ssize_t count,
                            Py_ssize_t entry, LevelSink *sink, uint8_t side, int pexp,
                            int qexp, Status *st) noexcept nogil:
    cdef Py_ssize_t off, stop = g + count * entry
    cdef int64_t price, qty
    cdef Py_ssize_t stride = sink.stride
    cdef char *row = sink_claim(sink, count, g, st)
    if row == NULL:
        return -1
    off = g
    while off < stop:
        if scale8(<int64_t>load_le64(p + off), pexp, &price, off, st) < 0:
            return -1
        if scale8(<int64_t>load_le64(p + off + 8), qexp, &qty, off + 8, st) < 0:
            return -1
        sink_put(row, price, qty, side)
        row += stride
        off += entry
    return 0


cdef Py_ssize_t parse_depth(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            const SbeHeader *h, SbeDepth *d, LevelSink *sink,
                            Status *st) noexcept nogil:
    cdef Py_ssize_t body = pos + SBE_HEADER_SIZE
    cdef Py_ssize_t gb, ga, nb, na, eb, ea, after
    cdef int pexp, qexp
    d.is_snapshot = h.template_id == TPL_DEPTH_SNAPSHOT
    if check_block(h, pos, end, SNAPSHOT_BLOCK if d.is_snapshot else DIFF_BLOCK, st) < 0:
        return -1
    if time_us(<int64_t>load_le64(p + body), &d.event_time, body, st) < 0:
        return -1
    if d.is_snapshot:
        d.first_update_id = -1
        d.final_update_id = <int64_t>load_le64(p + body + 8)
        pexp = <int8_t>p[body + 16]
        qexp = <int8_t>p[body + 17]
    else:
        d.first_update_id = <int64_t>load_le64(p + body + 8)
        d.final_update_id = <int64_t>load_le64(p + body + 16)
        pexp = <int8_t>p[body + 24]
        qexp = <int8_t>p[body + 25]
    gb = read_group16(p, body + h.block_length, end, LEVEL_ENTRY, &nb, &eb, st)
    if gb < 0:
        return -1
    ga = read_group16(p, gb + nb * eb, end, LEVEL_ENTRY, &na, &ea, st)
    if ga < 0:
        return -1
    after = read_var_string8(p, ga + na * ea, end, d.symbol, SYMBOL_WIDTH, st)
    if after < 0:
        return -1
    if sink_reserve(sink, nb + na, pos, st) < 0:
        return -1
    if levels_into(p, gb, nb, eb, sink, SIDE_BID, pexp, qexp, st) < 0:
        return -1
    if levels_into(p, ga, na, ea, sink, SIDE_ASK, pexp, qexp, st) < 0:
        return -1
    return after


cdef Py_ssize_t decode_depth(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                             const SbeHeader *h, int64_t msg_index, Out *out, int table,
                             Status *st) noexcept nogil:
    cdef SbeDepth d
    cdef LevelSink *sink = &out.sinks[table - T_DEPTH]
    cdef DepthRow *rows = (out.depth if table == T_DEPTH else out.snapshots)
    cdef Py_ssize_t after, i
    cdef int64_t ev, first_id, final_id
    sink.n = 0
    after = parse_depth(p, pos, end, h, &d, sink, st)
    if after < 0:
        return -1
    rows += out.n[table]
    # Header values in locals: stores into the rows could alias ``d``'s fields.
    ev = d.event_time
    first_id = d.first_update_id
    final_id = d.final_update_id
    for i in range(sink.n):
        rows[i].event_time = ev
        rows[i].transaction_time = 0
        rows[i].first_update_id = first_id
        rows[i].final_update_id = final_id
        rows[i].prev_final_update_id = -1
        rows[i].msg_index = msg_index
        memcpy(rows[i].symbol, d.symbol, SYMBOL_WIDTH)
    commit_levels(out, table)
    return after


cdef Py_ssize_t decode_trades(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                              const SbeHeader *h, int64_t msg_index, Out *out,
                              Status *st) noexcept nogil:
    cdef Py_ssize_t body = pos + SBE_HEADER_SIZE
    cdef Py_ssize_t g, entry, count, after, i, off
    cdef int64_t ev, tt
    cdef int pexp, qexp
    cdef uint8_t maker
    cdef TradeRow *r
    cdef char sym[SYMBOL_WIDTH]
    if check_block(h, pos, end, TRADES_BLOCK, st) < 0:
        return -1
    if time_us(<int64_t>load_le64(p + body), &ev, body, st) < 0:
        return -1
    if time_us(<int64_t>load_le64(p + body + 8), &tt, body + 8, st) < 0:
        return -1
    pexp = <int8_t>p[body + 16]
    qexp = <int8_t>p[body + 17]
    g = body + h.block_length
    if end - g < GROUP_HEADER:
        return status_set(st, ST_TRUNCATED, g, GROUP_HEADER, end - g)
    entry = load_le16(p + g)
    count = load_le32(p + g + 2)
    if entry < TRADE_ENTRY:
        return status_set(st, ST_BAD_LENGTH, g, entry, TRADE_ENTRY)
    if count > MAX_GROUP_COUNT:
        return status_set(st, ST_BAD_VALUE, g + 2, count, 0)
    g += GROUP_HEADER
    if (end - g) // entry < count:
        return status_set(st, ST_TRUNCATED, g, count * entry, end - g)
    after = read_var_string8(p, g + count * entry, end, sym, SYMBOL_WIDTH, st)
    if after < 0:
        return -1
    if out.n[<int>T_TRADES] + count > out.cap[<int>T_TRADES]:
        return status_set(st, ST_CAPACITY, pos, T_TRADES, out.cap[<int>T_TRADES])
    r = out.trades + out.n[<int>T_TRADES]
    for i in range(count):
        off = g + i * entry
        maker = p[off + TRADE_MAKER_AT]
        if maker > 1:
            return status_set(st, ST_BAD_VALUE, off + TRADE_MAKER_AT, maker, 0)
        r[i].trade_id = <int64_t>load_le64(p + off)
        if scale8(<int64_t>load_le64(p + off + 8), pexp, &r[i].price, off + 8, st) < 0:
            return -1
        if scale8(<int64_t>load_le64(p + off + 16), qexp, &r[i].qty, off + 16, st) < 0:
            return -1
        r[i].buyer_is_maker = maker
        r[i].event_time = ev
        r[i].trade_time = tt
        r[i].buyer_order_id = -1
        r[i].seller_order_id = -1
        r[i].msg_index = msg_index
        memcpy(r[i].symbol, sym, SYMBOL_WIDTH)
    out.n[<int>T_TRADES] += count
    return after


cdef Py_ssize_t decode_bba(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                           const SbeHeader *h, int64_t msg_index, Out *out,
                           Status *st) noexcept nogil:
    cdef Py_ssize_t body = pos + SBE_HEADER_SIZE
    cdef Py_ssize_t after
    cdef int pexp, qexp
    cdef BookTickerRow *r
    if check_block(h, pos, end, BBA_BLOCK, st) < 0:
        return -1
    if out.n[<int>T_BOOK_TICKER] >= out.cap[<int>T_BOOK_TICKER]:
        return status_set(st, ST_CAPACITY, pos, T_BOOK_TICKER, out.cap[<int>T_BOOK_TICKER])
    r = out.book_ticker + out.n[<int>T_BOOK_TICKER]
    after = read_var_string8(p, body + h.block_length, end, r.symbol, SYMBOL_WIDTH, st)
    if after < 0:
        return -1
    if time_us(<int64_t>load_le64(p + body), &r.event_time, body, st) < 0:
        return -1
    r.transaction_time = 0
    r.update_id = <int64_t>load_le64(p + body + 8)
    pexp = <int8_t>p[body + 16]
    qexp = <int8_t>p[body + 17]
    if (scale8(<int64_t>load_le64(p + body + 18), pexp, &r.bid_price, body + 18, st) < 0
            or scale8(<int64_t>load_le64(p + body + 26), qexp, &r.bid_qty, body + 26, st) < 0
            or scale8(<int64_t>load_le64(p + body + 34), pexp, &r.ask_price, body + 34, st) < 0
            or scale8(<int64_t>load_le64(p + body + 42), qexp, &r.ask_qty, body + 42, st) < 0):
        return -1
    r.msg_index = msg_index
    out.n[<int>T_BOOK_TICKER] += 1
    return after


cdef Py_ssize_t decode_sbe_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t msg_index, Out *out, int *kind,
                                   Status *st) noexcept nogil:
    cdef SbeHeader h
    cdef Py_ssize_t after
    cdef int k
    if out.n[<int>T_KINDS] >= out.cap[<int>T_KINDS]:
        return status_set(st, ST_CAPACITY, pos, T_KINDS, out.cap[<int>T_KINDS])
    if read_binance_header(p, pos, end, &h, st) < 0:
        return -1
    if h.template_id == TPL_DEPTH_DIFF:
        k = K_DEPTH
        after = decode_depth(p, pos, end, &h, msg_index, out, T_DEPTH, st)
    elif h.template_id == TPL_TRADES:
        k = K_TRADE
        after = decode_trades(p, pos, end, &h, msg_index, out, st)
    elif h.template_id == TPL_BEST_BID_ASK:
        k = K_BOOK_TICKER
        after = decode_bba(p, pos, end, &h, msg_index, out, st)
    elif h.template_id == TPL_DEPTH_SNAPSHOT:
        k = K_SNAPSHOT
        after = decode_depth(p, pos, end, &h, msg_index, out, T_SNAPSHOTS, st)
    else:
        return status_set(st, ST_UNKNOWN_TYPE, pos + 2, h.template_id, 0)
    if after < 0:
        return -1
    out.kinds[out.n[<int>T_KINDS]] = <uint8_t>k
    out.n[<int>T_KINDS] += 1
    out.counts[k] += 1
    kind[0] = k
    return after


cdef int run_sbe(const uint8_t *p, Py_ssize_t end, const int64_t *starts,
                 const int64_t *ends, Py_ssize_t n_msgs, Py_ssize_t *pos_io,
                 Py_ssize_t *msg_io, Out *out, Status *st) noexcept nogil:
    """As ``_json.run_json``: back-to-back messages, or ``starts``/``ends`` frames (each
    must hold exactly one message)."""
    cdef int kind
    cdef Py_ssize_t pos = pos_io[0]
    cdef Py_ssize_t i = msg_io[0]
    cdef Py_ssize_t r
    if starts == NULL:
        while pos < end:
            r = decode_sbe_message(p, pos, end, i, out, &kind, st)
            if r < 0:
                pos_io[0] = pos
                msg_io[0] = i
                return -1
            pos = r
            i += 1
    else:
        while i < n_msgs:
            r = decode_sbe_message(p, starts[i], ends[i], i, out, &kind, st)
            if r >= 0 and r != ends[i]:
                r = status_set(st, ST_BAD_LENGTH, starts[i], r - starts[i],
                               ends[i] - starts[i])
            if r < 0:
                msg_io[0] = i
                return -1
            i += 1
    pos_io[0] = pos
    msg_io[0] = i
    return 0


def decode_sbe_tables(const uint8_t[::1] buf, starts, ends, caps):
    """Decode SBE messages into tables (the engine of ``decode_many_sbe``)."""
    cdef OutBuffers ob = OutBuffers(caps)
    cdef Status st
    cdef Py_ssize_t pos = 0, msg = 0, n_msgs = 0, i
    cdef Py_ssize_t end = buf.shape[0]
    cdef const uint8_t *p = &buf[0] if end > 0 else NULL
    cdef const int64_t[::1] s_view
    cdef const int64_t[::1] e_view
    cdef const int64_t *sp = NULL
    cdef const int64_t *ep = NULL
    cdef int rc
    if starts is not None:
        s_view = starts
        e_view = ends
        n_msgs = s_view.shape[0]
        if n_msgs:
            sp = &s_view[0]
            ep = &e_view[0]
            for i in range(n_msgs):
                if not 0 <= sp[i] <= ep[i] <= end:
                    raise ValueError(f"message {i} bounds outside the buffer")
    while True:
        status_clear(&st)
        with nogil:
            rc = run_sbe(p, end, sp, ep, n_msgs, &pos, &msg, &ob.out, &st)
        if rc == 0:
            break
        if st.code == ST_CAPACITY:
            ob.grow(<int>st.a)
            continue
        if sp != NULL:
            st.offset -= sp[msg]
        raise_status(&st, f"message {msg}")
    return ob.result() + ([],)


def header_fields(msg):
    """Root-block fields of one depth message (for records with no levels)."""
    import struct

    raw = bytes(msg)
    block_length, template, _, _ = struct.unpack_from("<HHHH", raw)
    if template == TPL_DEPTH_DIFF:
        ev, first, last = struct.unpack_from("<qqq", raw, SBE_HEADER_SIZE)
    else:
        ev, last = struct.unpack_from("<qq", raw, SBE_HEADER_SIZE)
        first = -1
    # skip the two level groups to the symbol
    pos = SBE_HEADER_SIZE + block_length
    for _ in range(2):
        entry, count = struct.unpack_from("<HH", raw, pos)
        pos += 4 + entry * count
    n = raw[pos]
    return {
        "event_time": ev * 1000,
        "first_update_id": first,
        "final_update_id": last,
        "symbol": raw[pos + 1 : pos + 1 + n].decode("utf-8", errors="replace"),
    }
