"""How ready this machine is for a low-latency feed thread (``hftcore feed check``).

Each check reads what the kernel exposes under ``/sys`` and ``/proc`` and says what is set,
what is recommended for a feed core, and the command that changes it. Nothing is changed.
A file that is missing or unreadable (containers, VMs, other systems) makes the value
``"unknown"``, never an error. Both roots are parameters so tests can point them at
hand-written files.
"""

from __future__ import annotations

import os
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

from hftcore.feed.cpus import (
    CpuError,
    choose_cpu,
    cpu_facts,
    format_cpu_list,
    online_cpus,
    parse_cpu_list,
)

__all__ = ["Check", "check", "format_report"]

UNKNOWN = "unknown"
OK, ADVICE = "ok", "advice"

#: Receive buffer worth allowing a feed socket (bytes): a burst of several milliseconds of
#: a busy feed at a few hundred MB/s.
RECOMMENDED_RMEM = 16 * 1024 * 1024
#: Microseconds a blocking read busy-polls the device queue (net.core.busy_read), the
#: kernel documentation's suggested starting point.
RECOMMENDED_BUSY_POLL_US = 50


@dataclass
class Check:
    """One line of the report."""

    name: str  # what is checked
    value: str  # what is set here ("unknown" when it cannot be read)
    recommended: str  # what a feed core wants
    command: str  # how to change it ("" when nothing is to be done)
    status: str  # "ok", "advice" (differs from the recommendation) or "unknown"
    detail: str = ""  # a word more, when useful


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _sysctl(proc_root: Path, name: str) -> str | None:
    text = _read(proc_root / "sys" / name.replace(".", "/"))
    return None if text is None else " ".join(text.split())


def check(cpu=None, sys_root="/sys", proc_root="/proc") -> tuple[int | None, list[Check]]:
    """Run every check for the feed core ``cpu``.

    Parameters
    ----------
    cpu : int, optional
        The feed core; default :func:`hftcore.feed.choose_cpu`'s choice.
    sys_root, proc_root : str or os.PathLike
        Where ``/sys`` and ``/proc`` are (tests use hand-written trees).

    Returns
    -------
    (int or None, list of Check)
        The feed core checked (``None`` if none could be chosen) and the report lines.
    """
    sys_root, proc_root = Path(sys_root), Path(proc_root)
    facts = cpu_facts(sys_root, proc_root)
    if cpu is None:
        try:
            cpu = choose_cpu(sys_root=sys_root, proc_root=proc_root, interval=0.05, warn=False)
        except CpuError:
            cpu = None
    else:
        cpu = int(cpu)
    checks = [
        _isolation(facts, cpu),
        _nohz(facts, cpu),
        _rcu_nocbs(proc_root, cpu, facts),
        _irqs(proc_root, cpu),
        _governor(sys_root, cpu),
        _smt(sys_root, cpu),
        _thp(sys_root),
        _clocksource(sys_root),
        _rt_permission(),
        _timer_migration(proc_root),
    ]
    checks += _buffers(proc_root)
    checks += _busy_poll(proc_root)
    return cpu, checks


def _cpus_text(cpus) -> str:
    return format_cpu_list(cpus) if cpus else "none"


def _grub(option: str) -> str:
    return (
        f"add {option} to GRUB_CMDLINE_LINUX in /etc/default/grub, then "
        "`update-grub` (or `grub2-mkconfig -o /boot/grub2/grub.cfg`) and reboot"
    )


def _isolation(facts, cpu) -> Check:
    name = "isolated cores"
    target = f"isolcpus=managed_irq,domain,{cpu}" if cpu is not None else "isolcpus=N"
    if facts.isolated is None and facts.isolcpus is None:
        return Check(name, UNKNOWN, f"the feed core isolated ({target})", _grub(target),
                     UNKNOWN)  # fmt: skip
    iso = (facts.isolated or set()) | (facts.isolcpus or set())
    value = f"{_cpus_text(iso)} (sysfs isolated: {_cpus_text(facts.isolated or set())})"
    if cpu is not None and cpu in iso:
        return Check(name, value, f"core {cpu} isolated", "", OK)
    return Check(name, value, f"the feed core isolated ({target})", _grub(target), ADVICE,
                 "the scheduler keeps other tasks off an isolated core")  # fmt: skip


def _nohz(facts, cpu) -> Check:
    name = "nohz_full cores"
    target = f"nohz_full={cpu}" if cpu is not None else "nohz_full=N"
    if facts.nohz_full is None:
        return Check(name, UNKNOWN, target, _grub(target), UNKNOWN)
    value = _cpus_text(facts.nohz_full)
    if cpu is not None and cpu in facts.nohz_full:
        return Check(name, value, f"core {cpu} in nohz_full", "", OK)
    return Check(name, value, f"the feed core tickless ({target})", _grub(target), ADVICE,
                 "no scheduler tick interrupts a core running one task")  # fmt: skip


def _rcu_nocbs(proc_root, cpu, facts) -> Check:
    from hftcore.feed.cpus import cmdline_cpus

    name = "rcu_nocbs cores"
    target = f"rcu_nocbs={cpu}" if cpu is not None else "rcu_nocbs=N"
    last = max(facts.online) if facts.online else None
    try:
        cpus = cmdline_cpus("rcu_nocbs", proc_root, last)
    except CpuError:
        cpus = None
    if cpus is None:
        return Check(name, UNKNOWN, target, _grub(target), UNKNOWN)
    if cpu is not None and cpu in cpus:
        return Check(name, _cpus_text(cpus), f"core {cpu} in rcu_nocbs", "", OK)
    return Check(name, _cpus_text(cpus), f"RCU callbacks off the feed core ({target})",
                 _grub(target), ADVICE)  # fmt: skip


def _irqs(proc_root, cpu) -> Check:
    name = "IRQ affinity"
    irq_dir = proc_root / "irq"
    try:
        entries = sorted((p for p in irq_dir.iterdir() if p.name.isdigit()),
                         key=lambda p: int(p.name))  # fmt: skip
    except OSError:
        entries = None
    if not entries or cpu is None:
        return Check(name, UNKNOWN, "no device interrupts on the feed core",
                     "echo OTHER_CORES > /proc/irq/N/smp_affinity_list", UNKNOWN)  # fmt: skip
    on_core, readable = [], 0
    for p in entries:
        text = _read(p / "smp_affinity_list")
        if text is None:
            continue
        readable += 1
        try:
            if cpu in parse_cpu_list(text):
                on_core.append(p.name)
        except CpuError:
            continue
    if readable == 0:
        return Check(name, UNKNOWN, "no device interrupts on the feed core",
                     "echo OTHER_CORES > /proc/irq/N/smp_affinity_list", UNKNOWN)  # fmt: skip
    default = _read(irq_dir / "default_smp_affinity")
    detail = f"default_smp_affinity mask {default}" if default else ""
    shown = ",".join(on_core[:12]) + (",..." if len(on_core) > 12 else "")
    value = f"{len(on_core)} of {readable} IRQs may fire on core {cpu}" + (
        f" ({shown})" if on_core else ""
    )
    if not on_core:
        return Check(name, value, "no device interrupts on the feed core", "", OK, detail)
    command = (
        f"for i in {' '.join(on_core[:6])}{' ...' if len(on_core) > 6 else ''}; do "
        f"echo OTHER_CORES > /proc/irq/$i/smp_affinity_list; done "
        f"(and `irqbalance --banned-cpulist={cpu}` or stop irqbalance)"
    )
    return Check(name, value, "no device interrupts on the feed core", command, ADVICE, detail)


def _governor(sys_root, cpu) -> Check:
    name = "CPU frequency governor"
    n = cpu if cpu is not None else 0
    value = _read(sys_root / f"devices/system/cpu/cpu{n}/cpufreq/scaling_governor")
    command = (
        f"cpupower -c {n} frequency-set -g performance  (or: echo performance > "
        f"/sys/devices/system/cpu/cpu{n}/cpufreq/scaling_governor)"
    )
    if value is None:
        return Check(name, UNKNOWN, "performance", command, UNKNOWN,
                     "no cpufreq here (a VM or a fixed-frequency CPU)")  # fmt: skip
    if value == "performance":
        return Check(name, f"{value} (core {n})", "performance", "", OK)
    return Check(name, f"{value} (core {n})", "performance", command, ADVICE,
                 "a lower clock between bursts adds wake-up latency")  # fmt: skip


def _smt(sys_root, cpu) -> Check:
    name = "SMT siblings of the feed core"
    n = cpu if cpu is not None else 0
    text = _read(sys_root / f"devices/system/cpu/cpu{n}/topology/thread_siblings_list")
    control = _read(sys_root / "devices/system/cpu/smt/control")
    recommended = "no sibling busy on the feed core's physical core"
    if text is None:
        return Check(name, UNKNOWN, recommended,
                     "echo 0 > /sys/devices/system/cpu/cpuS/online", UNKNOWN)  # fmt: skip
    try:
        siblings = parse_cpu_list(text) - {n}
    except CpuError:
        return Check(name, UNKNOWN, recommended, "", UNKNOWN, f"unreadable list {text!r}")
    online = online_cpus(sys_root)
    if online is not None:
        siblings &= online
    detail = f"smt control: {control}" if control else ""
    if not siblings:
        return Check(name, f"none (core {n} has its physical core alone)", recommended, "",
                     OK, detail)  # fmt: skip
    s = format_cpu_list(siblings)
    return Check(
        name, f"core {n} shares its physical core with {s}", recommended,
        f"echo 0 > /sys/devices/system/cpu/cpu{min(siblings)}/online (or keep {s} idle; "
        "`nosmt` on the kernel command line turns SMT off)", ADVICE, detail,
    )  # fmt: skip


def _thp(sys_root) -> Check:
    name = "transparent huge pages"
    path = sys_root / "kernel/mm/transparent_hugepage/enabled"
    text = _read(path)
    command = f"echo madvise > {path}"
    if text is None:
        return Check(name, UNKNOWN, "madvise or never", command, UNKNOWN)
    chosen = text[text.index("[") + 1 : text.index("]")] if "[" in text else text
    defrag = _read(sys_root / "kernel/mm/transparent_hugepage/defrag")
    detail = ""
    if defrag and "[" in defrag:
        detail = f"defrag: {defrag[defrag.index('[') + 1 : defrag.index(']')]}"
    if chosen in ("madvise", "never"):
        return Check(name, chosen, "madvise or never", "", OK, detail)
    return Check(name, chosen, "madvise or never", command, ADVICE,
                 "khugepaged compaction can stall the feed thread; " + detail)  # fmt: skip


def _clocksource(sys_root) -> Check:
    name = "clock source"
    base = sys_root / "devices/system/clocksource/clocksource0"
    current = _read(base / "current_clocksource")
    available = _read(base / "available_clocksource")
    command = f"echo tsc > {base / 'current_clocksource'} (or clocksource=tsc at boot)"
    detail = f"available: {available}" if available else ""
    if current is None:
        return Check(name, UNKNOWN, "tsc", command, UNKNOWN)
    if current == "tsc":
        return Check(name, current, "tsc", "", OK, detail)
    if available is not None and "tsc" not in available.split():
        return Check(name, current, "tsc", "", ADVICE,
                     "tsc is not offered here (unstable TSC or a VM): clock reads go "
                     "through " + current + "; " + detail)  # fmt: skip
    return Check(name, current, "tsc (clock_gettime without a system call)", command, ADVICE,
                 detail)  # fmt: skip


def _rt_permission() -> Check:
    name = "SCHED_FIFO permitted"
    try:
        soft, _hard = resource.getrlimit(resource.RLIMIT_RTPRIO)
    except (AttributeError, OSError, ValueError):
        return Check(name, UNKNOWN, "yes (realtime=True)", "", UNKNOWN)
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if root or soft == resource.RLIM_INFINITY or soft > 0:
        why = "root (CAP_SYS_NICE)" if root else f"RLIMIT_RTPRIO {soft}"
        return Check(name, f"yes ({why})", "yes (realtime=True)", "", OK,
                     "a container may still refuse it")  # fmt: skip
    return Check(name, "no (RLIMIT_RTPRIO 0, not root)", "yes (realtime=True)",
                 "ulimit -r 99 (an rtprio line in /etc/security/limits.conf) or "
                 "setcap cap_sys_nice+ep on the interpreter", ADVICE)  # fmt: skip


def _timer_migration(proc_root) -> Check:
    name = "timer migration"
    value = _sysctl(proc_root, "kernel.timer_migration")
    command = "sysctl -w kernel.timer_migration=0"
    if value is None:
        return Check(name, UNKNOWN, "0", command, UNKNOWN)
    if value == "0":
        return Check(name, value, "0", "", OK)
    return Check(name, value, "0 (timers stay on the core that set them)", command, ADVICE)


def _buffers(proc_root) -> list[Check]:
    out = []
    for key in ("net.core.rmem_max", "net.core.rmem_default", "net.core.wmem_max"):
        value = _sysctl(proc_root, key)
        want = RECOMMENDED_RMEM if key != "net.core.rmem_default" else None
        if key == "net.core.rmem_default":
            # The default every socket gets; hftcore's readers ask for more with SO_RCVBUF,
            # up to rmem_max, so it only needs to be sane.
            rec = ">= 212992 (readers set SO_RCVBUF themselves, up to rmem_max)"
            want = 212992
        else:
            rec = f">= {RECOMMENDED_RMEM} ({RECOMMENDED_RMEM >> 20} MiB)"
        command = f"sysctl -w {key}={max(want, int(value) if (value or '').isdigit() else 0)}"
        if value is None or not value.isdigit():
            out.append(Check(key, value or UNKNOWN, rec, command, UNKNOWN))
        elif int(value) >= want:
            out.append(Check(key, value, rec, "", OK))
        else:
            out.append(Check(key, value, rec, command, ADVICE))
    value = _sysctl(proc_root, "net.ipv4.tcp_rmem")
    rec = f"max >= {RECOMMENDED_RMEM}"
    command = f"sysctl -w net.ipv4.tcp_rmem='4096 131072 {RECOMMENDED_RMEM}'"
    parts = (value or "").split()
    if len(parts) != 3 or not parts[2].isdigit():
        out.append(Check("net.ipv4.tcp_rmem", value or UNKNOWN, rec, command, UNKNOWN))
    elif int(parts[2]) >= RECOMMENDED_RMEM:
        out.append(Check("net.ipv4.tcp_rmem", value, rec, "", OK))
    else:
        out.append(Check("net.ipv4.tcp_rmem", value, rec, command, ADVICE))
    value = _sysctl(proc_root, "net.core.netdev_max_backlog")
    command = "sysctl -w net.core.netdev_max_backlog=5000"
    if value is None or not value.isdigit():
        out.append(Check("net.core.netdev_max_backlog", UNKNOWN, ">= 5000", command, UNKNOWN))
    elif int(value) >= 5000:
        out.append(Check("net.core.netdev_max_backlog", value, ">= 5000", "", OK))
    else:
        out.append(Check("net.core.netdev_max_backlog", value, ">= 5000", command, ADVICE))
    return out


def _busy_poll(proc_root) -> list[Check]:
    out = []
    for key in ("net.core.busy_read", "net.core.busy_poll"):
        value = _sysctl(proc_root, key)
        rec = f"{RECOMMENDED_BUSY_POLL_US} (µs) when the feed busy-polls the NIC; 0 otherwise"
        command = f"sysctl -w {key}={RECOMMENDED_BUSY_POLL_US}"
        if value is None or not value.lstrip("-").isdigit():
            out.append(Check(key, UNKNOWN, rec, command, UNKNOWN))
        elif int(value) > 0:
            out.append(Check(key, value, rec, "", OK))
        else:
            # Off is right for a blocking feed; say so without calling it wrong.
            out.append(Check(key, value, rec, command, ADVICE,
                             "off: fine for a blocking feed, turn on for spin=True with a "
                             "NIC that supports busy polling"))  # fmt: skip
    return out


def format_report(cpu, checks) -> str:
    """The report as text: one block per check (status, what is set, what is
    recommended, the command), and a count at the end."""
    lines = [
        f"Low-latency readiness for a feed thread on core "
        f"{cpu if cpu is not None else UNKNOWN} (nothing is changed)",
        "",
    ]
    width = max(len(c.name) for c in checks)
    for c in checks:
        lines.append(f"[{c.status:<7}] {c.name:<{width}}  {c.value}")
        pad = " " * 10
        lines.append(f"{pad}recommended: {c.recommended}")
        if c.command:
            lines.append(f"{pad}change:      {c.command}")
        if c.detail:
            lines.append(f"{pad}note:        {c.detail}")
    counts = {s: sum(c.status == s for c in checks) for s in (OK, ADVICE, UNKNOWN)}
    lines.append("")
    lines.append(
        f"{counts[OK]} ok, {counts[ADVICE]} to consider, {counts[UNKNOWN]} unknown "
        "(unknown: the file is missing here, e.g. in a container or VM)"
    )
    return "\n".join(lines)


def as_dict(cpu, checks) -> dict:
    """The report as a JSON-ready dict: ``{"cpu": ..., "checks": [{...}, ...]}``."""
    return {"cpu": cpu, "checks": [asdict(c) for c in checks]}
