# cython: language_level=3
"""Declared interface of the direct decode-and-apply path into :class:`L2Book`."""

from libc.stdint cimport int64_t, uint64_t

from hftcore.binance._json cimport NumShape


cdef struct Level:
    int64_t price      # 8 implied decimals
    int64_t qty        # 0 removes the level
    int side           # BID (0) / ASK (1)


cdef struct LevelBuf:
    Level *levels      # stack storage first, heap when a message has more levels
    Py_ssize_t n       # levels held
    Py_ssize_t cap     # capacity of ``levels``
    bint on_heap       # ``levels`` was malloc'd (free it)
    # How the last JSON prices / quantities were printed: kept from message to message,
    # so the parser can check its guess of the next one (see _json.dec8_scan_guess).
    NumShape shapes[2]


cdef struct DepthHead:
    int64_t event_time            # ns; 0 when absent
    int64_t transaction_time      # ns; 0 when absent
    int64_t first_update_id       # U; -1 for snapshots
    int64_t final_update_id       # u, or lastUpdateId / bookUpdateId of a snapshot
    int64_t prev_final_update_id  # pu; -1 when absent
    Py_ssize_t n_bids             # bid levels in the message
    Py_ssize_t n_asks             # ask levels in the message
    bint is_snapshot              # levels replace the book (REST / partial depth)
    uint64_t seen                 # header keys present (internal)
