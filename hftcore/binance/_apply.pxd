# cython: language_level=3
"""Declared interface of the direct decode-and-apply path into :class:`L2Book`.

The appliers parse with the decoders' own parsers (``_json.parse_message``,
``_sbe.parse_depth``), whose levels go to level sinks over the ``Level`` buffers here.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore.binance._json cimport N_SHAPES, SYMBOL_WIDTH
from hftcore.book._l2book cimport L2Data
from hftcore.codec.decimal cimport NumShape
from hftcore.codec.levels cimport LevelSink


cdef struct Level:
    int64_t price      # 8 implied decimals
    int64_t qty        # 0 removes the level
    uint8_t side       # BID (0) / ASK (1)


cdef struct LevelBuf:
    Level *levels      # the levels of the message just parsed (rows of diff or snap)
    Py_ssize_t n       # levels held
    LevelSink diff     # "b"/"a" (and SBE) levels: stack storage first, heap when larger
    LevelSink snap     # "bids"/"asks" levels of JSON snapshots: likewise
    # How the last JSON prices / quantities were printed: kept from message to message,
    # so the parser can check its guess of the next one (see codec.decimal).
    NumShape shapes[N_SHAPES]


cdef struct DepthHead:
    int64_t event_time            # ns; 0 when absent
    int64_t transaction_time      # ns; 0 when absent
    int64_t first_update_id       # U; -1 for snapshots
    int64_t final_update_id       # u, or lastUpdateId / bookUpdateId of a snapshot
    int64_t prev_final_update_id  # pu; -1 when absent
    Py_ssize_t n_bids             # bid levels in the message
    Py_ssize_t n_asks             # ask levels in the message
    bint is_snapshot              # levels replace the book (REST / partial depth)
    char symbol[SYMBOL_WIDTH]     # JSON: "s" as decode_many's rows hold it (NUL padded)
    # apply_depth_json_after's symbol check (in): the book's symbol, upper case, or NULL
    const char *want_symbol
    Py_ssize_t want_len


# Verdicts on a depth message against a book (apply_depth_json_after, the live feed).
cdef enum:
    V_APPLIED = 0       # continues the book: applied
    V_STALE = 1         # already in the book (repeated or out of order): ignored
    V_GAP = 2           # updates were missed (or, unbridged USD-M: the snapshot is older)
    V_NOT_A_DIFF = 3    # a snapshot where a diff was expected
    V_OTHER_SYMBOL = 4  # names another symbol than the book's


cdef inline int continuity(const DepthHead *h, int64_t last_update_id, bint usdm,
                           bint bridged) noexcept nogil:
    """Binance's local-book rule for a diff against a book at ``last_update_id``.

    Spot, from the snapshot on: ``u <= id`` is already in the book, ``U > id + 1``
    means updates were missed. USD-M chains ``pu`` to the previous ``u`` once
    ``bridged`` (an event was applied since the snapshot); its first event after the
    snapshot must satisfy ``U <= lastUpdateId <= u`` instead. (``sync.continuity`` is
    the same rule for decoded records.)
    """
    if h.is_snapshot:
        return V_NOT_A_DIFF
    if usdm and not bridged:
        if h.final_update_id < last_update_id:
            return V_STALE
        return V_GAP if h.first_update_id > last_update_id else V_APPLIED
    if h.final_update_id <= last_update_id:
        return V_STALE
    if usdm:
        return V_GAP if h.prev_final_update_id != last_update_id else V_APPLIED
    return V_GAP if h.first_update_id > last_update_id + 1 else V_APPLIED


# The levels of a parsed message (``buf``) into a book's data, as one seqlock write;
# a snapshot replaces both sides. Counts the message's sides into ``h``.
cdef void apply_levels(L2Data *d, DepthHead *h, const LevelBuf *buf) noexcept nogil
