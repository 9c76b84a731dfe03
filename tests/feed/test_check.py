"""``hftcore feed check``: every line against a hand-written machine, an empty one (all
unknown, no crash) and the real one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hftcore.cli import main
from hftcore.feed.check import UNKNOWN, as_dict, check, format_report


def _tuned(fake_root):
    w = fake_root.write
    w("sys/devices/system/cpu/online", "0-3\n")
    w("sys/devices/system/cpu/isolated", "2\n")
    w("proc/cmdline", "ro quiet isolcpus=managed_irq,domain,2 nohz_full=2 rcu_nocbs=2\n")
    w("proc/irq/1/smp_affinity_list", "0-1\n")
    w("proc/irq/9/smp_affinity_list", "0\n")
    w("proc/irq/default_smp_affinity", "3\n")
    w("sys/devices/system/cpu/cpu2/cpufreq/scaling_governor", "performance\n")
    w("sys/devices/system/cpu/cpu2/topology/thread_siblings_list", "2\n")
    w("sys/kernel/mm/transparent_hugepage/enabled", "always madvise [never]\n")
    w("sys/devices/system/clocksource/clocksource0/current_clocksource", "tsc\n")
    w("proc/sys/kernel/timer_migration", "0\n")
    w("proc/sys/net/core/rmem_max", "33554432\n")
    w("proc/sys/net/core/rmem_default", "212992\n")
    w("proc/sys/net/core/wmem_max", "16777216\n")
    w("proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t33554432\n")
    w("proc/sys/net/core/netdev_max_backlog", "10000\n")
    w("proc/sys/net/core/busy_read", "50\n")
    w("proc/sys/net/core/busy_poll", "50\n")


def _untuned(fake_root):
    w = fake_root.write
    w("sys/devices/system/cpu/online", "0-3\n")
    w("sys/devices/system/cpu/isolated", "\n")
    w("proc/cmdline", "ro quiet\n")
    w("proc/irq/1/smp_affinity_list", "0-3\n")
    w("proc/irq/9/smp_affinity_list", "0\n")
    w("proc/irq/17/smp_affinity_list", "1\n")
    w("sys/devices/system/cpu/cpu1/cpufreq/scaling_governor", "powersave\n")
    w("sys/devices/system/cpu/cpu1/topology/thread_siblings_list", "1,3\n")
    w("sys/devices/system/cpu/smt/control", "on\n")
    w("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n")
    w("sys/devices/system/clocksource/clocksource0/current_clocksource", "kvm-clock\n")
    w("sys/devices/system/clocksource/clocksource0/available_clocksource", "kvm-clock tsc\n")
    w("proc/sys/kernel/timer_migration", "1\n")
    w("proc/sys/net/core/rmem_max", "212992\n")
    w("proc/sys/net/core/rmem_default", "212992\n")
    w("proc/sys/net/core/wmem_max", "212992\n")
    w("proc/sys/net/ipv4/tcp_rmem", "4096 131072 6291456\n")
    w("proc/sys/net/core/netdev_max_backlog", "1000\n")
    w("proc/sys/net/core/busy_read", "0\n")
    w("proc/sys/net/core/busy_poll", "0\n")


def _by_name(checks):
    return {c.name: c for c in checks}


def test_tuned_machine_is_all_ok(fake_root):
    _tuned(fake_root)
    cpu, checks = check(sys_root=fake_root.sys, proc_root=fake_root.proc)
    # No core given: the isolated one is chosen (when this process may run there),
    # so check it explicitly too.
    cpu, checks = check(2, sys_root=fake_root.sys, proc_root=fake_root.proc)
    assert cpu == 2
    c = _by_name(checks)
    not_ok = {n: (x.value, x.status) for n, x in c.items()
              if x.status != "ok" and n != "SCHED_FIFO permitted"}  # fmt: skip
    assert not_ok == {}
    assert c["isolated cores"].value == "2 (sysfs isolated: 2)"
    assert c["IRQ affinity"].value == "0 of 2 IRQs may fire on core 2"
    assert c["CPU frequency governor"].value == "performance (core 2)"
    assert c["transparent huge pages"].value == "never"
    assert c["net.ipv4.tcp_rmem"].value == "4096 131072 33554432"
    assert all(x.command == "" for x in checks if x.status == "ok")


def test_untuned_machine_gets_advice(fake_root):
    _untuned(fake_root)
    cpu, checks = check(1, sys_root=fake_root.sys, proc_root=fake_root.proc)
    c = _by_name(checks)
    expect = {
        "isolated cores": ("none (sysfs isolated: none)", "isolcpus=managed_irq,domain,1"),
        "nohz_full cores": ("none", "nohz_full=1"),
        "rcu_nocbs cores": ("none", "rcu_nocbs=1"),
        "IRQ affinity": ("2 of 3 IRQs may fire on core 1 (1,17)", "/proc/irq/$i/"),
        "CPU frequency governor": ("powersave (core 1)", "frequency-set -g performance"),
        "SMT siblings of the feed core": ("core 1 shares its physical core with 3",
                                          "cpu3/online"),
        "transparent huge pages": ("always", "echo madvise >"),
        "clock source": ("kvm-clock", "echo tsc >"),
        "timer migration": ("1", "kernel.timer_migration=0"),
        "net.core.rmem_max": ("212992", "sysctl -w net.core.rmem_max=16777216"),
        "net.core.wmem_max": ("212992", "sysctl -w net.core.wmem_max=16777216"),
        "net.ipv4.tcp_rmem": ("4096 131072 6291456", "16777216"),
        "net.core.netdev_max_backlog": ("1000", "netdev_max_backlog=5000"),
        "net.core.busy_read": ("0", "sysctl -w net.core.busy_read=50"),
        "net.core.busy_poll": ("0", "sysctl -w net.core.busy_poll=50"),
    }  # fmt: skip
    for name, (value, command_part) in expect.items():
        assert c[name].value == value, name
        assert c[name].status == "advice", name
        assert command_part in c[name].command, (name, c[name].command)
        assert c[name].recommended, name
    assert c["net.core.rmem_default"].status == "ok"  # the default is fine at 212992
    text = format_report(cpu, checks)
    assert "feed thread on core 1 (nothing is changed)" in text
    assert "[advice ] CPU frequency governor" in text
    assert "change:      sysctl -w net.core.busy_read=50" in text


def test_empty_machine_is_unknown_not_a_crash(fake_root):
    cpu, checks = check(1, sys_root=fake_root.sys, proc_root=fake_root.proc)
    statuses = {c.name: c.status for c in checks}
    assert statuses.pop("SCHED_FIFO permitted") in ("ok", "advice")  # not a file
    assert set(statuses.values()) == {"unknown"}
    assert all(c.value == UNKNOWN for c in checks if c.status == "unknown")
    assert all(c.recommended for c in checks)


def test_garbage_files_are_unknown(fake_root):
    w = fake_root.write
    w("sys/devices/system/cpu/online", "zero\n")
    w("sys/devices/system/cpu/isolated", "x-y\n")
    w("proc/cmdline", "isolcpus=1-x nohz_full=3-1\n")
    w("proc/irq/4/smp_affinity_list", "??\n")
    w("sys/devices/system/cpu/cpu1/topology/thread_siblings_list", "q\n")
    w("proc/sys/net/core/rmem_max", "lots\n")
    w("proc/sys/net/ipv4/tcp_rmem", "1 2\n")
    cpu, checks = check(1, sys_root=fake_root.sys, proc_root=fake_root.proc)
    c = _by_name(checks)
    for name in ("isolated cores", "nohz_full cores", "SMT siblings of the feed core",
                 "net.core.rmem_max", "net.ipv4.tcp_rmem"):  # fmt: skip
        assert c[name].status == "unknown", name


def test_real_machine():
    cpu, checks = check()
    assert cpu is not None
    assert len(checks) == 17
    for c in checks:
        assert c.value and c.status in ("ok", "advice", "unknown"), c
        assert c.status != "unknown" or c.value == UNKNOWN
        assert c.status != "advice" or c.command or "tsc is not offered" in c.detail
    json.dumps(as_dict(cpu, checks))


def test_cli_check(capsys):
    assert main(["feed", "check", "--cpu", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Low-latency readiness for a feed thread on core 0")
    lines = [ln for ln in out.splitlines() if ln.startswith("[")]
    assert len(lines) == 17
    for ln in lines:
        status, rest = ln[1:].split("]", 1)
        assert status.strip() in ("ok", "advice", "unknown")
        name_value = rest.strip()
        assert len(name_value.split("  ")) >= 2, ln  # a name and a value, always


def test_cli_check_json(capsys):
    assert main(["feed", "check", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data["cpu"], int)
    assert {c["name"] for c in data["checks"]} >= {
        "isolated cores",
        "IRQ affinity",
        "clock source",
        "net.core.rmem_max",
    }
    for c in data["checks"]:
        assert set(c) == {"name", "value", "recommended", "command", "status", "detail"}


@pytest.mark.parametrize("argv", [["feed", "--help"], ["feed", "check", "--help"]])
def test_cli_help(argv):
    out = subprocess.run([sys.executable, "-m", "hftcore", *argv], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0
    assert "hftcore feed check" in out.stdout
    if "check" in argv:
        assert "--cpu N" in out.stdout and "changes nothing" in out.stdout


def test_cli_bad_cpu(capsys):
    with pytest.raises(SystemExit) as info:
        main(["feed", "check", "--cpu", "-1"])
    assert info.value.code == 2
