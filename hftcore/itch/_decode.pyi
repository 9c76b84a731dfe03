"""Type stub of the compiled ITCH 5.0 batch decoder (hftcore/itch/_decode.pyx)."""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

#: Table order of the generated row writers (``spec.TYPES`` when the build is fresh).
GEN_TYPES: str
#: Per type: row size and ``(field, kind, wire offset, wire size, row offset)`` tuples.
GEN_LAYOUT: dict[str, tuple[int, tuple[tuple[str, str, int, int, int], ...]]]

def decode_buffer(
    buf: bytes | bytearray | memoryview | npt.NDArray[np.uint8],
    types: str | None = None,
    seq_start: int = 0,
    source: str | None = None,
    base_offset: int = 0,
    progress: Callable[[int], object] | None = None,
    progress_every: int = 4194304,
) -> tuple[
    dict[str, np.ndarray],
    dict[str, int],
    int,
    int,
    int,
    bool,
]: ...
