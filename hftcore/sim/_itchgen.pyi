"""Type stub of the compiled ITCH day generator (hftcore/sim/_itchgen.pyx)."""

import numpy as np
import numpy.typing as npt

class DayGenerator:
    def __init__(
        self,
        seed: int,
        bulk: int,
        base_ticks: npt.ArrayLike,
        levels: int,
        tickers: npt.ArrayLike,
        mpids: npt.ArrayLike,
        zipf_cdf: npt.ArrayLike,
        zipf_sym: npt.ArrayLike,
        knot_frac: npt.ArrayLike,
        knot_time: npt.ArrayLike,
        pool_cap: int,
        sp_time: npt.ArrayLike,
        sp_off: npt.ArrayLike,
        sp_blob: npt.ArrayLike,
    ) -> None: ...
    @property
    def done(self) -> bool: ...
    @property
    def live_orders(self) -> int: ...
    @property
    def last_order_ref(self) -> int: ...
    def fill(self, out: bytearray | memoryview | npt.NDArray[np.uint8]) -> tuple[int, int]: ...
