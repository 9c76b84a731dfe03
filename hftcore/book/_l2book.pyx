# cython: language_level=3
"""Fixed-size L2 (price-level) book: two preallocated sorted int64 arrays per side.

Each side keeps its levels sorted with the best level at the end of the arrays (bids
ascend, asks descend), so an update at or near the touch moves few elements and the best
bid/ask is read in O(1). A level is found by a short scan back from the touch, then by
binary search; insertion and removal shift only the better levels (an inline loop for a
few, ``memmove`` beyond). The update rule is inline in ``_l2book.pxd`` (``set_level``
and the other nogil operations) so exchange appliers compile it into their own loop.

The book knows no exchange. The one exception, marked below, is the pair of deprecated
shims ``apply_depth_json`` / ``apply_depth_sbe``: they import ``hftcore.binance`` at call
time and go in the next release.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free

from hftcore._core.atomic cimport fence_acquire, load_acquire

import warnings
from operator import index as _index

import numpy as np


cdef inline bint worse(BookSide side, int64_t a, int64_t b) noexcept nogil:
    """True when price ``a`` is further from the touch than ``b`` on ``side``."""
    return l2_worse(side == BID, a, b)


cdef inline void set_rows(L2Book book, BookSide side, const int64_t *px,
                          const int64_t *qt, Py_ssize_t stride,
                          Py_ssize_t n) noexcept nogil:
    """Apply ``n`` rows (``px[i * stride]``, ``qt[i * stride]``) to one side, in order.

    Each search starts where the previous row landed: few steps when rows come best
    first, as within a depth message. One loop per side, so ``set_level`` inlines with
    its side fixed (no side test per row).
    """
    cdef Py_ssize_t i, hint = book.max_levels  # the touch
    if side == BID:
        for i in range(n):
            hint = book.set_level(BID, px[i * stride], qt[i * stride], hint)
    else:
        for i in range(n):
            hint = book.set_level(ASK, px[i * stride], qt[i * stride], hint)
    book.count_updates(n)


cdef bint best_first(BookSide side, const int64_t[:, ::1] rows):
    """Rows strictly best first (the REST order, so no repeated price)?"""
    cdef Py_ssize_t i
    for i in range(1, rows.shape[0]):
        if not worse(side, rows[i, 0], rows[i - 1, 0]):
            return False
    return True


cdef void load_side(L2Book book, BookSide side, const int64_t[:, ::1] rows,
                    bint sequential):
    """Fill an empty side (inside the caller's write): rows best first are copied
    directly, with no shifting; ``sequential`` ones are applied in order."""
    cdef Py_ssize_t n = rows.shape[0], i, k = 0, cap = book.max_levels
    cdef int64_t *px = book.data.bid_px if side == BID else book.data.ask_px
    cdef int64_t *qt = book.data.bid_qty if side == BID else book.data.ask_qty
    cdef int64_t t
    if n == 0:
        return
    with nogil:
        if sequential:
            set_rows(book, side, &rows[0, 0], &rows[0, 1], 2, n)
            return
        for i in range(n):
            if rows[i, 1] == 0:
                continue
            if k == cap:
                book.data.dropped += 1
                continue
            px[k] = rows[i, 0]
            qt[k] = rows[i, 1]
            k += 1
        book.count_updates(n)
        # Written best first; the layout wants best last.
        for i in range(k // 2):
            t = px[i]
            px[i] = px[k - 1 - i]
            px[k - 1 - i] = t
            t = qt[i]
            qt[i] = qt[k - 1 - i]
            qt[k - 1 - i] = t
        if side == BID:
            book.data.n_bids = k
        else:
            book.data.n_asks = k


cdef int parse_side(object side) except -1:
    if isinstance(side, str):
        s = side.lower()
        if s in ("bid", "b", "bids", "buy"):
            return BID
        if s in ("ask", "a", "asks", "sell"):
            return ASK
    elif not isinstance(side, bool) and isinstance(side, (int, np.integer)):
        if side == 0:
            return BID
        if side == 1:
            return ASK
    raise ValueError(f"side must be 0/'bid'/'b' or 1/'ask'/'a', got {side!r}")


cdef inline uint64_t read_begin(L2Book book) noexcept nogil:
    """Start a seqlock read: the version once no write is in progress."""
    cdef uint64_t v = load_acquire(&book.data.version)
    while v & 1:
        v = load_acquire(&book.data.version)
    return v


cdef inline bint read_retry(L2Book book, uint64_t v) noexcept nogil:
    """End a seqlock read: True when a write ran meanwhile (read again)."""
    fence_acquire()
    return load_acquire(&book.data.version) != v


cdef object side_array(L2Book book, int side, Py_ssize_t want):
    """Levels of one side as an (k, 2) int64 array, best first (``want`` < 0: all).
    One attempt of a seqlock read: the caller checks ``read_retry`` afterwards."""
    cdef Py_ssize_t count, k, i
    cdef int64_t *px = book.data.bid_px if side == BID else book.data.ask_px
    cdef int64_t *qt = book.data.bid_qty if side == BID else book.data.ask_qty
    cdef int64_t[:, ::1] o
    count = book.data.n_bids if side == BID else book.data.n_asks
    k = count if want < 0 or want > count else want
    out = np.empty((k, 2), dtype=np.int64)
    o = out
    with nogil:
        for i in range(k):
            o[i, 0] = px[count - 1 - i]
            o[i, 1] = qt[count - 1 - i]
    return out


def _fmt(object v, object decimals):
    """Exact decimal text of an integer with ``decimals`` implied decimals (Python
    ints throughout: exact, and no C overflow negating the smallest int64)."""
    sign = "-" if v < 0 else ""
    a = -v if v < 0 else v
    if decimals == 0:
        return f"{sign}{a}"
    whole, frac = divmod(a, 10**decimals)
    text = f"{frac:0{decimals}d}".rstrip("0")
    return f"{sign}{whole}.{text}" if text else f"{sign}{whole}"


def _int64_array(obj, name):
    """``obj`` as an int64 array; floats are refused, never silently truncated."""
    arr = np.asarray(obj)
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers (implied decimals), got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _levels_array(obj, name):
    arr = _int64_array(obj, name)
    if arr.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2) [price, qty], got {arr.shape}")
    return np.ascontiguousarray(arr)


cdef class L2Book:
    """Fixed-size L2 (price-level) order book with exact integer prices and quantities.

    Prices and quantities are int64 with implied decimals, 8 by default (with 8, the
    decimal string ``"0.0024"`` is ``240000``). Memory for ``max_levels`` levels per side
    is allocated once at construction; updates allocate nothing.

    Parameters
    ----------
    max_levels : int, default 5000
        Capacity of each side. Binance only guarantees the top 5000 levels of a book,
        which is why that is the default.
    price_decimals : int, default 8
        Implied decimals of prices (0 to 18): a price ``p`` means ``p / 10**price_decimals``.
        Only :meth:`depth_float` and the text form use it; updates are exact integers
        whatever the scale.
    qty_decimals : int, default 8
        Implied decimals of quantities (0 to 18), likewise.

    Attributes
    ----------
    max_levels : int
        Capacity per side.
    price_decimals, qty_decimals : int
        Implied decimals of prices and quantities.
    dropped : int
        Levels discarded because a side was full (see Notes).
    updates : int
        Level updates applied (every ``update`` row, including removals).

    Notes
    -----
    Capacity: when a new level arrives on a full side, the level furthest from the
    touch is dropped to make room and counted in ``dropped``. A new level that is itself
    worse than every level of a full side is not inserted and is counted in ``dropped``
    too. No data is lost silently: ``dropped`` stays 0 as long as no side ever overflows.

    A quantity of 0 removes the level; removing a level that is not in the book is a
    no-op (Binance documents that this happens). Quantities must not be negative.

    ``side`` is ``0``, ``"bid"`` or ``"b"`` for bids and ``1``, ``"ask"`` or ``"a"`` for
    asks.

    Examples
    --------
    >>> book = L2Book(max_levels=100)
    >>> book.update("bid", 100_00000000, 2_00000000)
    >>> book.update("ask", 101_00000000, 1_00000000)
    >>> book.bbo()
    (10000000000, 200000000, 10100000000, 100000000)
    """

    def __cinit__(self, Py_ssize_t max_levels=5000, *, int price_decimals=8,
                  int qty_decimals=8):
        if max_levels < 1:
            raise ValueError(f"max_levels must be >= 1, got {max_levels}")
        for name, d in (("price_decimals", price_decimals), ("qty_decimals", qty_decimals)):
            if not 0 <= d <= MAX_DECIMALS:
                raise ValueError(f"{name} must be 0..{MAX_DECIMALS}, got {d}")
        self.max_levels = max_levels
        self.price_decimals = price_decimals
        self.qty_decimals = qty_decimals
        self.data.bid_px = <int64_t *>calloc(max_levels + SHORT_SHIFT, sizeof(int64_t))
        self.data.bid_qty = <int64_t *>calloc(max_levels + SHORT_SHIFT, sizeof(int64_t))
        self.data.ask_px = <int64_t *>calloc(max_levels + SHORT_SHIFT, sizeof(int64_t))
        self.data.ask_qty = <int64_t *>calloc(max_levels + SHORT_SHIFT, sizeof(int64_t))
        if (self.data.bid_px == NULL or self.data.bid_qty == NULL or self.data.ask_px == NULL
                or self.data.ask_qty == NULL):
            raise MemoryError(f"cannot allocate an L2Book of max_levels={max_levels}")
        self.data.n_bids = 0
        self.data.n_asks = 0
        self.data.dropped = 0
        self.data.updates = 0
        self.data.version = 0
        self.data.max_levels = max_levels

    def __dealloc__(self):
        free(self.data.bid_px)
        free(self.data.bid_qty)
        free(self.data.ask_px)
        free(self.data.ask_qty)

    # The nogil operations (set_level, clear_side, count_updates...) are inline in
    # _l2book.pxd.

    @property
    def dropped(self):
        """Levels discarded because a side was full."""
        return self.data.dropped

    @property
    def updates(self):
        """Level updates applied (every ``update`` row, including removals)."""
        return self.data.updates

    @property
    def version(self):
        """The seqlock's count: even between updates, odd while one is applied; it
        grows by 2 per update (a whole depth message, a snapshot, an ``update`` call)."""
        return load_acquire(&self.data.version)

    # -- Python API ------------------------------------------------------------------

    def update(self, side, price, qty):
        """Set the quantity of one price level.

        Parameters
        ----------
        side : {0, 1, "bid", "ask", "b", "a"}
            Book side.
        price : int
            Price, ``price_decimals`` implied decimals.
        qty : int
            New absolute quantity, ``qty_decimals`` implied decimals; ``0`` removes the
            level.

        Raises
        ------
        ValueError
            For an unknown side or a negative quantity.
        TypeError
            For a price or quantity that is not an integer.
        OverflowError
            For a value outside int64.
        """
        cdef BookSide s = <BookSide>parse_side(side)
        # operator.index: a float price is a bug upstream, never silently truncated.
        cdef int64_t p = _index(price)
        cdef int64_t q = _index(qty)
        if q < 0:
            raise ValueError(f"negative quantity {q} at price {p}")
        self.begin_write()
        self.set_level(s, p, q, self.max_levels)
        self.count_updates(1)
        self.end_write()

    def update_many(self, side, prices, qtys):
        """Apply many level updates to one side, in order, without the GIL.

        Parameters
        ----------
        side : {0, 1, "bid", "ask", "b", "a"}
            Book side.
        prices, qtys : array_like of int64
            Same length; quantity ``0`` removes the level.

        Raises
        ------
        ValueError
            For an unknown side, arrays of different lengths, or a negative quantity
            (nothing is applied then).
        TypeError
            For non-integer arrays.
        """
        cdef BookSide s = <BookSide>parse_side(side)
        cdef const int64_t[::1] p = _int64_array(prices, "prices").reshape(-1)
        cdef const int64_t[::1] q = _int64_array(qtys, "qtys").reshape(-1)
        cdef Py_ssize_t n = p.shape[0], i, bad = -1
        if q.shape[0] != n:
            raise ValueError(f"prices has {n} rows but qtys has {q.shape[0]}")
        with nogil:
            for i in range(n):
                if q[i] < 0:
                    bad = i
                    break
            if bad < 0 and n > 0:
                self.begin_write()
                set_rows(self, s, &p[0], &q[0], 1, n)
                self.end_write()
        if bad >= 0:
            raise ValueError(f"negative quantity {q[bad]} at row {bad} (price {p[bad]})")

    def update_levels(self, side, levels):
        """Apply ``[price, qty]`` rows to one side, in order, without the GIL.

        The shape decoded depth records carry (their ``bids`` / ``asks``); same rules
        as :meth:`update_many`.

        Parameters
        ----------
        side : {0, 1, "bid", "ask", "b", "a"}
            Book side.
        levels : array_like of int64, shape (n, 2)
            ``[price, qty]`` rows; quantity ``0`` removes the level.

        Raises
        ------
        ValueError
            For an unknown side, a bad shape or a negative quantity (nothing is
            applied then).
        """
        cdef BookSide s = <BookSide>parse_side(side)
        cdef const int64_t[:, ::1] rows
        cdef Py_ssize_t n, i, bad = -1
        if (isinstance(levels, np.ndarray) and levels.dtype == np.int64
                and levels.ndim == 2 and levels.shape[1] == 2
                and levels.flags.c_contiguous):
            rows = levels  # the decoders' records: no conversion
        else:
            rows = _levels_array(levels, "levels")
        n = rows.shape[0]
        with nogil:
            for i in range(n):
                if rows[i, 1] < 0:
                    bad = i
                    break
            if bad < 0 and n > 0:
                self.begin_write()
                set_rows(self, s, &rows[0, 0], &rows[0, 1], 2, n)
                self.end_write()
        if bad >= 0:
            raise ValueError(f"negative quantity {rows[bad, 1]} at row {bad} "
                             f"(price {rows[bad, 0]})")

    def load_snapshot(self, bids, asks=None):
        """Replace the whole book with a snapshot.

        Parameters
        ----------
        bids : array_like of int64, shape (n, 2), or snapshot object
            ``[price, qty]`` rows; or any object with ``bids`` and ``asks`` attributes
            holding such rows (a decoded snapshot record), then ``asks`` is omitted.
        asks : array_like of int64, shape (n, 2), optional
            ``[price, qty]`` rows; required with ``bids`` rows.

        Notes
        -----
        Rows with quantity 0 are skipped. Rows may come in any order (the REST order,
        best first, is the fast path); for a repeated price the last row wins. When a
        side has more levels than ``max_levels``, the best ``max_levels`` are kept and
        the rest are counted in ``dropped``.

        Raises
        ------
        ValueError
            For arrays not of shape (n, 2) or negative quantities.
        TypeError
            For ``asks`` omitted and ``bids`` without ``bids`` / ``asks`` attributes.
        """
        if asks is None:
            # Duck typing: a snapshot record of any exchange, nothing imported.
            if not (hasattr(bids, "bids") and hasattr(bids, "asks")):
                raise TypeError("load_snapshot needs (bids, asks) or an object with "
                                "bids and asks attributes")
            bids, asks = bids.bids, bids.asks
        b = _levels_array(bids, "bids")
        a = _levels_array(asks, "asks")
        for name, arr in (("bids", b), ("asks", a)):
            if arr.shape[0] and arr[:, 1].min() < 0:
                row = int(np.argmax(arr[:, 1] < 0))
                raise ValueError(f"negative quantity in {name} row {row}")
        # Sorted outside the write, so readers retry for as short a time as possible.
        plan = []
        for side, rows in ((BID, b), (ASK, a)):
            if best_first(side, rows):
                plan.append((side, rows, False))
                continue
            # Not in REST order: sort best first, unless a price repeats (then apply
            # the rows in order, so the last one wins).
            order = np.argsort(rows[:, 0], kind="stable")
            if side == BID:
                order = order[::-1]
            ordered = np.ascontiguousarray(rows[order])
            if ordered.shape[0] < 2 or np.all(ordered[1:, 0] != ordered[:-1, 0]):
                plan.append((side, ordered, False))
            else:
                plan.append((side, rows, True))
        self.begin_write()
        try:
            self.clear_side(BID)
            self.clear_side(ASK)
            for side, rows, sequential in plan:
                load_side(self, side, rows, sequential)
        finally:
            self.end_write()

    def clear(self):
        """Remove every level of both sides (the counters are kept)."""
        self.begin_write()
        self.clear_side(BID)
        self.clear_side(ASK)
        self.end_write()

    def bbo(self):
        """Best bid and offer.

        Returns
        -------
        tuple of int
            ``(bid_price, bid_qty, ask_price, ask_qty)``, as integers with implied
            decimals; an empty side gives ``0, 0``.
        """
        cdef int64_t bp, bq, ap, aq
        cdef Py_ssize_t nb, na
        cdef uint64_t v
        with nogil:
            while True:  # the seqlock: a consistent copy even while a writer runs
                v = read_begin(self)
                bp = bq = ap = aq = 0
                nb = self.data.n_bids
                na = self.data.n_asks
                if nb:
                    bp = self.data.bid_px[nb - 1]
                    bq = self.data.bid_qty[nb - 1]
                if na:
                    ap = self.data.ask_px[na - 1]
                    aq = self.data.ask_qty[na - 1]
                if not read_retry(self, v):
                    break
        return (bp, bq, ap, aq)

    def depth(self, n=None):
        """Top levels of both sides, best first.

        Parameters
        ----------
        n : int, optional
            Levels per side; all levels when omitted.

        Returns
        -------
        bids, asks : numpy.ndarray of int64, shape (k, 2)
            ``[price, qty]`` rows, best first; ``k = min(n, levels on that side)``.

        Notes
        -----
        Safe to call from any thread while another applies updates without the GIL:
        both sides come from the same state between two whole updates (a seqlock: the
        copy is retried when a write ran meanwhile), never from a half-applied one.
        """
        cdef Py_ssize_t want = -1
        cdef uint64_t v
        if n is not None:
            want = n
            if want < 0:
                raise ValueError(f"n must be >= 0, got {n}")
        while True:
            v = read_begin(self)
            bids = side_array(self, BID, want)
            asks = side_array(self, ASK, want)
            if not read_retry(self, v):
                return bids, asks

    def depth_float(self, n=None):
        """:meth:`depth` as float64: prices divided by ``10**price_decimals``,
        quantities by ``10**qty_decimals``.

        A convenience view for plotting and analysis; floats are not exact, use
        :meth:`depth` for anything that must be.
        """
        b, a = self.depth(n)
        cdef object pd = self.price_decimals, qd = self.qty_decimals  # Python ints: exact
        scale = np.array([float(10**pd), float(10**qd)])
        return b / scale, a / scale

    def levels(self, side):
        """Number of levels on one side."""
        return self.data.n_bids if parse_side(side) == BID else self.data.n_asks

    @property
    def bid_count(self):
        """Number of bid levels."""
        return self.data.n_bids

    @property
    def ask_count(self):
        """Number of ask levels."""
        return self.data.n_asks

    @property
    def crossed(self):
        """True when the best bid is at or above the best ask (crossed or locked).

        A correctly synchronised book is never crossed; a crossed book signals missed
        updates.
        """
        bp, bq, ap, aq = self.bbo()
        return bq > 0 and aq > 0 and bp >= ap

    def __len__(self):
        return self.data.n_bids + self.data.n_asks

    # -- deprecated: the one call-time import from book/ to an exchange -------------
    # Both go in the next release; the book knows no exchange.

    def apply_depth_json(self, msg):
        """Decode a Binance JSON depth message and apply it to this book.

        .. deprecated:: 0.1.0
            Removed in the next release: call
            ``hftcore.binance.apply_depth_json(book, msg)``, which this delegates to
            (see there for the accepted input and the return value).
        """
        warnings.warn(
            "L2Book.apply_depth_json is deprecated and will be removed in the next "
            "release; use hftcore.binance.apply_depth_json(book, msg)",
            DeprecationWarning, stacklevel=1)  # a C method: level 1 is the caller
        from hftcore.binance import apply_depth_json  # call time: see above
        return apply_depth_json(self, msg)

    def apply_depth_sbe(self, msg):
        """Decode a Binance SBE depth message and apply it to this book.

        .. deprecated:: 0.1.0
            Removed in the next release: call
            ``hftcore.binance.apply_depth_sbe(book, msg)``, which this delegates to (see
            there for the accepted input and the return value).
        """
        warnings.warn(
            "L2Book.apply_depth_sbe is deprecated and will be removed in the next "
            "release; use hftcore.binance.apply_depth_sbe(book, msg)",
            DeprecationWarning, stacklevel=1)  # a C method: level 1 is the caller
        from hftcore.binance import apply_depth_sbe  # call time: see above
        return apply_depth_sbe(self, msg)

    def __repr__(self):
        pd, qd = self.price_decimals, self.qty_decimals
        bp, bq, ap, aq = self.bbo()
        bid = f"{_fmt(bq, qd)} @ {_fmt(bp, pd)}" if self.data.n_bids else "-"
        ask = f"{_fmt(aq, qd)} @ {_fmt(ap, pd)}" if self.data.n_asks else "-"
        return (f"<L2Book bid {bid} | ask {ask}; levels {self.data.n_bids} bids, "
                f"{self.data.n_asks} asks (max {self.max_levels}); dropped {self.data.dropped}>")
