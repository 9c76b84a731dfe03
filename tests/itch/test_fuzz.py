"""Fuzz the ITCH decoder: random bytes, truncated and corrupted valid streams.

Every input must give either a DecodeError or a result that agrees with a small pure-Python
reference walk of the BinaryFILE framing (and field values read back with ``int.from_bytes``).
Never a crash, never a read past the end. Also run against the debug build
(``HFTCORE_DEBUG=1``), where bounds checks are on.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftcore import DecodeError, itch
from hftcore.itch import spec

SPEC_LENGTH = {m.type: m.length for m in spec.MESSAGES}


def reference_walk(buf):
    """Pure-Python framing walk: ``("error", offset)`` or the expected summary."""
    pos, n = 0, len(buf)
    msgs, unknown, eos = [], 0, False
    while n - pos >= 2:
        length = int.from_bytes(buf[pos : pos + 2], "big")
        if length == 0:
            eos = True
            pos += 2
            break
        if n - pos - 2 < length:
            break
        t = chr(buf[pos + 2])
        if t in SPEC_LENGTH:
            if length != SPEC_LENGTH[t]:
                return ("error", pos)
        else:
            unknown += 1
        msgs.append((t, bytes(buf[pos + 2 : pos + 2 + length])))
        pos += 2 + length
    return {"consumed": pos, "eos": eos, "unknown": unknown, "msgs": msgs}


def check(buf, types=None):
    """Decode ``buf`` and compare with the reference; returns the Tables or None."""
    ref = reference_walk(bytes(buf))
    try:
        got = itch.decode(buf, types)
    except DecodeError as exc:
        assert isinstance(ref, tuple), f"unexpected DecodeError {exc}"
        assert exc.offset == ref[1]
        return None
    assert not isinstance(ref, tuple), "decoder accepted a bad length"
    assert got.consumed == ref["consumed"] <= len(buf)
    assert got.end_of_session == ref["eos"]
    assert got.unknown == ref["unknown"]
    assert got.messages == len(ref["msgs"]) == got.next_seq
    rows = {t: iter(got[t]) for t in spec.TYPES}
    for seq, (t, body) in enumerate(ref["msgs"]):
        if t not in SPEC_LENGTH:
            continue
        if types is not None and t not in types:
            continue
        row = next(rows[t])
        assert int(row["seq"]) == seq
        for f in spec.BY_TYPE[t].all_fields:
            raw = body[f.offset : f.offset + f.size]
            if f.kind in ("alpha", "enum"):
                assert row[f.name] == raw.rstrip(b"\0"), (t, f.name)  # numpy drops NUL pad
            else:
                assert int(row[f.name]) == int.from_bytes(raw, "big"), (t, f.name)
    for t in spec.TYPES:
        assert next(rows[t], None) is None
    return got


def valid_stream(rng, n):
    """``n`` messages of random types, fields random bytes, plus a few unknown types."""
    parts = []
    for _ in range(n):
        if rng.random() < 0.05:
            body_len = int(rng.integers(1, 40))
            body = bytes([ord("z")]) + rng.bytes(body_len - 1)
        else:
            t = spec.TYPES[int(rng.integers(len(spec.TYPES)))]
            body = t.encode() + rng.bytes(SPEC_LENGTH[t] - 1)
        parts.append(len(body).to_bytes(2, "big") + body)
    return b"".join(parts)


# --- hypothesis ---------------------------------------------------------------------------

fuzz_settings = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@fuzz_settings
@given(st.binary(max_size=300))
def test_random_bytes(buf):
    check(buf)


@fuzz_settings
@given(
    st.lists(
        st.tuples(st.sampled_from(spec.TYPES + ("z", "\xff")), st.integers(0, 70)),
        max_size=12,
    ),
    st.binary(min_size=64, max_size=64),
)
def test_plausible_frames_with_random_lengths(frames, filler):
    # Type bytes that exist, lengths that are often right and often not.
    parts = []
    for t, length in frames:
        if length and t in SPEC_LENGTH and length % 3 == 0:
            length = SPEC_LENGTH[t]
        body = (t.encode("latin-1") + filler * 2)[:length]
        parts.append(length.to_bytes(2, "big") + body)
    check(b"".join(parts))


@fuzz_settings
@given(st.integers(0, 2**32 - 1), st.integers(0, 600), st.lists(st.integers(0, 10**6), max_size=4))
def test_truncated_and_corrupted_valid_streams(seed, cut, flips):
    rng = np.random.default_rng(seed)
    buf = bytearray(valid_stream(rng, 20))
    for f in flips:
        if buf:
            buf[f % len(buf)] = (f // len(buf)) % 256
    check(bytes(buf[: cut % (len(buf) + 1)]))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["A", "AD", "", "SRHYLVWKJhFECXUPQBINO"]))
def test_random_bytes_with_types(buf, types):
    check(buf, types)


# --- bulk mutation with numpy (thousands of cases in about a second) -------------------------


@pytest.mark.parametrize("seed", range(4))
def test_bulk_mutations(seed):
    rng = np.random.default_rng(1000 + seed)
    base = valid_stream(rng, 60)
    assert check(base).consumed == len(base)
    errors = clean = 0
    for _ in range(1000):
        buf = bytearray(base)
        for _ in range(int(rng.integers(1, 6))):
            buf[int(rng.integers(len(buf)))] = int(rng.integers(256))
        cut = int(rng.integers(len(buf) + 1))
        got = check(memoryview(bytes(buf[:cut])))
        if got is None:
            errors += 1
        else:
            clean += 1
    assert errors and clean  # both outcomes were exercised


def test_every_truncation_of_a_valid_stream():
    rng = np.random.default_rng(7)
    buf = valid_stream(rng, 30)
    for cut in range(len(buf) + 1):
        got = check(buf[:cut])
        assert got is not None and got.consumed <= cut


def test_files_reject_truncations(tmp_path):
    # A truncated file is always an error with an offset inside the file.
    rng = np.random.default_rng(9)
    buf = valid_stream(rng, 15)
    path = tmp_path / "f.itch"
    for cut in range(1, len(buf), 7):
        path.write_bytes(buf[:cut])
        ref = reference_walk(buf[:cut])
        if ref["consumed"] == cut:
            assert itch.read_file(path).consumed == cut
            continue
        with pytest.raises(DecodeError) as err:
            itch.read_file(path)
        assert err.value.offset == ref["consumed"] < cut
