"""Fixed-size order books shared by the feeds.

:class:`L2Book` keeps price levels (price -> quantity) per side in preallocated sorted
arrays, with exact int64 prices and quantities (8 implied decimals, Binance's scale).
"""

from hftcore.book._l2book import L2Book

__all__ = ["L2Book"]
