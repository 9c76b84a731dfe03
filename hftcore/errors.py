"""Every exception hftcore raises, in one place."""

__all__ = [
    "HftcoreError",
    "DecodeError",
    "SequenceGap",
    "BookFull",
    "BookError",
    "SnapshotError",
]


class HftcoreError(Exception):
    """Base class of hftcore's own exceptions."""


class DecodeError(HftcoreError, ValueError):
    """Input bytes that cannot be decoded.

    Parameters
    ----------
    reason : str
        What is wrong, in words.
    offset : int
        Byte offset in the input where the problem was found (``-1`` when unknown).
    source : str, optional
        The input's name (a file path, a stream), when known.

    Attributes
    ----------
    reason, offset, source
        As given.
    """

    def __init__(self, reason, offset=-1, source=None):
        self.reason = reason
        self.offset = offset
        self.source = source
        where = f" at byte offset {offset}" if offset >= 0 else ""
        src = f"{source}: " if source else ""
        super().__init__(f"{src}{reason}{where}")

    def __reduce__(self):
        return (type(self), (self.reason, self.offset, self.source))


class SequenceGap(HftcoreError):
    """Messages were missed: ``expected`` was due, ``received`` arrived.

    Parameters
    ----------
    expected, received : int
        Sequence numbers (or update ids) around the gap.
    source : str, optional
        Which stream.
    """

    def __init__(self, expected, received, source=None):
        self.expected = expected
        self.received = received
        self.source = source
        src = f"{source}: " if source else ""
        super().__init__(f"{src}sequence gap: expected {expected}, received {received}")

    def __reduce__(self):
        return (type(self), (self.expected, self.received, self.source))


class BookFull(HftcoreError, MemoryError):
    """A fixed-size structure ran out of room.

    Parameters
    ----------
    what : str
        The structure that is full (``"order store"``, ``"price levels"``).
    capacity : int
        Its capacity; the message names the constructor argument to raise.
    parameter : str, optional
        Constructor argument that sets the capacity.
    """

    def __init__(self, what, capacity, parameter=None):
        self.what = what
        self.capacity = capacity
        self.parameter = parameter
        hint = f"; raise {parameter}= (now {capacity})" if parameter else ""
        super().__init__(f"{what} is full at capacity {capacity}{hint}")

    def __reduce__(self):
        return (type(self), (self.what, self.capacity, self.parameter))


class BookError(HftcoreError, ValueError):
    """An order book saw an impossible event in strict mode.

    Parameters
    ----------
    reason : str
        What was wrong.
    seq : int
        0-based message index in the stream where it happened (``-1`` when unknown).
    """

    def __init__(self, reason, seq=-1):
        self.reason = reason
        self.seq = seq
        where = f" at seq {seq}" if seq >= 0 else ""
        super().__init__(f"{reason}{where}")

    def __reduce__(self):
        return (type(self), (self.reason, self.seq))


class SnapshotError(HftcoreError, RuntimeError):
    """The depth snapshot could not be fetched or understood.

    The sync keeps its buffered events and fetches again on the next :meth:`hftcore.binance.BookSync.feed`.

    Parameters
    ----------
    symbol : str
        The book's symbol.
    reason : str
        What went wrong.
    """

    def __init__(self, symbol, reason):
        self.symbol = symbol
        self.reason = reason
        super().__init__(f"{symbol}: depth snapshot failed: {reason}")

    def __reduce__(self):
        return (type(self), (self.symbol, self.reason))
