# cython: language_level=3, boundscheck=False, wraparound=False
"""The consumer that applies live ITCH messages to an order book without the GIL.

A transport (MoldUDP64 sequencer, SoupBinTCP framer) hands it one unframed message at a
time, in sequence; it calls the book's per-message apply (``book_apply_message``, the
same ``apply_one`` as the file path) and records the stage latencies.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

from hftcore._core.bytes cimport load_be48
from hftcore._core.clock cimport monotonic_ns, realtime_ns
from hftcore._core.status cimport Status, raise_status, status_clear
from hftcore.itch._book cimport OrderBookCore, book_apply_message
from hftcore.latency.stages cimport Stages
from hftcore.net.consumer cimport CONSUME_ERROR, CONSUME_OK, Consumer, RecvStamp

#: Stamps recorded per message, in this order (see :class:`BookConsumer`).
STAMPS = ("kernel", "recv_rt", "recv", "applied", "event", "applied_rt")
#: Stages: kernel receive -> recv returned (CLOCK_REALTIME), recv -> applied
#: (CLOCK_MONOTONIC), ITCH timestamp -> applied (CLOCK_REALTIME, needs ``event_epoch_ns``).
PAIRS = (("kernel", "recv_rt"), ("recv", "applied"), ("event", "applied_rt"))

cdef enum:
    S_KERNEL = 0
    S_RECV_RT
    S_RECV
    S_APPLIED
    S_EVENT
    S_APPLIED_RT
    N_STAMPS


def new_stages():
    """The :class:`~hftcore.latency.Stages` a :class:`BookConsumer` records into."""
    return Stages(list(STAMPS), pairs=[list(p) for p in PAIRS], arrival="recv", sender=None)


cdef class BookConsumer(Consumer):
    """Applies each message it is handed to ``book`` (an :class:`hftcore.itch.OrderBook`).

    Parameters
    ----------
    book : OrderBook
    stages : hftcore.latency.Stages, optional
        Made by :func:`new_stages`; per message it records ``kernel_to_recv_rt`` (the
        kernel's stamp to the receive call's return), ``recv_to_applied`` (the receive
        call's return to the message applied: every message of a packet counts from the
        same receive) and, with ``event_epoch_ns``, ``event_to_applied_rt``.
    event_epoch_ns : int, optional
        CLOCK_REALTIME nanoseconds of the ITCH day's midnight (ITCH timestamps count from
        midnight US Eastern): ``event = event_epoch_ns + timestamp``. Meaningful only when
        the sender's clock and this one agree (a live feed with synchronised clocks, or
        the local exchange paced by timestamps with a known start); otherwise the stage
        measures the clock offset, not latency.
    """

    cdef readonly OrderBookCore book
    cdef Stages stages
    cdef int64_t stamps[N_STAMPS]
    cdef int64_t event_epoch
    cdef Status st
    cdef bint failed
    cdef readonly uint64_t messages

    def __init__(self, OrderBookCore book not None, Stages stages=None, event_epoch_ns=None):
        if stages is not None and stages.n_stamps != N_STAMPS:
            raise ValueError("stages must come from hftcore.itch._feed.new_stages()")
        self.book = book
        self.stages = stages
        self.event_epoch = 0 if event_epoch_ns is None else int(event_epoch_ns)
        status_clear(&self.st)

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        if self.failed:
            return CONSUME_ERROR
        if book_apply_message(&self.book.b, data, size, &self.st) < 0:
            self.failed = True
            return CONSUME_ERROR
        self.messages += 1
        if self.stages is not None:
            self.stamps[S_KERNEL] = stamp.kernel_ns
            self.stamps[S_RECV_RT] = stamp.realtime_ns
            self.stamps[S_RECV] = stamp.monotonic_ns
            self.stamps[S_APPLIED] = monotonic_ns()
            if self.event_epoch and size >= 11:
                self.stamps[S_EVENT] = self.event_epoch + <int64_t>load_be48(data + 5)
                self.stamps[S_APPLIED_RT] = realtime_ns()
            else:
                self.stamps[S_EVENT] = 0
                self.stamps[S_APPLIED_RT] = 0
            self.stages.record_stamps(self.stamps)
        return CONSUME_OK

    cpdef check(self):
        """Raise the error of the message that failed (DecodeError, BookError, BookFull)."""
        if self.failed:
            raise_status(&self.st, f"ITCH feed message {self.book.b.seq + 1}")

    def set_busy(self, bint busy):
        """Mark the book as being applied to (its ``apply()`` then refuses to run)."""
        self.book.busy = busy
