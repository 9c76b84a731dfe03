"""Throughput of ITCH over MoldUDP64 on loopback: messages/s into every book.

A sender process (``hftcore itch serve``) replays a synthetic day as fast as it can (or at
``--rate``), optionally with drops; this process receives it with :class:`hftcore.itch.Feed`
(UdpReader -> MoldUDP64Sequencer -> OrderBook on a pinned thread) and reports, per run,
messages/s from the first message applied to the end of the session, the gaps the
kernel or the injected drops made and whether every one was recovered. Medians over runs.

    python tools/bench_itch_wire.py --messages 4000000 --runs 3
    python tools/bench_itch_wire.py --messages 4000000 --runs 3 --drop 0.01
    python tools/bench_itch_wire.py --messages 2000000 --rate 4000000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def one_run(day_path, n_messages, rate, drop, seed, latency, spin=False):
    from hftcore import itch

    port, rport = free_port(), free_port()
    cmd = [sys.executable, "-m", "hftcore", "itch", "serve", day_path, "--moldudp64",
           f"127.0.0.1:{port}", "--rerequest-port", str(rport), "--start-delay", "1.5",
           "--linger", "120", "--drop", str(drop), "--seed", str(seed)]  # fmt: skip
    if rate:
        cmd += ["--rate", str(rate)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    feed = itch.Feed(moldudp64=("127.0.0.1", port), rerequest=("127.0.0.1", rport),
                     max_orders=2_000_000, max_levels=400_000, latency=latency, spin=spin)  # fmt: skip
    feed.start()
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        t_first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if t_first is None and feed.consumer.messages > 0:
                t_first = time.monotonic()
            if feed.ended or not feed.thread.is_alive:
                break
            time.sleep(0.0005 if t_first is None else 0.002)
        t_end = time.monotonic()
        feed.stop()
    finally:
        srv.terminate()
        out = srv.communicate(timeout=30)[0].decode()
    st = feed.stats()
    sent_line = next((ln for ln in out.splitlines() if ln.startswith("sent in")), "")
    rep = feed.report()
    lat = rep.as_dict().get("recv_to_applied") if rep is not None else None
    return {
        "messages_per_s": st["applied"] / (t_end - t_first),
        "applied": st["applied"],
        "complete": st["applied"] == n_messages and st["unrecovered"] == 0,
        "gaps": st["gaps"],
        "requested": st["requested"],
        "recovered": st["recovered"],
        "unrecovered": st["unrecovered"],
        "buffer_high_water": st["buffer_high_water"],
        "sender": sent_line,
        "recv_to_applied_ns": lat,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=4_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=None)
    ap.add_argument("--drop", type=float, default=0.0)
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--spin", action="store_true", help="busy-poll the feed socket")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    from hftcore.sim import itch as simitch
    from hftcore.sim.itch_exchange import message_offsets

    day_path = f"/tmp/bench_itch_wire_{args.messages}.itch"
    if not os.path.exists(day_path):
        simitch.write_day(day_path, messages=args.messages, symbols=1000, seed=1)
    with open(day_path, "rb") as f:
        n = len(message_offsets(f.read())) - 1
    runs = []
    for r in range(args.runs):
        res = one_run(day_path, n, args.rate, args.drop, r, not args.no_latency, args.spin)
        runs.append(res)
        print(json.dumps(res), flush=True)
    rates = [r["messages_per_s"] for r in runs]
    summary = {
        "messages": n, "rate": args.rate, "drop": args.drop, "runs": len(runs),
        "median_messages_per_s": statistics.median(rates),
        "all_complete": all(r["complete"] for r in runs),
        "median_gaps": statistics.median(r["gaps"] for r in runs),
    }  # fmt: skip
    print(json.dumps(summary))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "runs": runs}, f, indent=1)


if __name__ == "__main__":
    main()
