# cython: language_level=3
"""Declared interface of the direct decode-and-apply path into :class:`L2Book`.

The appliers parse with the decoders' own parsers (``_json.parse_message``,
``_sbe.parse_depth``), whose levels go to level sinks over the ``Level`` buffers here.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore.binance._json cimport N_SHAPES, SYMBOL_WIDTH
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
