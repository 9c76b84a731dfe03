"""Type stub of the compiled one-pass depth appliers (hftcore/binance/_apply.pyx)."""

from typing import Literal

import numpy as np
import numpy.typing as npt

from hftcore.binance.records import DepthHeader
from hftcore.book import L2Book

APPLIED: int
STALE: int
GAP: int
NOT_A_DIFF: int
OTHER_SYMBOL: int
HEAD_DTYPE: np.dtype[np.void]

def apply_depth_json(
    book: L2Book, msg: bytes | str, time_unit: Literal["ms", "us"] = "ms"
) -> DepthHeader: ...
def apply_depth_json_after(
    book: L2Book,
    msg: bytes | str,
    last_update_id: int,
    market: Literal["spot", "usdm"] = "spot",
    time_unit: Literal["ms", "us"] = "ms",
    symbol: str | None = None,
) -> tuple[int, DepthHeader]: ...
def apply_depth_sbe(book: L2Book, msg: bytes) -> DepthHeader: ...
def apply_depth_json_many(
    book: L2Book, data: bytes | str, time_unit: Literal["ms", "us"] = "ms"
) -> npt.NDArray[np.void]: ...
def apply_depth_sbe_many(book: L2Book, data: bytes) -> npt.NDArray[np.void]: ...
