"""Fixed-size order books shared by the feeds; they know no exchange.

:class:`L2Book` keeps price levels (price -> quantity) per side in preallocated sorted
arrays, with exact int64 prices and quantities (implied decimals, 8 by default:
``price_decimals`` / ``qty_decimals``). Exchange appliers cimport its nogil operations
(``hftcore/book/_l2book.pxd``).
"""

from hftcore.book._l2book import L2Book

__all__ = ["L2Book"]
