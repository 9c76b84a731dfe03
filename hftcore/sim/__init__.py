"""Synthetic market data and local exchange simulators, for tests, demos and benchmarks.

``hftcore.sim.itch``: reproducible, internally consistent ITCH 5.0 days.
``hftcore.sim.binance``: Binance stream corpora.
"""
