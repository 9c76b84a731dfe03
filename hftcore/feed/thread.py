"""A receive loop on one pinned core: :class:`PinnedThread` and :class:`FeedThread`.

The thread pins itself from inside (``os.sched_setaffinity(0, {cpu})`` moves the calling
thread only, not the process), optionally asks for ``SCHED_FIFO``, then calls ``step()``
until stopped. A step must come back within a short, bounded time (a reader's
``pump(consumer, timeout=0.05)`` waits at most 50 ms), so ``stop()`` is prompt even when
the peer sends nothing. An exception in the loop ends it and reaches the caller: it is
handed to ``on_error`` on the feed thread and raised again by ``stop()``, ``join()`` or the
``with`` block's exit.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from hftcore.feed.cpus import choose_cpu

__all__ = ["PinnedThread", "FeedThread", "thread_stats"]

log = logging.getLogger("hftcore.feed")

#: SCHED_FIFO priority used when ``realtime=True`` and no priority is given: above
#: ordinary real-time helpers (1-49 are common for them), below the kernel's own
#: threads (IRQ threads run at 50, watchdogs at 99).
DEFAULT_PRIORITY = 40

# Thread states as stats() reports them.
NEW, STARTING, RUNNING, STOPPING, STOPPED, FAILED = (
    "new", "starting", "running", "stopping", "stopped", "failed",
)  # fmt: skip


def _proc_task(tid: int, proc_root="/proc") -> dict:
    """Facts the kernel keeps about one thread of this process (``None`` if unknown)."""
    base = Path(proc_root) / "self/task" / str(tid)
    out = {
        "cpu_now": None,
        "affinity": None,
        "voluntary_ctxt_switches": None,
        "involuntary_ctxt_switches": None,
        "sched_policy": None,
        "sched_priority": None,
        "user_time": None,
        "system_time": None,
    }
    try:
        stat = (base / "stat").read_text()
    except OSError:
        stat = None
    if stat:
        # comm (field 2) is in parentheses and may hold spaces: split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state); field N is fields[N - 3].
        try:
            out["cpu_now"] = int(fields[39 - 3])  # processor: the core it last ran on
            out["sched_priority"] = int(fields[40 - 3])  # rt_priority
            out["sched_policy"] = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR",
                                   3: "SCHED_BATCH", 5: "SCHED_IDLE"}.get(
                int(fields[41 - 3]), fields[41 - 3])  # fmt: skip
            tick = os.sysconf("SC_CLK_TCK")
            out["user_time"] = int(fields[14 - 3]) / tick
            out["system_time"] = int(fields[15 - 3]) / tick
        except (IndexError, ValueError):
            pass
    try:
        status = (base / "status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "voluntary_ctxt_switches":
            out["voluntary_ctxt_switches"] = int(value)
        elif key == "nonvoluntary_ctxt_switches":
            out["involuntary_ctxt_switches"] = int(value)
        elif key == "Cpus_allowed_list":
            from hftcore.feed.cpus import parse_cpu_list

            out["affinity"] = sorted(parse_cpu_list(value))
    return out


def thread_stats(tid: int) -> dict:
    """What the kernel says about thread ``tid`` of this process.

    Returns
    -------
    dict
        ``cpu_now`` (the core it runs or last ran on: field 39 of
        ``/proc/self/task/<tid>/stat``), ``affinity`` (sorted cores it may run on),
        ``voluntary_ctxt_switches`` / ``involuntary_ctxt_switches``, ``sched_policy`` /
        ``sched_priority``, ``user_time`` / ``system_time`` (seconds, from psutil when it
        is installed, else from the stat file). A value the system does not give is
        ``None``.
    """
    out = _proc_task(tid)
    try:
        import psutil

        for t in psutil.Process().threads():
            if t.id == tid:
                out["user_time"], out["system_time"] = t.user_time, t.system_time
                break
    except Exception:  # psutil missing or the thread gone: keep /proc's figures
        pass
    return out


class PinnedThread:
    """Calls ``step()`` over and over on a thread pinned to one core.

    Parameters
    ----------
    step : callable
        Called with no argument, repeatedly, on the pinned thread. It must return within a
        short bounded time (e.g. ``reader.pump(consumer, timeout=0.05)``) so ``stop()`` is
        prompt. A true return value ends the loop (a clean stop); an exception ends it too
        and is raised again by ``stop()`` / ``join()`` / the ``with`` block.
    cpu : int, optional
        The core. Default: :func:`hftcore.feed.choose_cpu` picks one (an isolated core,
        else the least busy allowed core other than 0).
    name : str, default "hftcore-feed"
        The thread's name (Python's, and the kernel's ``comm``, cut to 15 bytes).
    realtime : bool, default False
        Ask for ``SCHED_FIFO`` at ``priority``. Where the kernel refuses (no
        ``CAP_SYS_NICE``, ``RLIMIT_RTPRIO`` 0, a container), the thread logs why and runs
        on under the normal scheduler; ``stats()["realtime"]`` says which happened.
    priority : int, optional
        ``SCHED_FIFO`` priority, 1-99 (default 40).
    on_error : callable, optional
        ``on_error(exc)`` is called on the feed thread when the loop, ``setup`` or
        ``teardown`` raises, before the thread ends.
    setup, teardown : callable, optional
        Called on the feed thread after pinning, before the first step / after the last.
        ``teardown`` runs even when the loop failed.
    poll_interval : float, default 0.05
        Seconds a step should wait at most for input; :class:`FeedThread` hands it to the
        reader, and ``stop()`` waits about this long for the step in progress.

    Examples
    --------
    >>> import itertools
    >>> n = itertools.count()
    >>> with PinnedThread(lambda: next(n) >= 999) as t:
    ...     t.join(timeout=5)
    >>> t.stats()["steps"]
    1000
    """

    def __init__(
        self,
        step,
        cpu=None,
        name: str = "hftcore-feed",
        realtime: bool = False,
        priority: int | None = None,
        on_error=None,
        setup=None,
        teardown=None,
        poll_interval: float = 0.05,
    ):
        if not callable(step):
            raise TypeError(f"step must be callable, got {type(step).__name__}")
        if priority is not None and not 1 <= int(priority) <= 99:
            raise ValueError(f"priority must be 1..99 (SCHED_FIFO), got {priority}")
        if poll_interval < 0:
            raise ValueError(f"poll_interval must be >= 0, got {poll_interval}")
        self._step = step
        self._cpu_arg = cpu
        self.name = name
        self.realtime = bool(realtime)
        self.priority = DEFAULT_PRIORITY if priority is None else int(priority)
        self.on_error = on_error
        self._setup = setup
        self._teardown = teardown
        self.poll_interval = float(poll_interval)
        self.cpu: int | None = None
        self.error: BaseException | None = None
        self._reported = False
        self._stopping = False
        self._steps = 0
        self._state = NEW
        self._tid: int | None = None
        self._realtime_result: str | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = None
        self._ended_at = None
        self._start_failed = False

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> PinnedThread:
        """Choose the core, start the thread, and wait until it is pinned and set up.

        Raises
        ------
        CpuError
            The core given is not one this process may use.
        OSError
            The kernel refused the pinning (the thread has ended).
        Exception
            Whatever ``setup`` raised (the thread has ended).
        """
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started (a PinnedThread runs once)")
        self.cpu = choose_cpu(self._cpu_arg)
        self._state = STARTING
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self.name}: not running {timeout} s after start() (setup hung?)")
        if self._start_failed:
            self._thread.join(timeout)
            self._raise_once()
        return self

    def _run(self):
        self._tid = threading.get_native_id()
        self._started_at = time.monotonic()
        failed_at_start = True
        try:
            try:
                os.sched_setaffinity(0, {self.cpu})
            except OSError as e:
                raise OSError(
                    e.errno, f"{self.name}: the kernel refused to pin the thread to core "
                    f"{self.cpu} ({os.strerror(e.errno or 0)}; cpuset or affinity limits)",
                ) from e  # fmt: skip
            self._set_name()
            if self.realtime:
                self._go_realtime()
            if self._setup is not None:
                self._setup()
            failed_at_start = False
            self._state = RUNNING
            self._ready.set()
            step = self._step
            while not self._stopping:
                stop = step()
                self._steps += 1
                if stop:
                    break
        except BaseException as e:  # noqa: B036 - handed to the caller, never lost
            self._fail(e)
        finally:
            if self._teardown is not None:
                try:
                    self._teardown()
                except BaseException as e:  # noqa: B036
                    if self.error is None:
                        self._fail(e)
                    else:
                        log.error("%s: teardown failed after an error: %r", self.name, e)
            if self._state != FAILED:
                self._state = STOPPED
            self._ended_at = time.monotonic()
            if failed_at_start:
                self._start_failed = True
                self._ready.set()

    def _fail(self, e):
        self.error = e
        self._state = FAILED
        if hasattr(e, "add_note"):
            e.add_note(f"(raised on the feed thread {self.name!r}, core {self.cpu})")
        if self.on_error is not None:
            try:
                self.on_error(e)
            except BaseException as cb:  # noqa: B036
                log.error("%s: on_error callback raised %r", self.name, cb)

    def _set_name(self):
        # The kernel's name for the thread (top -H, ps -L) is 15 bytes at most.
        try:
            Path(f"/proc/self/task/{self._tid}/comm").write_bytes(self.name.encode()[:15])
        except OSError:
            pass

    def _go_realtime(self):
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))
            self._realtime_result = f"SCHED_FIFO priority {self.priority}"
        except (OSError, AttributeError) as e:
            reason = os.strerror(e.errno) if getattr(e, "errno", None) else str(e)
            self._realtime_result = f"not permitted: {reason}"
            log.warning(
                "%s: SCHED_FIFO priority %d not permitted (%s); running under the normal "
                "scheduler. Grant it with CAP_SYS_NICE (`setcap cap_sys_nice+ep` on the "
                "interpreter, or run as root), `ulimit -r %d` / an rtprio line in "
                "/etc/security/limits.conf, or `--cap-add SYS_NICE` in a container.",
                self.name, self.priority, reason, self.priority,
            )  # fmt: skip

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the loop to end and wait for it.

        The step in progress finishes first (a bounded wait, ``poll_interval``). Raises
        the loop's exception if there was one (once: whichever of ``stop``, ``join`` and
        ``__exit__`` comes first), and ``TimeoutError`` if the thread is still running
        after ``timeout`` seconds (its step did not return: it is left running, as a
        daemon thread, and ``stats()["state"]`` stays "stopping").
        """
        self._stopping = True
        if self._thread is None:
            return
        if self._state == RUNNING:
            self._state = STOPPING
        self._join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(
                f"{self.name}: the feed thread did not end within {timeout} s of stop() "
                f"(its step has not returned after {self._steps} steps; a step must wait "
                "at most a short, bounded time)"
            )
        self._raise_once()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loop to end by itself (a step returned true, or raised).

        Returns whether the thread has ended; raises the loop's exception (once).
        """
        if self._thread is None:
            raise RuntimeError(f"{self.name}: not started")
        self._join(timeout)
        if self._thread.is_alive():
            return False
        self._raise_once()
        return True

    def _join(self, timeout):
        # Short joins so Ctrl-C reaches the main thread.
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._thread.is_alive():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                break
            self._thread.join(left)

    def _raise_once(self):
        if self.error is not None and not self._reported:
            self._reported = True
            raise self.error

    @property
    def is_alive(self) -> bool:
        """Whether the feed thread is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def native_id(self) -> int | None:
        """The kernel's thread id (``None`` before start)."""
        return self._tid

    def __enter__(self):
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.stop()
            return False
        # The block failed: stop, and do not hide its exception behind the loop's.
        try:
            self.stop()
        except BaseException as loop_error:  # noqa: B036
            log.error("%s: the feed loop also failed: %r", self.name, loop_error)
        return False

    # -- facts -----------------------------------------------------------------------
    def stats(self) -> dict:
        """The thread as the kernel sees it.

        Returns
        -------
        dict
            ``name``, ``state`` (new, starting, running, stopping, stopped, failed),
            ``cpu`` (the core chosen), ``native_id``, ``steps``, ``realtime`` (what
            happened to the SCHED_FIFO request, ``None`` if none was made),
            ``error`` (repr or ``None``), ``seconds`` (running time), and while the thread
            lives, what :func:`thread_stats` reads: ``cpu_now`` (the core it really runs
            on, read back from ``/proc/self/task/<tid>/stat``), ``affinity``, context
            switches, scheduling policy, user and system CPU time.
        """
        out = {
            "name": self.name,
            "state": self._state,
            "cpu": self.cpu,
            "native_id": self._tid,
            "steps": self._steps,
            "realtime": self._realtime_result,
            "error": repr(self.error) if self.error is not None else None,
            "seconds": None,
        }
        if self._started_at is not None:
            end = self._ended_at if self._ended_at is not None else time.monotonic()
            out["seconds"] = end - self._started_at
        if self._tid is not None and self.is_alive:
            out.update(thread_stats(self._tid))
        return out

    def __repr__(self):
        return f"<{type(self).__name__} {self.name!r} {self._state} cpu={self.cpu} steps={self._steps}>"


class FeedThread(PinnedThread):
    """A reader pumping messages into a consumer on a pinned core.

    Each step is ``reader.pump(consumer, timeout, spin)``: one wait for input (at most
    ``poll_interval`` seconds, or none with ``spin=True``) and every complete message
    handed to the consumer, then ``consumer.check()``, which raises an error the consumer
    stored (the loop ends and ``stop()`` / ``join()`` raise it). An exception from the
    reader (``ConnectionClosed``, ``ProtocolError``) ends the loop the same way: a live
    feed that closes is news to the caller, unless ``stop_on_close=True`` makes the
    peer's close a clean end (``stats()["closed"]`` then says how it closed). A negative
    count from ``pump`` ends the loop cleanly.

    Parameters
    ----------
    reader : object
        Anything with ``pump(consumer, timeout, spin)`` (``hftcore.net.ws.WebSocket``,
        ``hftcore.net.tcp.TcpReader``, ``hftcore.net.udp.UdpReader``).
    consumer : hftcore.net.consumer.Consumer
        Receives the messages.
    cpu : int, optional
        As :class:`PinnedThread`.
    spin : bool, default False
        Busy-poll: the reader polls its non-blocking socket without sleeping (lower
        wake-up latency, one core at 100%).
    stop_on_close : bool, default False
        End the loop cleanly when the reader raises ``hftcore.errors.ConnectionClosed``
        (a recording run that ends with the stream) instead of raising it.
    **kwargs
        The rest of :class:`PinnedThread`'s parameters (``name``, ``realtime``,
        ``priority``, ``on_error``, ``setup``, ``teardown``, ``poll_interval``).
    """

    def __init__(
        self, reader, consumer, cpu=None, spin: bool = False, stop_on_close: bool = False,
        **kwargs,
    ):  # fmt: skip
        if not hasattr(reader, "pump"):
            raise TypeError(f"reader must have pump(consumer, timeout, spin): {reader!r}")
        self.reader = reader
        self.consumer = consumer
        self.spin = bool(spin)
        self.stop_on_close = bool(stop_on_close)
        self.messages = 0
        self.closed: BaseException | None = None
        super().__init__(self._pump_step, cpu=cpu, **kwargs)
        self._timeout = 0.0 if self.spin else self.poll_interval
        if self.stop_on_close:
            from hftcore.errors import ConnectionClosed

            self._closed_type = ConnectionClosed
            self._step = self._pump_step_until_close

    def _pump_step(self):
        n = self.reader.pump(self.consumer, self._timeout, self.spin)
        self.consumer.check()
        if n < 0:
            return True
        self.messages += n
        return False

    def _pump_step_until_close(self):
        try:
            return self._pump_step()
        except self._closed_type as e:
            self.closed = e
            return True

    def stats(self) -> dict:
        """:meth:`PinnedThread.stats` plus ``messages`` handed on and ``spin``."""
        out = super().stats()
        out["messages"] = self.messages
        out["spin"] = self.spin
        out["closed"] = repr(self.closed) if self.closed is not None else None
        return out
