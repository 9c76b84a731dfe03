# cython: language_level=3, boundscheck=False, wraparound=False
"""A minimal socket reader with the shared readers' ``pump`` interface.

Stands in for ``hftcore.net.udp.UdpReader`` / ``hftcore.net.tcp.TcpReader`` where those
are not available: ``poll`` then ``recv`` into one preallocated buffer without the GIL,
each datagram (or TCP chunk) handed to the consumer with CLOCK_REALTIME/MONOTONIC stamps.
"""

from libc.stdint cimport uint8_t
from libc.stdlib cimport free, malloc

from hftcore.net.consumer cimport (
    CONSUME_ERROR,
    CONSUME_OK,
    CONSUME_STOP,
    KIND_DATAGRAM,
    KIND_STREAM,
    Consumer,
    RecvStamp,
    stamp_now,
)


cdef extern from *:
    """
    #include <errno.h>
    #include <poll.h>
    #include <sys/socket.h>
    static inline int hft_wait_readable(int fd, int timeout_ms) {
        struct pollfd p; p.fd = fd; p.events = POLLIN; p.revents = 0;
        int r = poll(&p, 1, timeout_ms);
        return r < 0 ? -errno : r;
    }
    static inline ssize_t hft_recv(int fd, void *buf, size_t n, int dontwait) {
        ssize_t r = recv(fd, buf, n, dontwait ? MSG_DONTWAIT : 0);
        return r < 0 ? -errno : r;
    }
    """
    int hft_wait_readable(int fd, int timeout_ms) noexcept nogil
    ssize_t hft_recv(int fd, void *buf, size_t n, int dontwait) noexcept nogil
    int EAGAIN
    int EINTR


class ConnectionClosed(ConnectionError):
    """The peer closed the TCP connection."""


cdef class SocketPump:
    """Reads a socket for a consumer: ``pump(consumer, timeout)`` per loop step.

    Parameters
    ----------
    sock : socket.socket
        A UDP (datagrams) or TCP (stream) socket; its blocking mode is left alone (reads
        use ``MSG_DONTWAIT`` after ``poll``).
    buffer_size : int, default 1 << 16
        Receive buffer (one datagram must fit).
    batch : int, default 64
        Most receive calls per ``pump`` once data is there.
    """

    cdef object sock
    cdef int fd
    cdef bint stream
    cdef uint8_t *buf
    cdef Py_ssize_t size
    cdef int batch
    cdef readonly unsigned long long receives
    cdef readonly unsigned long long bytes_received

    def __cinit__(self, sock, Py_ssize_t buffer_size=1 << 16, int batch=64):
        import socket as _socket
        self.sock = sock
        self.fd = sock.fileno()
        self.stream = sock.type == _socket.SOCK_STREAM
        self.size = buffer_size
        self.batch = batch
        self.buf = <uint8_t *>malloc(buffer_size)
        if self.buf == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.buf)

    def pump(self, Consumer consumer not None, double timeout=0.05, bint spin=False):
        """Wait up to ``timeout`` s for data, hand what arrived to ``consumer``.

        Returns
        -------
        int
            Datagrams (or chunks) handed on; 0 on timeout; -1 when the consumer asked to
            stop.

        Raises
        ------
        ConnectionClosed
            TCP peer closed the connection.
        OSError
            A receive failed.
        """
        cdef int ms = <int>(timeout * 1000) if not spin else 0
        cdef int r, i, rc = CONSUME_OK
        cdef Py_ssize_t n = 0
        cdef int handed = 0
        cdef RecvStamp stamp
        cdef int err = 0
        with nogil:
            r = hft_wait_readable(self.fd, ms)
            if r > 0:
                for i in range(self.batch):
                    n = hft_recv(self.fd, self.buf, self.size, 1)
                    if n < 0:
                        if n != -EAGAIN and n != -EINTR:
                            err = <int>-n
                        break
                    if n == 0 and self.stream:
                        break
                    stamp_now(&stamp)
                    self.receives += 1
                    self.bytes_received += n
                    handed += 1
                    rc = consumer.on_message(self.buf, n,
                                             KIND_STREAM if self.stream else KIND_DATAGRAM,
                                             &stamp)
                    if rc != CONSUME_OK:
                        break
        if rc == CONSUME_ERROR:
            consumer.check()
            raise RuntimeError("consumer returned CONSUME_ERROR without storing an error")
        if rc == CONSUME_STOP:
            return -1
        if err:
            raise OSError(err, "recv failed")
        if r > 0 and n == 0 and self.stream and handed == 0:
            raise ConnectionClosed("the peer closed the connection")
        return handed
