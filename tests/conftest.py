"""Fixtures shared by more than one test module.

- ``sim_binance``: simulated Binance corpora (:mod:`hftcore.sim.binance`), generated once
  per session for each set of arguments; the events rendered as JSON or SBE messages.
- ``itch_day``: simulated ITCH 5.0 days (:mod:`hftcore.sim.itch`), once per session for
  each set of arguments.
- ``write_file``: bytes to a file under the test's ``tmp_path``, gzip-compressed when the
  name ends in ``.gz``.
- ``repo``: the repository's root, for tests that read sources or generators (``.pyx``,
  ``tools/``); skipped when the tests run against an installed wheel from elsewhere.

Generated data is cached, so a test must not modify what it receives (the lists are
handed out as copies; ``bytes`` are immutable).
"""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import pytest

# Subprocesses the tests start (`python -m hftcore ...`, `python -c ...`) run from the
# repository root: without this, Python puts the current directory first on sys.path and
# they import the source tree (no compiled modules there after a wheel install) instead
# of the installed package. Python 3.11+ (3.10 ignores it; cibuildwheel runs the tests
# from another directory anyway).
os.environ.setdefault("PYTHONSAFEPATH", "1")

DEPTH_UPDATE = b'"depthUpdate"'

#: The repository root when these tests run from a checkout (``None`` otherwise).
REPO = Path(__file__).resolve().parents[1]
if not ((REPO / "tools").is_dir() and (REPO / "hftcore" / "itch" / "_book.pyx").exists()):
    REPO = None


@pytest.fixture(scope="session")
def repo() -> Path:
    if REPO is None:
        pytest.skip("needs the repository's source tree (tools/, hftcore/*.pyx)")
    return REPO


class SimBinance:
    """Cached :mod:`hftcore.sim.binance` corpora; arguments as
    :func:`hftcore.sim.binance.generate_events`."""

    @staticmethod
    @functools.cache
    def _events(messages, seed, symbols, market):
        from hftcore.sim import binance as sim

        return tuple(sim.generate_events(messages, seed, symbols, market))

    @staticmethod
    @functools.cache
    def _json(messages, seed, symbols, market):
        from hftcore.sim import binance as sim

        return tuple(sim.render_json(e, market) for e in SimBinance._events(
            messages, seed, symbols, market))  # fmt: skip

    @staticmethod
    @functools.cache
    def _sbe(messages, seed, symbols):
        from hftcore.sim import binance as sim

        return tuple(sim.render_sbe(e) for e in SimBinance._events(
            messages, seed, symbols, "spot"))  # fmt: skip

    def events(self, messages, seed=0, symbols=None, market="spot") -> list:
        """The abstract events (``hftcore.sim.binance.Event``)."""
        return list(self._events(messages, seed, self._symbols(symbols), market))

    def messages(self, messages, seed=0, symbols=None, market="spot") -> list[bytes]:
        """JSON stream messages (equal to ``generate_messages`` with these arguments)."""
        return list(self._json(messages, seed, self._symbols(symbols), market))

    def depth_messages(self, messages, seed=0, symbols=None, market="spot") -> list[bytes]:
        """Only the ``depthUpdate`` messages of :meth:`messages`."""
        return [m for m in self._json(messages, seed, self._symbols(symbols), market)
                if DEPTH_UPDATE in m]  # fmt: skip

    def sbe_messages(self, messages, seed=0, symbols=None) -> list[bytes]:
        """Spot SBE messages (equal to ``generate_sbe_messages``)."""
        return list(self._sbe(messages, seed, self._symbols(symbols)))

    @staticmethod
    def _symbols(symbols):
        from hftcore.sim import binance as sim

        return tuple(symbols) if symbols is not None else sim.DEFAULT_SYMBOLS


@pytest.fixture(scope="session")
def sim_binance() -> SimBinance:
    return SimBinance()


@functools.cache
def _itch_day(messages: int, symbols: int, seed: int) -> bytes:
    from hftcore.sim import itch as simitch

    return simitch.generate(messages=messages, symbols=symbols, seed=seed)


@pytest.fixture(scope="session")
def itch_day():
    """``itch_day(messages, symbols, seed)``: ``hftcore.sim.itch.generate``'s bytes."""
    return _itch_day


@pytest.fixture
def write_file(tmp_path):
    """``write_file(name, data, gz=None)``: write ``data`` to ``tmp_path / name``,
    gzip-compressed when ``gz`` (default: when ``name`` ends in ``.gz``); the path."""

    def write(name: str, data: bytes, gz: bool | None = None) -> Path:
        path = tmp_path / name
        if gz is None:
            gz = name.endswith(".gz")
        path.write_bytes(gzip.compress(data) if gz else data)
        return path

    return write
