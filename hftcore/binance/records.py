"""Per-message records returned by :func:`hftcore.binance.decode` (the convenience path).

Prices and quantities are int64 with 8 implied decimals; times are int64 in the stream's
unit converted to nanoseconds. Level arrays have shape ``(n, 2)``: ``[:, 0]`` price,
``[:, 1]`` quantity.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["DepthUpdate", "DepthSnapshot"]


class DepthUpdate(NamedTuple):
    """A diff depth event (spot ``depthUpdate``; USD-M adds ``T`` and ``pu``)."""

    event_time: int  # ns
    transaction_time: int  # ns; 0 on spot
    symbol: str
    first_update_id: int  # U
    final_update_id: int  # u
    prev_final_update_id: int  # pu (USD-M); -1 on spot
    bids: np.ndarray  # int64 (n, 2)
    asks: np.ndarray  # int64 (n, 2)


class DepthSnapshot(NamedTuple):
    """A full or partial book: REST ``/api/v3/depth`` / ``/fapi/v1/depth`` or a partial
    book depth stream event."""

    last_update_id: int
    event_time: int  # ns; 0 when absent (spot REST, spot partial depth)
    transaction_time: int  # ns; 0 when absent
    symbol: str  # "" when absent
    bids: np.ndarray  # int64 (n, 2)
    asks: np.ndarray  # int64 (n, 2)
