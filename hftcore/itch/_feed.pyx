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

#: Stamps recorded per receive (datagram or TCP chunk) by :class:`StagedConsumer`.
STAMPS = ("kernel", "recv_rt", "recv", "applied")
#: Its stages: the kernel's receive stamp -> the receive call returned (CLOCK_REALTIME),
#: the receive call returned -> every message of it applied (CLOCK_MONOTONIC).
PAIRS = (("kernel", "recv_rt"), ("recv", "applied"))
#: Stamps recorded per message by :class:`BookConsumer` given ``event_epoch_ns``.
EVENT_STAMPS = ("event", "applied_rt")

cdef enum:
    S_KERNEL = 0
    S_RECV_RT
    S_RECV
    S_APPLIED
    N_STAMPS


def new_stages():
    """The :class:`~hftcore.latency.Stages` a :class:`StagedConsumer` records into."""
    return Stages(list(STAMPS), pairs=[list(p) for p in PAIRS], arrival="recv", sender=None)


def new_event_stages():
    """The :class:`~hftcore.latency.Stages` of the ITCH timestamp -> applied stage."""
    return Stages(list(EVENT_STAMPS), pairs=[list(EVENT_STAMPS)], arrival=None, sender=None)


cdef class StagedConsumer(Consumer):
    """Hands each receive (a datagram, a TCP chunk) to ``inner`` and records its stages.

    ``recv_to_applied`` is the time from the receive call's return to ``inner`` having
    handled every message of that receive (for a MoldUDP64 datagram: all its messages in
    sequence applied to the book); ``kernel_to_recv_rt`` the kernel's own receive stamp to
    the receive call's return, where the socket gives kernel stamps.

    Parameters
    ----------
    inner : Consumer
    stages : hftcore.latency.Stages
        Made by :func:`new_stages`.
    """

    cdef readonly Consumer inner
    cdef Stages stages
    cdef int64_t stamps[N_STAMPS]

    def __init__(self, Consumer inner not None, Stages stages not None):
        if stages.n_stamps != N_STAMPS:
            raise ValueError("stages must come from hftcore.itch._feed.new_stages()")
        self.inner = inner
        self.stages = stages

    cdef int on_message(self, const uint8_t* data, Py_ssize_t size, int kind,
                        const RecvStamp* stamp) noexcept nogil:
        cdef int rc = self.inner.on_message(data, size, kind, stamp)
        self.stamps[S_KERNEL] = stamp.kernel_ns
        self.stamps[S_RECV_RT] = stamp.realtime_ns
        self.stamps[S_RECV] = stamp.monotonic_ns
        self.stamps[S_APPLIED] = monotonic_ns()
        self.stages.record_stamps(self.stamps)
        return rc

    cpdef check(self):
        self.inner.check()


cdef class BookConsumer(Consumer):
    """Applies each message it is handed to ``book`` (an :class:`hftcore.itch.OrderBook`).

    Parameters
    ----------
    book : OrderBook
    stages : hftcore.latency.Stages, optional
        Made by :func:`new_event_stages`, with ``event_epoch_ns``: per message it records
        ``event_to_applied_rt`` (the ITCH timestamp to the message applied, both
        CLOCK_REALTIME).
    event_epoch_ns : int, optional
        CLOCK_REALTIME nanoseconds of the ITCH day's midnight (ITCH timestamps count from
        midnight US Eastern): ``event = event_epoch_ns + timestamp``. Meaningful only when
        the sender's clock and this one agree (a live feed with synchronised clocks, or
        the local exchange paced by timestamps with a known start); otherwise the stage
        measures the clock offset, not latency.
    """

    cdef readonly OrderBookCore book
    cdef Stages stages
    cdef int64_t stamps[2]
    cdef int64_t event_epoch
    cdef Status st
    cdef bint failed
    cdef readonly uint64_t messages

    def __init__(self, OrderBookCore book not None, Stages stages=None, event_epoch_ns=None):
        if stages is not None and (stages.n_stamps != 2 or event_epoch_ns is None):
            raise ValueError("stages must come from new_event_stages(), with event_epoch_ns")
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
        if self.stages is not None and size >= 11:
            self.stamps[0] = self.event_epoch + <int64_t>load_be48(data + 5)
            self.stamps[1] = realtime_ns()
            self.stages.record_stamps(self.stamps)
        return CONSUME_OK

    cpdef check(self):
        """Raise the error of the message that failed (DecodeError, BookError, BookFull)."""
        if self.failed:
            raise_status(&self.st, f"ITCH feed message {self.book.b.seq + 1}")

    def set_busy(self, bint busy):
        """Mark the book as being applied to (its ``apply()`` then refuses to run)."""
        self.book.busy = busy
