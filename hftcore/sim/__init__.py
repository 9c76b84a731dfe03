"""Synthetic market data and local exchange simulators, for tests, demos and benchmarks.

``hftcore.sim.itch``: reproducible, internally consistent ITCH 5.0 days.
``hftcore.sim.binance``: Binance stream corpora.
``hftcore.sim.itch_exchange``: the local ITCH exchange (MoldUDP64 with a re-request
server, SoupBinTCP).
``hftcore.sim.binance_exchange``: a Binance-compatible exchange on loopback (WebSocket
streams, REST depth, faults on demand).
"""

import importlib

__all__ = ["itch", "binance", "itch_exchange", "binance_exchange"]


def __getattr__(name):
    # Lazy, like hftcore's own subpackages: importing hftcore.sim loads no generator.
    if name in __all__:
        return importlib.import_module(f"hftcore.sim.{name}")
    raise AttributeError(f"module 'hftcore.sim' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
