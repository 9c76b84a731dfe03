"""PinnedThread: pinning read back from the kernel, prompt stop with a silent peer, errors
reaching the caller, SCHED_FIFO or the clear message."""

from __future__ import annotations

import logging
import os
import select
import socket
import subprocess
import sys
import textwrap
import threading

import pytest

from hftcore.feed import PinnedThread


def _processor_of(tid: int) -> int:
    # Field 39 of /proc/<pid>/task/<tid>/stat, parsed here independently of the library.
    text = open(f"/proc/{os.getpid()}/task/{tid}/stat").read()
    return int(text.rsplit(")", 1)[1].split()[36])


def _current_core() -> int:
    return _processor_of(threading.get_native_id())


@pytest.fixture
def threads():
    """Threads a test starts; each is stopped at the end whatever happened."""
    started = []
    yield started
    for t in started:
        try:
            t.stop(timeout=5)
        except BaseException:  # noqa: B036 - the test has reported what it needed
            pass


def test_runs_on_the_chosen_core(threads):
    allowed = sorted(os.sched_getaffinity(0))
    here = _current_core()
    # A core other than the one the test runs on, when there is one.
    target = next((c for c in allowed if c != here), allowed[0])
    seen = []
    gate = threading.Event()

    def step():
        if len(seen) < 50:
            seen.append((os.sched_getaffinity(0), _current_core()))
        else:
            gate.set()
        gate.wait(0.01)

    main_affinity = os.sched_getaffinity(0)
    t = PinnedThread(step, cpu=target, name="pin-test")
    threads.append(t)
    t.start()
    assert gate.wait(10)
    stats = t.stats()
    assert stats["state"] == "running"
    assert stats["cpu"] == target
    assert stats["cpu_now"] == target == _processor_of(t.native_id)
    assert stats["affinity"] == [target]
    assert stats["native_id"] == t.native_id != threading.get_native_id()
    assert stats["voluntary_ctxt_switches"] > 0  # it waited on the gate
    assert stats["involuntary_ctxt_switches"] >= 0
    assert stats["user_time"] >= 0 and stats["system_time"] >= 0
    # Seen from inside, every step ran on the target core with only that core allowed.
    assert all(aff == {target} and core == target for aff, core in seen)
    # Only the thread was pinned, not the process.
    assert os.sched_getaffinity(0) == main_affinity
    with open(f"/proc/self/task/{t.native_id}/comm") as f:
        assert f.read().strip() == "pin-test"
    t.stop(timeout=5)
    assert t.stats()["state"] == "stopped" and not t.is_alive
    assert t.stats()["steps"] >= 50


def _silent_peers(kind):
    if kind == "socketpair":
        a, b = socket.socketpair()
        return a, b, []
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=5)
    conn, _ = server.accept()
    return conn, client, [server]


@pytest.mark.parametrize("kind", ["socketpair", "tcp"])
def test_stop_is_prompt_with_a_silent_peer(kind, threads):
    sock, peer, extra = _silent_peers(kind)
    try:
        received = []
        polls = threading.Event()

        def step():
            # A reader's pump: wait at most 50 ms for input, then come back.
            readable, _, _ = select.select([sock], [], [], 0.05)
            if readable:
                received.append(sock.recv(4096))
            polls.set()

        t = PinnedThread(step, poll_interval=0.05)
        threads.append(t)
        t.start()
        assert polls.wait(10)
        peer.sendall(b"one")  # the loop does receive when there is something
        for _ in range(200):
            if received:
                break
            polls.clear()
            polls.wait(1)
        assert received == [b"one"]
        # Now the peer is silent: stop must come back (TimeoutError otherwise).
        t.stop(timeout=2)
        assert not t.is_alive and t.stats()["state"] == "stopped"
    finally:
        for s in (sock, peer, *extra):
            s.close()


def test_stop_reports_a_step_that_does_not_return(threads):
    a, b = socket.socketpair()
    try:
        a.settimeout(30)  # a blocking recv with no short timeout: the wrong kind of step

        def step():
            return a.recv(1) == b"x"

        t = PinnedThread(step)
        threads.append(t)
        t.start()
        with pytest.raises(TimeoutError, match="did not end within 0.2 s"):
            t.stop(timeout=0.2)
        assert t.is_alive and t.stats()["state"] == "stopping"
        b.sendall(b"x")  # unblock it: the step returns true, the loop ends
        assert t.join(timeout=10) is True
        assert t.stats()["state"] == "stopped"
    finally:
        a.close()
        b.close()


class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("way", ["stop", "join", "exit"])
def test_an_exception_in_the_loop_reaches_the_caller(way, threads):
    errors = []
    count = [0]

    def step():
        count[0] += 1
        if count[0] == 5:
            raise Boom("step 5 failed")

    t = PinnedThread(step, on_error=errors.append)
    threads.append(t)
    if way == "exit":
        with pytest.raises(Boom, match="step 5 failed"):
            with t:
                while t.is_alive:
                    threading.Event().wait(0.01)
    else:
        t.start()
        while t.is_alive:
            threading.Event().wait(0.01)
        with pytest.raises(Boom, match="step 5 failed") as info:
            if way == "stop":
                t.stop(timeout=5)
            else:
                t.join(timeout=5)
        assert errors == [info.value]
    assert len(errors) == 1 and isinstance(errors[0], Boom)
    stats = t.stats()
    assert stats["state"] == "failed" and stats["steps"] == 4
    assert "step 5 failed" in stats["error"]
    # Raised once: the next stop/join is quiet.
    t.stop(timeout=1)
    assert t.join(timeout=1) is True


def test_a_true_step_result_ends_the_loop(threads):
    count = [0]

    def step():
        count[0] += 1
        return count[0] == 100

    t = PinnedThread(step)
    threads.append(t)
    t.start()
    assert t.join(timeout=10) is True
    assert count[0] == 100 and t.stats()["steps"] == 100 and t.stats()["state"] == "stopped"


def test_setup_and_teardown_run_on_the_thread(threads):
    where = {}
    t = PinnedThread(
        lambda: True,
        setup=lambda: where.setdefault("setup", (threading.get_native_id(),
                                                 os.sched_getaffinity(0))),
        teardown=lambda: where.setdefault("teardown", threading.get_native_id()),
    )  # fmt: skip
    threads.append(t)
    t.start()
    t.join(timeout=10)
    assert where["setup"] == (t.native_id, {t.cpu})  # pinned before setup
    assert where["teardown"] == t.native_id


def test_setup_failure_is_raised_by_start(threads):
    steps = []

    def setup():
        raise Boom("no connection")

    t = PinnedThread(lambda: steps.append(1), setup=setup)
    threads.append(t)
    with pytest.raises(Boom, match="no connection"):
        t.start()
    assert steps == [] and not t.is_alive and t.stats()["state"] == "failed"


def test_bad_core_is_refused_before_the_thread_starts():
    from hftcore.feed import CpuError

    t = PinnedThread(lambda: True, cpu=max(os.sched_getaffinity(0)) + 1000)
    with pytest.raises(CpuError, match="cannot pin the feed thread"):
        t.start()
    assert not t.is_alive


def test_bad_arguments():
    with pytest.raises(TypeError, match="callable"):
        PinnedThread(42)
    with pytest.raises(ValueError, match="1..99"):
        PinnedThread(lambda: True, realtime=True, priority=0)


def _fifo_permitted() -> bool:
    # Ask the kernel directly, on a throwaway thread, whether SCHED_FIFO is allowed.
    result = []

    def probe():
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
            result.append(True)
        except OSError:
            result.append(False)

    th = threading.Thread(target=probe)
    th.start()
    th.join(10)
    return result[0]


def test_realtime(threads, caplog):
    policies = []

    def step():
        policies.append(os.sched_getscheduler(0))
        return True

    t = PinnedThread(step, realtime=True, priority=7)
    threads.append(t)
    with caplog.at_level(logging.WARNING, logger="hftcore.feed"):
        t.start()
        t.join(timeout=10)
    if _fifo_permitted():
        assert policies == [os.SCHED_FIFO]
        assert t.stats()["realtime"] == "SCHED_FIFO priority 7"
    else:
        assert policies == [os.SCHED_OTHER]
        assert t.stats()["realtime"].startswith("not permitted")
        assert any("SCHED_FIFO priority 7 not permitted" in r.getMessage()
                   for r in caplog.records)  # fmt: skip
    # The main thread's policy is untouched.
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="dropping the permission needs root to begin with")  # fmt: skip
def test_realtime_not_permitted_gives_a_clear_message():
    # A process without the permission: an unprivileged user with RLIMIT_RTPRIO 0.
    code = textwrap.dedent(
        """
        import logging, os, resource, sys
        logging.basicConfig(stream=sys.stdout, format="%(message)s")
        from hftcore.feed import PinnedThread
        import psutil  # imported before the files may become unreadable
        resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
        os.setgid(65534); os.setuid(65534)
        t = PinnedThread(lambda: os.sched_getscheduler(0) == os.SCHED_OTHER, cpu=0,
                         realtime=True)
        t.start(); print("ended:", t.join(timeout=10))
        print("stats:", t.stats()["realtime"], t.stats()["steps"])
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "SCHED_FIFO priority 40 not permitted (Operation not permitted)" in out.stdout
    assert "CAP_SYS_NICE" in out.stdout
    assert "ended: True" in out.stdout
    assert "stats: not permitted: Operation not permitted 1" in out.stdout


def test_stats_read_another_thread():
    # thread_stats reads any thread of this process: the main thread here.
    from hftcore.feed import thread_stats

    s = thread_stats(threading.get_native_id())
    assert s["affinity"] == sorted(os.sched_getaffinity(0))
    assert s["cpu_now"] in os.sched_getaffinity(0)
    assert s["sched_policy"] == "SCHED_OTHER"
    assert s["voluntary_ctxt_switches"] >= 0
