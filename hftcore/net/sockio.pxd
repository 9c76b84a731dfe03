# cython: language_level=3
"""Receiving into a caller's buffer with timestamps, without the GIL.

The shared socket layer of every reader in ``net/`` (WebSocket, TCP, UDP, and the ITCH
transports). Everything here is ``noexcept nogil`` and allocates nothing: errors come back
as ``-errno``.

Timestamps (see :c:type:`RecvStamp`): ``realtime_ns`` and ``monotonic_ns`` are read when
the receive call returns; ``kernel_ns`` is the kernel's receive time of the data
(``SO_TIMESTAMPNS`` control message, CLOCK_REALTIME) when the caller asks for it and the
socket was set up with :func:`enable_kernel_timestamps`, else 0. On a TCP socket the
kernel reports the time of the most recent segment among those read. Linux switches
stamping on for the whole stack lazily when the first socket asks for it: data arriving
in the first moments after that may carry no stamp (``kernel_ns = 0`` for that receive).

Platforms: Linux has kernel timestamps and ``recvmmsg``; other POSIX systems get
``kernel_ns = 0`` and one ``recvfrom`` per datagram.
"""

from libc.stdint cimport int64_t, uint8_t

from hftcore._core.clock cimport monotonic_ns, realtime_ns
from hftcore.net.consumer cimport RecvStamp


cdef extern from * nogil:
    """
    #include <errno.h>
    #include <poll.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <sys/uio.h>
    #include <time.h>
    #include <stdint.h>

    /* SO_TIMESTAMPNS: 35 on Linux (x86, arm, ...); the control message type
       SCM_TIMESTAMPNS has the same value. Other systems: no nanosecond stamps. */
    #if defined(__linux__)
    #define HFT_SO_TIMESTAMPNS 35
    #define HFT_HAVE_RECVMMSG 1
    #else
    #define HFT_SO_TIMESTAMPNS (-1)
    #define HFT_HAVE_RECVMMSG 0
    #endif

    /* Control-message space for one struct timespec, aligned as the kernel wants. */
    #define HFT_CMSG_BYTES 64

    /* One receive: recvmsg with MSG_DONTWAIT, the kernel stamp parsed from the control
       messages into *kernel_ns (0 when there is none). Retries EINTR. Returns the
       number of bytes (0 = orderly shutdown by the peer), or -errno. */
    static Py_ssize_t hft_recv_ts(int fd, uint8_t *buf, Py_ssize_t size,
                                  int64_t *kernel_ns, int want_stamp) {
        ssize_t n;
        *kernel_ns = 0;
        if (!want_stamp || HFT_SO_TIMESTAMPNS < 0) {
            do { n = recv(fd, buf, (size_t)size, MSG_DONTWAIT); }
            while (n < 0 && errno == EINTR);
            return n < 0 ? -(Py_ssize_t)errno : (Py_ssize_t)n;
        }
        {
            struct msghdr msg;
            struct iovec iov;
            union { char bytes[HFT_CMSG_BYTES]; struct cmsghdr align; } control;
            struct cmsghdr *c;
            iov.iov_base = buf;
            iov.iov_len = (size_t)size;
            memset(&msg, 0, sizeof(msg));
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.bytes;
            msg.msg_controllen = sizeof(control.bytes);
            do { n = recvmsg(fd, &msg, MSG_DONTWAIT); }
            while (n < 0 && errno == EINTR);
            if (n < 0) return -(Py_ssize_t)errno;
            for (c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == HFT_SO_TIMESTAMPNS
                        && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                    *kernel_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
                }
            }
            return (Py_ssize_t)n;
        }
    }

    /* poll() for readability: 1 readable (or error/hangup pending: the next receive
       reports it), 0 timeout, -errno. EINTR counts as a timeout (the caller loops). */
    static int hft_wait_readable(int fd, int timeout_ms) {
        struct pollfd p;
        int r;
        p.fd = fd;
        p.events = POLLIN;
        p.revents = 0;
        r = poll(&p, 1, timeout_ms);
        if (r < 0) return errno == EINTR ? 0 : -errno;
        return r > 0 ? 1 : 0;
    }

    /* Up to `count` datagrams into `count` slots of `slot` bytes each; sizes[i] gets each
       datagram's length (truncated datagrams: flags[i] = 1), kernel[i] its kernel stamp.
       Returns the number of datagrams, or -errno (-EAGAIN: none waiting). */
    #define HFT_MAX_BATCH 64
    static int hft_recv_datagrams(int fd, uint8_t *buf, Py_ssize_t slot, int count,
                                  Py_ssize_t *sizes, int *truncated, int64_t *kernel,
                                  int want_stamp) {
    #if HFT_HAVE_RECVMMSG
        struct mmsghdr msgs[HFT_MAX_BATCH];
        struct iovec iovs[HFT_MAX_BATCH];
        union { char bytes[HFT_CMSG_BYTES]; struct cmsghdr align; } control[HFT_MAX_BATCH];
        int i, r;
        if (count > HFT_MAX_BATCH) count = HFT_MAX_BATCH;
        memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
        for (i = 0; i < count; i++) {
            iovs[i].iov_base = buf + (Py_ssize_t)i * slot;
            iovs[i].iov_len = (size_t)slot;
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            if (want_stamp) {
                msgs[i].msg_hdr.msg_control = control[i].bytes;
                msgs[i].msg_hdr.msg_controllen = sizeof(control[i].bytes);
            }
        }
        do { r = recvmmsg(fd, msgs, (unsigned int)count, MSG_DONTWAIT, NULL); }
        while (r < 0 && errno == EINTR);
        if (r < 0) return -errno;
        for (i = 0; i < r; i++) {
            struct cmsghdr *c;
            sizes[i] = (Py_ssize_t)msgs[i].msg_len;
            truncated[i] = (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
            kernel[i] = 0;
            if (!want_stamp) continue;
            for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL;
                    c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == HFT_SO_TIMESTAMPNS
                        && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
                    struct timespec ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                    kernel[i] = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
                }
            }
        }
        return r;
    #else
        int i;
        ssize_t n;
        if (count > HFT_MAX_BATCH) count = HFT_MAX_BATCH;
        for (i = 0; i < count; i++) {
            do { n = recv(fd, buf + (Py_ssize_t)i * slot, (size_t)slot, MSG_DONTWAIT); }
            while (n < 0 && errno == EINTR);
            if (n < 0) {
                if (i > 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return i;
                return -errno;
            }
            sizes[i] = (Py_ssize_t)n;
            truncated[i] = 0;
            kernel[i] = 0;
        }
        return count;
    #endif
    }
    """
    const int HFT_SO_TIMESTAMPNS
    const int HFT_HAVE_RECVMMSG
    const int HFT_MAX_BATCH
    Py_ssize_t hft_recv_ts(int fd, uint8_t* buf, Py_ssize_t size, int64_t* kernel_ns,
                           int want_stamp)
    int hft_wait_readable(int fd, int timeout_ms)
    int hft_recv_datagrams(int fd, uint8_t* buf, Py_ssize_t slot, int count,
                           Py_ssize_t* sizes, int* truncated, int64_t* kernel,
                           int want_stamp)


cdef extern from "<errno.h>" nogil:
    const int EAGAIN
    const int EWOULDBLOCK
    const int EINTR
    const int ECONNRESET


cdef inline Py_ssize_t recv_stamped(int fd, uint8_t* buf, Py_ssize_t size,
                                    RecvStamp* stamp, bint kernel_stamps) noexcept nogil:
    """One non-blocking receive into ``buf[:size]``: bytes received (0 = the peer closed),
    or ``-errno`` (``-EAGAIN`` when nothing is waiting). ``stamp`` is filled when the call
    returns (kernel_ns from SO_TIMESTAMPNS when ``kernel_stamps``, else 0)."""
    cdef int64_t kernel = 0
    cdef Py_ssize_t n = hft_recv_ts(fd, buf, size, &kernel, kernel_stamps)
    stamp.realtime_ns = realtime_ns()
    stamp.monotonic_ns = monotonic_ns()
    stamp.kernel_ns = kernel
    return n


cdef inline int wait_readable(int fd, int timeout_ms) noexcept nogil:
    """poll() for readability: 1 readable (or an error/EOF the next receive reports), 0
    timeout (also on EINTR), ``-errno``. ``timeout_ms < 0`` waits forever."""
    return hft_wait_readable(fd, timeout_ms)


cdef inline bint would_block(Py_ssize_t result) noexcept nogil:
    """True when a receive's result means "nothing waiting" (not an error)."""
    return result == -EAGAIN or result == -EWOULDBLOCK


cdef int recv_wait(int fd, uint8_t* buf, Py_ssize_t size, RecvStamp* stamp,
                   bint kernel_stamps, double timeout, bint spin,
                   Py_ssize_t* received) noexcept nogil
