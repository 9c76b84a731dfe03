"""The fuzz targets of fuzz/ without atheris: each over its seeds and a few hundred random
and mutated inputs (seeded, so a failure reproduces).

A target listed in ``fuzz/targets.py: KNOWN_FINDINGS`` finds a known bug today and is
skipped with the issue item as the reason: remove its line there once the bug is fixed.
Long runs are atheris's job (``python fuzz/run.py TARGET --minutes N``, fuzz/README.md).
"""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[1] / "fuzz"
if not (FUZZ / "targets.py").exists():
    pytest.skip("fuzz/ is not next to tests/ (installed-wheel run)", allow_module_level=True)
sys.path.insert(0, str(FUZZ))
targets = importlib.import_module("targets")

TARGETS = targets.all_targets()
MUTATIONS = 300
# The file targets write temporary files and read each several ways: fewer inputs.
SLOW = {"itch_files": 15, "itch_files_raw": 15, "binance_files": 15, "binance_files_raw": 15}
# Tokens the mutator splices in: the structure the decoders branch on.
TOKENS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\n", b"\\u0000", b'"E":', b'"s":"BTCUSDT"',
          b'"data":', b'"event":', b'"e":"depthUpdate"', b'"lastUpdateId":', b"-1", b"1e5",
          b"99999999999999999999", b"\x00\x00", b"\xff\xff", b"\x1f\x8b"]  # fmt: skip


def mutate(rng: random.Random, seed: bytes, others: list[bytes]) -> bytes:
    """One mutation of ``seed``: flips, cuts, inserted tokens, splices, duplicated runs."""
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        pos = rng.randint(0, len(data))
        if op == 0 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op == 1:
            del data[pos:]
        elif op == 2:
            data[pos:pos] = rng.choice(TOKENS)
        elif op == 3 and data:
            end = rng.randint(pos, min(len(data), pos + 64))
            data[pos:pos] = data[pos:end] * rng.randint(1, 4)
        elif op == 4:
            other = rng.choice(others)
            cut = rng.randint(0, len(other))
            data[pos:] = other[cut:]
        elif op == 5 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            del data[pos : pos + rng.randint(1, 16)]
    return bytes(data)


def inputs(name: str) -> list[bytes]:
    seeds = targets.seeds(name, small=True)
    rng = random.Random(name)
    n = SLOW.get(name, MUTATIONS)
    out = list(seeds)
    out += [rng.randbytes(rng.randint(0, 64)) for _ in range(n // 6)]
    # Big seeds make slow mutants: mutate the small ones more often.
    small = sorted(seeds, key=len)[: max(3, len(seeds) // 2)]
    out += [mutate(rng, rng.choice(small), seeds) for _ in range(n)]
    return out


def test_known_findings_name_targets():
    assert set(targets.KNOWN_FINDINGS) <= set(TARGETS)
    for reason in targets.KNOWN_FINDINGS.values():
        assert "issue 9" in reason


@pytest.mark.parametrize("name", list(TARGETS))
def test_target(name):
    if name in targets.KNOWN_FINDINGS:
        pytest.skip(f"known finding: {targets.KNOWN_FINDINGS[name]}")
    fn = TARGETS[name]
    for data in inputs(name):
        try:
            fn(data)
        except Exception as exc:
            raise AssertionError(f"{name} on {data!r}: {type(exc).__name__}: {exc}") from exc
