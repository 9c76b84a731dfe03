# cython: language_level=3
"""SoupBinTCP 3.00 framing: a TCP byte stream of logical packets.

Every packet is a 2-byte big-endian length (of what follows: the type byte plus the
payload), a type byte, the payload. Server to client: '+' debug, 'A' login accepted
(session alpha 10, left space padded; sequence number numeric 20, left space padded: the
next sequenced message), 'J' login rejected (reason 'A' not authorized, 'S' session not
available), 'S' sequenced data, 'U' unsequenced data, 'H' server heartbeat, 'Z' end of
session. Client to server: '+' debug, 'L' login request (username alpha 6, password alpha
10, requested session alpha 10, requested sequence number numeric 20), 'U' unsequenced
data, 'R' client heartbeat, 'O' logout request.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore.net.consumer cimport Consumer, RecvStamp


cdef enum:
    SOUP_MAX_PACKET = 2 + 0xFFFF     # length prefix + the longest packet
    SOUP_SESSION_LEN = 10
    SOUP_SEQ_LEN = 20


cdef enum SoupError:
    SOUP_OK = 0
    SOUP_ZERO_LENGTH          # a packet length of 0 (no type byte)
    SOUP_UNKNOWN_TYPE         # a type byte a server never sends
    SOUP_BAD_LOGIN            # a login accepted/rejected of the wrong length or content
    SOUP_NOT_LOGGED_IN        # sequenced data before login accepted
    SOUP_SEQUENCE_GAP         # login accepted further than the next message wanted
    SOUP_AFTER_END            # a packet after end of session
    SOUP_NO_MEMORY            # growing the pending buffer failed


cdef class SoupBinTCPFramer(Consumer):
    # Sequenced messages go to ``inner`` (KIND_BINARY), unsequenced ones to ``unsequenced``.
    cdef readonly Consumer inner
    cdef readonly Consumer unsequenced_inner
    # The packet split across receive calls (at most one, SOUP_MAX_PACKET bytes).
    cdef uint8_t *pending
    cdef Py_ssize_t pending_n
    cdef Py_ssize_t pending_off           # first unprocessed byte of ``pending``
    cdef Py_ssize_t pending_cap
    cdef uint64_t stream_pos              # stream offset of the next packet
    # Session state.
    cdef uint8_t session_id[SOUP_SESSION_LEN]
    cdef readonly bint logged_in
    cdef readonly int rejected            # the reject reason byte, 0 if none
    cdef readonly bint ended              # end of session received
    cdef readonly uint64_t next_seq       # sequence number of the next message handed on
    cdef uint64_t packet_seq              # sequence number of the next 'S' packet
    cdef readonly uint64_t accepted_seq   # the sequence number the last login accepted
    cdef readonly int64_t last_rx_ns      # CLOCK_MONOTONIC of the last packet
    # Error of the last CONSUME_ERROR.
    cdef int err
    cdef uint64_t err_offset
    cdef int err_type
    cdef bint inner_error
    # Counters.
    cdef readonly uint64_t bytes_in, packets, messages, unsequenced, heartbeats, debug
    cdef readonly uint64_t duplicates, logins

    cdef int packet(self, const uint8_t *p, Py_ssize_t n, uint64_t offset,
                    const RecvStamp *stamp) noexcept nogil
    cdef int fail(self, int err, uint64_t offset, int t) noexcept nogil
    cdef int append(self, const uint8_t *data, Py_ssize_t n) noexcept nogil
