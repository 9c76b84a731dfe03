# cython: language_level=3
"""Socket helpers of the receive path (see sockio.pxd for the nogil functions)."""

import os
import socket as _socket

from libc.stdint cimport int64_t, uint8_t

from hftcore._core.clock cimport monotonic_ns

#: ``SO_TIMESTAMPNS`` on Linux (``socket`` does not export it); -1 where unsupported.
SO_TIMESTAMPNS = HFT_SO_TIMESTAMPNS
#: Whether datagram readers get many datagrams per system call (``recvmmsg``).
HAVE_RECVMMSG = bool(HFT_HAVE_RECVMMSG)


cdef int recv_wait(int fd, uint8_t* buf, Py_ssize_t size, RecvStamp* stamp,
                   bint kernel_stamps, double timeout, bint spin,
                   Py_ssize_t* received) noexcept nogil:
    """Receive once, waiting up to ``timeout`` seconds for data.

    Tries a non-blocking receive first (one system call when data is waiting); otherwise
    waits in poll() (or, with ``spin``, retries the non-blocking receive until the
    deadline, never sleeping). Returns 1 with ``received[0]`` set (0 = the peer closed),
    0 on timeout, or ``-errno``.
    """
    cdef Py_ssize_t n
    cdef int r
    cdef int64_t deadline, left
    n = recv_stamped(fd, buf, size, stamp, kernel_stamps)
    if not would_block(n):
        if n < 0:
            return <int>n
        received[0] = n
        return 1
    if timeout <= 0:
        return 0
    deadline = monotonic_ns() + <int64_t>(timeout * 1e9)
    while True:
        if spin:
            n = recv_stamped(fd, buf, size, stamp, kernel_stamps)
            if not would_block(n):
                if n < 0:
                    return <int>n
                received[0] = n
                return 1
            if monotonic_ns() >= deadline:
                return 0
            continue
        left = deadline - monotonic_ns()
        if left <= 0:
            return 0
        r = wait_readable(fd, <int>((left + 999999) // 1000000))
        if r < 0:
            return r
        if r == 0:
            continue
        n = recv_stamped(fd, buf, size, stamp, kernel_stamps)
        if not would_block(n):
            if n < 0:
                return <int>n
            received[0] = n
            return 1


def _fd(sock):
    return sock if isinstance(sock, int) else sock.fileno()


def enable_kernel_timestamps(sock):
    """Ask the kernel to stamp received data (``SO_TIMESTAMPNS``).

    Parameters
    ----------
    sock : socket.socket or int
        The socket (or its file descriptor).

    Returns
    -------
    bool
        Whether the kernel accepted; ``False`` on systems without ``SO_TIMESTAMPNS`` and
        on objects that are not sockets. A reader asked for kernel stamps on a socket where
        this returned ``False`` reports ``kernel_ns = 0``.
    """
    if HFT_SO_TIMESTAMPNS < 0:
        return False
    fd = _fd(sock)
    try:
        s = _socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        s.setsockopt(_socket.SOL_SOCKET, HFT_SO_TIMESTAMPNS, 1)
        return s.getsockopt(_socket.SOL_SOCKET, HFT_SO_TIMESTAMPNS) != 0
    except OSError:
        return False
    finally:
        s.close()


def set_nonblocking(sock, bint flag=True):
    """Set or clear ``O_NONBLOCK`` on a socket's file descriptor.

    The readers do not need it (they receive with ``MSG_DONTWAIT``); it is for callers that
    drive a socket themselves. Note that ``socket.settimeout`` also changes the flag.
    """
    os.set_blocking(_fd(sock), not flag)


def is_nonblocking(sock):
    """Whether ``O_NONBLOCK`` is set on the socket's file descriptor."""
    return not os.get_blocking(_fd(sock))


def recv_into_stamped(sock, buffer, bint kernel_stamps=False, double timeout=0.0,
                      bint spin=False):
    """Receive once into ``buffer`` with timestamps (the Python face of ``recv_wait``).

    Parameters
    ----------
    sock : socket.socket or int
    buffer : writable buffer (bytearray, numpy array, memoryview)
    kernel_stamps : bool
        Parse the kernel's receive time (needs :func:`enable_kernel_timestamps`).
    timeout : float
        Seconds to wait for data; 0 tries once without waiting.
    spin : bool
        Busy-poll instead of sleeping in poll().

    Returns
    -------
    tuple or None
        ``(nbytes, (realtime_ns, monotonic_ns, kernel_ns))``; ``nbytes == 0`` means the
        peer closed. ``None`` on timeout.

    Raises
    ------
    OSError
        The receive failed (``errno`` set).
    """
    cdef uint8_t[::1] view = buffer
    cdef int fd = _fd(sock)
    cdef RecvStamp stamp
    cdef Py_ssize_t n = 0
    cdef int r
    cdef Py_ssize_t size = view.shape[0]
    cdef uint8_t* ptr = &view[0] if size > 0 else NULL
    with nogil:
        r = recv_wait(fd, ptr, size, &stamp, kernel_stamps, timeout, spin, &n)
    if r < 0:
        raise OSError(-r, os.strerror(-r))
    if r == 0:
        return None
    return n, (stamp.realtime_ns, stamp.monotonic_ns, stamp.kernel_ns)


def wait(sock, double timeout):
    """Wait up to ``timeout`` seconds for ``sock`` to be readable (``poll``); a bool."""
    cdef int fd = _fd(sock)
    cdef int r
    cdef int ms = <int>(timeout * 1000) if timeout >= 0 else -1
    with nogil:
        r = wait_readable(fd, ms)
    if r < 0:
        raise OSError(-r, os.strerror(-r))
    return r > 0
