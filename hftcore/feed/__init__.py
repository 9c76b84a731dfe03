"""The exchange-free feed runtime: the pinned receive thread and core choice, bounded
ring tables for consumers on other threads, captures; it wires ``net/`` readers and
``latency/`` histograms to a consumer it is handed.
"""
