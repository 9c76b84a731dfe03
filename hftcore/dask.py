"""``hftcore.dask``: many days on a Dask cluster (the public name of
:mod:`hftcore.export.dask`; optional extras ``[dask,parquet]``)."""

from hftcore.export.dask import (
    convert_days,
    itch_partitions,
    read_bbo,
    read_binance,
    read_itch,
    start_client,
)

__all__ = [
    "read_itch",
    "read_binance",
    "read_bbo",
    "itch_partitions",
    "convert_days",
    "start_client",
]
