# cython: language_level=3
"""Per-message stage latencies, inter-arrival times and RFC 3550 jitter.

See ``stages.pxd`` for the hot-path interface and the rules (missing stamps, negative
deltas, clocks, threads).
"""

cimport cython
from libc.stdint cimport int64_t


from hftcore.latency.histogram cimport Histogram

_AUTO = object()


@cython.final
cdef class Jitter:
    """RFC 3550 interarrival jitter estimate (section 6.4.1 and appendix A.8).

    For consecutive messages *i-1*, *i* with sender timestamps *S* and receive
    timestamps *R*, ``D = (R_i - R_{i-1}) - (S_i - S_{i-1})`` and
    ``J = J + (|D| - J) / 16``. The two clocks need not agree (a constant offset cancels
    in ``D``); their rates should. Kept in floating-point nanoseconds.

    From Cython: ``cpdef inline void update(self, int64_t sent, int64_t recv) noexcept
    nogil`` (cimport from ``hftcore.latency.stages``).

    Examples
    --------
    >>> j = Jitter()
    >>> for s, r in [(0, 100), (1000, 1150), (2000, 2100)]:
    ...     j.update(s, r)
    >>> round(j.value, 3)
    6.055
    """

    def update_many(self, const int64_t[:] sent, const int64_t[:] recv):
        """:meth:`update` for each pair of two equal-length int64 arrays, without the GIL."""
        cdef Py_ssize_t i, n = sent.shape[0]
        if recv.shape[0] != n:
            raise ValueError(f"sent has {n} values, recv {recv.shape[0]}")
        with nogil:
            for i in range(n):
                self.update(sent[i], recv[i])

    @property
    def value(self):
        """The estimate J in ns (float; 0.0 before two messages)."""
        return self.s.value

    @property
    def transits(self):
        """Messages seen (J has been updated ``transits - 1`` times)."""
        return self.s.transits

    def reset(self):
        """Start over (J = 0, no reference message)."""
        self.s.value = 0.0
        self.s.last_sent = 0
        self.s.last_recv = 0
        self.s.transits = 0

    def __repr__(self):
        return f"Jitter(value={self.s.value:.1f} ns, transits={self.s.transits})"


def _default_pairs(names):
    pairs = [(names[i], names[i + 1]) for i in range(len(names) - 1)]
    if len(names) > 2:
        pairs.append((names[0], names[len(names) - 1]))
    return pairs


@cython.final
cdef class Stages:
    """Per-message stage latencies: one :class:`Histogram` per pair of stamps.

    Parameters
    ----------
    stamps : sequence of str
        The stamps a message can carry, in the order the hot path passes them (at most
        16), e.g. ``("event", "kernel", "recv", "decoded", "applied")``.
    pairs : sequence of (str, str), optional
        The stages, each ``(start, end)`` (at most 32); stage ``"{start}_to_{end}"``
        records ``end - start``. Default: each stamp to the next, plus the first to the
        last when there are more than two.
    arrival : str or None, optional
        The stamp whose successive differences go into the inter-arrival histogram, and
        the receive side of the jitter. Default ``"recv"`` when it is one of ``stamps``.
    sender : str or None, optional
        The sender's timestamp for the RFC 3550 jitter. Default ``"event"`` (else
        ``"send"``) when one of ``stamps``.

    Notes
    -----
    A stamp 0 means "missing": its stages are skipped and counted (:attr:`missing`). A
    negative delta is not recorded but counted (:attr:`negative`, with the most negative
    delta in :attr:`most_negative`). From Cython, cimport :class:`Stages` and call
    ``record_stamps(const int64_t *stamps)`` or ``record_pair(idx, start, end)`` without
    the GIL (see ``stages.pxd``). One thread records; :meth:`take_interval` and
    :meth:`reset` belong to that thread too.

    Examples
    --------
    >>> s = Stages(["recv", "decoded", "applied"])
    >>> s.stage_names
    ('recv_to_decoded', 'decoded_to_applied', 'recv_to_applied')
    >>> s.record([1000, 1450, 1600])
    >>> s.histogram("recv_to_applied").max
    600
    """

    def __init__(self, stamps, pairs=None, arrival=_AUTO, sender=_AUTO):
        names = tuple(str(n) for n in stamps)
        if not names:
            raise ValueError("Stages needs at least one stamp name")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate stamp names in {names}")
        if len(names) > STAGES_MAX_STAMPS:
            raise ValueError(f"{len(names)} stamps, at most {STAGES_MAX_STAMPS}")
        pairs = _default_pairs(names) if pairs is None else [tuple(p) for p in pairs]
        if len(pairs) > STAGES_MAX_PAIRS:
            raise ValueError(f"{len(pairs)} stages, at most {STAGES_MAX_PAIRS}")
        index = {n: i for i, n in enumerate(names)}
        stage_names = []
        for i, p in enumerate(pairs):
            if len(p) != 2 or p[0] not in index or p[1] not in index or p[0] == p[1]:
                raise ValueError(f"stage {p!r}: expected (start, end), two different "
                                 f"names among the stamps {names}")
            self.pair_start[i] = index[p[0]]
            self.pair_end[i] = index[p[1]]
            stage_names.append(f"{p[0]}_to_{p[1]}")
        if len(set(stage_names)) != len(stage_names):
            raise ValueError(f"duplicate stages in {pairs}")
        self.n_stamps = len(names)
        self.n_pairs = len(pairs)
        self._stamp_names = names
        self._stage_names = tuple(stage_names)
        if arrival is _AUTO:
            arrival = "recv" if "recv" in index else None
        if sender is _AUTO:
            sender = next((n for n in ("event", "send") if n in index), None)
        for what, n in (("arrival", arrival), ("sender", sender)):
            if n is not None and n not in index:
                raise ValueError(f"{what} stamp {n!r} is not one of {names}")
        if sender is not None and arrival is None:
            raise ValueError("the jitter needs an arrival stamp beside the sender's")
        self.arrival_idx = -1 if arrival is None else index[arrival]
        self.sender_idx = -1 if sender is None else index[sender]
        self._total = [Histogram() for _ in pairs]
        self._interval = [Histogram() for _ in pairs]
        cdef Histogram h
        for i in range(self.n_pairs):
            h = self._total[i]
            self.total[i] = h.d
            h = self._interval[i]
            self.interval[i] = h.d
        h = Histogram()
        self._arrival_total = h
        self.arrival_total = h.d
        h = Histogram()
        self._arrival_interval = h
        self.arrival_interval = h.d
        self.reset()

    # -- names ------------------------------------------------------------------------

    @property
    def stamp_names(self):
        """The stamp names, in the order :meth:`record` and ``record_stamps`` take them."""
        return self._stamp_names

    @property
    def stage_names(self):
        """The stage names, ``"{start}_to_{end}"``, in ``record_pair`` index order."""
        return self._stage_names

    @property
    def pairs(self):
        """The stages as ``(start, end)`` stamp names."""
        return tuple((self._stamp_names[self.pair_start[i]],
                      self._stamp_names[self.pair_end[i]]) for i in range(self.n_pairs))

    @property
    def arrival(self):
        """Name of the arrival stamp (or ``None``)."""
        return None if self.arrival_idx < 0 else self._stamp_names[self.arrival_idx]

    @property
    def sender(self):
        """Name of the sender stamp used for the jitter (or ``None``)."""
        return None if self.sender_idx < 0 else self._stamp_names[self.sender_idx]

    def stamp_index(self, name):
        """Position of stamp ``name`` in the stamps array."""
        try:
            return self._stamp_names.index(name)
        except ValueError:
            raise KeyError(f"no stamp {name!r} (stamps: {self._stamp_names})") from None

    def stage_index(self, name):
        """Index of stage ``name`` (for ``record_pair``)."""
        try:
            return self._stage_names.index(name)
        except ValueError:
            raise KeyError(f"no stage {name!r} (stages: {self._stage_names})") from None

    # -- recording (Python) -----------------------------------------------------------

    def record(self, stamps):
        """Record one message.

        Parameters
        ----------
        stamps : sequence of int or dict
            ``n_stamps`` nanosecond stamps in :attr:`stamp_names` order, or a dict
            ``{name: ns}`` (absent names are missing); 0 or ``None`` = missing.
        """
        cdef int64_t buf[STAGES_MAX_STAMPS]
        cdef int i
        if isinstance(stamps, dict):
            unknown = set(stamps) - set(self._stamp_names)
            if unknown:
                raise KeyError(f"unknown stamps {sorted(unknown)} (stamps: "
                               f"{self._stamp_names})")
            for i in range(self.n_stamps):
                buf[i] = stamps.get(self._stamp_names[i]) or 0
        else:
            if len(stamps) != self.n_stamps:
                raise ValueError(f"{len(stamps)} stamps given, expected {self.n_stamps} "
                                 f"{self._stamp_names}")
            for i in range(self.n_stamps):
                buf[i] = stamps[i] or 0
        self.record_stamps(buf)

    def record_many(self, const int64_t[:, :] stamps):
        """Record one message per row of an ``(n, n_stamps)`` int64 array, without the GIL."""
        cdef Py_ssize_t r, n = stamps.shape[0]
        cdef int i
        cdef int64_t buf[STAGES_MAX_STAMPS]
        if stamps.shape[1] != self.n_stamps:
            raise ValueError(f"rows have {stamps.shape[1]} stamps, expected "
                             f"{self.n_stamps} {self._stamp_names}")
        with nogil:
            for r in range(n):
                for i in range(self.n_stamps):
                    buf[i] = stamps[r, i]
                self.record_stamps(buf)

    def add(self, stage, int64_t start, int64_t end):
        """Record one stage alone: ``end - start`` into stage ``stage`` (name or index).

        Missing (0) and negative deltas are counted as in :meth:`record`.
        """
        cdef int idx = stage if isinstance(stage, int) else self.stage_index(stage)
        if not 0 <= idx < self.n_pairs:
            raise IndexError(f"stage index {idx} out of range 0..{self.n_pairs - 1}")
        self.record_pair(idx, start, end)

    # -- results ----------------------------------------------------------------------

    def histogram(self, stage):
        """The :class:`Histogram` of stage ``stage`` since the last reset (live: it goes
        on filling)."""
        cdef int idx = stage if isinstance(stage, int) else self.stage_index(stage)
        return self._total[idx]

    def histograms(self):
        """``{stage name: Histogram}`` since the last reset (live objects)."""
        return dict(zip(self._stage_names, self._total))

    @property
    def inter_arrival(self):
        """:class:`Histogram` of the gaps between successive arrival stamps."""
        return self._arrival_total

    @property
    def jitter(self):
        """RFC 3550 jitter estimate in ns (float), ``None`` before two transits."""
        return self.jitter_.value if self.jitter_.transits >= 2 else None

    @property
    def missing(self):
        """``{stage: messages skipped because a stamp was 0}``."""
        return {n: self.missing_[i] for i, n in enumerate(self._stage_names)}

    @property
    def negative(self):
        """``{stage: messages skipped because end < start}``."""
        return {n: self.negative_[i] for i, n in enumerate(self._stage_names)}

    @property
    def most_negative(self):
        """``{stage: the most negative delta seen (ns), or None}``."""
        return {n: (self.most_negative_[i] if self.negative_[i] else None)
                for i, n in enumerate(self._stage_names)}

    def take_interval(self):
        """What was recorded since the previous call, and start a new interval.

        Returns
        -------
        dict
            ``{"messages": int, "stages": {name: Histogram}, "inter_arrival":
            Histogram}``: copies, the interval histograms are then reset. Call it from
            the recording thread (or while nothing records).
        """
        cdef int i
        cdef Histogram h
        stages = {}
        for i in range(self.n_pairs):
            h = self._interval[i]
            stages[self._stage_names[i]] = h.copy()
            h.reset()
        h = self._arrival_interval
        arrivals = h.copy()
        h.reset()
        out = {"messages": self.interval_messages, "stages": stages,
               "inter_arrival": arrivals}
        self.interval_messages = 0
        return out

    def reset(self):
        """Forget everything recorded (histograms, counters, jitter, arrival reference)."""
        cdef int i
        cdef Histogram h
        for h in self._total:
            h.reset()
        for h in self._interval:
            h.reset()
        self._arrival_total.reset()
        self._arrival_interval.reset()
        for i in range(STAGES_MAX_PAIRS):
            self.missing_[i] = 0
            self.negative_[i] = 0
            self.most_negative_[i] = 0
        self.last_arrival = 0
        self.jitter_.value = 0.0
        self.jitter_.last_sent = 0
        self.jitter_.last_recv = 0
        self.jitter_.transits = 0
        self.messages = 0
        self.interval_messages = 0

    def __repr__(self):
        return (f"Stages(stamps={list(self._stamp_names)}, messages={self.messages}, "
                f"stages={list(self._stage_names)})")
