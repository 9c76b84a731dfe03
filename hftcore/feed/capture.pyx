# cython: language_level=3
"""Crash-safe capture files: every received message with its receive timestamps.

A feed appends each message to a :class:`CaptureWriter` from its hot loop (a ``memcpy``
into a preallocated batch, no system call, no GIL); a writer thread writes full batches,
and the partial one every ``flush_interval``, so ``kill -9`` loses at most the batches not
yet written. :func:`read_capture`, :func:`read_capture_table`, :func:`replay_into` and
:func:`capture_info` read a capture back; a torn tail (a partial last record after a
crash) is detected by the record checksums and skipped with a count.

File format (version 1, every integer little-endian)
----------------------------------------------------
File header, ``data_offset`` bytes::

    offset size field
    0      8    magic          b"\\x89HFTCAP\\n"
    8      2    version        1
    10     2    flags          0 (reserved)
    12     4    data_offset    where the first record starts (a multiple of 8)
    16     8    created_ns     CLOCK_REALTIME when the file was created (int64 ns)
    24     8    created_mono   CLOCK_MONOTONIC at the same moment (int64 ns)
    32     4    metadata_len   bytes of metadata
    36     4    header_crc     CRC32C of bytes 0..35 followed by the metadata
    40     n    metadata       UTF-8 JSON object (source URL, feed, market...), then zero
                               padding up to data_offset

Records, from ``data_offset`` to the end of the file, each a 48-byte header followed by
the payload (the message bytes) and zero padding to a multiple of 8 bytes, so every record
(and every 8-byte header field) is 8-byte aligned in the file::

    offset size field
    0      4    marker         0x31524348 (b"HCR1")
    4      4    length         payload bytes (padding excluded)
    8      2    kind           hftcore.net.consumer.MessageKind (1 text, 2 binary,
                               16 stream chunk, 17 datagram)
    10     2    flags          bit 0 FLAG_AFTER_GAP: the writer dropped messages just
                               before this one (``seq`` says how many)
    12     4    crc            CRC32C of header bytes 0..11, then 16..47, then the payload
    16     8    realtime_ns    RecvStamp.realtime_ns
    24     8    monotonic_ns   RecvStamp.monotonic_ns
    32     8    kernel_ns      RecvStamp.kernel_ns (0: no kernel stamp)
    40     8    seq            the writer's message number, from 0, counting dropped ones

The checksum is CRC32C (Castagnoli), computed with SSE4.2's ``crc32`` instruction on
x86-64 CPUs that have it and with slicing-by-8 tables everywhere else (both give the same
value; :func:`crc32c` exposes it).

Reading: a record whose marker, length or checksum is wrong ends the valid part of the
file when no valid record follows it: that is a torn tail (a crash in the middle of a
write, or a file cut short), skipped and counted (``torn_records``, ``torn_bytes``). A bad
record *followed* by a valid one is corruption inside the file: ``errors="raise"`` (the
default) raises :class:`hftcore.DecodeError` naming the file and the byte offset;
``errors="skip"`` skips to the next valid record (found at 8-byte steps by marker and
checksum) and counts it (``corrupt_records``, ``skipped_bytes``). Gaps in ``seq`` count
the messages the writer dropped (``missing_records``).
"""

import collections
import json
import os
import threading

import numpy as np

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.object cimport PyTypeObject
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from hftcore._core.clock cimport monotonic_ns, realtime_ns
from hftcore.net.consumer cimport (
    CONSUME_ERROR,
    CONSUME_OK,
    Consumer,
    RecvStamp,
    stamp_now,
)

from hftcore.errors import DecodeError

__all__ = [
    "CaptureWriter",
    "RecordingConsumer",
    "CaptureRecord",
    "CaptureInfo",
    "CaptureTable",
    "CaptureReader",
    "read_capture",
    "read_capture_table",
    "capture_info",
    "replay_into",
    "capture_to_ndjson",
    "crc32c",
    "crc32c_hardware",
    "RECORD_DTYPE",
    "MAGIC",
    "VERSION",
    "FILE_HEADER_SIZE",
    "RECORD_HEADER_SIZE",
    "RECORD_MARKER",
    "FLAG_AFTER_GAP",
    "AppendResult",
    "CAPTURE_OK",
    "CAPTURE_DROPPED",
    "CAPTURE_TOO_LARGE",
    "CAPTURE_CLOSED",
    "CAPTURE_ERROR",
]

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #include <errno.h>
    #ifdef _WIN32
    #include <io.h>
    #include <windows.h>
    static Py_ssize_t hc_write(int fd, const void *p, size_t n) {
        return _write(fd, p, (unsigned)(n > 0x40000000u ? 0x40000000u : n));
    }
    static int hc_fsync(int fd) { return _commit(fd); }
    static void hc_sleep_ns(int64_t ns) { Sleep((DWORD)((ns + 999999) / 1000000)); }
    #else
    #include <unistd.h>
    #include <time.h>
    static Py_ssize_t hc_write(int fd, const void *p, size_t n) {
        return write(fd, p, n > 0x40000000u ? 0x40000000u : n);
    }
    static int hc_fsync(int fd) {
    #if defined(__APPLE__)
        return fsync(fd);
    #else
        return fdatasync(fd);
    #endif
    }
    static void hc_sleep_ns(int64_t ns) {
        struct timespec ts; ts.tv_sec = ns / 1000000000; ts.tv_nsec = ns % 1000000000;
        nanosleep(&ts, NULL);
    }
    #endif
    static int hc_errno(void) { return errno; }
    #define HC_EINTR EINTR

    /* Acquire/release atomics between the producer and the writer thread. */
    #if defined(_MSC_VER)
    /* x86-64 MSVC: volatile accesses are acquire/release (/volatile:ms, the default). */
    static uint64_t hc_load_u64(uint64_t *p) { return *(volatile uint64_t *)p; }
    static void hc_store_u64(uint64_t *p, uint64_t v) { *(volatile uint64_t *)p = v; }
    static int hc_load_int(int *p) { return *(volatile int *)p; }
    static void hc_store_int(int *p, int v) { *(volatile int *)p = v; }
    #else
    static uint64_t hc_load_u64(uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static void hc_store_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static int hc_load_int(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static void hc_store_int(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    #endif

    /* Little-endian stores and loads, whatever the host. */
    static void hc_st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
    static void hc_st32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
    }
    static void hc_st64(uint8_t *p, uint64_t v) {
        hc_st32(p, (uint32_t)v); hc_st32(p + 4, (uint32_t)(v >> 32));
    }
    static uint16_t hc_ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
    static uint32_t hc_ld32(const uint8_t *p) {
        return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
            | ((uint32_t)p[3] << 24);
    }
    static uint64_t hc_ld64(const uint8_t *p) {
        return (uint64_t)hc_ld32(p) | ((uint64_t)hc_ld32(p + 4) << 32);
    }

    /* CRC32C with the SSE4.2 instruction (x86-64, GCC/clang), chosen at run time. */
    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) \\
        && !defined(HFTCORE_NO_SIMD)
    #include <nmmintrin.h>
    __attribute__((target("sse4.2")))
    static uint32_t hc_crc32c_hw(uint32_t crc, const uint8_t *p, size_t n) {
        uint64_t c = ~crc;
        while (n && ((uintptr_t)p & 7)) { c = _mm_crc32_u8((uint32_t)c, *p++); n--; }
        while (n >= 8) {
            uint64_t w; memcpy(&w, p, 8);
            c = _mm_crc32_u64(c, w); p += 8; n -= 8;
        }
        while (n) { c = _mm_crc32_u8((uint32_t)c, *p++); n--; }
        return ~(uint32_t)c;
    }
    static int hc_crc32c_hw_available(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("sse4.2");
    }
    #else
    static uint32_t hc_crc32c_hw(uint32_t crc, const uint8_t *p, size_t n) {
        (void)p; (void)n; return crc;
    }
    static int hc_crc32c_hw_available(void) { return 0; }
    #endif
    """
    Py_ssize_t hc_write(int fd, const void* p, size_t n) noexcept nogil
    int hc_fsync(int fd) noexcept nogil
    void hc_sleep_ns(int64_t ns) noexcept nogil
    int hc_errno() noexcept nogil
    int HC_EINTR
    uint64_t hc_load_u64(uint64_t* p) noexcept nogil
    void hc_store_u64(uint64_t* p, uint64_t v) noexcept nogil
    int hc_load_int(int* p) noexcept nogil
    void hc_store_int(int* p, int v) noexcept nogil
    void hc_st16(uint8_t* p, uint16_t v) noexcept nogil
    void hc_st32(uint8_t* p, uint32_t v) noexcept nogil
    void hc_st64(uint8_t* p, uint64_t v) noexcept nogil
    uint16_t hc_ld16(const uint8_t* p) noexcept nogil
    uint32_t hc_ld32(const uint8_t* p) noexcept nogil
    uint64_t hc_ld64(const uint8_t* p) noexcept nogil
    uint32_t hc_crc32c_hw(uint32_t crc, const uint8_t* p, size_t n) noexcept nogil
    int hc_crc32c_hw_available() noexcept nogil
    void PyType_Modified(PyTypeObject* t)


MAGIC = b"\x89HFTCAP\n"
VERSION = 1
FILE_HEADER_SIZE = 40
RECORD_HEADER_SIZE = 48
RECORD_MARKER = 0x31524348
FLAG_AFTER_GAP = 1

cdef enum:
    REC_HEADER = 48
    FILE_HEADER = 40
    MARKER = 0x31524348
    F_AFTER_GAP = 1

# Why a record is bad (reader).
cdef enum:
    BAD_SHORT = 1      # fewer than 48 bytes left
    BAD_MARKER = 2     # no record marker
    BAD_LENGTH = 3     # the payload (and padding) runs past the end of the file
    BAD_CRC = 4        # checksum mismatch

_REASONS = {
    BAD_SHORT: "a partial record header",
    BAD_MARKER: "no record marker (expected b'HCR1')",
    BAD_LENGTH: "a record longer than the rest of the file",
    BAD_CRC: "a record checksum mismatch",
}


# ---------------------------------------------------------------------------- CRC32C

cdef uint32_t _crc_table[8][256]
cdef uint8_t _EMPTY[8]
cdef bint _crc_hw = False


cdef void _crc_init() noexcept:
    cdef uint32_t c
    cdef int i, k
    for i in range(256):
        c = <uint32_t>i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if (c & 1) else 0)
        _crc_table[0][i] = c
    for i in range(256):
        c = _crc_table[0][i]
        for k in range(1, 8):
            c = _crc_table[0][c & 0xFF] ^ (c >> 8)
            _crc_table[k][i] = c


cdef uint32_t _crc32c_sw(uint32_t crc, const uint8_t* p, size_t n) noexcept nogil:
    """Slicing-by-8: eight table lookups per 8 bytes."""
    cdef uint32_t c = ~crc
    cdef uint32_t lo, hi
    while n >= 8:
        lo = hc_ld32(p) ^ c
        hi = hc_ld32(p + 4)
        c = (_crc_table[7][lo & 0xFF] ^ _crc_table[6][(lo >> 8) & 0xFF]
             ^ _crc_table[5][(lo >> 16) & 0xFF] ^ _crc_table[4][lo >> 24]
             ^ _crc_table[3][hi & 0xFF] ^ _crc_table[2][(hi >> 8) & 0xFF]
             ^ _crc_table[1][(hi >> 16) & 0xFF] ^ _crc_table[0][hi >> 24])
        p += 8
        n -= 8
    while n:
        c = _crc_table[0][(c ^ p[0]) & 0xFF] ^ (c >> 8)
        p += 1
        n -= 1
    return ~c


cdef uint32_t crc32c_update(uint32_t crc, const uint8_t* data, size_t size) noexcept nogil:
    if _crc_hw:
        return hc_crc32c_hw(crc, data, size)
    return _crc32c_sw(crc, data, size)


_crc_init()
_crc_hw = hc_crc32c_hw_available() != 0


def crc32c(data, uint32_t value=0, hardware=None):
    """CRC32C (Castagnoli) of ``data``, continuing from ``value``.

    Parameters
    ----------
    data : bytes-like
        The bytes.
    value : int, optional
        The CRC of what came before (0 to start).
    hardware : bool or None, optional
        ``None`` (default): what the records use (SSE4.2 when this CPU has it);
        ``False``: the slicing-by-8 tables; ``True``: the SSE4.2 instruction (raises
        ``RuntimeError`` where it is unavailable).

    Returns
    -------
    int
        The 32-bit checksum.

    Examples
    --------
    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    cdef const uint8_t[::1] buf = memoryview(data).cast("B")
    cdef const uint8_t* p = &buf[0] if buf.shape[0] else _EMPTY
    cdef size_t n = buf.shape[0]
    if hardware is None:
        return crc32c_update(value, p, n)
    if hardware:
        if not hc_crc32c_hw_available():
            raise RuntimeError("the SSE4.2 crc32 instruction is not available here")
        return hc_crc32c_hw(value, p, n)
    return _crc32c_sw(value, p, n)


def crc32c_hardware():
    """True when :func:`crc32c` (and the records) use the SSE4.2 instruction."""
    return bool(_crc_hw)


cdef inline uint32_t _record_crc(const uint8_t* h, const uint8_t* payload,
                                 size_t length) noexcept nogil:
    cdef uint32_t c = crc32c_update(0, h, 12)
    c = crc32c_update(c, h + 16, REC_HEADER - 16)
    return crc32c_update(c, payload, length)


cdef inline Py_ssize_t _padded(Py_ssize_t n) noexcept nogil:
    return (n + 7) & ~(<Py_ssize_t>7)


# ---------------------------------------------------------------------------- writer

def _file_header(created_ns, created_mono, meta):
    data_offset = (FILE_HEADER_SIZE + len(meta) + 7) // 8 * 8
    head = bytearray(data_offset)
    head[0:8] = MAGIC
    head[8:10] = VERSION.to_bytes(2, "little")
    head[12:16] = data_offset.to_bytes(4, "little")
    head[16:24] = created_ns.to_bytes(8, "little", signed=True)
    head[24:32] = created_mono.to_bytes(8, "little", signed=True)
    head[32:36] = len(meta).to_bytes(4, "little")
    head[FILE_HEADER_SIZE:FILE_HEADER_SIZE + len(meta)] = meta
    head[36:40] = crc32c(meta, crc32c(bytes(head[0:36]))).to_bytes(4, "little")
    return bytes(head)


cdef class CaptureWriter:
    """Append messages with their receive timestamps to a capture file, off the hot path.

    :meth:`append` (from Cython, without the GIL) copies the record into the current
    batch, one of ``batches`` preallocated buffers of ``batch_bytes``; a writer thread
    writes each full batch, and every ``flush_interval`` seconds the part of the current
    batch filled so far, so a quiet feed still reaches the file. ``kill -9`` loses at most
    what was not written yet: the full batches waiting for the writer and the records of
    the last ``flush_interval``. The file is not fsynced unless ``fsync=True`` (a killed
    process loses nothing the kernel has; a power cut can).

    When the writer thread falls behind and every batch is full, a record is **dropped and
    counted** (``dropped_records``, :meth:`stats`, and a gap in the next written record's
    ``seq`` and ``FLAG_AFTER_GAP``): the feed thread never blocks on the disk. A record
    larger than a batch (``48 + size`` rounded up to 8 > ``batch_bytes``) is refused
    (``CAPTURE_TOO_LARGE``, counted as ``oversize``; the Python :meth:`append` raises
    ``ValueError``): choose ``batch_bytes`` above the largest message.

    One thread appends at a time; :meth:`close` must not run while another thread still
    appends (stop the feed thread first). Appends after ``close`` are refused and counted.

    Parameters
    ----------
    path : str or os.PathLike
        The capture file, created or truncated.
    batch_bytes : int, optional
        Size of one batch buffer (default 1 MiB, at least 4096).
    batches : int, optional
        Number of batch buffers (default 8, at least 2): how far the writer thread may
        fall behind before records are dropped.
    flush_interval : float, optional
        Seconds between writes of the partial batch (default 0.05).
    metadata : dict or None, optional
        Stored as JSON in the file header (the source URL, feed, market...).
    fsync : bool, optional
        ``fdatasync`` after each write (survives a power cut, costs write bandwidth).

    Raises
    ------
    ValueError
        Bad sizes, or metadata that is not JSON-serialisable.
    OSError
        The file cannot be created.

    Examples
    --------
    >>> with CaptureWriter("feed.cap", metadata={"url": "wss://..."}) as w:  # doctest: +SKIP
    ...     w.append(b'{"e":"trade"}', KIND_TEXT)
    >>> [r.payload for r in read_capture("feed.cap")]  # doctest: +SKIP
    [b'{"e":"trade"}']
    """

    def __cinit__(self):
        self._mem = NULL
        self._fill = NULL
        self._written = NULL
        self._fd = -1
        self._state = 2
        self._thread_done = 1

    def __init__(self, path, Py_ssize_t batch_bytes=1 << 20, Py_ssize_t batches=8,
                 double flush_interval=0.05, metadata=None, bint fsync=False):
        if batch_bytes < 4096 or batch_bytes > (1 << 30):
            raise ValueError(f"batch_bytes must be 4096..2**30, not {batch_bytes}")
        if batches < 2 or batches > 4096:
            raise ValueError(f"batches must be 2..4096, not {batches}")
        if not (flush_interval > 0):
            raise ValueError(f"flush_interval must be > 0 seconds, not {flush_interval}")
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            raise ValueError(f"metadata must be a dict, not {type(metadata).__name__}")
        try:
            meta = json.dumps(metadata, sort_keys=True).encode()
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata is not JSON-serialisable: {e}") from None
        self.path = os.fspath(path)
        self.metadata = metadata
        self._batch_bytes = batch_bytes & ~(<Py_ssize_t>7)
        self._nbatches = batches
        self._flush_ns = <int64_t>(flush_interval * 1e9)
        self._poll_ns = min(self._flush_ns // 4, 500_000)
        if self._poll_ns < 20_000:
            self._poll_ns = 20_000
        self._fsync = fsync
        self._mem = <uint8_t*>malloc(<size_t>self._nbatches * self._batch_bytes)
        self._fill = <uint64_t*>malloc(sizeof(uint64_t) * self._nbatches)
        self._written = <uint64_t*>malloc(sizeof(uint64_t) * self._nbatches)
        if self._mem == NULL or self._fill == NULL or self._written == NULL:
            raise MemoryError(f"capture batches: {batches} x {batch_bytes} bytes")
        # Touch every page now: first touch is slow, and must not happen in append.
        memset(self._mem, 0, <size_t>self._nbatches * self._batch_bytes)
        memset(self._fill, 0, sizeof(uint64_t) * self._nbatches)
        memset(self._written, 0, sizeof(uint64_t) * self._nbatches)
        self._error_reported = False
        f = open(self.path, "wb", buffering=0)
        try:
            f.write(_file_header(realtime_ns(), monotonic_ns(), meta))
        except BaseException:
            f.close()
            raise
        self._file = f
        self._fd = f.fileno()
        self._state = 0
        self._thread_done = 0
        self._thread = threading.Thread(target=self._run, name="hftcore-capture-writer",
                                        daemon=True)
        self._thread.start()

    def __dealloc__(self):
        # Never free what a live writer thread may still read (a close that timed out).
        if hc_load_int(&self._thread_done):
            free(self._mem)
            free(self._fill)
            free(self._written)

    # ------------------------------------------------------------------ hot path

    cdef int append(self, const uint8_t* data, Py_ssize_t size, int kind,
                    const RecvStamp* stamp) noexcept nogil:
        cdef uint64_t seq = self._seq
        cdef Py_ssize_t total = REC_HEADER + _padded(size)
        cdef uint64_t sealed, slot, fill
        cdef uint8_t* h
        self._seq = seq + 1
        if hc_load_int(&self._state) != 0:
            self._dropped += 1
            self._pending_flags = F_AFTER_GAP
            return CAPTURE_CLOSED
        if hc_load_int(&self._err) != 0:
            self._dropped += 1
            self._pending_flags = F_AFTER_GAP
            return CAPTURE_ERROR
        if size < 0 or total > self._batch_bytes:
            self._oversize += 1
            self._pending_flags = F_AFTER_GAP
            return CAPTURE_TOO_LARGE
        sealed = self._sealed
        if sealed - hc_load_u64(&self._done) >= <uint64_t>self._nbatches:
            self._dropped += 1
            self._pending_flags = F_AFTER_GAP
            return CAPTURE_DROPPED
        fill = self._cur_fill
        if fill + <uint64_t>total > <uint64_t>self._batch_bytes:
            # Seal the current batch (its fill is already published) and move on.
            sealed += 1
            hc_store_u64(&self._sealed, sealed)
            self._cur_fill = 0
            fill = 0
            if sealed - hc_load_u64(&self._done) >= <uint64_t>self._nbatches:
                self._dropped += 1
                self._pending_flags = F_AFTER_GAP
                return CAPTURE_DROPPED
        slot = sealed % <uint64_t>self._nbatches
        h = self._mem + slot * <uint64_t>self._batch_bytes + fill
        hc_st32(h, MARKER)
        hc_st32(h + 4, <uint32_t>size)
        hc_st16(h + 8, <uint16_t>kind)
        hc_st16(h + 10, self._pending_flags)
        hc_st64(h + 16, <uint64_t>stamp.realtime_ns)
        hc_st64(h + 24, <uint64_t>stamp.monotonic_ns)
        hc_st64(h + 32, <uint64_t>stamp.kernel_ns)
        hc_st64(h + 40, seq)
        if size:
            memcpy(h + REC_HEADER, data, <size_t>size)
        if total - REC_HEADER - size:
            memset(h + REC_HEADER + size, 0, <size_t>(total - REC_HEADER - size))
        hc_st32(h + 12, _record_crc(h, h + REC_HEADER, <size_t>size))
        self._pending_flags = 0
        fill += <uint64_t>total
        self._cur_fill = fill
        hc_store_u64(&self._fill[slot], fill)
        self._records += 1
        self._bytes += size
        return CAPTURE_OK

    # ------------------------------------------------------------------ writer thread

    cdef int _write_all(self, const uint8_t* p, uint64_t n) noexcept nogil:
        cdef Py_ssize_t k
        cdef int e
        while n:
            k = hc_write(self._fd, p, <size_t>n)
            if k < 0:
                e = hc_errno()
                if e == HC_EINTR:
                    continue
                return e if e else 5
            p += k
            n -= <uint64_t>k
            self._bytes_written += k
        return 0

    cdef void _writer_loop(self) noexcept nogil:
        cdef uint64_t done = self._done
        cdef uint64_t sealed, slot, f
        cdef uint64_t nb = <uint64_t>self._nbatches
        cdef uint64_t bb = <uint64_t>self._batch_bytes
        cdef int64_t last_flush = monotonic_ns()
        cdef int64_t now
        cdef int stopping, err, did
        while True:
            stopping = hc_load_int(&self._state) != 0
            did = 0
            err = 0
            sealed = hc_load_u64(&self._sealed)
            while done < sealed:
                slot = done % nb
                f = hc_load_u64(&self._fill[slot])
                err = self._write_all(self._mem + slot * bb + self._written[slot],
                                      f - self._written[slot])
                if err:
                    break
                self._batches_written += 1
                self._written[slot] = 0
                hc_store_u64(&self._fill[slot], 0)
                done += 1
                hc_store_u64(&self._done, done)
                did = 1
            if err == 0:
                now = monotonic_ns()
                if stopping or now - last_flush >= self._flush_ns:
                    if hc_load_u64(&self._sealed) == done:
                        slot = done % nb
                        f = hc_load_u64(&self._fill[slot])
                        if f > self._written[slot]:
                            err = self._write_all(self._mem + slot * bb + self._written[slot],
                                                  f - self._written[slot])
                            if err == 0:
                                self._written[slot] = f
                                self._flushes += 1
                                did = 1
                        if err == 0 and self._fsync and did and hc_fsync(self._fd) != 0:
                            err = hc_errno() or 5
                        if err == 0 and stopping:
                            break
                    last_flush = now
            if err:
                hc_store_int(&self._err, err)
                break
            if not did:
                hc_sleep_ns(self._poll_ns)
        hc_store_int(&self._thread_done, 1)

    def _run(self):
        with nogil:
            self._writer_loop()

    # ------------------------------------------------------------------ Python face

    def _raise_error(self):
        err = hc_load_int(&self._err)
        if err:
            self._error_reported = True
            raise OSError(err, f"capture writer thread failed: {os.strerror(err)}", self.path)

    def check(self):
        """Raise the ``OSError`` of a failed write in the writer thread, if there was one."""
        self._raise_error()

    def _append_py(self, data, int kind=1, stamp=None):
        """append(data, kind=KIND_TEXT, stamp=None)

        Append one message (the slow path, for scripts and tests; Cython code calls the
        ``cdef`` ``append(data, size, kind, stamp)`` without the GIL).

        Parameters
        ----------
        data : bytes-like
            The message.
        kind : int, optional
            Its :class:`hftcore.net.consumer.MessageKind` (default ``KIND_TEXT``).
        stamp : tuple of three ints, optional
            ``(realtime_ns, monotonic_ns, kernel_ns)``; default: the clocks now, no kernel
            stamp.

        Returns
        -------
        bool
            True if written to the batch, False if dropped because every batch was full
            (counted in ``dropped_records``).

        Raises
        ------
        ValueError
            The message is larger than a batch, or the writer is closed.
        OSError
            The writer thread failed to write (the error it met).
        """
        cdef const uint8_t[::1] buf = memoryview(data).cast("B")
        cdef RecvStamp st
        if stamp is None:
            stamp_now(&st)
        else:
            st.realtime_ns, st.monotonic_ns, st.kernel_ns = stamp
        cdef const uint8_t* p = &buf[0] if buf.shape[0] else _EMPTY
        cdef int rc = self.append(p, buf.shape[0], kind, &st)
        if rc == CAPTURE_OK:
            return True
        if rc == CAPTURE_DROPPED:
            return False
        if rc == CAPTURE_TOO_LARGE:
            raise ValueError(
                f"{self.path}: a {buf.shape[0]}-byte message does not fit in a "
                f"{self._batch_bytes}-byte batch (48-byte header, padded to 8): raise "
                f"batch_bytes")
        if rc == CAPTURE_ERROR:
            self._raise_error()
        raise ValueError(f"{self.path}: the capture writer is closed")

    def close(self, double timeout=10.0):
        """Write everything appended, stop the writer thread and close the file.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the writer thread (default 10).

        Raises
        ------
        OSError
            The writer thread failed to write (raised once, here or by ``append``).
        TimeoutError
            The writer did not finish within ``timeout`` (a stalled disk or pipe); call
            ``close`` again to wait longer.
        """
        if self._thread is None:
            return
        hc_store_int(&self._state, 1)
        self._thread.join(timeout)
        if self._thread.is_alive():
            pending = hc_load_u64(&self._sealed) - hc_load_u64(&self._done)
            raise TimeoutError(
                f"{self.path}: the capture writer thread did not finish within {timeout} s "
                f"({pending} full batches not written yet)")
        self._thread = None
        hc_store_int(&self._state, 2)
        self._file.close()
        self._fd = -1
        if not self._error_reported:
            self._raise_error()

    @property
    def closed(self):
        """True once :meth:`close` finished."""
        return self._thread is None

    @property
    def dropped_records(self):
        """Records dropped (every batch full, writer failed, or closed), never written."""
        return self._dropped

    def stats(self):
        """Counters (read while running, they may be a moment old).

        Returns
        -------
        dict
            ``records`` and ``bytes`` appended (payload bytes), ``dropped`` records,
            ``oversize`` records refused, ``batches_written`` (full batches),
            ``flushes`` (partial batches written), ``bytes_written`` to the file after
            the header, ``pending_batches`` (full, not written yet), ``write_errors``
            (0 or 1: the writer stops at its first error) and ``error`` (its text or
            None), ``batch_bytes``, ``batches``.
        """
        err = hc_load_int(&self._err)
        return {
            "records": self._records,
            "bytes": self._bytes,
            "dropped": self._dropped,
            "oversize": self._oversize,
            "batches_written": self._batches_written,
            "flushes": self._flushes,
            "bytes_written": self._bytes_written,
            "pending_batches": int(hc_load_u64(&self._sealed) - hc_load_u64(&self._done)),
            "write_errors": 1 if err else 0,
            "error": os.strerror(err) if err else None,
            "batch_bytes": self._batch_bytes,
            "batches": self._nbatches,
        }

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._thread is None else "open"
        return (f"CaptureWriter({self.path!r}, {state}, records={self._records}, "
                f"dropped={self._dropped})")


# The Python method ``append`` beside the cdef ``append`` of the .pxd: a cdef class cannot
# define both under one name, so the def is written as ``_append_py`` and put in the type's
# dict under ``append`` here. Cython code typed ``CaptureWriter`` still calls the cdef one
# (a C vtable call); Python finds this one.
(<dict>(<PyTypeObject*>CaptureWriter).tp_dict)["append"] = CaptureWriter.__dict__["_append_py"]
PyType_Modified(<PyTypeObject*>CaptureWriter)


cdef class RecordingConsumer(Consumer):
    """A consumer that appends every message to a capture, then hands it to ``inner``.

    Runs in the reader's loop without the GIL and allocates nothing. A dropped or
    oversize record is counted by the writer and the message still goes on to ``inner``;
    a failed writer (an I/O error) makes ``on_message`` return ``CONSUME_ERROR`` and
    :meth:`check` raise the ``OSError``.

    Parameters
    ----------
    inner : hftcore.net.consumer.Consumer
        Where the messages go on.
    writer : CaptureWriter
        The capture.
    """

    def __init__(self, Consumer inner not None, CaptureWriter writer not None):
        self.inner = inner
        self.writer = writer
        self.error = None

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        if self.writer.append(data, size, kind, stamp) == CAPTURE_ERROR:
            return CONSUME_ERROR
        return self.inner.on_message(data, size, kind, stamp)

    cpdef check(self):
        """Raise the writer's I/O error, else the inner consumer's stored error."""
        self.writer.check()
        self.inner.check()


# ---------------------------------------------------------------------------- reader

CaptureRecord = collections.namedtuple(
    "CaptureRecord",
    ["payload", "kind", "realtime_ns", "monotonic_ns", "kernel_ns", "seq", "flags", "offset"],
)
CaptureRecord.__doc__ = """One record of a capture: the message and its receive stamps.

``payload`` (bytes), ``kind`` (MessageKind code), ``realtime_ns``, ``monotonic_ns``,
``kernel_ns`` (0: none), ``seq`` (the writer's message number; gaps are dropped
messages), ``flags`` (``FLAG_AFTER_GAP``), ``offset`` (the record's byte offset in the
file)."""

CaptureInfo = collections.namedtuple(
    "CaptureInfo",
    ["path", "version", "created_ns", "metadata", "file_bytes", "records", "payload_bytes",
     "kinds", "first_realtime_ns", "last_realtime_ns", "first_monotonic_ns",
     "last_monotonic_ns", "torn_records", "torn_bytes", "corrupt_records", "skipped_bytes",
     "missing_records"],
)
CaptureInfo.__doc__ = """What a capture holds (:func:`capture_info`).

``path``, ``version``, ``created_ns`` (CLOCK_REALTIME), ``metadata`` (the dict given to the
writer), ``file_bytes``, ``records`` (valid records), ``payload_bytes``, ``kinds``
({kind code: records}; codes of 256 and above counted together under 256),
``first_realtime_ns``/``last_realtime_ns`` and the monotonic pair
(0 when there is no record), ``torn_records`` (0 or 1: a torn tail was skipped),
``torn_bytes`` (its size), ``corrupt_records`` and ``skipped_bytes`` (bad records inside
the file skipped with ``errors="skip"``), ``missing_records`` (gaps in ``seq``: messages
the writer dropped, or lost to skipped corruption)."""

CaptureTable = collections.namedtuple("CaptureTable", ["records", "payload", "info"])
CaptureTable.__doc__ = """:func:`read_capture_table`'s result.

``records``: a :data:`RECORD_DTYPE` array, one row per record; ``payload``: the whole file
as a ``uint8`` array, ``payload[r["offset"]:r["offset"] + r["length"]]`` being record
``r``'s message; ``info``: the :class:`CaptureInfo`."""

#: One row per record in :func:`read_capture_table`.
RECORD_DTYPE = np.dtype([
    ("offset", "<i8"),        # payload's byte offset in the file
    ("length", "<u4"),        # payload bytes
    ("kind", "<u2"),
    ("flags", "<u2"),
    ("realtime_ns", "<i8"),
    ("monotonic_ns", "<i8"),
    ("kernel_ns", "<i8"),
    ("seq", "<u8"),
])

cdef packed struct _Row:
    int64_t offset
    uint32_t length
    uint16_t kind
    uint16_t flags
    int64_t realtime_ns
    int64_t monotonic_ns
    int64_t kernel_ns
    uint64_t seq


cdef int _check_record(const uint8_t* buf, Py_ssize_t end, Py_ssize_t pos,
                       CaptureRecord_t* r) noexcept nogil:
    """0 when a valid record starts at ``pos`` (filled into ``r``), else a BAD_* code."""
    cdef const uint8_t* h = buf + pos
    cdef uint32_t length
    if end - pos < REC_HEADER:
        return BAD_SHORT
    if hc_ld32(h) != MARKER:
        return BAD_MARKER
    length = hc_ld32(h + 4)
    if <uint64_t>REC_HEADER + ((<uint64_t>length + 7) & ~(<uint64_t>7)) > <uint64_t>(end - pos):
        return BAD_LENGTH
    if _record_crc(h, h + REC_HEADER, length) != hc_ld32(h + 12):
        return BAD_CRC
    r.offset = pos
    r.payload = pos + REC_HEADER
    r.length = length
    r.kind = hc_ld16(h + 8)
    r.flags = hc_ld16(h + 10)
    r.realtime_ns = <int64_t>hc_ld64(h + 16)
    r.monotonic_ns = <int64_t>hc_ld64(h + 24)
    r.kernel_ns = <int64_t>hc_ld64(h + 32)
    r.seq = hc_ld64(h + 40)
    return 0


cdef Py_ssize_t _find_valid(const uint8_t* buf, Py_ssize_t end, Py_ssize_t pos) noexcept nogil:
    """Offset of the next valid record at or after ``pos`` (8-byte steps), -1 if none."""
    cdef CaptureRecord_t r
    while end - pos >= REC_HEADER:
        if hc_ld32(buf + pos) == MARKER and _check_record(buf, end, pos, &r) == 0:
            return pos
        pos += 8
    return -1


cdef class _Scanner:
    """Walks the records of a capture held in memory (bytes or an mmap)."""

    cdef const uint8_t[::1] view
    cdef const uint8_t* buf
    cdef Py_ssize_t pos
    cdef Py_ssize_t end
    cdef bint skip
    cdef bint have_seq
    cdef uint64_t next_seq
    cdef int bad_reason
    cdef Py_ssize_t bad_offset
    cdef Py_ssize_t bad_next
    cdef public object source
    cdef public object holder
    cdef public dict header
    cdef public int64_t records, payload_bytes, torn_records, torn_bytes
    cdef public int64_t corrupt_records, skipped_bytes, missing_records
    cdef public int64_t first_rt, last_rt, first_mono, last_mono
    cdef int64_t kind_counts[257]

    def __init__(self, data, source, header, Py_ssize_t start, bint skip):
        self.holder = data
        self.view = data
        self.buf = &self.view[0]
        self.end = self.view.shape[0]
        self.pos = start
        self.skip = skip
        self.source = source
        self.header = header
        memset(self.kind_counts, 0, sizeof(self.kind_counts))

    cdef int next(self, CaptureRecord_t* r) noexcept nogil:
        """1: a record in ``r``; 0: the end (a torn tail counted); -1: corruption to raise."""
        cdef int reason
        cdef Py_ssize_t q
        while self.pos < self.end:
            reason = _check_record(self.buf, self.end, self.pos, r)
            if reason == 0:
                self.pos += REC_HEADER + _padded(r.length)
                self.records += 1
                self.payload_bytes += r.length
                self.kind_counts[r.kind if r.kind < 256 else 256] += 1
                if self.records == 1:
                    self.first_rt = r.realtime_ns
                    self.first_mono = r.monotonic_ns
                self.last_rt = r.realtime_ns
                self.last_mono = r.monotonic_ns
                if self.have_seq and r.seq > self.next_seq:
                    self.missing_records += <int64_t>(r.seq - self.next_seq)
                self.next_seq = r.seq + 1
                self.have_seq = True
                return 1
            q = _find_valid(self.buf, self.end, self.pos + 8)
            if q < 0:
                self.torn_records += 1
                self.torn_bytes += self.end - self.pos
                self.pos = self.end
                return 0
            if not self.skip:
                self.bad_reason = reason
                self.bad_offset = self.pos
                self.bad_next = q
                return -1
            self.corrupt_records += 1
            self.skipped_bytes += q - self.pos
            self.pos = q
        return 0

    def error(self):
        return DecodeError(
            f"{_REASONS.get(self.bad_reason, 'a bad record')}, with a valid record after it "
            f"at byte offset {self.bad_next}: the capture is corrupt inside, not torn at the "
            f"end (errors='skip' skips the bad bytes and counts them)",
            self.bad_offset, self.source)

    def info(self):
        kinds = {k: int(self.kind_counts[k]) for k in range(257) if self.kind_counts[k]}
        h = self.header
        return CaptureInfo(
            self.source, h["version"], h["created_ns"], h["metadata"], self.end,
            self.records, self.payload_bytes, kinds, self.first_rt, self.last_rt,
            self.first_mono, self.last_mono, self.torn_records, self.torn_bytes,
            self.corrupt_records, self.skipped_bytes, self.missing_records)

    def release(self):
        self.view = None
        self.buf = NULL
        self.end = 0
        self.pos = 0
        self.holder = None


def _parse_header(const uint8_t[::1] data, source):
    cdef Py_ssize_t n = data.shape[0]
    if n < FILE_HEADER:
        raise DecodeError(f"not a capture: {n} bytes, shorter than the {FILE_HEADER}-byte "
                          f"file header", n, source)
    head = bytes(data[:FILE_HEADER])
    if head[:8] != MAGIC:
        raise DecodeError(f"not an hftcore capture: magic {head[:8]!r}, expected {MAGIC!r}",
                          0, source)
    version = int.from_bytes(head[8:10], "little")
    if version != VERSION:
        raise DecodeError(f"capture format version {version}: this hftcore reads version "
                          f"{VERSION}", 8, source)
    data_offset = int.from_bytes(head[12:16], "little")
    meta_len = int.from_bytes(head[32:36], "little")
    if data_offset % 8 or data_offset < FILE_HEADER + meta_len:
        raise DecodeError(f"bad file header: data_offset {data_offset} for {meta_len} bytes "
                          f"of metadata", 12, source)
    if data_offset > n:
        raise DecodeError(f"truncated file header: {n} bytes, the header has {data_offset}",
                          n, source)
    meta = bytes(data[FILE_HEADER:FILE_HEADER + meta_len])
    if crc32c(meta, crc32c(head[:36])) != int.from_bytes(head[36:40], "little"):
        raise DecodeError("file header checksum mismatch", 36, source)
    try:
        metadata = json.loads(meta.decode()) if meta_len else {}
    except (UnicodeDecodeError, ValueError) as e:
        raise DecodeError(f"metadata is not JSON: {e}", FILE_HEADER, source) from None
    return {
        "version": version,
        "data_offset": data_offset,
        "created_ns": int.from_bytes(head[16:24], "little", signed=True),
        "created_monotonic_ns": int.from_bytes(head[24:32], "little", signed=True),
        "metadata": metadata,
    }


def _load(source, bint use_mmap=True):
    """(buffer, name): a path memory-mapped (or read), or a bytes-like as is."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return source, "<bytes>"
    name = os.fspath(source)
    if use_mmap:
        import mmap

        with open(name, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size:
                try:
                    return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), name
                except (OSError, ValueError):
                    pass  # not mappable (a pipe, a special file): read it
            return f.read(), name
    with open(name, "rb") as f:
        return f.read(), name


def _check_errors(errors):
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")
    return errors == "skip"


cdef _Scanner _scanner(source, errors, bint use_mmap=True):
    skip = _check_errors(errors)
    data, name = _load(source, use_mmap)
    header = _parse_header(data, name)
    return _Scanner(data, name, header, header["data_offset"], skip)


cdef class CaptureReader:
    """Iterator over the records of a capture (:func:`read_capture`).

    Yields :class:`CaptureRecord` (the payload copied into ``bytes``: the slow path;
    :func:`read_capture_table` and :func:`replay_into` are the fast ones). After the last
    record, :meth:`info` has the counts, the torn tail included.

    Parameters
    ----------
    source : str, os.PathLike or bytes-like
        The capture file (memory-mapped) or its bytes.
    errors : {"raise", "skip"}, optional
        Corruption inside the file: raise ``DecodeError`` (default) or skip and count.
    """

    cdef _Scanner scanner
    cdef readonly dict header

    def __init__(self, source, errors="raise"):
        self.scanner = _scanner(source, errors)
        self.header = self.scanner.header

    @property
    def metadata(self):
        """The metadata dict stored by the writer."""
        return self.header["metadata"]

    def __iter__(self):
        return self

    def __next__(self):
        cdef CaptureRecord_t r
        cdef int rc
        if self.scanner.buf == NULL:
            raise StopIteration
        rc = self.scanner.next(&r)
        if rc == 1:
            return CaptureRecord(
                PyBytes_FromStringAndSize(<const char*>self.scanner.buf + r.payload,
                                          r.length),
                r.kind, r.realtime_ns, r.monotonic_ns, r.kernel_ns, r.seq, r.flags, r.offset)
        if rc == -1:
            raise self.scanner.error()
        raise StopIteration

    def info(self):
        """The :class:`CaptureInfo` of what was read so far (all of it after the end)."""
        return self.scanner.info()

    def close(self):
        """Release the file's mapping (iteration ends)."""
        self.scanner.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_capture(source, errors="raise"):
    """Iterate over a capture's records.

    Parameters
    ----------
    source : str, os.PathLike or bytes-like
        The capture file or its bytes.
    errors : {"raise", "skip"}, optional
        A bad record followed by valid ones (corruption inside the file): raise
        :class:`hftcore.DecodeError` naming the file and byte offset (default), or skip it
        and count it. A torn tail is always skipped and counted.

    Returns
    -------
    CaptureReader
        Yields :class:`CaptureRecord` ``(payload, kind, realtime_ns, monotonic_ns,
        kernel_ns, seq, flags, offset)``; ``.info()`` after the end.

    Raises
    ------
    DecodeError
        Not a capture (magic, version, header checksum), a truncated header, or (while
        iterating, with ``errors="raise"``) corruption inside the file.

    Examples
    --------
    >>> for rec in read_capture("feed.cap"):  # doctest: +SKIP
    ...     print(rec.kind, rec.realtime_ns, len(rec.payload))
    """
    return CaptureReader(source, errors)


def capture_info(source, errors="raise"):
    """Walk a capture (checking every checksum) and say what it holds.

    Parameters
    ----------
    source : str, os.PathLike or bytes-like
        The capture.
    errors : {"raise", "skip"}, optional
        As :func:`read_capture`.

    Returns
    -------
    CaptureInfo

    Raises
    ------
    DecodeError
        As :func:`read_capture`.
    """
    cdef _Scanner sc = _scanner(source, errors)
    cdef CaptureRecord_t r
    cdef int rc
    with nogil:
        rc = sc.next(&r)
        while rc == 1:
            rc = sc.next(&r)
    if rc == -1:
        raise sc.error()
    info = sc.info()
    sc.release()
    return info


def read_capture_table(source, errors="raise"):
    """Read a whole capture at once: a table of record headers and the file's bytes.

    Parameters
    ----------
    source : str, os.PathLike or bytes-like
        The capture.
    errors : {"raise", "skip"}, optional
        As :func:`read_capture`.

    Returns
    -------
    CaptureTable
        ``(records, payload, info)``: ``records`` a :data:`RECORD_DTYPE` array (payload
        ``offset`` and ``length``, ``kind``, ``flags``, the three stamps, ``seq``),
        ``payload`` the file's bytes as a read-only ``uint8`` array, ``info`` the
        :class:`CaptureInfo`.

    Raises
    ------
    DecodeError
        As :func:`read_capture`.

    Examples
    --------
    >>> recs, buf, info = read_capture_table("feed.cap")  # doctest: +SKIP
    >>> r = recs[0]; bytes(buf[r["offset"]:r["offset"] + r["length"]])  # doctest: +SKIP
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = _load(source, use_mmap=False)[0]
    cdef _Scanner sc = _scanner(data, errors)
    if not isinstance(source, (bytes, bytearray, memoryview)):
        sc.source = os.fspath(source)
    cdef Py_ssize_t cap = max(16, (sc.end - sc.pos) // 256)
    cdef Py_ssize_t n = 0
    cdef CaptureRecord_t r
    cdef int rc = 1
    cdef _Row* rows
    table = np.empty(cap, RECORD_DTYPE)
    while rc == 1:
        rows = <_Row*><size_t>table.ctypes.data
        with nogil:
            while n < cap:
                rc = sc.next(&r)
                if rc != 1:
                    break
                rows[n].offset = r.payload
                rows[n].length = r.length
                rows[n].kind = r.kind
                rows[n].flags = r.flags
                rows[n].realtime_ns = r.realtime_ns
                rows[n].monotonic_ns = r.monotonic_ns
                rows[n].kernel_ns = r.kernel_ns
                rows[n].seq = r.seq
                n += 1
        if rc == 1:
            cap *= 2
            table = np.resize(table, cap)
    if rc == -1:
        raise sc.error()
    info = sc.info()
    sc.release()
    payload = np.frombuffer(data, np.uint8)
    return CaptureTable(table[:n].copy(), payload, info)


def replay_into(source, Consumer consumer not None, errors="raise"):
    """Hand every record of a capture to ``consumer.on_message``, without the GIL.

    The consumer sees each message as a reader would hand it: the pointer into the
    memory-mapped file, the length, the kind and a ``RecvStamp`` with the recorded
    timestamps. This is what a venue's ``replay`` runs a capture through.

    Parameters
    ----------
    source : str, os.PathLike or bytes-like
        The capture.
    consumer : hftcore.net.consumer.Consumer
        Receives the messages; ``CONSUME_STOP`` ends the replay early, ``CONSUME_ERROR``
        ends it and its ``check()`` raises.
    errors : {"raise", "skip"}, optional
        As :func:`read_capture`: with ``"raise"`` the records before the corruption are
        handed on, then ``DecodeError`` is raised.

    Returns
    -------
    int
        Messages handed to the consumer.

    Raises
    ------
    DecodeError
        As :func:`read_capture`.
    """
    cdef _Scanner sc = _scanner(source, errors)
    cdef CaptureRecord_t r
    cdef RecvStamp st
    cdef int rc = 1
    cdef int res = CONSUME_OK
    cdef Py_ssize_t n = 0
    with nogil:
        while True:
            rc = sc.next(&r)
            if rc != 1:
                break
            st.realtime_ns = r.realtime_ns
            st.monotonic_ns = r.monotonic_ns
            st.kernel_ns = r.kernel_ns
            res = consumer.on_message(sc.buf + r.payload, r.length, r.kind, &st)
            n += 1
            if res != CONSUME_OK:
                break
    try:
        if res == CONSUME_ERROR:
            consumer.check()
            raise RuntimeError(f"{sc.source}: the consumer returned CONSUME_ERROR at "
                               f"message {n - 1} without storing an error")
        if rc == -1:
            raise sc.error()
    finally:
        sc.release()
    return n


def capture_to_ndjson(source, out, kinds=(1,), errors="raise"):
    """Write a capture's text messages as newline-delimited JSON, one message per line.

    The output is what :func:`hftcore.binance.read_file` reads (a path ending in ``.gz``
    is gzip-compressed). Records of other kinds are skipped and counted.

    Parameters
    ----------
    source : str, os.PathLike or bytes-like
        The capture.
    out : str or os.PathLike
        The NDJSON file to write.
    kinds : iterable of int, optional
        Record kinds to write (default: ``KIND_TEXT`` only).
    errors : {"raise", "skip"}, optional
        As :func:`read_capture`.

    Returns
    -------
    dict
        ``lines`` written, ``skipped`` records of other kinds, ``info`` (CaptureInfo).

    Raises
    ------
    DecodeError
        As :func:`read_capture`, or a message that holds a newline (it would split into
        two lines), naming the record's offset.
    """
    import gzip

    wanted = {int(k) for k in kinds}
    cdef _Scanner sc = _scanner(source, errors)
    cdef CaptureRecord_t r
    cdef int rc
    cdef int64_t lines = 0, skipped = 0
    out = os.fspath(out)
    opener = gzip.open if out.endswith(".gz") else open
    try:
        with opener(out, "wb") as f:
            while True:
                rc = sc.next(&r)
                if rc != 1:
                    break
                if r.kind not in wanted:
                    skipped += 1
                    continue
                msg = PyBytes_FromStringAndSize(<const char*>sc.buf + r.payload, r.length)
                if b"\n" in msg or b"\r" in msg:
                    raise DecodeError("a message holds a line break: it cannot be one NDJSON "
                                      "line", r.offset, sc.source)
                f.write(msg)
                f.write(b"\n")
                lines += 1
        if rc == -1:
            raise sc.error()
        info = sc.info()
    finally:
        sc.release()
    return {"lines": lines, "skipped": skipped, "info": info}


globals().update(AppendResult.__members__)
