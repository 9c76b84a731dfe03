"""hftcore: the market-data foundation of a high-frequency trading stack.

Decoders for NASDAQ TotalView-ITCH 5.0 and Binance market data, fixed-size order books,
a pinned feed thread and latency measurement, with the hot paths in Cython.

Subpackages are imported on first use: ``hftcore.itch``, ``hftcore.binance``,
``hftcore.book``, ``hftcore.feed``, ``hftcore.net``, ``hftcore.latency``, ``hftcore.sim``.
"""

import importlib

from hftcore._version import __version__
from hftcore.errors import (
    BookError,
    BookFull,
    ConnectionClosed,
    DecodeError,
    HftcoreError,
    ProtocolError,
    SequenceGap,
    SnapshotError,
)

__all__ = [
    "__version__",
    "HftcoreError",
    "DecodeError",
    "SequenceGap",
    "BookFull",
    "BookError",
    "SnapshotError",
    "ProtocolError",
    "ConnectionClosed",
    "itch",
    "binance",
    "book",
    "feed",
    "net",
    "latency",
    "sim",
]

_SUBPACKAGES = {"itch", "binance", "book", "feed", "net", "latency", "sim"}


def __getattr__(name):
    # Lazy subpackages keep `import hftcore` cheap (no extension modules loaded).
    if name in _SUBPACKAGES:
        return importlib.import_module(f"hftcore.{name}")
    raise AttributeError(f"module 'hftcore' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBPACKAGES)
