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


_BENCH = """\
Measure the receive path over loopback. A server process sends WebSocket text frames whose
payload starts with its CLOCK_REALTIME at send time (19 digits); each client receives the
same stream in turn on a pinned thread:
  raw               socket.recv_into a preallocated buffer, no framing: the floor
  hftcore           hftcore.net.ws.WebSocket.pump into a Cython consumer
  websocket-client  its recv() loop (UTF-8 validation on, the default)
  picows            asyncio + picows (when installed)
Stages, in nanoseconds, per frame:
  send_to_recv   sender's clock -> the receive call returned (raw, hftcore)
  recv_to_frame  receive call returned -> frame handed to the consumer (hftcore)
  send_to_frame  sender's clock -> frame available to user code
plus RFC 3550 jitter and messages/s. --rate 0 sends as fast as the socket takes frames (a
throughput run). Latencies on a shared machine: compare with the floor of the same run.

--json FILE writes {"clients": {NAME: {"stages": {STAGE: {"count", "p50", "p90", "p99",
"p999", "max"}}, "messages_per_s": ...}}, "config": {...}}.

example:
  hftcore feed bench
  hftcore feed bench --rate 0 --messages 2000000 --client raw,hftcore
  hftcore feed bench --rate 10000 --spin --cpu 1 --json bench.json
"""


def _clients(text):
    from hftcore.feed.bench import CLIENTS

    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in CLIENTS:
            raise argparse.ArgumentTypeError(f"unknown client {n!r} (one of {', '.join(CLIENTS)})")
    return names


def _bench(args):
    from hftcore.feed import bench

    clients = None
    if args.client:
        clients = list(dict.fromkeys(n for group in args.client for n in group))
    result = bench.run_bench(clients=clients, messages=args.messages, size=args.size,
                             rate=args.rate, spin=args.spin, cpu=args.cpu)  # fmt: skip
    print(bench.format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def register(cli):
    g = cli.group(
        "feed",
        help="live-feed runtime: machine readiness, receive-path benchmark",
        description="The exchange-free live-feed runtime (pinned thread, WebSocket reader).\n"
        "`hftcore feed SUBCOMMAND --help` explains each, with examples.\n\n"
        "start with:\n"
        "  hftcore feed check\n"
        "  hftcore feed bench",
    )
    p = g.add_parser(
        "check", help="how ready this machine is for low latency (changes nothing)",
        description=_CHECK, formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("--cpu", type=int_range(0), default=None, metavar="N",
                   help="the feed core to check (default: the one hftcore would choose)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_check)

    p = g.add_parser(
        "bench", help="receive-path latency and throughput over loopback, beside peers",
        description=_BENCH, formatter_class=_FMT,
    )  # fmt: skip
    p.add_argument("--rate", type=float, default=10_000, metavar="N",
                   help="frames per second, 0 = as fast as possible (default: 10000)")  # fmt: skip
    p.add_argument("--messages", type=int_range(1), default=50_000, metavar="N",
                   help="frames per client (default: %(default)s)")  # fmt: skip
    p.add_argument("--size", type=int_range(19, 1 << 24), default=200, metavar="B",
                   help="payload bytes per frame, >= 19 (default: %(default)s)")  # fmt: skip
    p.add_argument("--spin", action="store_true",
                   help="busy-poll a non-blocking socket instead of blocking")  # fmt: skip
    p.add_argument("--cpu", type=int_range(0), default=None, metavar="N",
                   help="core of the receiving thread (default: hftcore's choice)")  # fmt: skip
    p.add_argument("--client", type=_clients, action="append", metavar="NAME[,NAME]",
                   help="clients to run, in order (repeatable; default: every one available)")  # fmt: skip
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=_bench)
