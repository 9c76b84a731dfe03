# cython: language_level=3
"""A plain TCP reader: each receive call's bytes handed on as one ``KIND_STREAM`` chunk.

The consumer frames the byte stream itself (SoupBinTCP, a length-prefixed protocol, ...):
a chunk may end inside a message.
"""

import os

from libc.stdlib cimport free, malloc

from hftcore.errors import ConnectionClosed

from hftcore.net.consumer cimport CONSUME_ERROR, KIND_STREAM, Consumer
from hftcore.net.sockio cimport recv_wait

from hftcore.net.sockio import enable_kernel_timestamps


cdef class TcpReader:
    """Receive a TCP byte stream into one preallocated buffer and hand each chunk on.

    Parameters
    ----------
    sock : socket.socket
        A connected stream socket. The reader receives with ``MSG_DONTWAIT`` and waits in
        ``poll``, so the socket may be blocking or not; it is not closed by the reader.
    buffer_size : int
        Bytes received per call at most (the chunk size bound), default 1 MiB.
    kernel_stamps : bool
        Ask for the kernel's receive time (``SO_TIMESTAMPNS``); :attr:`kernel_stamps` says
        whether the kernel accepted. Default True.

    Attributes
    ----------
    bytes_received, messages, recv_calls : int
        Counters: bytes, chunks handed on, receive calls that returned data.
    closed : bool
        The peer closed its side (a later :meth:`pump` raises ``ConnectionClosed``).
    """

    def __cinit__(self):
        self.buf = NULL

    def __init__(self, sock, Py_ssize_t buffer_size=1 << 20, bint kernel_stamps=True):
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self.sock = sock
        self.fd = sock.fileno()
        if self.fd < 0:
            raise ValueError("the socket is closed")
        self.buffer_size = buffer_size
        self.buf = <uint8_t*>malloc(buffer_size)
        if self.buf == NULL:
            raise MemoryError(f"cannot allocate a {buffer_size}-byte receive buffer")
        self.kernel_stamps = enable_kernel_timestamps(sock) if kernel_stamps else False

    def __dealloc__(self):
        free(self.buf)

    def fileno(self):
        """The socket's file descriptor."""
        return self.fd

    @property
    def last_stamp(self):
        """``(realtime_ns, monotonic_ns, kernel_ns)`` of the last receive call."""
        return (self.stamp.realtime_ns, self.stamp.monotonic_ns,
                self.stamp.kernel_ns)

    def pump(self, Consumer consumer not None, double timeout=0.05, bint spin=False):
        """Receive once (waiting up to ``timeout`` s) and hand the chunk to ``consumer``.

        Parameters
        ----------
        consumer : Consumer
            Gets ``on_message(data, size, KIND_STREAM, stamp)`` without the GIL.
        timeout : float
            Seconds to wait for data; 0 tries once.
        spin : bool
            Busy-poll the socket without the GIL instead of sleeping in ``poll``.

        Returns
        -------
        int
            1 when a chunk was handed on, 0 on timeout.

        Raises
        ------
        ConnectionClosed
            The peer closed the stream (code 1006).
        OSError
            The receive failed.
        """
        cdef Py_ssize_t n = 0
        cdef int r
        cdef int res = 0
        if self.closed:
            raise ConnectionClosed(1006, "end of stream", None)
        with nogil:
            r = recv_wait(self.fd, self.buf, self.buffer_size, &self.stamp,
                          self.kernel_stamps, timeout, spin, &n)
            if r == 1 and n > 0:
                self.recv_calls += 1
                self.bytes_received += n
                self.messages += 1
                res = consumer.on_message(self.buf, n, KIND_STREAM, &self.stamp)
        if r < 0:
            raise OSError(-r, os.strerror(-r))
        if r == 0:
            return 0
        if n == 0:
            self.recv_calls += 1
            self.closed = True
            raise ConnectionClosed(1006, "end of stream", None)
        if res == CONSUME_ERROR:
            consumer.check()
        return 1

    def counters(self):
        """The counters as a dict (bytes, messages, recv_calls)."""
        return {"bytes": self.bytes_received, "messages": self.messages,
                "recv_calls": self.recv_calls}
