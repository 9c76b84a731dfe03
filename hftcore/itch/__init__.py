"""NASDAQ TotalView-ITCH 5.0: message table, decoder, encoder, files and order book.

Batch first: :func:`decode` turns a buffer into one numpy table per message type;
:func:`read_file` / :func:`iter_file` do the same for day files (``.gz`` too);
:func:`iter_messages` yields one record at a time and is the slow path.
:class:`Feed` receives a live feed (MoldUDP64 or SoupBinTCP) into an :class:`OrderBook`.
"""

from hftcore.itch import spec
from hftcore.itch.book import OrderBook
from hftcore.itch.decoder import Tables, concat_tables, decode, iter_messages
from hftcore.itch.encode import encode, encode_stream, encode_table
from hftcore.itch.files import iter_file, read_file
from hftcore.itch.spec import BY_TYPE, MESSAGES, TYPES, dtype

__all__ = [
    "spec",
    "MESSAGES",
    "BY_TYPE",
    "TYPES",
    "dtype",
    "encode",
    "encode_table",
    "encode_stream",
    "decode",
    "Tables",
    "concat_tables",
    "iter_messages",
    "read_file",
    "iter_file",
    "OrderBook",
    "Feed",
]


def __getattr__(name):
    # The live feed loads the network and thread runtime: only when asked for.
    if name == "Feed":
        from hftcore.itch.feed import Feed

        return Feed
    raise AttributeError(f"module 'hftcore.itch' has no attribute {name!r}")
