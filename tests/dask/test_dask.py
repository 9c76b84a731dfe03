"""hftcore.dask: lazy dataframes of day files, per-day book work, and to-parquet on a
LocalCluster where a worker is killed mid-run (issue 11)."""

from __future__ import annotations

import gzip
import os
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

import pyarrow.dataset as pads  # noqa: E402

from hftcore import binance, itch  # noqa: E402
from hftcore import dask as hdask  # noqa: E402
from hftcore.sim import itch as simitch  # noqa: E402

DAYS = ["01282020.NASDAQ_ITCH50", "01292020.NASDAQ_ITCH50", "01302020.NASDAQ_ITCH50"]


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    d = tmp_path_factory.mktemp("days")
    out = {}
    for i, name in enumerate(DAYS):
        data = simitch.generate(messages=60_000, symbols=30, seed=20 + i)
        if i == 1:
            p = d / (name + ".gz")
            p.write_bytes(gzip.compress(data, compresslevel=1))
        else:
            p = d / name
            p.write_bytes(data)
        out[p] = data
    return out


def test_read_itch_partitions_and_values(days):
    paths = list(days)
    df = hdask.read_itch(paths, type="A", partition_bytes=300_000)
    # Plain days split into message-aligned partitions; the .gz day is one partition.
    want_parts = sum(len(hdask.itch_partitions(p, 300_000)) for p in paths)
    assert df.npartitions == want_parts > len(paths)
    got = df.compute(scheduler="sync")
    want = [itch.decode(data)["A"] for data in days.values()]
    assert len(got) == sum(len(w) for w in want)
    for p, w in zip(paths, want, strict=True):
        label = os.path.basename(p)[:8]
        iso = f"{label[4:]}-{label[:2]}-{label[2:4]}"
        part = got[got["day"] == iso]
        assert part["seq"].tolist() == w["seq"].tolist()
        assert part["price"].tolist() == w["price"].tolist()
        assert part["stock"].astype(str).tolist() == [s.rstrip(b" ").decode() for s in w["stock"]]
    sub = hdask.read_itch(paths[:1], type="P", columns=["seq", "price"]).compute(scheduler="sync")
    assert list(sub.columns) == ["seq", "price"]
    assert sub["seq"].tolist() == itch.decode(days[paths[0]])["P"]["seq"].tolist()


def test_itch_partitions_cover_the_file(days):
    p = next(iter(days))
    parts = hdask.itch_partitions(p, 100_000)
    assert parts[0][0] == 0 and parts[-1][1] == os.path.getsize(p)
    assert all(a[1] == b[0] for a, b in zip(parts[:-1], parts[1:], strict=True))
    # seq_start of each range = messages before it (counted another way: decode the head)
    for start, _, seq in parts[1:3]:
        with open(p, "rb") as f:
            head = f.read(start)
        assert itch.decode(head, types="").messages == seq


def test_read_bbo_one_task_per_day(days):
    paths = list(days)
    df = hdask.read_bbo(paths)
    assert df.npartitions == len(paths)
    got = df.compute(scheduler="sync")
    total = 0
    for data in days.values():
        book = itch.OrderBook(bbo=True)
        book.apply(data)
        total += len(book.drain_bbo())
    assert len(got) == total > 0


def test_read_binance(tmp_path):
    from hftcore.sim import binance as simb

    paths = []
    for i in range(2):
        p = tmp_path / f"rec{i}.ndjson"
        p.write_bytes(b"\n".join(simb.generate_messages(800, seed=i)))
        paths.append(p)
    df = hdask.read_binance(paths, kind="trades")
    assert df.npartitions == 2
    got = df.compute(scheduler="sync")
    want = [binance.read_file(p)["trades"] for p in paths]
    assert len(got) == sum(len(w) for w in want)
    assert got["price"].tolist() == np.concatenate([w["price"] for w in want]).tolist()
    with pytest.raises(ValueError, match="kind must be one of"):
        hdask.read_binance(paths, kind="nope")


@pytest.mark.dask_cluster
def test_convert_days_on_a_local_cluster_with_a_killed_worker(days, tmp_path):
    """A worker is killed (SIGKILL) while it converts a day: the scheduler runs that day
    again on the other worker, and the output is complete, each file written once."""
    paths = list(days)
    bad = tmp_path / "02032020.NASDAQ_ITCH50.gz"
    comp = bytearray(gzip.compress(next(iter(days.values()))))
    comp[len(comp) // 2] ^= 0xFF
    bad.write_bytes(bytes(comp))
    out = tmp_path / "out"
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, memory_limit="1GiB")  # fmt: skip
    client = distributed.Client(cluster)
    killed = []
    try:
        pids = client.run(os.getpid)  # worker address -> process id

        def kill_a_busy_worker():
            # Wait until a day task is running, then kill its worker process.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for addr, keys in client.processing().items():
                    if keys and addr in pids:
                        time.sleep(0.05)
                        os.kill(pids[addr], signal.SIGKILL)
                        killed.append(keys[0])
                        return
                time.sleep(0.005)

        killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
        killer.start()
        summary = hdask.convert_days(paths + [bad], out, client=client, chunk_bytes=200_000,
                                     row_group_rows=10_000, bbo=True)  # fmt: skip
        killer.join(timeout=65)
    finally:
        client.close()
        cluster.close(timeout=30)
    assert killed, "no worker was killed: the test did not exercise a retry"
    assert set(summary["errors"]) == {str(bad)}
    assert "corrupt gzip stream" in summary["errors"][str(bad)]
    assert set(summary["results"]) == {str(p) for p in paths}
    for p, data in days.items():
        want = itch.decode(data)
        label = summary["results"][str(p)]["day"]
        for t in "AEDP":
            files = list((out / t / f"day={label}").iterdir())
            assert [f.name for f in files] == [os.path.basename(p).removesuffix(".gz") + ".parquet"]
            n = pads.dataset(files[0]).count_rows()
            assert n == len(want[t])
    assert not [q for q in out.rglob("*") if q.name.endswith(".tmp")]
    assert not (out / "A" / "day=2020-02-03").exists()
