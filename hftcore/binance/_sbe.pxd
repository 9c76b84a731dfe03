# cython: language_level=3
"""Declared interface of the Binance spot SBE decoder (schema id 1, version 0).

Inline helpers shared with ``_apply.pyx``: the message header and the exact conversion
of ``mantissa * 10**exponent`` to int64 with 8 implied decimals.
"""

from libc.stdint cimport int8_t, int64_t, uint8_t, uint16_t

from hftcore._core.bytes cimport load_le16
from hftcore._core.status cimport (
    ST_BAD_SCHEMA,
    ST_OVERFLOW,
    ST_TOO_MANY_DECIMALS,
    ST_TRUNCATED,
    Status,
    status_set,
)
from hftcore.binance._json cimport POW10, Out

cdef enum:
    SBE_HEADER_SIZE = 8
    SBE_SCHEMA_ID = 1
    SBE_SCHEMA_VERSION = 0
    TPL_TRADES = 10000
    TPL_BEST_BID_ASK = 10001
    TPL_DEPTH_SNAPSHOT = 10002
    TPL_DEPTH_DIFF = 10003


cdef struct SbeHeader:
    uint16_t block_length   # root block size in bytes
    uint16_t template_id    # message type
    uint16_t schema_id
    uint16_t version


cdef inline int read_header(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                            SbeHeader *h, Status *st) noexcept nogil:
    if end - pos < SBE_HEADER_SIZE:
        return status_set(st, ST_TRUNCATED, pos, SBE_HEADER_SIZE, end - pos)
    h.block_length = load_le16(p + pos)
    h.template_id = load_le16(p + pos + 2)
    h.schema_id = load_le16(p + pos + 4)
    h.version = load_le16(p + pos + 6)
    if h.schema_id != SBE_SCHEMA_ID or h.version != SBE_SCHEMA_VERSION:
        return status_set(st, ST_BAD_SCHEMA, pos + 4, h.schema_id, h.version)
    return 0


cdef inline int scale8(int64_t m, int exponent, int64_t *out, Py_ssize_t offset,
                       Status *st) noexcept nogil:
    """``m * 10**exponent`` as int64 with 8 implied decimals, exactly, or -1."""
    cdef int shift = exponent + 8
    cdef int64_t f
    if shift == 0:
        out[0] = m
        return 0
    if m == 0:
        out[0] = 0
        return 0
    if shift > 0:
        if shift > 18:
            return status_set(st, ST_OVERFLOW, offset, 0, 0)
        f = POW10[shift]
        if m > 9223372036854775807LL // f or m < -9223372036854775807LL // f:
            return status_set(st, ST_OVERFLOW, offset, 0, 0)
        out[0] = m * f
        return 0
    if -shift > 18 or m % POW10[-shift] != 0:
        return status_set(st, ST_TOO_MANY_DECIMALS, offset, -exponent, 8)
    out[0] = m // POW10[-shift]
    return 0


# Decode one SBE message at ``pos`` into ``out``; returns the position after it, or -1.
cdef Py_ssize_t decode_sbe_message(const uint8_t *p, Py_ssize_t pos, Py_ssize_t end,
                                   int64_t msg_index, Out *out, int *kind,
                                   Status *st) noexcept nogil
