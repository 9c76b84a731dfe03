"""The exchange-free feed runtime: the pinned receive thread and core choice, bounded
ring tables for consumers on other threads (:mod:`hftcore.feed.ring`), crash-safe
captures (:mod:`hftcore.feed.capture`); it wires
``net/`` readers and ``latency/`` histograms to a consumer it is handed.

- :class:`PinnedThread` calls a step function over and over on one core;
  :class:`FeedThread` is one whose step is ``reader.pump(consumer, ...)``.
- :func:`choose_cpu` picks the core (isolated, else the least busy other than 0);
  :func:`cpu_facts` and :func:`parse_cpu_list` read what the kernel says about cores.
- ``hftcore feed check`` (:mod:`hftcore.feed.check`) reports how ready the machine is for
  low latency; ``hftcore feed bench`` (:mod:`hftcore.feed.bench`) measures the receive
  path beside peers.
"""

from hftcore.feed.cpus import CpuError, CpuFacts, choose_cpu, cpu_facts, parse_cpu_list
from hftcore.feed.thread import FeedThread, PinnedThread, thread_stats

__all__ = [
    "PinnedThread",
    "FeedThread",
    "thread_stats",
    "choose_cpu",
    "cpu_facts",
    "parse_cpu_list",
    "CpuFacts",
    "CpuError",
]
