"""Multicast across two network namespaces joined by a veth pair: the local exchange in
one, ``hftcore itch listen`` in the other, with drops, reordering and duplicates; the books
must equal ``OrderBook.apply`` on the day. Skipped where namespaces cannot be made (not
root, no ``ip``, a container without CAP_NET_ADMIN). Namespaces, links and processes are
removed by the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

import hftcore
from hftcore import itch
from hftcore.itch.feed import books_snapshot
from hftcore.sim import itch as simitch


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10,
                          check=check)  # fmt: skip


@pytest.fixture
def netns_pair():
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2 for network namespaces")
    tag = uuid.uuid4().hex[:6]
    a, b = f"hfta{tag}", f"hftb{tag}"
    va, vb = f"hva{tag}", f"hvb{tag}"
    made = []
    try:
        for ns in (a, b):
            r = _ip("netns", "add", ns, check=False)
            if r.returncode:
                pytest.skip(f"cannot create a network namespace: {r.stderr.strip()}")
            made.append(ns)
        _ip("link", "add", va, "type", "veth", "peer", "name", vb)
        for ns, dev, addr in ((a, va, "10.97.0.1/24"), (b, vb, "10.97.0.2/24")):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", addr, "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)
        yield a, b
    finally:
        for ns in made:
            _ip("netns", "del", ns, check=False)  # removes the veth pair with it


def test_multicast_over_a_veth_pair(netns_pair, tmp_path):
    a, b = netns_pair
    out = tmp_path / "out.json"
    # The installed hftcore, as this process imports it (not the source tree: the
    # subprocess's cwd would put it first without conftest's PYTHONSAFEPATH).
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(hftcore.__file__)))
    hft = [sys.executable, "-m", "hftcore", "itch"]
    listen = subprocess.Popen(
        ["ip", "netns", "exec", b, *hft, "listen", "--moldudp64", "239.9.7.7:26470",
         "--interface", "10.97.0.2", "--rerequest", "10.97.0.1:26471", "--duration", "60",
         "--quiet", "--json", str(out), "--max-orders", "200000", "--max-levels", "50000"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    serve = subprocess.Popen(
        ["ip", "netns", "exec", a, *hft, "serve", "generate:60000:40:5", "--moldudp64",
         "239.9.7.7:26470", "--interface", "10.97.0.1", "--rerequest-host", "10.97.0.1",
         "--rerequest-port", "26471", "--rate", "300000", "--drop", "0.01", "--reorder",
         "0.01", "--dup", "0.01", "--start-delay", "1.5", "--linger", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        text = listen.communicate(timeout=90)[0].decode()
        assert listen.returncode == 0, text
    finally:
        for p in (listen, serve):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
    doc = json.loads(out.read_text())
    book = itch.OrderBook(200_000, 50_000)
    book.apply(simitch.generate(60_000, 40, 5))
    assert doc["messages"] == book.seq and doc["unrecovered"] == 0 and doc["gaps"] > 0
    assert doc["books"] == books_snapshot(book, 5)
