"""Type stub of the compiled Binance SBE decoder (hftcore/binance/_sbe.pyx)."""

from typing import Any

import numpy as np
import numpy.typing as npt

def decode_sbe_tables(
    buf: Any,
    starts: npt.NDArray[np.int64] | None,
    ends: npt.NDArray[np.int64] | None,
    caps: Any,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, int], list[Exception]]: ...
def header_fields(msg: bytes) -> dict[str, Any]: ...
