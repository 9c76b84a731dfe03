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

import importlib

from hftcore.export.lobster import write_lobster
from hftcore.export.names import date_from_name, day_label, source_stem

# The Arrow and Parquet names load pyarrow on first use, so LOBSTER files and the sample
# days (hftcore.export.fetch) need no extra.
_NEEDS_PYARROW = {
    "to_arrow": "arrow",
    "itch_schema": "arrow",
    "bbo_schema": "arrow",
    "binance_schema": "arrow",
    "itch_day_to_parquet": "parquet",
    "binance_to_parquet": "parquet",
    "is_complete": "parquet",
    "DEFAULT_ROW_GROUP_ROWS": "parquet",
}

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


def __getattr__(name):
    module = _NEEDS_PYARROW.get(name)
    if module is None:
        raise AttributeError(f"module 'hftcore.export' has no attribute {name!r}")
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f'hftcore.export.{name} needs pyarrow: pip install "hftcore[parquet]"'
        ) from exc
    return getattr(importlib.import_module(f"hftcore.export.{module}"), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
