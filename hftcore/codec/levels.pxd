# cython: language_level=3
"""The level sink: where a level parser writes ``(price, qty, side)`` rows.

A sink is a strided row target, so one parser fills any row type that starts with the
fields of :c:type:`LevelRow` (int64 ``price``, int64 ``qty``, uint8 ``side``, in this
order): a decoded table's rows (which carry more columns, filled by the caller) or a
small stack buffer of a book applier. Fixed offsets keep the stores as cheap as into
one known struct; each row type checks its layout at import.
A fixed sink reports ``ST_CAPACITY`` (``a`` = its ``owner`` id) when full, so the caller
can grow its table and parse the message again; a growable one moves its rows to a
larger heap block itself (free it with :c:func:`sink_free`).
"""

from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy

from hftcore._core.status cimport ST_CAPACITY, Status, status_set

cdef enum:
    SINK_GROWTH = 4  # a growable sink's capacity is multiplied by this when full


cdef struct LevelRow:
    # The first fields of every row type a sink writes.
    int64_t price           # fixed point (the parser's implied decimals)
    int64_t qty             # fixed point; 0 removes the level
    uint8_t side            # 0 bid, 1 ask


cdef struct LevelSink:
    char *rows              # row 0
    Py_ssize_t stride       # bytes from one row to the next
    Py_ssize_t n            # rows written
    Py_ssize_t cap          # rows available at ``rows``
    int64_t owner           # ``a`` of the ST_CAPACITY status (e.g. the caller's table id)
    bint growable           # when full: move to a larger heap block (else ST_CAPACITY)
    bint on_heap            # ``rows`` was allocated by sink_grow (sink_free frees it)


cdef inline void sink_init(LevelSink *s, void *rows, Py_ssize_t cap, Py_ssize_t stride,
                           int64_t owner, bint growable) noexcept nogil:
    s.rows = <char *>rows
    s.cap = cap
    s.stride = stride
    s.n = 0
    s.owner = owner
    s.growable = growable
    s.on_heap = False


cdef inline int sink_grow(LevelSink *s, Py_ssize_t pos, Status *st) noexcept nogil:
    cdef char *grown
    cdef Py_ssize_t cap = s.cap * SINK_GROWTH if s.cap > 0 else 64
    if not s.growable:
        return status_set(st, ST_CAPACITY, pos, s.owner, s.cap)
    if s.on_heap:
        grown = <char *>realloc(s.rows, cap * s.stride)
    else:
        grown = <char *>malloc(cap * s.stride)
        if grown != NULL:
            memcpy(grown, s.rows, s.n * s.stride)
    if grown == NULL:
        return status_set(st, ST_CAPACITY, pos, s.owner, s.cap)
    s.rows = grown
    s.cap = cap
    s.on_heap = True
    return 0


cdef inline int sink_reserve(LevelSink *s, Py_ssize_t more, Py_ssize_t pos,
                             Status *st) noexcept nogil:
    """Room for ``more`` rows after the ``n`` written (grown if the sink may grow)."""
    while s.n + more > s.cap:
        if sink_grow(s, pos, st) < 0:
            return -1
    return 0


cdef inline char *sink_claim(LevelSink *s, Py_ssize_t count, Py_ssize_t pos,
                             Status *st) noexcept nogil:
    """Claim ``count`` rows after the ``n`` written (grown if the sink may grow) and
    count them as written: returns the first, for the caller to fill with
    ``sink_put`` (rows ``stride`` bytes apart); NULL with ``st`` set when there is no
    room."""
    cdef char *first
    if s.n + count > s.cap and sink_reserve(s, count, pos, st) < 0:
        return NULL
    first = s.rows + s.n * s.stride
    s.n += count
    return first


cdef inline void sink_put(char *row, int64_t price, int64_t qty,
                          uint8_t side) noexcept nogil:
    """One row's level fields."""
    cdef LevelRow *r = <LevelRow *>row
    r.price = price
    r.qty = qty
    r.side = side


cdef inline void sink_free(LevelSink *s) noexcept nogil:
    if s.on_heap:
        free(s.rows)
        s.on_heap = False
