# cython: language_level=3
"""The one error path out of nogil code (modelled on pyarrow's ``check_status``).

Hot loops never raise. They fill a :c:type:`Status` and return ``-1``; the caller, back
with the GIL, hands it to :func:`raise_status`, which builds the right exception with the
byte offset and the reason. Add new reasons here, never ad hoc strings in decoders.
"""

from libc.stdint cimport int64_t, uint64_t


cdef enum StatusCode:
    ST_OK = 0
    ST_TRUNCATED            # input ends inside a message (a = bytes needed, b = bytes left)
    ST_BAD_LENGTH           # length prefix disagrees with the spec (a = got, b = expected)
    ST_ZERO_LENGTH          # a length of zero where a message must be
    ST_UNKNOWN_TYPE         # unknown message / template type (a = the type code)
    ST_BAD_SYNTAX           # malformed text input (a = the byte found)
    ST_BAD_NUMBER           # malformed decimal or integer
    ST_TOO_MANY_DECIMALS    # more fractional digits than the fixed-point scale (a = digits)
    ST_OVERFLOW             # value does not fit int64 at the fixed-point scale
    ST_MISSING_FIELD        # a required field is absent (a = field id)
    ST_BAD_SCHEMA           # SBE schema id/version mismatch (a = got id, b = got version)
    ST_CAPACITY             # an output buffer or fixed-size structure is full (a = capacity)
    ST_BAD_VALUE            # a field holds a value out of its domain (a = the value)
    ST_NESTING              # JSON nested deeper than supported (a = depth)
    ST_WRONG_KIND           # a well-formed message of a kind the caller does not take (a = kind id)
    # Order book conditions (BookError: a = order_ref, b = seq; BookFull: a = capacity).
    ST_UNKNOWN_ORDER        # a message names an order that is not resting
    ST_DUPLICATE_ORDER      # an add or replace reuses a live order_ref
    ST_OVERFILL             # an execution larger than the order's remaining shares
    ST_OVERCANCEL           # a cancel larger than the order's remaining shares
    ST_CROSSED              # an add leaves the best bid >= the best ask
    ST_ORDERS_FULL          # the order store is full (BookFull)
    ST_LEVELS_FULL          # the price levels are full (BookFull)
    ST_NO_MEMORY            # growing a table ran out of memory (MemoryError)
    # Input conditions added later (appended: the codes above keep their values).
    ST_DUPLICATE_KEY        # a key the decoder reads appears twice in one object (a = field id)
    ST_WRONG_TYPE           # a field's JSON value has another type than its own (a = field id)


cdef struct Status:
    int code             # a StatusCode
    Py_ssize_t offset    # byte offset in the input, from its start
    int64_t a            # detail, meaning depends on code (see StatusCode)
    int64_t b            # detail, meaning depends on code


cdef inline int status_set(Status *st, int code, Py_ssize_t offset,
                           int64_t a, int64_t b) noexcept nogil:
    """Record an error and return -1, so ``return status_set(...)`` reads naturally."""
    st.code = code
    st.offset = offset
    st.a = a
    st.b = b
    return -1


cdef inline void status_clear(Status *st) noexcept nogil:
    st.code = ST_OK
    st.offset = -1
    st.a = 0
    st.b = 0


cdef inline str status_reason(const Status *st, tuple field_names=None,
                              tuple kind_names=None):
    """The reason text of ``st``. The caller's tuples name the id in ``a``:
    ``field_names`` of ST_MISSING_FIELD, ST_DUPLICATE_KEY and ST_WRONG_TYPE,
    ``kind_names`` of ST_WRONG_KIND."""
    cdef int c = st.code
    if c == ST_TRUNCATED:
        return f"truncated input: message needs {st.a} bytes, {st.b} left"
    if c == ST_BAD_LENGTH:
        return f"bad message length {st.a} (the spec says {st.b})"
    if c == ST_ZERO_LENGTH:
        return "zero-length message"
    if c == ST_UNKNOWN_TYPE:
        return f"unknown message type {st.a!r}"
    if c == ST_BAD_SYNTAX:
        if 32 <= st.a < 127:
            return f"unexpected character {chr(st.a)!r}"
        return f"unexpected byte 0x{st.a & 0xff:02x}"
    if c == ST_BAD_NUMBER:
        return "malformed number"
    if c == ST_TOO_MANY_DECIMALS:
        return f"number has {st.a} decimals, at most {st.b} are kept exactly"
    if c == ST_OVERFLOW:
        return "number out of range for int64 fixed point"
    if c == ST_MISSING_FIELD:
        if field_names is not None and 0 <= st.a < len(field_names):
            return f"required field {field_names[st.a]!r} missing"
        return f"required field missing (field id {st.a})"
    if c == ST_DUPLICATE_KEY:
        if field_names is not None and 0 <= st.a < len(field_names):
            return f"duplicate key {field_names[st.a]!r}"
        return f"duplicate key (field id {st.a})"
    if c == ST_WRONG_TYPE:
        if field_names is not None and 0 <= st.a < len(field_names):
            return f"field {field_names[st.a]!r} has the wrong JSON type"
        return f"field of the wrong JSON type (field id {st.a})"
    if c == ST_WRONG_KIND:
        if kind_names is not None and 0 <= st.a < len(kind_names):
            return f"unexpected message kind {kind_names[st.a]!r}"
        return f"unexpected message kind (kind id {st.a})"
    if c == ST_BAD_SCHEMA:
        return f"unsupported SBE schema id {st.a} version {st.b}"
    if c == ST_CAPACITY:
        return f"capacity {st.a} exceeded"
    if c == ST_BAD_VALUE:
        return f"field value {st.a} out of range"
    if c == ST_NESTING:
        return f"nesting deeper than {st.a}"
    if c == ST_UNKNOWN_ORDER:
        return f"reference to an unknown order (order_ref {<uint64_t>st.a})"
    if c == ST_DUPLICATE_ORDER:
        return f"add of an order_ref that is already live (order_ref {<uint64_t>st.a})"
    if c == ST_OVERFILL:
        return ("execution larger than the order's remaining shares "
                f"(order_ref {<uint64_t>st.a})")
    if c == ST_OVERCANCEL:
        return f"cancel larger than the order's remaining shares (order_ref {<uint64_t>st.a})"
    if c == ST_CROSSED:
        return f"add crosses the book (best bid >= best ask) (order_ref {<uint64_t>st.a})"
    if c == ST_ORDERS_FULL:
        return f"order store is full at capacity {st.a}"
    if c == ST_LEVELS_FULL:
        return f"price levels is full at capacity {st.a}"
    if c == ST_NO_MEMORY:
        return "out of memory growing the order book's event tables"
    return f"decode error (code {c})"


cdef inline object status_book_error(const Status *st):
    """The exception of an order book condition (BookError, BookFull, MemoryError), or
    None when ``st`` holds another code."""
    cdef int c = st.code
    from hftcore.errors import BookError, BookFull
    if ST_UNKNOWN_ORDER <= c <= ST_CROSSED:
        return BookError(status_reason(st), st.b)
    if c == ST_ORDERS_FULL:
        return BookFull("order store", st.a, "max_orders")
    if c == ST_LEVELS_FULL:
        return BookFull("price levels", st.a, "max_levels")
    if c == ST_NO_MEMORY:
        return MemoryError(status_reason(st))
    return None


cdef inline int raise_status(const Status *st, object source=None,
                             tuple field_names=None, tuple kind_names=None) except -1:
    """Raise the exception for ``st``: :class:`hftcore.DecodeError` for input errors, the
    order book's own types for its codes; a no-op for ``ST_OK``. The names: see
    :func:`status_reason`."""
    if st.code == ST_OK:
        return 0
    book_error = status_book_error(st)  # the order book's codes raise their own types
    if book_error is not None:
        raise book_error
    from hftcore.errors import DecodeError
    raise DecodeError(status_reason(st, field_names, kind_names), st.offset, source)
