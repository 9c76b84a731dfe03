# cython: language_level=3
"""A UDP reader: one ``KIND_DATAGRAM`` message per datagram, many datagrams per call."""

import os

from libc.stdint cimport int64_t, uint8_t
from libc.stdlib cimport calloc, free, malloc

from hftcore.errors import ProtocolError

from hftcore._core.clock cimport monotonic_ns, realtime_ns
from hftcore.net.consumer cimport (
    CONSUME_ERROR,
    CONSUME_STOP,
    KIND_DATAGRAM,
    Consumer,
)
from hftcore.net.sockio cimport (
    HFT_MAX_BATCH,
    hft_recv_datagrams,
    wait_readable,
    would_block,
)

from hftcore.net.sockio import enable_kernel_timestamps


cdef class UdpReader:
    """Receive datagrams into preallocated slots and hand each on as one message.

    On Linux one ``recvmmsg`` call takes up to ``batch`` datagrams per wake-up; elsewhere a
    loop of non-blocking receives does.

    Parameters
    ----------
    sock : socket.socket
        A bound (and possibly connected or multicast-joined) datagram socket; not closed by
        the reader.
    max_datagram : int
        Slot size: the largest datagram taken whole (default 65535, the UDP maximum). A
        longer one is truncated by the kernel: the reader hands on the datagrams before
        it, then raises ``ProtocolError`` and counts it in ``truncated_datagrams``; the
        next :meth:`pump` goes on after it.
    batch : int
        Datagrams per system call at most (1-64, default 32).
    kernel_stamps : bool
        Ask for the kernel's per-datagram receive time (``SO_TIMESTAMPNS``).

    Attributes
    ----------
    bytes_received, messages, recv_calls, truncated_datagrams : int
        Counters.
    """

    def __cinit__(self):
        self.buf = NULL
        self.sizes = NULL
        self.truncated = NULL
        self.kernel = NULL

    def __init__(self, sock, Py_ssize_t max_datagram=65535, int batch=32,
                 bint kernel_stamps=True):
        if max_datagram < 1:
            raise ValueError(f"max_datagram must be >= 1, got {max_datagram}")
        if not 1 <= batch <= HFT_MAX_BATCH:
            raise ValueError(f"batch must be in 1..{HFT_MAX_BATCH}, got {batch}")
        self.sock = sock
        self.fd = sock.fileno()
        if self.fd < 0:
            raise ValueError("the socket is closed")
        self.max_datagram = max_datagram
        self.batch = batch
        self.buf = <uint8_t*>malloc(max_datagram * batch)
        self.sizes = <Py_ssize_t*>calloc(batch, sizeof(Py_ssize_t))
        self.truncated = <int*>calloc(batch, sizeof(int))
        self.kernel = <int64_t*>calloc(batch, sizeof(int64_t))
        if self.buf == NULL or self.sizes == NULL or self.truncated == NULL \
                or self.kernel == NULL:
            raise MemoryError(f"cannot allocate {batch} slots of {max_datagram} bytes")
        self.kernel_stamps = enable_kernel_timestamps(sock) if kernel_stamps else False

    def __dealloc__(self):
        free(self.buf)
        free(self.sizes)
        free(self.truncated)
        free(self.kernel)

    def fileno(self):
        """The socket's file descriptor."""
        return self.fd

    @property
    def last_stamp(self):
        """``(realtime_ns, monotonic_ns, kernel_ns)`` of the last datagram handed on."""
        return (self.stamp.realtime_ns, self.stamp.monotonic_ns,
                self.stamp.kernel_ns)

    cdef int _receive(self, double timeout, bint spin) noexcept nogil:
        # Fill the slots: 1 got datagrams, 0 timeout, -errno.
        cdef int r, w
        cdef int64_t deadline = 0, left
        cdef bint first = True
        while True:
            r = hft_recv_datagrams(self.fd, self.buf, self.max_datagram, self.batch,
                                   self.sizes, self.truncated, self.kernel,
                                   self.kernel_stamps)
            if r > 0:
                self.stamp.realtime_ns = realtime_ns()
                self.stamp.monotonic_ns = monotonic_ns()
                self.pending_first = 0
                self.pending_end = r
                self.recv_calls += 1
                return 1
            if not would_block(r):
                return r if r < 0 else 0
            if timeout <= 0:
                return 0
            if first:
                deadline = monotonic_ns() + <int64_t>(timeout * 1e9)
                first = False
            left = deadline - monotonic_ns()
            if left <= 0:
                return 0
            if not spin:
                w = wait_readable(self.fd, <int>((left + 999999) // 1000000))
                if w < 0:
                    return w

    def pump(self, Consumer consumer not None, double timeout=0.05, bint spin=False):
        """Hand on the datagrams of one wake-up (waiting up to ``timeout`` s for the first).

        Parameters
        ----------
        consumer : Consumer
            Gets ``on_message(data, size, KIND_DATAGRAM, stamp)`` per datagram, without the
            GIL; ``stamp.kernel_ns`` is that datagram's own kernel time.
        timeout : float
            Seconds to wait; 0 tries once.
        spin : bool
            Busy-poll without the GIL instead of sleeping in ``poll``.

        Returns
        -------
        int
            Datagrams handed on (0 on timeout). A consumer returning ``CONSUME_STOP``
            ends the call after that datagram; the rest of the batch is kept for the next
            call (none is dropped).

        Raises
        ------
        ProtocolError
            A datagram was longer than ``max_datagram`` (it is skipped and counted).
        OSError
            The receive failed.
        """
        cdef int r = 1
        cdef int i
        cdef int res = 0
        cdef int handed = 0
        cdef int bad = -1
        with nogil:
            if self.pending_first >= self.pending_end:
                r = self._receive(timeout, spin)
            if r == 1:
                while self.pending_first < self.pending_end:
                    i = self.pending_first
                    self.pending_first += 1
                    if self.truncated[i]:
                        self.truncated_datagrams += 1
                        bad = i
                        break
                    self.stamp.kernel_ns = self.kernel[i]
                    self.bytes_received += self.sizes[i]
                    self.messages += 1
                    handed += 1
                    res = consumer.on_message(self.buf + <Py_ssize_t>i * self.max_datagram,
                                              self.sizes[i], KIND_DATAGRAM,
                                              &self.stamp)
                    if res == CONSUME_STOP or res == CONSUME_ERROR:
                        break
        if r < 0:
            raise OSError(-r, os.strerror(-r))
        if res == CONSUME_ERROR:
            consumer.check()
        if bad >= 0:
            raise ProtocolError(
                f"datagram longer than max_datagram={self.max_datagram} bytes (truncated "
                "by the kernel, skipped); raise max_datagram", -1, None, 0)
        return handed

    def counters(self):
        """The counters as a dict."""
        return {"bytes": self.bytes_received, "messages": self.messages,
                "recv_calls": self.recv_calls, "truncated": self.truncated_datagrams}
