"""The exchange-free feed runtime: the pinned receive thread, core choice and captures
(:mod:`hftcore.feed.capture`), wiring ``net/`` and ``latency/`` to a consumer it is handed.
"""
