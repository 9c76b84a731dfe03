"""Every exception hftcore raises, in one place."""

__all__ = [
    "HftcoreError",
    "DecodeError",
    "SequenceGap",
    "BookFull",
    "BookError",
    "SnapshotError",
    "ProtocolError",
    "ConnectionClosed",
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


class ProtocolError(DecodeError):
    """A peer broke its wire protocol (a WebSocket frame no server may send).

    The reader has already sent the close frame with ``code`` when this is raised.

    Parameters
    ----------
    reason : str
        What is wrong, in words.
    offset : int
        Byte offset in the received stream (from the first byte after the opening
        handshake) where the bad frame starts, ``-1`` when unknown.
    source : str, optional
        The connection (its URL), when known.
    code : int
        The close status code sent to the peer (1002 protocol error, 1007 invalid UTF-8,
        1009 message too big); 0 when none applies.
    """

    def __init__(self, reason, offset=-1, source=None, code=0):
        self.code = code
        super().__init__(reason, offset, source)

    def __reduce__(self):
        return (type(self), (self.reason, self.offset, self.source, self.code))


class ConnectionClosed(HftcoreError, ConnectionError):
    """The connection is closed: the peer closed it, or it was closed here.

    Parameters
    ----------
    code : int
        The close status code (WebSocket: the peer's, e.g. 1000; 1005 when its close frame
        carried none, 1006 when the connection dropped without a close frame; plain TCP:
        1006 at end of stream).
    reason : str
        The close reason text (may be empty).
    source : str, optional
        The connection, when known.
    """

    def __init__(self, code=1006, reason="", source=None):
        self.code = code
        self.reason = reason
        self.source = source
        src = f"{source}: " if source else ""
        why = f" ({reason})" if reason else ""
        super().__init__(f"{src}connection closed with code {code}{why}")

    def __reduce__(self):
        return (type(self), (self.code, self.reason, self.source))
