# cython: language_level=3
"""Crash-safe capture files: the writer's hot path and the record walk, for cimport.

The format is described in capture.pyx (module docstring) and docs/guides/captures.rst.
"""

from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from hftcore.net.consumer cimport Consumer, RecvStamp


# What CaptureWriter.append returns.
cpdef enum AppendResult:
    CAPTURE_OK = 0          # the record is in the current batch
    CAPTURE_DROPPED = 1     # every batch was full (the writer is behind): dropped, counted
    CAPTURE_TOO_LARGE = 2   # the record does not fit in one batch: refused, counted
    CAPTURE_CLOSED = 3      # the writer is closing or closed: refused, counted as dropped
    # CAPTURE_ERROR: the writer thread failed to write: refused, counted as dropped;
    # check() raises the OSError
    CAPTURE_ERROR = 4


# CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI/ext4: SSE4.2's
# crc32 instruction on x86-64 when the CPU has it, slicing-by-8 tables otherwise.
# ``crc`` is the running value (0 to start); the result is the CRC of everything so far.
cdef uint32_t crc32c_update(uint32_t crc, const uint8_t* data, size_t size) noexcept nogil


# One record as the reader sees it (the header fields plus where it sits).
cdef struct CaptureRecord_t:
    Py_ssize_t offset     # byte offset of the record's header in the file
    Py_ssize_t payload    # byte offset of the payload (offset + RECORD_HEADER_SIZE)
    uint32_t length       # payload bytes
    uint16_t kind         # MessageKind of hftcore.net.consumer
    uint16_t flags        # FLAG_* bits
    int64_t realtime_ns   # RecvStamp.realtime_ns
    int64_t monotonic_ns  # RecvStamp.monotonic_ns
    int64_t kernel_ns     # RecvStamp.kernel_ns (0: none)
    uint64_t seq          # the writer's message number (appended and dropped alike)


cdef class CaptureWriter:
    # Batches: _nbatches buffers of _batch_bytes in one block. The producer (append) fills
    # batch _sealed % _nbatches; the writer thread writes batches _done.._sealed-1 (sealed:
    # full) and, every flush interval, the committed prefix of the current one.
    # Invariant: _sealed - _done <= _nbatches; == means every batch is full (drop).
    cdef uint8_t* _mem          # _nbatches * _batch_bytes, preallocated and touched
    cdef uint64_t* _fill        # per batch: bytes committed by the producer (release store)
    cdef uint64_t* _written     # per batch: bytes the writer thread already wrote
    cdef Py_ssize_t _batch_bytes
    cdef Py_ssize_t _nbatches
    cdef uint64_t _sealed       # batches sealed by the producer (atomic)
    cdef uint64_t _done         # batches written and freed by the writer thread (atomic)
    cdef uint64_t _cur_fill     # producer's fill of its current batch
    cdef uint64_t _seq          # messages handed to append (written or not)
    cdef uint16_t _pending_flags  # flags for the next record (FLAG_AFTER_GAP after drops)
    cdef int64_t _records       # records appended
    cdef int64_t _bytes         # payload bytes appended
    cdef int64_t _dropped       # records dropped: batches full, closed, writer failed
    cdef int64_t _oversize      # records refused: larger than a batch
    cdef int64_t _batches_written  # batches written (sealed ones)
    cdef int64_t _bytes_written    # bytes written to the file by the writer thread
    cdef int64_t _flushes       # partial-batch flushes
    cdef int _state             # atomic: 0 open, 1 closing (writer drains), 2 closed
    cdef int _err               # atomic: errno of the writer thread's failed write, 0 none
    cdef int _thread_done       # atomic: the writer thread has left its loop
    cdef int _fd
    cdef int64_t _flush_ns
    cdef int64_t _poll_ns
    cdef bint _fsync
    cdef object _file
    cdef object _thread
    cdef object _error_reported
    cdef readonly object path
    cdef readonly object metadata

    # The hot path: copy one message into the current batch (no allocation, no system
    # call, no GIL). Returns an AppendResult; anything but CAPTURE_OK is counted.
    cdef int append(self, const uint8_t* data, Py_ssize_t size, int kind,
                    const RecvStamp* stamp) noexcept nogil
    cdef int _write_all(self, const uint8_t* p, uint64_t n) noexcept nogil
    cdef void _writer_loop(self) noexcept nogil


cdef class RecordingConsumer(Consumer):
    cdef readonly Consumer inner
    cdef readonly CaptureWriter writer
    cdef object error
