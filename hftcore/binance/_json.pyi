"""Type stub of the compiled Binance JSON decoder (hftcore/binance/_json.pyx)."""

from typing import Any

import numpy as np
import numpy.typing as npt

FIELD_NAMES: tuple[str, ...]
KIND_NAMES: tuple[str, ...]
TABLE_NAMES: tuple[str, ...]
DTYPES: tuple[np.dtype[Any], ...]
MAX_KEPT_ERRORS: int
SIMD_DIGITS: bool

class OutBuffers:
    def __init__(self, caps: Any) -> None: ...
    def add_invalid(self) -> None: ...
    def result(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, int]]: ...

def decode_json(
    buf: Any,
    starts: npt.NDArray[np.int64] | None,
    ends: npt.NDArray[np.int64] | None,
    time_mult: int,
    caps: Any,
    skip_errors: bool = False,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, int], list[Exception]]: ...
def message_header(buf: Any, time_mult: int) -> tuple[int, int, int, int, int, int, bytes]: ...
