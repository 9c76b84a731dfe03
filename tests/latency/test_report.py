"""Report (dict, JSON, text, plot) and PeriodicLogger."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from hftcore.latency import Histogram, PeriodicLogger, Report, Stages, format_ns


def filled_stages(n=1000):
    s = Stages(["event", "recv", "decoded"])
    t = np.arange(1, n + 1, dtype=np.int64) * 100_000 + 10**15
    recv = t + 50_000 + (t % 7) * 1000
    st = np.stack([t, recv, recv + 2_000 + (t % 5) * 100], 1)
    s.record_many(st)
    return s, st


def test_format_ns():
    assert format_ns(None) == "-"
    assert format_ns(850) == "850 ns"
    assert format_ns(12_345) == "12.3 µs"
    assert format_ns(4_560_000) == "4.56 ms"
    assert format_ns(123_000_000) == "123 ms"
    assert format_ns(2.5e9) == "2.50 s"
    assert format_ns(-1500) == "-1.50 µs"


def test_as_dict_shape_and_values():
    s, st = filled_stages()
    r = Report.from_stages(s, elapsed_s=2.0)
    d = r.as_dict()
    assert list(d) == ["event_to_recv", "recv_to_decoded", "event_to_decoded"]
    for stats in d.values():
        assert list(stats) == ["count", "p50", "p90", "p99", "p999", "max"]
        assert all(isinstance(v, int) for v in stats.values())
    delay = st[:, 1] - st[:, 0]
    assert d["event_to_recv"]["count"] == len(st)
    assert d["event_to_recv"]["max"] == int(delay.max())
    exact = np.percentile(delay, 99, method="inverted_cdf")
    assert abs(d["event_to_recv"]["p99"] - exact) <= exact / 256
    assert json.loads(r.to_json()) == d
    full = json.loads(r.to_json(full=True))
    assert full["counters"]["messages"] == len(st)
    assert full["messages_per_s"] == len(st) / 2.0
    assert full["inter_arrival"]["max"] == int(np.diff(st[:, 1]).max())
    # an empty stage: count 0, statistics null
    assert Report({"x": Histogram()}).as_dict() == {
        "x": {"count": 0, "p50": None, "p90": None, "p99": None, "p999": None, "max": None}
    }
    with pytest.raises(TypeError):
        Report({"x": 1})


def test_to_json_writes_file(tmp_path):
    s, _ = filled_stages(10)
    p = tmp_path / "r.json"
    text = Report.from_stages(s).to_json(p)
    assert json.loads(p.read_text()) == json.loads(text)


def test_text_table():
    s, _ = filled_stages()
    s.add("event_to_recv", 100, 50)  # a negative delta is reported
    r = Report.from_stages(s, title="feed", counters={"reconnects": 0})
    text = r.text()
    lines = text.splitlines()
    assert lines[0] == "feed"
    assert lines[1].split() == ["stage", "count", "p50", "p90", "p99", "p99.9", "max"]
    row = next(ln for ln in lines if ln.startswith("recv_to_decoded"))
    h = s.histogram("recv_to_decoded")
    assert "1,000" in row and format_ns(h.max) in row and format_ns(h.percentile(50)) in row
    assert any(ln.startswith("inter_arrival") for ln in lines)
    assert "1 negative deltas (most negative -50 ns)" in text
    assert "jitter (RFC 3550)" in text and "reconnects 0" in text
    assert str(r) == text


def test_periodic_logger_tick(caplog):
    s = Stages(["recv", "decoded"])
    now = [100.0]
    log = PeriodicLogger(s, interval=1.0, clock=lambda: now[0], counters=lambda: {"gaps": 3})
    for i in range(1, 501):
        s.record([i * 1000, i * 1000 + 700])
    now[0] = 100.5
    with caplog.at_level(logging.INFO, logger="hftcore.latency"):
        assert log.tick() is None
        now[0] = 102.0  # two seconds: 500 messages -> 250 msg/s
        line = log.tick()
    assert line is not None and log.lines == 1
    assert caplog.records[-1].getMessage() == line
    assert line.startswith("latency: 250 msg/s (500 in 2.00 s)")
    assert "recv_to_decoded p50 700 ns p99 700 ns max 700 ns" in line
    assert "gaps 3" in line
    # the next interval sees only what came after
    s.record([10**9, 10**9 + 2_000])
    now[0] = 103.0
    with caplog.at_level(logging.INFO, logger="hftcore.latency"):
        line2 = log.tick()
    assert "(1 in 1.00 s)" in line2 and "max 2.00 µs" in line2
    now[0] = 104.5
    assert "recv_to_decoded -" in log.tick()  # an empty interval says so
    with pytest.raises(ValueError):
        PeriodicLogger(s, interval=0)


def test_periodic_logger_thread_starts_and_stops(caplog):
    s = Stages(["recv", "decoded"])
    with caplog.at_level(logging.INFO, logger="hftcore.latency"):
        log = PeriodicLogger(s, interval=0.05)
        with log:
            s.record([1000, 1100])
            for _ in range(200):
                if log.lines:
                    break
                import time

                time.sleep(0.01)
        assert log._thread is None
        log.stop(final=True)
    assert log.lines >= 2
    assert any("recv_to_decoded" in r.getMessage() for r in caplog.records)


def test_plot_png(tmp_path):
    pytest.importorskip("matplotlib")
    s, _ = filled_stages()
    p = tmp_path / "lat.png"
    assert Report.from_stages(s).plot(p) == p
    data = p.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    Report({"empty": Histogram()}).plot(tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_without_matplotlib(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_mpl(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    s, _ = filled_stages(10)
    with pytest.raises(ImportError, match=r'pip install "hftcore\[plot\]"'):
        Report.from_stages(s).plot(tmp_path / "x.png")
