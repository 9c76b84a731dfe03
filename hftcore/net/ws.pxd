# cython: language_level=3
from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore.net.consumer cimport Consumer, RecvStamp


# What FrameParser.parse returns.
cdef enum ParseEvent:
    EV_MORE = 0            # every complete frame is handled: receive more bytes
    EV_STOP = 1            # the consumer returned CONSUME_STOP (the rest stays buffered)
    EV_CONTROL = 2         # a ping or close frame waits in ctl_* for the owner
    EV_ERROR = -1          # protocol error: err_* say which, where, and the close code
    EV_CONSUMER_ERROR = -2  # the consumer returned CONSUME_ERROR (call its check())


cdef class FrameParser:
    """RFC 6455 server-to-client framing over one receive buffer (see ws.pyx).

    Invariants: ``0 <= start <= end <= cap``; bytes ``buf[start:end]`` are received and
    not yet parsed; ``base + start`` is their offset in the stream (bytes after the
    opening handshake); ``msg[:msg_len]`` is the message being reassembled when
    ``msg_opcode != 0``; ``remaining > 0`` means the next ``remaining`` bytes are payload
    of the current frame, copied into ``msg``.
    """
    cdef uint8_t* buf             # receive buffer, cap bytes
    cdef readonly Py_ssize_t cap
    cdef Py_ssize_t start         # first unparsed byte
    cdef Py_ssize_t end           # one past the last received byte
    cdef int64_t base             # stream offset of buf[0]
    cdef uint8_t* msg             # reassembly buffer, max_message bytes
    cdef readonly Py_ssize_t max_message
    cdef Py_ssize_t msg_len       # bytes in msg
    cdef int msg_opcode           # 1 text / 2 binary: a message is being reassembled; 0 none
    cdef int64_t msg_offset       # stream offset of its first frame
    cdef uint64_t remaining       # payload bytes of a frame larger than buf still to come
    cdef bint frame_fin           # that frame is its message's last
    cdef readonly bint validate_utf8
    # The control frame handed to the owner (EV_CONTROL); data points into buf and stays
    # valid until the next prepare().
    cdef int ctl_opcode
    cdef const uint8_t* ctl_data
    cdef Py_ssize_t ctl_len
    cdef int64_t ctl_offset
    # The protocol error (EV_ERROR).
    cdef int err                  # a ParseError
    cdef int64_t err_offset       # stream offset of the offending frame (or byte)
    cdef int err_close            # close code to send: 1002, 1007, 1009
    cdef int64_t err_a            # detail (opcode, length, index)
    # Counters.
    cdef readonly int64_t frames
    cdef readonly int64_t messages
    cdef readonly int64_t pongs
    cdef int delivered            # messages handed on since reset by the owner

    cdef Py_ssize_t prepare(self) noexcept nogil
    cdef int parse(self, Consumer consumer, const RecvStamp* stamp) noexcept nogil
    cdef int _deliver(self, Consumer consumer, const RecvStamp* stamp) noexcept nogil
    cdef int _fail(self, int err, int64_t offset, int close, int64_t a) noexcept nogil


cdef bint utf8_valid(const uint8_t* s, Py_ssize_t n, Py_ssize_t* bad) noexcept nogil


cdef class WebSocket:
    cdef readonly FrameParser parser
    cdef readonly object client       # websocket-client's WebSocket (handshake, sending)
    cdef readonly object sock         # its socket (socket.socket or ssl.SSLSocket)
    cdef readonly str url
    cdef int fd
    cdef int tls                      # 0 plain TCP, 1 ssl.SSLSocket, 2 ssl.MemoryBIO (_TlsChannel)
    cdef object tls_view              # memoryview over parser.buf (TLS reads)
    cdef object channel               # the _TlsChannel (tls == 2)
    cdef uint8_t* cipher              # ciphertext receive buffer (tls == 2)
    cdef Py_ssize_t cipher_cap
    cdef object cipher_view
    cdef readonly bint kernel_stamps
    cdef object send_lock
    cdef object recv_lock             # one receiving thread at a time
    cdef readonly object close_code   # None while open
    cdef readonly str close_reason
    cdef bint close_sent
    cdef bint closed                  # socket closed; pump raises ConnectionClosed
    cdef object pending               # error to raise on the next call (after messages)
    cdef RecvStamp stamp
    cdef readonly int last_kind       # kind of the message recv() returned last
    cdef readonly int64_t bytes_received
    cdef readonly int64_t recv_calls
    cdef readonly int64_t pings_answered
    cdef readonly int64_t pings_received

    cdef int _run(self, Consumer consumer) except -1
    cdef object _pump_plain(self, Consumer consumer, double timeout, bint spin)
    cdef int _after_event(self, Consumer consumer, int ev) except -1
    cdef int _receive(self, double timeout, bint spin) except -1
    cdef int _receive_bio(self, Py_ssize_t space, double timeout, bint spin) except -1
