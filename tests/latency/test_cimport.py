"""The .pxd contract: a separate Cython module cimports Histogram and Stages and records
without the GIL (what the feed does). Compiled into tmp_path at test time."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from hftcore.latency import Histogram, Stages

SOURCE = textwrap.dedent("""
    # cython: language_level=3
    from libc.stdint cimport int64_t
    from hftcore.latency.histogram cimport Histogram, hist_record
    from hftcore.latency.stages cimport Jitter, Stages

    cdef void on_message(Histogram h, int64_t t0, int64_t t1) noexcept nogil:
        h.record(t1 - t0)

    def go(Histogram h, Stages s, Jitter j, int n):
        cdef int i
        cdef int64_t stamps[3]
        with nogil:
            for i in range(n):
                on_message(h, 100, 100 + i)
                hist_record(h.d, -1)
                stamps[0] = 1000 + i * 10
                stamps[1] = stamps[0] + 5
                stamps[2] = 0 if i % 2 else stamps[1] + 7
                s.record_stamps(stamps)
                s.record_pair(0, 9, 4)
                j.update(i * 100, i * 100 + (i % 3))
""")

SETUP = textwrap.dedent("""
    import sys
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    setup(ext_modules=cythonize([Extension("use_latency", ["use_latency.pyx"])],
                                include_path=[sys.argv.pop()], quiet=True),
          script_args=["build_ext", "--inplace"])
""")


@pytest.mark.slow
def test_cython_module_cimports_and_records_nogil(repo, tmp_path):
    pytest.importorskip("Cython")
    (tmp_path / "use_latency.pyx").write_text(SOURCE)
    (tmp_path / "setup.py").write_text(SETUP)
    r = subprocess.run([sys.executable, "setup.py", str(repo)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    if r.returncode != 0:
        if "error: command" in r.stderr and "failed" in r.stderr and "gcc" in r.stderr:
            pytest.skip("no C compiler")
        raise AssertionError(r.stdout[-2000:] + r.stderr[-4000:])
    so = next(p for p in tmp_path.iterdir() if p.name.startswith("use_latency.") and
              p.suffix in (".so", ".pyd"))  # fmt: skip
    spec = importlib.util.spec_from_file_location("use_latency", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    from hftcore.latency import Jitter

    h, s, j = Histogram(), Stages(["recv", "decoded", "applied"]), Jitter()
    mod.go(h, s, j, 1000)
    assert h.count == 2000 and h.underflow == 1000 and h.min == -1 and h.max == 999
    assert s.messages == 1000
    assert s.histogram("recv_to_decoded").count == 1000  # every message has both stamps
    assert s.histogram("recv_to_decoded").max == 5
    assert s.missing["decoded_to_applied"] == 500 and s.missing["recv_to_applied"] == 500
    assert s.negative["recv_to_decoded"] == 1000  # record_pair(0, 9, 4)
    assert s.most_negative["recv_to_decoded"] == -5
    assert s.inter_arrival.count == 999 and s.inter_arrival.max == 10
    assert j.transits == 1000
