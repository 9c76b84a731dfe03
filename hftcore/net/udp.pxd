# cython: language_level=3
from libc.stdint cimport int64_t, uint8_t

from hftcore.net.consumer cimport Consumer, RecvStamp


cdef class UdpReader:
    cdef readonly object sock
    cdef int fd
    cdef uint8_t* buf                 # batch slots of max_datagram bytes each
    cdef Py_ssize_t* sizes            # per slot: the datagram's length
    cdef int* truncated               # per slot: 1 when longer than max_datagram
    cdef int64_t* kernel              # per slot: the kernel's receive time (0: none)
    cdef readonly Py_ssize_t max_datagram
    cdef readonly int batch           # datagrams received per system call at most
    cdef int pending_first            # slots [pending_first, pending_end) not yet handed on
    cdef int pending_end
    cdef readonly bint kernel_stamps
    cdef readonly int64_t bytes_received
    cdef readonly int64_t messages    # datagrams handed to the consumer
    cdef readonly int64_t recv_calls  # system calls that returned datagrams
    cdef readonly int64_t truncated_datagrams
    cdef RecvStamp stamp            # the last receive call's timestamps
    cdef int _receive(self, double timeout, bint spin) noexcept nogil
