"""``hftcore itch serve`` and ``hftcore itch listen``: ITCH over MoldUDP64 and SoupBinTCP."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

from hftcore.cli._args import int_range

_FMT = argparse.RawDescriptionHelpFormatter

_SERVE = """\
Replay an ITCH 5.0 day as a live feed on this machine (the local exchange).

MoldUDP64: packets of at most 1400 bytes to HOST:PORT (unicast, or a multicast group
such as 239.1.1.1), with a re-request server on --rerequest-port answering from the
last --history messages. --drop/--reorder/--dup inject faults (per packet, seeded).
After the last message it sends end-of-session packets and keeps answering re-requests
for --linger seconds.

SoupBinTCP: one session on PORT; clients log in (with --user/--password if given) and
may resume at any sequence number.

FILE is an ITCH file (.gz too), or generate:MESSAGES[:SYMBOLS[:SEED]] for a synthetic day.

examples:
  hftcore itch serve generate:2000000 --moldudp64 127.0.0.1:26400 --rerequest-port 26401
  hftcore itch serve day.itch --moldudp64 239.1.1.1:26400 --rerequest-port 26401 \\
      --interface 127.0.0.1 --rate 500000 --drop 0.01
  hftcore itch serve day.itch --moldudp64 127.0.0.1:26400 --pace timestamps --speed 60
  hftcore itch serve day.itch --soupbintcp 26500 --user me --password secret
"""

_LISTEN = """\
Receive a live ITCH feed into every stock's order book on a pinned thread, show the top
of book and the counters once a second, and end with the latency and loss report. Stops
at the end of the session, after --duration seconds, or on Ctrl-C.

MoldUDP64 gaps are asked of the --rerequest server; one it cannot fill stops the feed
(--on-gap stop, the default) or is skipped and counted (--on-gap continue).

--json FILE writes {"messages", "gaps", "recovered", "unrecovered", "duplicates",
"books": {SYMBOL: {"bids": [[price, shares, orders], ...], "asks": [...]}},
"latency_ns": {STAGE: {"count", "p50", "p90", "p99", "p999", "max"}}}, prices as
integers with 4 implied decimals, the top --levels levels of every book with orders
(or of the --symbol books).

examples:
  hftcore itch listen --moldudp64 127.0.0.1:26400 --rerequest 127.0.0.1:26401
  hftcore itch listen --moldudp64 239.1.1.1:26400 --interface 127.0.0.1 \\
      --rerequest 127.0.0.1:26401 --symbol AAPL --json out.json
  hftcore itch listen --soupbintcp 127.0.0.1:26500 --user me --password secret
"""


def _host_port(text: str):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _probability(text: str):
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= p < 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), got {p}")
    return p


def _day_source(text: str):
    if text.startswith("generate:"):
        parts = text.split(":")[1:]
        try:
            nums = [int(x.replace("_", "")) for x in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad {text!r}: expected generate:MESSAGES[:SYMBOLS[:SEED]]"
            ) from None
        return ("generate", *nums)
    return text


def _serve(args) -> int:
    from hftcore.sim import itch_exchange as ex

    if (args.moldudp64 is None) == (args.soupbintcp is None):
        print("hftcore: error: give one of --moldudp64 HOST:PORT and --soupbintcp PORT",
              file=sys.stderr)  # fmt: skip
        return 2
    source = args.file
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    if args.moldudp64 is not None:
        srv = ex.MoldUDP64Server(
            source, args.moldudp64, rerequest=(args.rerequest_host, args.rerequest_port),
            session=args.session, rate=args.rate, pace=args.pace, speed=args.speed,
            drop=args.drop, reorder=args.reorder, dup=args.dup, seed=args.seed,
            history=args.history, interface=args.interface, start_delay=args.start_delay,
        )  # fmt: skip
        print(f"MoldUDP64: {srv.n:,} messages in {len(srv.runs):,} packets to "
              f"{args.moldudp64[0]}:{args.moldudp64[1]}, re-requests on "
              f"{srv.rerequest_address[0]}:{srv.rerequest_address[1]}", flush=True)  # fmt: skip
        t0 = time.monotonic()
        with srv:
            try:
                while not srv.wait(0.2) and not stop.is_set():
                    pass
                sent = (srv.send_ended or time.monotonic()) - (srv.send_started or t0)
                print(f"sent in {sent:.2f} s ({srv.n / max(sent, 1e-9):,.0f} messages/s); "
                      f"answering re-requests for {args.linger} s", flush=True)  # fmt: skip
                stop.wait(args.linger)
            except KeyboardInterrupt:
                pass
        print(json.dumps(srv.counters))
        return 0
    srv = ex.SoupBinTCPServer(
        source, (args.host, args.soupbintcp), session=args.session, username=args.user,
        password=args.password, rate=args.rate,
    )  # fmt: skip
    print(f"SoupBinTCP: {srv.n:,} messages, session {args.session}, on "
          f"{srv.address[0]}:{srv.address[1]} (Ctrl-C to stop)", flush=True)  # fmt: skip
    with srv:
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print(json.dumps(srv.counters))
    return 0


def _status_line(feed, last, symbols):
    st = feed.stats()
    now = time.monotonic()
    n = st["applied"]
    rate = (n - last[1]) / max(now - last[0], 1e-9)
    last[0], last[1] = now, n
    parts = [f"{n:>12,} msgs", f"{rate:>11,.0f}/s"]
    if feed.transport == "moldudp64":
        parts.append(f"gaps {st['gaps']} rec {st['recovered']} unrec {st['unrecovered']} "
                     f"dup {st['duplicates']} buf {st['buffered']}"
                     + (" STALE" if st["stale"] else ""))  # fmt: skip
    else:
        parts.append(f"reconnects {st['reconnects']} hb {st['heartbeats']}")
    for sym in symbols[:3]:
        try:
            bp, bs, ap, as_ = feed.bbo(sym)
        except KeyError:
            continue
        parts.append(f"{sym} {bs}@{bp / 1e4:.4f} / {as_}@{ap / 1e4:.4f}")
    return "  ".join(parts)


def _listen(args) -> int:
    from hftcore.itch.book import DEFAULT_MAX_LEVELS, DEFAULT_MAX_ORDERS
    from hftcore.itch.feed import Feed

    if (args.moldudp64 is None) == (args.soupbintcp is None):
        print("hftcore: error: give one of --moldudp64 HOST:PORT and --soupbintcp HOST:PORT",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.soupbintcp is not None and (args.user is None or args.password is None):
        print("hftcore: error: --soupbintcp needs --user and --password", file=sys.stderr)
        return 2
    symbols = args.symbol or None
    feed = Feed(
        moldudp64=args.moldudp64, rerequest=args.rerequest, interface=args.interface,
        soupbintcp=args.soupbintcp, user=args.user, password=args.password,
        symbols=symbols, max_orders=args.max_orders or DEFAULT_MAX_ORDERS,
        max_levels=args.max_levels or DEFAULT_MAX_LEVELS, cpu=args.cpu, spin=args.spin,
        on_gap=args.on_gap, record=args.record,
    )  # fmt: skip
    deadline = None if args.duration is None else time.monotonic() + args.duration
    last = [time.monotonic(), 0]
    error = None
    feed.start()
    try:
        while True:
            if feed.wait(1.0):
                break
            if not args.quiet:
                print(_status_line(feed, last, symbols or []), flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
    except KeyboardInterrupt:
        pass
    except Exception as e:  # the feed's error: report it after the numbers
        error = e
    try:
        feed.stop()
    except Exception as e:
        error = error or e
    st = feed.stats()
    rep = feed.report()
    if rep is not None:
        print(rep.text())
    keys = ("packets", "messages", "gaps", "requests", "requested", "recovered", "duplicates",
            "reordered", "unrecovered", "unrecoverable_gaps", "stale_periods",
            "buffer_high_water", "overflow", "malformed", "reconnects", "heartbeats")  # fmt: skip
    print("loss report: " + ", ".join(f"{k} {st[k]:,}" for k in keys if k in st)
          + f", applied {st['applied']:,}")  # fmt: skip
    if st.get("unrecovered_ranges"):
        print(f"unrecovered ranges [first, end): {st['unrecovered_ranges']}")
    if args.json:
        doc = feed.summary(args.levels, symbols)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    if error is not None:
        raise error
    return 0


def register(cli):
    g = cli.group("itch", help="NASDAQ TotalView-ITCH 5.0 files: simulate, stats, dump, book, bbo")
    p = g.add_parser("serve", help="replay a day as MoldUDP64 or SoupBinTCP (local exchange)",
                     description=_SERVE, formatter_class=_FMT)  # fmt: skip
    p.add_argument("file", metavar="FILE", type=_day_source,
                   help="ITCH file (.gz too) or generate:MESSAGES[:SYMBOLS[:SEED]]")  # fmt: skip
    p.add_argument("--moldudp64", type=_host_port, metavar="HOST:PORT",
                   help="send MoldUDP64 to this unicast address or multicast group")  # fmt: skip
    p.add_argument("--rerequest-port", type=int_range(0, 65535), default=0, metavar="N",
                   help="UDP port of the re-request server (default: any free port)")  # fmt: skip
    p.add_argument("--rerequest-host", default="127.0.0.1", metavar="IP",
                   help="address the re-request server binds (default: %(default)s)")  # fmt: skip
    p.add_argument("--soupbintcp", type=int_range(0, 65535), metavar="PORT",
                   help="serve SoupBinTCP on this TCP port")  # fmt: skip
    p.add_argument("--host", default="127.0.0.1", help="SoupBinTCP bind address")
    p.add_argument("--user", help="SoupBinTCP username required (default: any)")
    p.add_argument("--password", help="SoupBinTCP password required")
    p.add_argument("--session", default="HFTCORE001", help="session name (10 characters)")
    p.add_argument("--rate", type=float, default=None, metavar="N",
                   help="messages per second (default: as fast as possible)")  # fmt: skip
    p.add_argument("--pace", choices=("rate", "timestamps"), default="rate",
                   help="'timestamps': send at the messages' own times (with --speed)")  # fmt: skip
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="speed-up of --pace timestamps (default: %(default)s)")  # fmt: skip
    for name, what in (("drop", "dropped"), ("reorder", "sent after the next one"),
                       ("dup", "sent twice")):  # fmt: skip
        p.add_argument(f"--{name}", type=_probability, default=0.0, metavar="P",
                       help=f"probability a packet is {what} (default 0)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the faults")
    p.add_argument("--history", type=int_range(1), default=None, metavar="N",
                   help="messages the re-request server keeps (default: all)")  # fmt: skip
    p.add_argument("--interface", metavar="IP", help="local address multicast leaves from")
    p.add_argument("--start-delay", type=float, default=1.0, metavar="S",
                   help="heartbeats for S seconds before the first message (default 1)")  # fmt: skip
    p.add_argument("--linger", type=float, default=5.0, metavar="S",
                   help="answer re-requests S seconds after the end (default 5)")  # fmt: skip
    p.set_defaults(func=_serve)

    p = g.add_parser("listen", help="receive a live feed into the order books, report loss "
                     "and latency", description=_LISTEN, formatter_class=_FMT)  # fmt: skip
    p.add_argument("--moldudp64", type=_host_port, metavar="HOST:PORT",
                   help="receive MoldUDP64 on this address or multicast group")  # fmt: skip
    p.add_argument("--rerequest", type=_host_port, metavar="HOST:PORT",
                   help="the MoldUDP64 re-request server")  # fmt: skip
    p.add_argument("--interface", metavar="IP", help="join the multicast group on this address")
    p.add_argument("--soupbintcp", type=_host_port, metavar="HOST:PORT",
                   help="log into this SoupBinTCP server")  # fmt: skip
    p.add_argument("--user", help="SoupBinTCP username")
    p.add_argument("--password", help="SoupBinTCP password")
    p.add_argument("--cpu", type=int_range(0), default=None, metavar="N",
                   help="core of the feed thread (default: chosen)")  # fmt: skip
    p.add_argument("--spin", action="store_true", help="busy-poll the socket")
    p.add_argument("--symbol", action="append", metavar="S",
                   help="keep and show only these books (repeatable)")  # fmt: skip
    p.add_argument("--record", metavar="FILE", help="capture every datagram / chunk")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds")  # fmt: skip
    p.add_argument("--json", metavar="FILE", help="write the summary as JSON")
    p.add_argument("--levels", type=int_range(1), default=5, metavar="N",
                   help="levels per side in --json (default: %(default)s)")  # fmt: skip
    p.add_argument("--on-gap", choices=("stop", "continue"), default="stop",
                   help="an unrecoverable MoldUDP64 gap stops, or is counted (default stop)")  # fmt: skip
    p.add_argument("--max-orders", type=int_range(1), default=None, metavar="N",
                   help="order store capacity (default 8,000,000)")  # fmt: skip
    p.add_argument("--max-levels", type=int_range(1), default=None, metavar="N",
                   help="price level capacity (default 2,000,000)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no status line each second")
    p.set_defaults(func=_listen)
