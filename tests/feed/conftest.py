"""Fixtures of the feed tests: hand-written /sys and /proc trees."""

from __future__ import annotations

from pathlib import Path

import pytest


class FakeRoot:
    """A directory standing in for ``/sys`` and ``/proc``: ``write(rel, text)``."""

    def __init__(self, base: Path):
        self.sys = base / "sys"
        self.proc = base / "proc"
        self.sys.mkdir()
        self.proc.mkdir()

    def write(self, rel: str, text: str) -> Path:
        root, _, rest = rel.partition("/")
        path = (self.sys if root == "sys" else self.proc) / rest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


@pytest.fixture
def fake_root(tmp_path):
    return FakeRoot(tmp_path)
