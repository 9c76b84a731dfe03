# cython: language_level=3
"""MoldUDP64: downstream packet parsing and an in-sequence, gap-recovering consumer.

Format-agnostic: a message is an opaque run of bytes (ITCH, OUCH or anything else).

Downstream packet (all integers big-endian)::

    offset  size  field
    0       10    session (alphanumeric)
    10      8     sequence number of the first message in the packet
    18      2     message count (0: heartbeat, 0xFFFF: end of session)
    20      ...   message blocks: 2-byte length, then that many bytes

A heartbeat or an end-of-session packet carries no block and its sequence number is the
next one the server will send. A request to the re-request server is 20 bytes: session,
the first sequence number wanted, the count wanted.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from hftcore.net.consumer cimport Consumer, RecvStamp


cdef enum:
    MOLD_SESSION_LEN = 10
    MOLD_HEADER_LEN = 20
    MOLD_REQUEST_LEN = 20
    MOLD_HEARTBEAT_COUNT = 0
    MOLD_END_COUNT = 0xFFFF


# What mold_parse found.
cdef enum MoldPacket:
    MOLD_BAD = -1           # malformed: ``bad_offset`` names the first byte that is wrong
    MOLD_DATA = 0           # count >= 1 message blocks, every length inside the datagram
    MOLD_HEARTBEAT = 1
    MOLD_END = 2


cdef struct MoldHeader:
    const uint8_t *session  # points into the datagram (MOLD_SESSION_LEN bytes)
    uint64_t seq            # sequence number of the first message (next one if none)
    uint32_t count          # message blocks (0 for heartbeats and end of session)
    Py_ssize_t bad_offset   # MOLD_BAD: offset of the fault
    int bad_reason          # MOLD_BAD: a BadReason


cdef enum BadReason:
    BAD_NONE = 0
    BAD_SHORT_HEADER        # fewer than 20 bytes
    BAD_BLOCK_TRUNCATED     # a block's length runs past the datagram
    BAD_TRAILING            # bytes after the last block (or after a heartbeat's header)
    BAD_SEQUENCE_WRAP       # sequence number + count overflows 64 bits


cdef int mold_parse(const uint8_t *data, Py_ssize_t size, MoldHeader *h) noexcept nogil


cdef enum GapPolicy:
    GAP_STOP = 0            # an unrecoverable gap stops the feed (SequenceGap raised)
    GAP_CONTINUE = 1        # skip the range, count it, record it, go on


cdef enum:
    MAX_GAP_RECORDS = 64    # unrecoverable ranges kept (the count goes on past it)


cdef class MoldUDP64Sequencer(Consumer):
    # The consumer every message goes to, strictly in sequence (KIND_BINARY).
    cdef readonly Consumer inner
    # Session and position.
    cdef uint8_t session_id[MOLD_SESSION_LEN]
    cdef bint has_session
    cdef bint pinned_session        # session= given: never follow another
    cdef bint started               # a packet of the session was seen
    cdef uint64_t start_seq         # first sequence wanted (0: whatever arrives first)
    cdef readonly uint64_t next_seq          # the next message handed to ``inner``
    cdef uint64_t high              # one past the highest sequence number seen
    cdef uint64_t end_seq           # end of session seen: its sequence number (else 0)
    cdef readonly bint ended                 # every message up to end_seq was handed on
    cdef bint halted                # inner asked to stop mid-packet: buffer the rest
    # Reorder buffer: ``cap`` slots (a power of two) of ``slot_bytes`` each, slot of
    # sequence s = s & mask; slot_seq says which sequence a slot holds (valid if len >= 0).
    cdef uint8_t *arena
    cdef int32_t *slot_len
    cdef uint64_t *slot_seq
    cdef uint64_t cap
    cdef uint64_t mask
    cdef Py_ssize_t slot_bytes
    cdef readonly uint64_t buffered          # slots in use now
    # Recovery.
    cdef int fd                     # socket the requests are sent from (-1: none)
    cdef object sock                # keeps that socket alive
    cdef uint8_t addr[128]          # re-request server address (a sockaddr)
    cdef uint32_t addr_len
    cdef int64_t request_delay      # ns from a gap's detection to its first request
    cdef int64_t retry_timeout      # ns without progress before requests are repeated
    cdef int64_t heartbeat_timeout  # ns without a packet before the feed is stale
    cdef int max_retries
    cdef uint64_t max_request       # most messages per request (request-size limit)
    cdef uint64_t max_round         # most messages requested per round
    cdef int policy                 # a GapPolicy
    cdef bint pending               # gaps detected and not requested yet
    cdef uint64_t pending_from
    cdef int64_t pending_at
    cdef int64_t round_at           # time of the last request round (0: none)
    cdef uint64_t round_next_seq    # next_seq at that round (progress detection)
    cdef int retries
    cdef uint64_t requested_hi      # every gap below this was requested at least once
    cdef int64_t last_packet_at
    cdef readonly bint stale
    # Unrecoverable gaps: the first MAX_GAP_RECORDS [first, end) ranges.
    cdef uint64_t gap_first[MAX_GAP_RECORDS]
    cdef uint64_t gap_end[MAX_GAP_RECORDS]
    cdef bint failed                # GAP_STOP fired: check() raises SequenceGap
    cdef bint inner_error           # inner returned CONSUME_ERROR: check() asks it
    # Counters.
    cdef readonly uint64_t packets, messages, heartbeats, gaps, requests, requested
    cdef readonly uint64_t recovered, duplicates, reordered, unrecovered
    cdef readonly uint64_t unrecoverable_gaps, stale_periods, buffer_high_water
    cdef readonly uint64_t overflow, malformed, session_changes, request_errors
    cdef readonly uint64_t foreign_packets

    cdef bint present(self, uint64_t s) noexcept nogil
    cdef void store(self, uint64_t s, const uint8_t *m, uint16_t mlen) noexcept nogil
    cdef void clear_buffer(self) noexcept nogil
    cdef int deliver(self, const uint8_t *m, Py_ssize_t mlen,
                     const RecvStamp *stamp) noexcept nogil
    cdef int drain(self, const RecvStamp *stamp) noexcept nogil
    cdef void send_request(self, uint64_t seq, uint64_t count) noexcept nogil
    cdef void request_range(self, uint64_t lo, uint64_t hi) noexcept nogil
    cdef int tick(self, int64_t now, const RecvStamp *stamp) noexcept nogil
    cdef void adopt(self, const MoldHeader *h) noexcept nogil
