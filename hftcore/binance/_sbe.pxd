# cython: language_level=3
"""Declared interface of the Binance spot SBE decoder (schema id 1, version 0).

The SBE primitives (header, groups, varString8, exponent scaling) come from
:mod:`hftcore.codec.sbe`; ``parse_depth`` is the one parser of a depth message, run by
the table decoder and by the book appliers (``_apply.pyx``).
"""

from libc.stdint cimport int64_t, uint8_t

from hftcore._core.status cimport Status
from hftcore.binance._json cimport SYMBOL_WIDTH, Out
from hftcore.codec.levels cimport LevelSink
from hftcore.codec.sbe cimport SbeHeader

cdef enum:
    SBE_SCHEMA_ID = 1
    SBE_SCHEMA_VERSION = 0
    TPL_TRADES = 10000
    TPL_BEST_BID_ASK = 10001
    TPL_DEPTH_SNAPSHOT = 10002
    TPL_DEPTH_DIFF = 10003


# The root block of a depth message (10002 snapshot or 10003 diff) and its symbol.
cdef struct SbeDepth:
    int64_t event_time            # ns
    int64_t first_update_id       # -1 for snapshots
    int64_t final_update_id       # lastBookUpdateId, or bookUpdateId of a snapshot
    bint is_snapshot
    char symbol[SYMBOL_WIDTH]


# The header of the message at ``pos`` (this schema id and version, else ST_BAD_SCHEMA).
cdef int read_binance_header(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                             SbeHeader *h, Status *st) noexcept nogil

# One depth message at ``pos`` whose header is ``h`` (TPL_DEPTH_DIFF or
# TPL_DEPTH_SNAPSHOT): its root block into ``d``, its levels (bids, then asks) appended
# to ``sink``. Returns the position after the message, or -1.
cdef Py_ssize_t parse_depth(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            const SbeHeader *h, SbeDepth *d, LevelSink *sink,
                            Status *st) noexcept nogil

# Decode one SBE message at ``pos`` into ``out``; returns the position after it, or -1.
cdef Py_ssize_t decode_sbe_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t msg_index, Out *out, int *kind,
                                   Status *st) noexcept nogil
