"""``hftcore feed check | bench``: the live-feed runtime on this machine."""

from __future__ import annotations

import argparse
import json

from hftcore.cli._args import int_range

_FMT = argparse.RawDescriptionHelpFormatter

_CHECK = """\
Report how ready this machine is for a low-latency feed thread, for the core the feed
would run on (--cpu, or the one hftcore would choose: an isolated core, else the least
busy allowed core other than 0). It reads /sys and /proc and changes nothing.

Each line says what is set, what is recommended and the command that changes it:
  isolated / nohz_full / rcu_nocbs cores   kernel command line (reboot to change)
  IRQ affinity                             device interrupts allowed on the feed core
  CPU frequency governor                   "performance" keeps the clock up between bursts
  SMT siblings                             another hardware thread sharing the core
  transparent huge pages                   compaction stalls (madvise or never)
  clock source                             tsc: clock_gettime without a system call
  SCHED_FIFO permitted                     whether realtime=True can work
  timer migration, socket buffer limits (rmem_max, tcp_rmem, backlog), busy-poll sysctls

status: ok | advice (differs from the recommendation) | unknown (the file is missing here,
as in many containers and VMs). The exit status is 0 either way: this is a report.

example:
  hftcore feed check
  hftcore feed check --cpu 3 --json
"""


def _check(args):
    from hftcore.feed import check as chk

    cpu, checks = chk.check(args.cpu)
    if args.json:
        print(json.dumps(chk.as_dict(cpu, checks), indent=2))
    else:
        print(chk.format_report(cpu, checks))
    return 0


def register(cli):
    g = cli.group(
        "feed",
        help="live-feed runtime: machine readiness, receive-path benchmark",
        description="The exchange-free live-feed runtime (pinned thread, WebSocket reader).\n"
        "`hftcore feed SUBCOMMAND --help` explains each, with examples.\n\n"
        "start with:\n"
        "  hftcore feed check",
    )
    p = g.add_parser(
        "check", help="how ready this machine is for low latency (changes nothing)",
        description=_CHECK, formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("--cpu", type=int_range(0), default=None, metavar="N",
                   help="the feed core to check (default: the one hftcore would choose)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_check)
