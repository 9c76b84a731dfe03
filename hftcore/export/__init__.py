"""Decoded market data to Apache Arrow and Parquet (optional extra ``[parquet]``).

- :func:`to_arrow`: decoded ITCH or Binance tables as one :class:`pyarrow.Table` per
  message type or kind, with the columns and types of the message tables.
- :func:`itch_day_to_parquet` / :func:`binance_to_parquet`: a day file or a recording,
  streamed chunk by chunk into Hive-partitioned Parquet datasets (what
  ``hftcore itch to-parquet`` and ``hftcore binance to-parquet`` run per file).
- :func:`write_lobster`: LOBSTER message and orderbook files of stocks of a day.
- :mod:`hftcore.export.fetch`: NASDAQ's public sample days, listed and downloaded.
- :mod:`hftcore.export.dask` (extra ``[dask]``, also ``hftcore.dask``): many days on a
  Dask cluster.

This layer sits above the venues (it imports :mod:`hftcore.itch` and
:mod:`hftcore.binance`); only the command line imports it.
"""

from __future__ import annotations

try:
    import pyarrow  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('hftcore.export needs pyarrow: pip install "hftcore[parquet]"') from exc

from hftcore.export.arrow import (
    bbo_schema,
    binance_schema,
    date_from_name,
    itch_schema,
    to_arrow,
)
from hftcore.export.lobster import write_lobster
from hftcore.export.parquet import (
    DEFAULT_ROW_GROUP_ROWS,
    binance_to_parquet,
    day_label,
    is_complete,
    itch_day_to_parquet,
    source_stem,
)

__all__ = [
    "to_arrow",
    "itch_schema",
    "bbo_schema",
    "binance_schema",
    "date_from_name",
    "itch_day_to_parquet",
    "binance_to_parquet",
    "day_label",
    "source_stem",
    "is_complete",
    "DEFAULT_ROW_GROUP_ROWS",
    "write_lobster",
]
