# cython: language_level=3
"""Log-linear latency histogram (HDR style) with nogil recording.

See ``histogram.pxd`` for the bucket layout and the hot-path interface.
"""

cimport cython
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport ceil
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

import math
import struct
import zlib

import numpy as np

from hftcore.errors import DecodeError

#: Largest value in range (one hour in nanoseconds); larger values count as overflow.
MAX_VALUE = HIST_MAX_VALUE
#: Number of buckets.
BUCKETS = HIST_BUCKETS
#: Sub-buckets per power of two.
SUB_BUCKETS = HIST_SUB
#: Largest relative distance between a reported percentile and the exact sample
#: percentile it stands for (in-range samples): half a bucket over the bucket's lowest
#: value, 1/256.
RELATIVE_ERROR = 1.0 / (2 * HIST_SUB)

_MAGIC = b"HFTH"
_VERSION = 1
# magic, version, sub_bits, reserved, buckets, non-empty buckets, count, underflow,
# overflow, min, max, sum lo/hi, sum of squares lo/hi
_HEADER = struct.Struct("<4sBBHIIqqqqqQQQQ")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER.size


cdef void hist_clear(HistData *h) noexcept nogil:
    memset(h, 0, sizeof(HistData))
    h.min_value = INT64_MAX
    h.max_value = INT64_MIN


cdef void hist_add(HistData *h, const HistData *o) noexcept nogil:
    cdef int i
    cdef uint64_t s
    for i in range(HIST_BUCKETS):
        h.counts[i] += o.counts[i]
    h.count += o.count
    h.underflow += o.underflow
    h.overflow += o.overflow
    if o.min_value < h.min_value:
        h.min_value = o.min_value
    if o.max_value > h.max_value:
        h.max_value = o.max_value
    s = h.sum_lo + o.sum_lo
    h.sum_hi += o.sum_hi + (s < o.sum_lo)
    h.sum_lo = s
    s = h.sq_lo + o.sq_lo
    h.sq_hi += o.sq_hi + (s < o.sq_lo)
    h.sq_lo = s


cdef inline int64_t hist_middle(int i) noexcept nogil:
    """The value reported for bucket ``i``: its middle integer (rounded down)."""
    return hist_lowest(i) + (hist_width(i) - 1) // 2


cdef int64_t _value_at_rank(const HistData *d, int64_t rank) noexcept nogil:
    """Reported value of the ``rank``-th smallest sample (1-based, 1 <= rank <= count)."""
    cdef int i
    cdef int64_t seen = 0, v
    for i in range(HIST_BUCKETS):
        seen += d.counts[i]
        if seen >= rank:
            break
    v = hist_middle(i)
    # The bucket's middle may lie beyond the extremes seen; they bound every sample.
    if v < d.min_value:
        v = d.min_value
    if v > d.max_value:
        v = d.max_value
    return v


cdef int64_t _rank(const HistData *d, double p) except -1:
    if not (0.0 <= p <= 100.0):
        raise ValueError(f"percentile must be in [0, 100], got {p!r}")
    if d.count == 0:
        raise ValueError("percentile of an empty histogram")
    # numpy's method="inverted_cdf": the smallest sample x with at least p % of the
    # samples <= x, i.e. the ceil(n * p / 100)-th smallest (the smallest for p = 0).
    cdef double q = p / 100.0
    cdef int64_t rank = <int64_t>ceil(<double>d.count * q)
    if rank < 1:
        rank = 1
    if rank > d.count:
        rank = d.count
    return rank


def bucket_index(int64_t value):
    """Bucket of ``value`` (clamped into the range first): for tests and tools."""
    if value < 0:
        value = 0
    elif value > HIST_MAX_VALUE:
        value = HIST_MAX_VALUE
    return hist_index(value)


def bucket_bounds(int index):
    """``(lowest, width)`` of bucket ``index``: it holds ``lowest .. lowest + width - 1``."""
    if not 0 <= index < HIST_BUCKETS:
        raise IndexError(f"bucket index {index} out of range 0..{HIST_BUCKETS - 1}")
    return hist_lowest(index), hist_width(index)


@cython.final
cdef class Histogram:
    """Latency histogram: int64 nanoseconds in log-linear buckets, recorded without the GIL.

    Buckets: exact below 128 ns; above, 128 buckets per power of two, so a bucket is at
    most 1/128 of its values wide. Range: 0 to one hour (:data:`MAX_VALUE`); a negative
    value is counted as 0 and in :attr:`underflow`, a value above one hour as one hour and
    in :attr:`overflow` (both reported by :meth:`summary`). All counts live in one
    preallocated array (36 KB); recording never allocates.

    Recording: :meth:`record` (from Cython it is ``cpdef inline ... noexcept nogil``,
    compiled into the caller; cimport :class:`Histogram` from
    ``hftcore.latency.histogram``), :meth:`record_many` for an array.

    Statistics: :attr:`count`, :attr:`min`, :attr:`max` are exact raw values;
    :attr:`mean` and :attr:`stddev` come from exact 128-bit running sums of the values
    (not bucket midpoints; out-of-range values enter them clamped to the range).

    Percentiles: see :meth:`percentile`.

    Thread safety: one thread records; read, merge or reset from another thread only
    while it does not record.

    Examples
    --------
    >>> h = Histogram()
    >>> h.record_many(np.array([1200, 1500, 900, 30_000]))
    >>> h.count, h.min, h.max
    (4, 900, 30000)
    >>> h.percentile(50)
    1202
    """

    def __cinit__(self):
        self.d = <HistData *>PyMem_Malloc(sizeof(HistData))
        if self.d is NULL:
            raise MemoryError("cannot allocate a Histogram")
        hist_clear(self.d)

    def __dealloc__(self):
        PyMem_Free(self.d)

    cdef void record_ptr(self, const int64_t *values, Py_ssize_t n) noexcept nogil:
        """Record ``n`` values from ``values``."""
        cdef Py_ssize_t i
        cdef HistData *d = self.d
        for i in range(n):
            hist_record(d, values[i])

    def record_many(self, const int64_t[:] values):
        """Record every value of a 1-d int64 array (any stride), without the GIL.

        Parameters
        ----------
        values : numpy.ndarray or memoryview of int64
            Nanoseconds.
        """
        cdef Py_ssize_t i, n = values.shape[0]
        cdef HistData *d = self.d
        if n == 0:
            return
        if values.strides[0] == sizeof(int64_t):
            with nogil:
                self.record_ptr(&values[0], n)
        else:
            with nogil:
                for i in range(n):
                    hist_record(d, values[i])

    # -- statistics -------------------------------------------------------------------

    @property
    def count(self):
        """Values recorded (int)."""
        return self.d.count

    @property
    def underflow(self):
        """Values recorded below 0 (counted as 0)."""
        return self.d.underflow

    @property
    def overflow(self):
        """Values recorded above one hour (counted as :data:`MAX_VALUE`)."""
        return self.d.overflow

    @property
    def min(self):
        """Smallest value recorded, exact (``None`` when empty)."""
        return self.d.min_value if self.d.count else None

    @property
    def max(self):
        """Largest value recorded, exact (``None`` when empty)."""
        return self.d.max_value if self.d.count else None

    @property
    def total(self):
        """Exact sum of the (clamped) values, a Python int."""
        return (<object>self.d.sum_hi << 64) | self.d.sum_lo

    @property
    def mean(self):
        """Mean of the values (float ns; ``None`` when empty), from the exact sum."""
        if not self.d.count:
            return None
        return self.total / self.d.count

    @property
    def stddev(self):
        """Population standard deviation (``ddof=0``, like :func:`numpy.std`), float ns.

        Computed from the exact sums as ``sqrt((n*S2 - S1**2) / n**2)`` with Python
        integers, so it has no cancellation error. ``None`` when empty.
        """
        cdef int64_t n = self.d.count
        if not n:
            return None
        s1 = self.total
        s2 = (<object>self.d.sq_hi << 64) | self.d.sq_lo
        return math.sqrt((n * s2 - s1 * s1) / (n * n))

    # -- percentiles ------------------------------------------------------------------

    def percentile(self, double p):
        """The ``p``-th percentile, as an int number of nanoseconds.

        Definition: the sample of rank ``max(1, ceil(count * p / 100))`` in sorted order
        (numpy's ``np.percentile(samples, p, method="inverted_cdf")``), reported as the
        middle of its bucket, clamped to ``[min, max]``. For samples in the range
        (``0 <= v <= MAX_VALUE``) the result is within :data:`RELATIVE_ERROR` (1/256,
        0.39 %) of that exact sample, and exact below 128 ns; ``percentile(0)`` is
        ``min`` and ``percentile(100)`` is ``max``, exactly.

        Parameters
        ----------
        p : float
            Percent, ``0 <= p <= 100``.

        Raises
        ------
        ValueError
            ``p`` out of range, or the histogram is empty.
        """
        cdef int64_t rank = _rank(self.d, p)
        if rank == 1:
            return self.d.min_value  # the smallest sample, known exactly
        if rank == self.d.count:
            return self.d.max_value
        return _value_at_rank(self.d, rank)

    def percentiles(self, ps):
        """:meth:`percentile` of each of ``ps``, as a list of ints (one pass each)."""
        return [self.percentile(p) for p in ps]

    def summary(self):
        """``{count, min, p50, p90, p99, p999, max, mean, stddev, underflow, overflow}``.

        Nanoseconds: ints, ``mean``/``stddev`` floats; every statistic is ``None`` when
        the histogram is empty.
        """
        cdef dict out = {"count": self.d.count}
        if self.d.count:
            out.update(min=self.d.min_value, p50=self.percentile(50),
                       p90=self.percentile(90), p99=self.percentile(99),
                       p999=self.percentile(99.9), max=self.d.max_value,
                       mean=self.mean, stddev=self.stddev)
        else:
            out.update(min=None, p50=None, p90=None, p99=None, p999=None, max=None,
                       mean=None, stddev=None)
        out["underflow"] = self.d.underflow
        out["overflow"] = self.d.overflow
        return out

    def buckets(self):
        """The non-empty buckets as three int64 arrays: ``(lowest, width, count)``."""
        cdef int i, k = 0
        cdef int n = 0
        for i in range(HIST_BUCKETS):
            n += self.d.counts[i] != 0
        lowest = np.empty(n, np.int64)
        width = np.empty(n, np.int64)
        counts = np.empty(n, np.int64)
        cdef int64_t[::1] lo = lowest, wd = width, ct = counts
        for i in range(HIST_BUCKETS):
            if self.d.counts[i]:
                lo[k] = hist_lowest(i)
                wd[k] = hist_width(i)
                ct[k] = self.d.counts[i]
                k += 1
        return lowest, width, counts

    # -- whole-histogram operations ---------------------------------------------------

    def merge(self, Histogram other not None):
        """Add ``other``'s values into this histogram (as if recorded here too)."""
        hist_add(self.d, other.d)

    def reset(self):
        """Forget every value (the array is kept)."""
        hist_clear(self.d)

    def copy(self):
        """An independent copy."""
        cdef Histogram h = Histogram.__new__(Histogram)
        memcpy(h.d, self.d, sizeof(HistData))
        return h

    def __len__(self):
        return self.d.count

    def __eq__(self, other):
        if not isinstance(other, Histogram):
            return NotImplemented
        cdef Histogram o = other
        return (self.d.count == o.d.count and self.d.underflow == o.d.underflow
                and self.d.overflow == o.d.overflow and self.d.min_value == o.d.min_value
                and self.d.max_value == o.d.max_value and self.d.sum_lo == o.d.sum_lo
                and self.d.sum_hi == o.d.sum_hi and self.d.sq_lo == o.d.sq_lo
                and self.d.sq_hi == o.d.sq_hi
                and memcmp(self.d.counts, o.d.counts, sizeof(self.d.counts)) == 0)

    __hash__ = None

    def __repr__(self):
        if not self.d.count:
            return "Histogram(count=0)"
        return (f"Histogram(count={self.d.count}, min={self.d.min_value}, "
                f"p50={self.percentile(50)}, p99={self.percentile(99)}, "
                f"max={self.d.max_value})")

    def __reduce__(self):
        return (Histogram.from_bytes, (self.to_bytes(),))

    # -- serialisation ----------------------------------------------------------------

    def to_bytes(self):
        """Compact serialisation: a versioned header, the non-empty buckets, a CRC-32.

        Layout (little-endian), version 1: ``b"HFTH"``, version u8, sub-bucket bits u8,
        reserved u16 (0), bucket count u32, non-empty buckets u32, count, underflow,
        overflow, min, max (i64 each), sum and sum of squares (u128 each, low half
        first); then per non-empty bucket, in index order, two unsigned LEB128 varints:
        the gap since the previous non-empty bucket (index - previous - 1, previous
        starting at -1) and the count; then the CRC-32 (u32) of all bytes before it.
        An empty histogram is 92 bytes; each non-empty bucket adds 2-4 bytes typically.
        """
        cdef int i, prev = -1, nonempty = 0
        cdef bytearray body = bytearray()
        for i in range(HIST_BUCKETS):
            if self.d.counts[i]:
                _put_varint(body, i - prev - 1)
                _put_varint(body, self.d.counts[i])
                prev = i
                nonempty += 1
        out = bytearray(_HEADER.pack(
            _MAGIC, _VERSION, HIST_SUB_BITS, 0, HIST_BUCKETS, nonempty, self.d.count,
            self.d.underflow, self.d.overflow, self.d.min_value, self.d.max_value,
            self.d.sum_lo, self.d.sum_hi, self.d.sq_lo, self.d.sq_hi))
        out += body
        out += _CRC.pack(zlib.crc32(out))
        return bytes(out)

    @staticmethod
    def from_bytes(data, source=None):
        """Rebuild a histogram from :meth:`to_bytes` output.

        Every field is checked: the magic, version and layout, the CRC-32, each varint
        (bounded, inside the data), bucket indices, that the counts add up to ``count``,
        that ``min``/``max``/under- and overflow agree with the buckets and that the
        sums lie within what the buckets allow. Corrupt input raises, never crashes.

        Parameters
        ----------
        data : bytes-like
        source : str, optional
            Name of the input for error messages.

        Raises
        ------
        hftcore.DecodeError
            With the byte offset and the reason.
        """
        cdef const unsigned char[::1] buf
        try:
            buf = memoryview(data).cast("B")
        except TypeError as e:
            raise TypeError(f"from_bytes needs a bytes-like object, not "
                            f"{type(data).__name__}") from e
        cdef Py_ssize_t n = buf.shape[0]
        cdef Py_ssize_t need = _HEADER.size + _CRC.size
        if n < need:
            raise DecodeError(f"truncated histogram: {n} bytes, the header alone needs "
                              f"{need}", n, source)
        raw = bytes(buf)
        (magic, version, sub_bits, reserved, nb, nonempty, count, under, over, mn, mx,
         s_lo, s_hi, q_lo, q_hi) = _HEADER.unpack_from(raw, 0)
        if magic != _MAGIC:
            raise DecodeError(f"not a serialised histogram (magic {magic!r}, expected "
                              f"{_MAGIC!r})", 0, source)
        if version != _VERSION:
            raise DecodeError(f"unsupported histogram version {version} (this hftcore "
                              f"reads version {_VERSION})", 4, source)
        if sub_bits != HIST_SUB_BITS or nb != HIST_BUCKETS or reserved != 0:
            raise DecodeError(f"unsupported histogram layout (sub-bucket bits {sub_bits}, "
                              f"{nb} buckets, reserved {reserved}; expected "
                              f"{HIST_SUB_BITS}, {HIST_BUCKETS}, 0)", 5, source)
        crc_stored = _CRC.unpack_from(raw, n - 4)[0]
        crc = zlib.crc32(raw[: n - 4])
        if crc != crc_stored:
            raise DecodeError(f"histogram checksum mismatch (CRC-32 {crc:#010x}, stored "
                              f"{crc_stored:#010x})", n - 4, source)
        if nonempty > HIST_BUCKETS:
            raise DecodeError(f"{nonempty} non-empty buckets, more than the "
                              f"{HIST_BUCKETS} there are", 12, source)
        cdef Histogram h = Histogram.__new__(Histogram)
        cdef Py_ssize_t pos = _HEADER.size, end = n - 4
        cdef int64_t idx = -1, total = 0, c
        cdef uint64_t gap, cnt
        cdef Py_ssize_t k, at
        first = last = -1
        low_sum = high_sum = low_sq = high_sq = 0
        for k in range(nonempty):
            at = pos
            gap = _get_varint(buf, &pos, end, source)
            cnt = _get_varint(buf, &pos, end, source)
            if gap >= <uint64_t>HIST_BUCKETS or idx + 1 + <int64_t>gap >= HIST_BUCKETS:
                raise DecodeError(f"bucket {k} lies past the last bucket "
                                  f"({HIST_BUCKETS - 1})", at, source)
            idx += 1 + <int64_t>gap
            if cnt == 0 or cnt > <uint64_t>(INT64_MAX - total):
                raise DecodeError(f"bucket {idx} has a bad count {cnt} (zero, or the total "
                                  f"overflows)", at, source)
            c = <int64_t>cnt
            total += c
            h.d.counts[idx] = c
            if first < 0:
                first = idx
            last = idx
            lo = hist_lowest(<int>idx)
            hi = lo + hist_width(<int>idx) - 1
            if idx == HIST_BUCKETS - 1:
                hi = HIST_MAX_VALUE
            low_sum += lo * c
            high_sum += hi * c
            low_sq += lo * lo * c
            high_sq += hi * hi * c
        if pos != end:
            raise DecodeError(f"{end - pos} unexpected bytes after the {nonempty} buckets",
                              pos, source)
        if total != count:
            raise DecodeError(f"the buckets hold {total} values, the header says {count}",
                              16, source)
        s1 = (s_hi << 64) | s_lo
        s2 = (q_hi << 64) | q_lo
        if count == 0:
            if under or over or mn != INT64_MAX or mx != INT64_MIN or s1 or s2:
                raise DecodeError("an empty histogram with non-empty statistics", 24,
                                  source)
        else:
            if not (0 <= under <= count and 0 <= over <= count and mn <= mx):
                raise DecodeError(f"inconsistent header: count {count}, underflow "
                                  f"{under}, overflow {over}, min {mn}, max {mx}", 24,
                                  source)
            if (under > 0) != (mn < 0) or (over > 0) != (mx > HIST_MAX_VALUE):
                raise DecodeError(f"min {mn} / max {mx} disagree with underflow {under} "
                                  f"/ overflow {over}", 48, source)
            if (bucket_index(mn) != first or bucket_index(mx) != last
                    or under > h.d.counts[0] or over > h.d.counts[HIST_BUCKETS - 1]):
                raise DecodeError(f"min {mn} / max {mx} lie outside the non-empty "
                                  f"buckets {first}..{last}", 40, source)
            if not (low_sum <= s1 <= high_sum and low_sq <= s2 <= high_sq):
                raise DecodeError("the sums disagree with the buckets", 56, source)
        h.d.count = count
        h.d.underflow = under
        h.d.overflow = over
        h.d.min_value = mn
        h.d.max_value = mx
        h.d.sum_lo = s_lo
        h.d.sum_hi = s_hi
        h.d.sq_lo = q_lo
        h.d.sq_hi = q_hi
        return h


cdef _put_varint(bytearray out, uint64_t v):
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


cdef uint64_t _get_varint(const unsigned char[::1] buf, Py_ssize_t *pos, Py_ssize_t end,
                          object source) except? 0xFFFFFFFFFFFFFFFF:
    """Unsigned LEB128 at ``*pos`` (at most 10 bytes, value < 2**64), advancing ``*pos``."""
    cdef uint64_t v = 0
    cdef int shift = 0
    cdef unsigned char b
    cdef Py_ssize_t start = pos[0]
    while True:
        if pos[0] >= end:
            raise DecodeError("truncated varint in the bucket list", start, source)
        b = buf[pos[0]]
        pos[0] += 1
        if shift == 63 and b > 1:
            raise DecodeError("varint overflows 64 bits", start, source)
        v |= <uint64_t>(b & 0x7F) << shift
        if not (b & 0x80):
            return v
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes", start, source)
