# cython: language_level=3
from libc.stdint cimport int64_t, uint8_t

from hftcore.net.consumer cimport Consumer, RecvStamp


cdef class TcpReader:
    cdef readonly object sock        # the socket (kept open by the reader's reference)
    cdef int fd
    cdef uint8_t* buf                # buffer_size bytes, malloc'd once
    cdef readonly Py_ssize_t buffer_size
    cdef readonly bint kernel_stamps  # SO_TIMESTAMPNS accepted by the kernel
    cdef readonly bint closed        # end of stream seen
    cdef readonly int64_t bytes_received
    cdef readonly int64_t messages   # chunks handed to the consumer
    cdef readonly int64_t recv_calls  # receive calls that returned data or EOF
    cdef RecvStamp stamp            # the last receive call's timestamps
