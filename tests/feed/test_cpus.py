"""Core facts and the choice of the feed core, against hand-written /sys and /proc."""

from __future__ import annotations

import logging
import os

import pytest

from hftcore.feed import cpus
from hftcore.feed.cpus import (
    CpuError,
    busy_between,
    choose_cpu,
    cmdline_cpus,
    cpu_facts,
    format_cpu_list,
    parse_cpu_list,
)

ALL4 = {0, 1, 2, 3}


@pytest.mark.parametrize(
    ("text", "last", "expected"),
    [
        ("", None, set()),
        ("\n", None, set()),
        ("3", None, {3}),
        ("2-5,8", None, {2, 3, 4, 5, 8}),
        ("0,2-3,7-7", None, {0, 2, 3, 7}),
        ("0-15:2/4", None, {0, 1, 4, 5, 8, 9, 12, 13}),  # the kernel's own example
        ("1-N", 5, {1, 2, 3, 4, 5}),
        ("N", 7, {7}),
    ],
)
def test_parse_cpu_list(text, last, expected):
    assert parse_cpu_list(text, last=last) == expected


@pytest.mark.parametrize("text", ["a", "3-1", "1-x", "0-7:2", "0-7:1/0", "N"])
def test_parse_cpu_list_rejects(text):
    with pytest.raises(CpuError, match="CPU list"):
        parse_cpu_list(text)


@pytest.mark.parametrize("cpus_", [set(), {0}, {0, 1, 2, 5}, {1, 3, 5}, {4, 5, 6, 7, 9}])
def test_format_round_trip(cpus_):
    assert parse_cpu_list(format_cpu_list(cpus_)) == cpus_


def test_format_cpu_list():
    assert format_cpu_list({0, 1, 2, 5}) == "0-2,5"


def test_cmdline_options(fake_root):
    fake_root.write(
        "proc/cmdline",
        "BOOT_IMAGE=/vmlinuz quiet isolcpus=nohz,domain,managed_irq,2-3 nohz_full=3,5 "
        "rcu_nocbs=2-N -- isolcpus=9\n",
    )
    fake_root.write("sys/devices/system/cpu/online", "0-7\n")
    assert cmdline_cpus("isolcpus", fake_root.proc) == {2, 3}  # init's args ignored
    assert cmdline_cpus("nohz_full", fake_root.proc) == {3, 5}
    assert cmdline_cpus("rcu_nocbs", fake_root.proc, last=7) == {2, 3, 4, 5, 6, 7}
    assert cmdline_cpus("irqaffinity", fake_root.proc) == set()
    facts = cpu_facts(fake_root.sys, fake_root.proc, allowed=ALL4)
    assert facts.isolated is None  # no sysfs file: unknown, not "none"
    assert facts.isolcpus == {2, 3}
    assert facts.isolated_all == {2, 3, 5}


def test_missing_files_are_unknown(fake_root):
    facts = cpu_facts(fake_root.sys, fake_root.proc, allowed={0, 1})
    assert (facts.online, facts.isolated, facts.isolcpus, facts.nohz_full) == (None,) * 4
    assert choose_cpu(sys_root=fake_root.sys, proc_root=fake_root.proc, allowed={0, 1},
                      warn=False) == 1  # fmt: skip


def _machine(fake_root, isolated="", cmdline="quiet", online="0-3"):
    fake_root.write("sys/devices/system/cpu/isolated", isolated + "\n")
    fake_root.write("sys/devices/system/cpu/online", online + "\n")
    fake_root.write("proc/cmdline", cmdline + "\n")
    return {"sys_root": fake_root.sys, "proc_root": fake_root.proc, "warn": False}


def test_isolated_core_is_chosen(fake_root):
    roots = _machine(fake_root, isolated="3")
    assert choose_cpu(allowed=ALL4, **roots) == 3


def test_isolated_and_nohz_preferred(fake_root):
    roots = _machine(fake_root, isolated="2-3", cmdline="isolcpus=2-3 nohz_full=3")
    assert choose_cpu(allowed=ALL4, busy={2: 0.0, 3: 0.9}, **roots) == 3


def test_least_busy_isolated(fake_root):
    roots = _machine(fake_root, isolated="1-3")
    assert choose_cpu(allowed=ALL4, busy={1: 0.5, 2: 0.05, 3: 0.3}, **roots) == 2


def test_isolated_from_cmdline_only(fake_root):
    roots = _machine(fake_root, cmdline="isolcpus=domain,managed_irq,1")
    assert choose_cpu(allowed=ALL4, busy={1: 0.99, 2: 0.0, 3: 0.0}, **roots) == 1


def test_offline_isolated_core_is_not_chosen(fake_root):
    roots = _machine(fake_root, cmdline="isolcpus=5", online="0-3")
    assert choose_cpu(allowed=ALL4, busy={1: 0.3, 2: 0.2, 3: 0.1}, **roots) == 3


def test_least_busy_other_than_zero(fake_root):
    roots = _machine(fake_root)
    assert choose_cpu(allowed=ALL4, busy={0: 0.0, 1: 0.8, 2: 0.4, 3: 0.6}, **roots) == 2


def test_isolated_outside_affinity_is_not_chosen(fake_root):
    # isolcpus leaves isolated cores out of every process's affinity; without taskset the
    # choice stays among the allowed cores.
    roots = _machine(fake_root, isolated="2-3")
    assert choose_cpu(allowed={0, 1}, **roots) == 1


def test_one_core_machine(fake_root):
    roots = _machine(fake_root, online="0")
    assert choose_cpu(allowed={0}, **roots) == 0


def test_only_core_zero_allowed(fake_root):
    roots = _machine(fake_root)
    assert choose_cpu(allowed={0}, **roots) == 0


def test_preferred_core(fake_root):
    roots = _machine(fake_root, isolated="3")
    assert choose_cpu(2, allowed=ALL4, **roots) == 2
    assert choose_cpu("1", allowed=ALL4, **roots) == 1
    # An isolated core is allowed even outside the affinity (pinning decides).
    assert choose_cpu(3, allowed={0, 1}, **roots) == 3


def test_preferred_core_not_allowed(fake_root):
    roots = _machine(fake_root)
    with pytest.raises(CpuError, match=r"core 2: this process may run on cores 0-1"):
        choose_cpu(2, allowed={0, 1}, **roots)
    with pytest.raises(CpuError, match=r"core 9 is not online here \(online: 0-3\)"):
        choose_cpu(9, allowed={0, 1}, **roots)
    with pytest.raises(CpuError, match="not a core number"):
        choose_cpu("one", allowed={0, 1}, **roots)


def test_logs_once_that_no_core_is_isolated(fake_root, caplog, monkeypatch):
    monkeypatch.setattr(cpus, "_warned_no_isolated", False)
    roots = _machine(fake_root)
    roots["warn"] = True
    with caplog.at_level(logging.WARNING, logger="hftcore.feed"):
        choose_cpu(allowed={0, 1}, **roots)
        choose_cpu(allowed={0, 1}, **roots)
    msgs = [r.getMessage() for r in caplog.records if "isolated" in r.getMessage()]
    assert len(msgs) == 1 and "no core is isolated" in msgs[0]


def test_logs_isolated_but_not_allowed(fake_root, caplog, monkeypatch):
    monkeypatch.setattr(cpus, "_warned_no_isolated", False)
    roots = _machine(fake_root, isolated="2-3")
    roots["warn"] = True
    with caplog.at_level(logging.WARNING, logger="hftcore.feed"):
        choose_cpu(allowed={0, 1}, **roots)
    assert any("cores 2-3 are isolated" in r.getMessage() for r in caplog.records)


STAT0 = """cpu  100 0 100 800 0 0 0 0 0 0
cpu0 10 0 10 80 0 0 0 0 0 0
cpu1 50 0 0 50 0 0 0 0 0 0
cpu2 0 0 0 100 0 0 0 0 0 0
intr 1 2 3
"""
# Over the interval: cpu0 30 busy of 100, cpu1 90 busy (incl. 10 iowait as idle) of 100,
# cpu2 0 busy; iowait counts as idle.
STAT1 = """cpu  200 0 200 1600 0 0 0 0 0 0
cpu0 30 0 20 150 0 0 0 0 0 0
cpu1 120 0 10 60 10 0 0 0 0 0
cpu2 0 0 0 200 0 0 0 0 0 0
"""


def test_busy_between():
    busy = busy_between(STAT0, STAT1)
    assert busy == pytest.approx({0: 0.30, 1: 0.80, 2: 0.0})


def test_busy_from_real_proc():
    busy = cpus.cpu_busy(0.02)
    if busy is None:
        pytest.skip("no /proc/stat here")
    assert set(busy) >= cpus.allowed_cpus() and all(0.0 <= v <= 1.0 for v in busy.values())


def test_real_machine_choice_is_allowed():
    cpu = choose_cpu(interval=0.02, warn=False)
    allowed = os.sched_getaffinity(0)
    assert cpu in allowed
    if len(allowed) > 1:
        assert cpu != 0 or not (allowed - {0})
