"""Helpers shared by the benchmark modules.

asv runs every benchmark in a fresh process, so inputs that take seconds to generate are
built once per machine and cached on disk (:func:`cached_input`). ``track_*`` benchmarks
report a throughput rather than a time; :func:`messages_per_second` measures one the same
way everywhere (best of a few runs, the least disturbed).

Nothing here imports hftcore at module level: asv imports every benchmark module during
discovery, and a missing subpackage must fail only the benchmarks that need it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["cache_dir", "cached_input", "messages_per_second", "best_time", "SIZES"]

# Message counts used by ``params`` of the decode/book benchmarks: small enough for
# ``asv run --quick`` in CI, large enough that per-call overhead does not dominate.
SIZES = [10_000, 100_000, 1_000_000]


def cache_dir() -> Path:
    """Directory for generated benchmark inputs (``$HFTCORE_BENCH_CACHE`` or the temp dir).

    Keyed by the installed hftcore version, so a change of generator between releases
    never reuses stale inputs.
    """
    import hftcore

    base = os.environ.get("HFTCORE_BENCH_CACHE") or os.path.join(
        tempfile.gettempdir(), "hftcore-bench"
    )
    path = Path(base) / hftcore.__version__
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_input(name: str, make: Callable[[], bytes], *key) -> Path:
    """Path of a generated input file, created by ``make()`` on first use.

    Parameters
    ----------
    name : str
        Readable prefix of the file name (``"itch-day"``).
    make : callable
        Returns the file's bytes; called only when the file is not cached yet.
    *key
        Everything the content depends on (sizes, seed); part of the file name.

    Returns
    -------
    pathlib.Path
        The cached file. Written atomically (temp file + rename), so concurrent asv
        processes never see a partial file.
    """
    digest = hashlib.sha1(repr(key).encode()).hexdigest()[:12]
    path = cache_dir() / f"{name}-{digest}.bin"
    if not path.exists():
        data = make()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return path


def best_time(func: Callable[[], object], repeat: int = 3) -> float:
    """Smallest wall-clock time in seconds of ``repeat`` calls of ``func``."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t0)
    return best


def messages_per_second(func: Callable[[], object], messages: int, repeat: int = 3) -> float:
    """Throughput of ``func`` processing ``messages`` messages per call (best of ``repeat``).

    For ``track_*`` benchmarks: set ``unit = "messages/s"`` on the function or class.
    """
    return messages / best_time(func, repeat)
