"""The exchange-free feed runtime: a receive loop on a pinned core, the choice of that
core, and the wiring of a ``net/`` reader to a consumer it is handed.

- :class:`PinnedThread` calls a step function over and over on one core;
  :class:`FeedThread` is one whose step is ``reader.pump(consumer, ...)``.
- :func:`choose_cpu` picks the core (isolated, else the least busy other than 0);
  :func:`cpu_facts` and :func:`parse_cpu_list` read what the kernel says about cores.
- :func:`hftcore.feed.check.check` (``hftcore feed check``) reports how ready the machine
  is for low latency.
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
