"""Which cores this machine has for a feed thread, and which one to use.

Linux facts read here (every path below a root that tests point at a directory of
hand-written files):

- the cores this process may run on: ``os.sched_getaffinity(0)``;
- isolated cores: ``/sys/devices/system/cpu/isolated`` and the ``isolcpus=`` and
  ``nohz_full=`` options of ``/proc/cmdline`` (the kernel's CPU list format: ``2-5,8``,
  ``isolcpus=nohz,domain,2-3``, ``0-15:2/4`` groups, ``N`` for the last core);
- how busy each core is: two reads of ``/proc/stat`` a short interval apart.

:func:`choose_cpu` picks the feed core: the one the user names (checked), else an
isolated core this process may use, else the least busy allowed core other than 0 (core 0
takes most interrupts and housekeeping), saying once in the log that no core is isolated.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from hftcore.errors import HftcoreError

__all__ = [
    "CpuError",
    "CpuFacts",
    "parse_cpu_list",
    "format_cpu_list",
    "allowed_cpus",
    "online_cpus",
    "isolated_cpus",
    "cmdline_cpus",
    "cpu_facts",
    "cpu_busy",
    "busy_between",
    "choose_cpu",
]

log = logging.getLogger("hftcore.feed")

_warned_no_isolated = False


class CpuError(HftcoreError, ValueError):
    """A core that cannot be used: not a number, not on this machine, or not allowed."""


def parse_cpu_list(text: str, last: int | None = None) -> set[int]:
    """Parse the kernel's CPU list format into a set of core numbers.

    Parameters
    ----------
    text : str
        ``"2-5,8"``, ``"0-15:2/4"`` (in each group of 4 cores the first 2), ``"N"`` or
        ``"1-N"`` (``N`` = the last core, needs ``last``), or empty (no cores).
    last : int, optional
        The highest core number, for ``N``.

    Returns
    -------
    set of int

    Raises
    ------
    CpuError
        On text that is not a CPU list, naming the part that is wrong.
    """
    cpus: set[int] = set()
    text = text.strip()
    if not text:
        return cpus

    def number(part, whole):
        if part == "N":
            if last is None:
                raise CpuError(f"CPU list {whole!r}: 'N' (the last core) is not known here")
            return last
        if not part.isdigit():
            raise CpuError(f"CPU list {whole!r}: {part!r} is not a core number")
        return int(part)

    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        stride_used, stride_group = None, None
        if ":" in item:
            item, _, groups = item.partition(":")
            used, _, size = groups.partition("/")
            if not (used.isdigit() and size.isdigit()) or int(size) == 0:
                raise CpuError(f"CPU list {text!r}: bad group {groups!r} (want USED/SIZE)")
            stride_used, stride_group = int(used), int(size)
        lo_text, dash, hi_text = item.partition("-")
        lo = number(lo_text.strip(), text)
        hi = number(hi_text.strip(), text) if dash else lo
        if hi < lo:
            raise CpuError(f"CPU list {text!r}: range {item!r} runs backwards")
        for cpu in range(lo, hi + 1):
            if stride_group is None or (cpu - lo) % stride_group < stride_used:
                cpus.add(cpu)
    return cpus


def format_cpu_list(cpus) -> str:
    """The kernel's CPU list format of a set of cores (``{0, 1, 2, 5}`` -> ``"0-2,5"``)."""
    out = []
    run: list[int] = []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [cpu]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def allowed_cpus() -> set[int]:
    """The cores the calling thread may run on (``os.sched_getaffinity(0)``)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux: assume every core
        return set(range(os.cpu_count() or 1))


def online_cpus(sys_root="/sys") -> set[int] | None:
    """The online cores (``devices/system/cpu/online``), ``None`` when unreadable."""
    text = _read(Path(sys_root) / "devices/system/cpu/online")
    if text is None:
        return None
    try:
        return parse_cpu_list(text)
    except CpuError:
        return None


def isolated_cpus(sys_root="/sys") -> set[int] | None:
    """The cores the kernel isolated (``devices/system/cpu/isolated``); ``None`` when
    the file is missing (containers, other systems)."""
    text = _read(Path(sys_root) / "devices/system/cpu/isolated")
    if text is None:
        return None
    return parse_cpu_list(text)


def cmdline_cpus(option: str, proc_root="/proc", last: int | None = None) -> set[int] | None:
    """The cores named by a kernel command-line option (``isolcpus``, ``nohz_full``,
    ``rcu_nocbs``, ``irqaffinity``) in ``/proc/cmdline``.

    Flags before the list (``isolcpus=nohz,domain,managed_irq,2-3``) are skipped. An
    option given twice counts once per appearance (the kernel keeps the last). Returns an
    empty set when the option is absent and ``None`` when ``/proc/cmdline`` is unreadable.
    """
    text = _read(Path(proc_root) / "cmdline")
    if text is None:
        return None
    cpus: set[int] = set()
    for word in text.split():
        if word == "--":  # what follows is init's arguments, not the kernel's
            break
        name, eq, value = word.partition("=")
        if not eq or name != option:
            continue
        parts = [p for p in value.split(",") if p]
        while parts and parts[0][:1].isalpha() and parts[0] != "N":  # flags
            parts.pop(0)
        cpus = parse_cpu_list(",".join(parts), last=last)
    return cpus


@dataclass
class CpuFacts:
    """What this machine says about its cores (``None`` = could not be read)."""

    allowed: set[int]
    online: set[int] | None
    isolated: set[int] | None  # /sys/devices/system/cpu/isolated
    isolcpus: set[int] | None  # isolcpus= on the kernel command line
    nohz_full: set[int] | None  # nohz_full= on the kernel command line
    notes: list[str] = field(default_factory=list)

    @property
    def isolated_all(self) -> set[int]:
        """Cores isolated by any of the three means."""
        out: set[int] = set()
        for s in (self.isolated, self.isolcpus, self.nohz_full):
            out |= s or set()
        return out


def cpu_facts(sys_root="/sys", proc_root="/proc", allowed=None) -> CpuFacts:
    """Read the core facts (see the module's text); ``allowed`` overrides the affinity."""
    online = online_cpus(sys_root)
    last = max(online) if online else None
    notes = []

    def guarded(fn, *a, **k):
        try:
            return fn(*a, **k)
        except CpuError as e:
            notes.append(str(e))
            return None

    return CpuFacts(
        allowed=set(allowed) if allowed is not None else allowed_cpus(),
        online=online,
        isolated=guarded(isolated_cpus, sys_root),
        isolcpus=guarded(cmdline_cpus, "isolcpus", proc_root, last),
        nohz_full=guarded(cmdline_cpus, "nohz_full", proc_root, last),
        notes=notes,
    )


def _stat_times(text: str) -> dict[int, tuple[int, int]]:
    """Per core (total, idle) ticks from the text of ``/proc/stat``."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        parts = line.split()
        try:
            cpu = int(parts[0][3:])
            ticks = [int(x) for x in parts[1:9]]  # guest time is already inside user
        except ValueError:
            continue
        if len(ticks) < 4:
            continue
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        out[cpu] = (sum(ticks), idle)
    return out


def busy_between(first: str, second: str) -> dict[int, float]:
    """The fraction of time each core was not idle between two ``/proc/stat`` texts
    (user, nice, system, irq, softirq and steal count as busy; idle and iowait not)."""
    a, b = _stat_times(first), _stat_times(second)
    busy = {}
    for cpu, (total0, idle0) in a.items():
        if cpu not in b:
            continue
        total1, idle1 = b[cpu]
        dt = total1 - total0
        busy[cpu] = 0.0 if dt <= 0 else max(0.0, min(1.0, 1.0 - (idle1 - idle0) / dt))
    return busy


def cpu_busy(interval: float = 0.1, proc_root="/proc") -> dict[int, float] | None:
    """How busy each core was over ``interval`` seconds (:func:`busy_between` of two reads
    of ``/proc/stat``). ``None`` when ``/proc/stat`` is unreadable."""
    path = Path(proc_root) / "stat"
    first = _read(path)
    if first is None:
        return None
    time.sleep(interval)
    second = _read(path)
    return None if second is None else busy_between(first, second)


def choose_cpu(
    preferred=None,
    *,
    sys_root="/sys",
    proc_root="/proc",
    allowed=None,
    interval: float = 0.1,
    busy=None,
    warn: bool = True,
) -> int:
    """The core for a feed thread.

    Parameters
    ----------
    preferred : int or str, optional
        The user's core. It must be one this process may run on
        (``os.sched_getaffinity(0)``) or an isolated core (isolated cores are usually
        left out of every process's affinity; pinning onto one is then up to the
        kernel's cpuset, and ``PinnedThread`` reports a refusal clearly).
    sys_root, proc_root : str or os.PathLike, default "/sys", "/proc"
        Where to read the facts (tests point these at hand-written files).
    allowed : set of int, optional
        The cores allowed (default: this process's affinity).
    interval : float, default 0.1
        Seconds over which to measure how busy each core is (only when no core is given
        and none is isolated).
    busy : dict of int to float, optional
        How busy each core is (0-1), instead of measuring it.
    warn : bool, default True
        Log (once per process) that no core is isolated, when that is so.

    Returns
    -------
    int
        The user's core; else an isolated core this process may use (preferring one also
        in ``nohz_full``; the least busy of them); else the least busy allowed core other
        than 0; core 0 on a one-core machine.

    Raises
    ------
    CpuError
        ``preferred`` is not a core number, or not one this process may use.
    """
    global _warned_no_isolated
    facts = cpu_facts(sys_root, proc_root, allowed)
    allowed = facts.allowed
    isolated = facts.isolated_all
    if facts.online is not None:
        isolated &= facts.online
    if preferred is not None:
        try:
            cpu = int(preferred)
        except (TypeError, ValueError):
            raise CpuError(f"cpu={preferred!r} is not a core number") from None
        if cpu in allowed or cpu in isolated:
            return cpu
        where = f"this process may run on cores {format_cpu_list(allowed)}"
        if facts.online is not None and cpu not in facts.online:
            where = f"core {cpu} is not online here (online: {format_cpu_list(facts.online)})"
        raise CpuError(
            f"cannot pin the feed thread to core {cpu}: {where} "
            "(os.sched_getaffinity; start the process with `taskset -c LIST` to allow others)"
        )
    if not allowed:
        return 0
    usable_isolated = isolated & allowed
    if usable_isolated:
        both = usable_isolated & (facts.nohz_full or set())
        candidates = both or usable_isolated
        if len(candidates) == 1:
            return next(iter(candidates))
        return _least_busy(candidates, busy, proc_root, interval)
    if warn and not _warned_no_isolated:
        _warned_no_isolated = True
        if isolated:
            log.warning(
                "cores %s are isolated but this process may only run on %s: the feed "
                "thread goes on a shared core (start with `taskset -c %s` or pass cpu=)",
                format_cpu_list(isolated), format_cpu_list(allowed),
                format_cpu_list(isolated),
            )  # fmt: skip
        else:
            log.warning(
                "no core is isolated on this machine (isolcpus=/nohz_full= on the kernel "
                "command line): the feed thread shares its core with other work; "
                "`hftcore feed check` says what to change"
            )
    others = allowed - {0}
    if not others:
        return min(allowed)
    if len(others) == 1:
        return next(iter(others))
    return _least_busy(others, busy, proc_root, interval)


def _least_busy(candidates, busy, proc_root, interval) -> int:
    if busy is None:
        busy = cpu_busy(interval, proc_root) or {}
    # Ties (and unreadable /proc/stat) go to the lowest core number.
    return min(candidates, key=lambda c: (round(busy.get(c, 0.0), 2), c))
