"""read_file / iter_file: plain and gzip files, chunking, truncation."""

import gzip
import struct
import warnings

import numpy as np
import pytest

from hftcore import DecodeError, itch
from hftcore.itch import concat_tables, spec


def random_tables(rng, n):
    """Random-valued tables of every type, ``n`` messages in all, seq a random interleave."""
    kinds = rng.integers(0, len(spec.TYPES), size=n)
    tables = {}
    for i, t in enumerate(spec.TYPES):
        seqs = np.flatnonzero(kinds == i)
        arr = np.zeros(len(seqs), dtype=spec.dtype(t))
        arr["seq"] = seqs
        for f in spec.BY_TYPE[t].all_fields:
            if f.kind in ("alpha", "enum"):
                codes = rng.integers(ord("A"), ord("Z") + 1, size=(len(seqs), f.size))
                arr[f.name] = codes.astype(np.uint8).view(f"S{f.size}").ravel()
            else:
                hi = (1 << (8 * f.size)) - 1
                arr[f.name] = rng.integers(0, hi, size=len(seqs), dtype=np.uint64, endpoint=True)
        tables[t] = arr
    return tables


@pytest.fixture(scope="module")
def stream():
    rng = np.random.default_rng(21)
    tables = random_tables(rng, 3000)
    return itch.encode_stream(tables), tables


def assert_same(a, b):
    for t in spec.TYPES:
        assert np.array_equal(a[t], b[t]), t
    assert a.counts == b.counts
    assert (a.consumed, a.messages, a.unknown, a.next_seq) == (
        b.consumed,
        b.messages,
        b.unknown,
        b.next_seq,
    )


def write(tmp_path, name, data, compress=False):
    path = tmp_path / name
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def test_plain_file_equals_decode_and_source_tables(tmp_path, stream):
    wire, tables = stream
    got = itch.read_file(write(tmp_path, "day.itch", wire))
    assert_same(got, itch.decode(wire))
    for t in spec.TYPES:
        assert np.array_equal(got[t], tables[t])
    assert got.consumed == len(wire)


def test_gz_equals_plain(tmp_path, stream):
    wire, _ = stream
    plain = itch.read_file(write(tmp_path, "day.itch", wire))
    gz = itch.read_file(write(tmp_path, "day.itch.gz", wire, compress=True))
    assert_same(gz, plain)


def test_gzip_detected_by_magic_not_name(tmp_path, stream):
    wire, _ = stream
    got = itch.read_file(write(tmp_path, "day.bin", wire, compress=True))
    assert_same(got, itch.decode(wire))


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("chunk", [1, 37, 1000, 1 << 20])
def test_iter_file_chunks_concatenate_to_read_file(tmp_path, stream, compress, chunk):
    wire, _ = stream
    path = write(tmp_path, "day.itch" + (".gz" if compress else ""), wire, compress)
    parts = list(itch.iter_file(path, chunk_bytes=chunk))
    if chunk < len(wire) // 2:
        assert len(parts) > 1
    seq = 0
    for p in parts:
        assert p.seq_start == seq
        seq = p.next_seq
    assert_same(itch.concat_tables(parts), itch.read_file(path))


def test_iter_file_types(tmp_path, stream):
    wire, _ = stream
    path = write(tmp_path, "day.itch", wire)
    whole = itch.concat_tables(itch.iter_file(path, chunk_bytes=5000, types="AU"))
    full = itch.decode(wire)
    for t in spec.TYPES:
        assert np.array_equal(whole[t], full[t]) if t in "AU" else len(whole[t]) == 0
    assert whole.counts == full.counts


@pytest.mark.parametrize("compress", [False, True])
def test_zero_length_file(tmp_path, compress):
    path = write(tmp_path, "empty.itch", b"", compress)
    t = itch.read_file(path)
    assert t.messages == 0 and t.consumed == 0
    assert list(itch.iter_file(path)) == []


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("cut", [1, 2, 10])
def test_truncated_file_names_path_and_offset(tmp_path, stream, compress, cut):
    wire, _ = stream
    # Cut inside the last message: the error points at that message's length prefix.
    starts = []
    pos = 0
    while pos < len(wire):
        starts.append(pos)
        pos += 2 + struct.unpack(">H", wire[pos : pos + 2])[0]
    last_start = starts[-1]
    truncated = wire[: last_start + cut]
    path = write(tmp_path, "cut.itch", truncated, compress)
    with pytest.raises(DecodeError) as err:
        itch.read_file(path)
    assert err.value.offset == last_start
    assert str(path) in str(err.value)
    with pytest.raises(DecodeError) as err2:
        list(itch.iter_file(path, chunk_bytes=4096))
    assert err2.value.offset == last_start


def test_bad_length_in_file_reports_file_offset(tmp_path, stream):
    wire, _ = stream
    bad_at = 0
    for _ in range(500):  # skip ahead 500 messages
        bad_at += 2 + struct.unpack(">H", wire[bad_at : bad_at + 2])[0]
    t = chr(wire[bad_at + 2])
    broken = bytearray(wire)
    broken[bad_at : bad_at + 2] = struct.pack(">H", spec.BY_TYPE[t].length - 1)
    path = write(tmp_path, "bad.itch", bytes(broken))
    for call in (
        lambda: itch.read_file(path),
        lambda: list(itch.iter_file(path, chunk_bytes=3000)),
    ):
        with pytest.raises(DecodeError) as err:
            call()
        assert err.value.offset == bad_at
        assert str(path) in str(err.value)


def test_end_of_session_then_trailing_bytes_warns(tmp_path, stream):
    wire, _ = stream
    path = write(tmp_path, "eos.itch", wire + b"\x00\x00" + wire[:40])
    with pytest.warns(UserWarning, match="after the end-of-session"):
        t = itch.read_file(path)
    assert t.end_of_session and t.consumed == len(wire) + 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t2 = itch.read_file(write(tmp_path, "eos2.itch", wire + b"\x00\x00"))
    assert t2.end_of_session


def test_corrupt_gzip_is_a_decode_error(tmp_path, stream):
    wire, _ = stream
    path = write(tmp_path, "day.itch.gz", wire, compress=True)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data[: len(data) - 3]))
    with pytest.raises(DecodeError) as err:
        itch.read_file(path)
    assert str(path) in str(err.value)


def test_progress_writes_to_stderr_when_forced(tmp_path, stream, capsys):
    wire, _ = stream
    path = write(tmp_path, "day.itch.gz", wire, compress=True)
    itch.read_file(path, progress=True)
    assert "day.itch.gz" in capsys.readouterr().err
    itch.read_file(path, progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------- issue 9, item 6


def _day_then(tmp_path, trailer: bytes, name: str):
    """A small gzip day with its end-of-session marker, then ``trailer`` (raw bytes
    appended to the compressed file)."""
    from hftcore.itch import encode

    day = b"".join(
        encode("A", order_ref=i, side="B", shares=1, stock="X", price=1) for i in range(1, 40)
    )
    p = tmp_path / name
    p.write_bytes(gzip.compress(day + b"\x00\x00") + trailer)
    return p, len(day) + 2


@pytest.mark.parametrize(
    "trailer",
    [b"\x1f\x8bXXXXgarbage", gzip.compress(b"z" * 5000)[:-8] + b"\x00" * 8],
    ids=["garbage-member", "bad-crc-member"],
)
@pytest.mark.parametrize("chunk_bytes", [64, 1 << 20])
def test_corrupt_gzip_after_end_of_session_is_a_decode_error(tmp_path, trailer, chunk_bytes):
    # The bytes after the marker are read (to count them) in bounded pieces; a corrupt
    # member there was a raw BadGzipFile / EOFError, and read_file read it all at once.
    p, _ = _day_then(tmp_path, trailer, "day.gz")
    with pytest.raises(DecodeError, match="corrupt gzip stream") as info:
        list(itch.iter_file(p, chunk_bytes=chunk_bytes))
    assert info.value.source == str(p)
    with pytest.raises(DecodeError, match="corrupt gzip stream"):
        itch.read_file(p)


def test_valid_member_after_end_of_session_is_counted_not_decoded(tmp_path):
    p, _ = _day_then(tmp_path, gzip.compress(b"z" * 5000), "day.gz")
    with pytest.warns(UserWarning, match="5000 byte"):
        tables = concat_tables(itch.iter_file(p, chunk_bytes=64))
    assert tables.counts["A"] == 39 and tables.end_of_session


def test_small_gz_allocates_a_small_buffer_and_large_ones_grow(tmp_path):
    # A chunked reader starts with FIRST_BUFFER and grows to chunk_bytes only when the
    # stream fills it: a small .gz no longer zeroes a 64 MiB buffer per call.
    import tracemalloc

    from hftcore._core.files import FIRST_BUFFER
    from hftcore.sim import itch as simitch

    small = itch.encode("A", order_ref=1, side="B", shares=1, stock="X", price=1)
    p = tmp_path / "small.gz"
    p.write_bytes(gzip.compress(small))
    tracemalloc.start()
    itch.read_file(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # (the ITCH decoder's own scratch index is ~7 MiB, not zeroed); 64 MiB before
    assert peak < 16 * FIRST_BUFFER
    day = simitch.generate(messages=100_000, symbols=50, seed=3)
    assert len(day) > 2 * FIRST_BUFFER  # the grow path runs
    p = tmp_path / "day.gz"
    p.write_bytes(gzip.compress(day))
    got, want = itch.read_file(p), itch.decode(day)
    for t in spec.TYPES:
        assert got[t].tobytes() == want[t].tobytes()
    assert got.counts == want.counts
