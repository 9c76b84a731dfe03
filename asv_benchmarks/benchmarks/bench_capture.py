"""Captures (hftcore.feed.capture): the hot-path append from Cython, and reading back.

- ``Append.track_ns_per_record``: ns per 200-byte record appended by a Cython loop without
  the GIL (``memcpy`` into the batch + CRC32C); the writer thread writes behind it. Runs
  append 20,000 records, less than the 8 MiB of batches, so none is dropped (checked).
- ``Read*``: a 200,000-record capture (200-byte text records, ~50 MB) read back as a table,
  walked by ``capture_info``, replayed into a Cython ``Consumer`` (MB/s of file, warm).
- ``Crc32c``: the checksum alone (hardware and slicing-by-8), MB/s: the floor of reading.
"""

import os
import tempfile
import time

N_APPEND = 20_000
N_FILE = 200_000
SIZE = 200


def _payload(i=0):
    return (b'{"e":"trade","E":%013d,"s":"BTCUSDT","p":"43250.00","q":"0.25"}' % i).ljust(
        SIZE, b" "
    )


def _capture_file():
    from .bench_common import cached_input

    def make():
        from hftcore.feed.capture import CaptureWriter

        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "c.cap")
            with CaptureWriter(path, batches=64) as w:
                for i in range(N_FILE):
                    while not w.append(_payload(i), 1, (i, i, 0)):
                        time.sleep(0.001)  # never drop in the input
            with open(path, "rb") as f:
                return f.read()

    return str(cached_input("capture", make, N_FILE, SIZE, 1))


class Append:
    """``CaptureWriter.append`` (the cdef one) in a nogil loop."""

    timeout = 120

    def setup(self):
        from hftcore.feed.capture import CaptureWriter

        self.dir = tempfile.mkdtemp()
        self.writer = CaptureWriter(os.path.join(self.dir, "a.cap"))
        self.data = _payload()

    def teardown(self):
        self.writer.close()
        os.remove(os.path.join(self.dir, "a.cap"))
        os.rmdir(self.dir)

    def track_ns_per_record(self):
        from hftcore.feed.capture import _append_loop

        best = None
        for _ in range(5):
            while self.writer.stats()["pending_batches"]:
                time.sleep(0.001)
            time.sleep(0.002)
            ns, ok = _append_loop(self.writer, self.data, N_APPEND)
            assert ok == N_APPEND, "records dropped: the benchmark is measuring drops"
            best = ns if best is None else min(best, ns)
        return best / N_APPEND

    track_ns_per_record.unit = "ns"


class Read:
    """Reading a ~50 MB capture back (warm page cache)."""

    timeout = 300

    def setup(self):
        self.path = _capture_file()
        self.mb = os.path.getsize(self.path) / 1e6
        from hftcore.feed.capture import capture_info

        capture_info(self.path)  # warm the page cache

    def _rate(self, fn):
        best = None
        for _ in range(3):
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        return self.mb / best

    def track_table_mb_per_s(self):
        from hftcore.feed.capture import read_capture_table

        return self._rate(lambda: read_capture_table(self.path))

    def track_info_mb_per_s(self):
        from hftcore.feed.capture import capture_info

        return self._rate(lambda: capture_info(self.path))

    def track_replay_mb_per_s(self):
        from hftcore.feed.capture import replay_into
        from hftcore.net.consumer import Consumer

        c = Consumer()
        return self._rate(lambda: replay_into(self.path, c))

    def track_iterate_mb_per_s(self):
        from hftcore.feed.capture import read_capture

        return self._rate(lambda: sum(1 for _ in read_capture(self.path)))

    track_table_mb_per_s.unit = "MB/s"
    track_info_mb_per_s.unit = "MB/s"
    track_replay_mb_per_s.unit = "MB/s"
    track_iterate_mb_per_s.unit = "MB/s"


class Crc32c:
    """The checksum over 16 MB: SSE4.2 (where the CPU has it) and slicing-by-8."""

    params = ["hardware", "tables"]
    param_names = ["path"]

    def setup(self, path):
        from hftcore.feed.capture import crc32c_hardware

        if path == "hardware" and not crc32c_hardware():
            raise NotImplementedError("no SSE4.2 here")
        self.data = os.urandom(16 << 20)

    def track_mb_per_s(self, path):
        from hftcore.feed.capture import crc32c

        hw = path == "hardware"
        best = None
        for _ in range(3):
            t = time.perf_counter()
            crc32c(self.data, hardware=hw)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        return len(self.data) / 1e6 / best

    track_mb_per_s.unit = "MB/s"
