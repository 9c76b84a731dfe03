"""GzipReader: the threaded gzip decompressor behind every ``.gz`` day (issue 11).

Both decompressors (igzip from ``isal`` and the standard library's zlib) must hand out
exactly the bytes ``gzip.decompress`` gives, for one member, many members, padding and
pieces smaller than a member; faults are errors naming the file, the decompressed offset
and the compressed offset.
"""

from __future__ import annotations

import gzip
import io
import random
import threading

import pytest

from hftcore import itch
from hftcore._core import files
from hftcore.errors import DecodeError
from hftcore.sim import itch as simitch

BACKENDS = ["zlib"] + (["isal"] if files._isal_zlib is not None else [])


def _payload(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(1, 9))) for _ in range(64)]
    return b" ".join(rng.choice(words) for _ in range(n))


def _read_all(data: bytes, backend: str, **kw) -> bytes:
    with files.GzipReader(io.BytesIO(data), backend, **kw) as r:
        out = bytearray()
        buf = bytearray(7777)  # an odd size: pieces straddle the reads
        while n := r.readinto(buf):
            out += buf[:n]
        return bytes(out)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("small", [False, True], ids=["default-pieces", "tiny-pieces"])
def test_same_bytes_as_gzip_module(backend, small):
    kw = {"in_bytes": 100, "out_bytes": 333, "depth": 2} if small else {}
    a, b = _payload(200_000, 1), _payload(50_000, 2)
    cases = [
        gzip.compress(a),
        gzip.compress(a, compresslevel=1) + gzip.compress(b) + gzip.compress(b""),  # members
        gzip.compress(a) + b"\x00" * 1000 + gzip.compress(b) + b"\x00" * 3,  # padding
        gzip.compress(b"\x00" * 3_000_000),  # a high ratio: output bounded per piece
        gzip.compress(b""),
    ]
    for data in cases:
        assert _read_all(data, backend, **kw) == gzip.decompress(data)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_member_is_an_error_after_the_good_bytes(backend):
    payload = _payload(100_000)
    data = gzip.compress(payload)
    r = files.GzipReader(io.BytesIO(data[:-5]), backend)
    try:
        got = bytearray()
        buf = bytearray(1 << 16)
        with pytest.raises(files.GzipStreamError, match="ended inside a gzip member") as info:
            while n := r.readinto(buf):
                got += buf[:n]
        assert "member starting at compressed byte offset 0" in str(info.value)
        # Everything before the cut was handed out (the trailer is what is missing).
        assert bytes(got) == payload[: len(got)] and len(got) >= len(payload) - 8
    finally:
        r.close()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "make",
    [
        lambda z: z[: len(z) // 2] + bytes([z[len(z) // 2] ^ 0xFF]) + z[len(z) // 2 + 1 :],
        lambda z: z[:-8] + b"\x01\x02\x03\x04" + z[-4:],  # bad CRC-32
        lambda z: z + b"not gzip at all",  # trailing garbage
    ],
    ids=["flipped-byte", "bad-crc", "trailing-garbage"],
)
def test_corrupt_stream_is_an_error(backend, make):
    data = make(gzip.compress(_payload(100_000)))
    with pytest.raises(files.GzipStreamError, match="compressed byte offset"):
        _read_all(data, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_member_offset_is_named(backend):
    first = gzip.compress(_payload(10_000))
    data = first + b"\x1f\x8b\x08\x00garbage-garbage"
    with pytest.raises(files.GzipStreamError) as info:
        _read_all(data, backend)
    assert f"member starting at compressed byte offset {len(first)}" in str(info.value)


def test_zlib_and_isal_agree_on_an_itch_day(tmp_path):
    if len(BACKENDS) < 2:
        pytest.skip("isal is not installed")
    day = simitch.generate(messages=100_000, symbols=50, seed=5)
    p = tmp_path / "day.gz"
    p.write_bytes(gzip.compress(day[:100_000]) + gzip.compress(day[100_000:]))
    got = {}
    for backend in BACKENDS:
        with files.open_stream(p, backend) as (reader, raw, compressed):
            assert compressed and isinstance(reader, files.GzipReader)
            assert reader.backend == backend
            got[backend] = reader.read()
            assert raw.tell() == p.stat().st_size
    assert got["zlib"] == got["isal"] == day


@pytest.mark.parametrize("backend", BACKENDS)
def test_itch_read_file_with_each_backend(tmp_path, monkeypatch, backend):
    monkeypatch.setenv("HFTCORE_GZIP", backend)
    day = simitch.generate(messages=50_000, symbols=20, seed=6)
    p = tmp_path / "day.gz"
    p.write_bytes(gzip.compress(day))
    got, want = itch.read_file(p), itch.decode(day)
    assert got.counts == want.counts
    for t in want.counts:
        assert got[t].tobytes() == want[t].tobytes()
    # A corrupt day names the file and the decompressed and compressed offsets.
    comp = bytearray(p.read_bytes())
    comp[len(comp) // 2] ^= 0x55
    p.write_bytes(bytes(comp))
    with pytest.raises(DecodeError, match="corrupt gzip stream.*compressed byte offset") as e:
        itch.read_file(p)
    assert e.value.source == str(p) and 0 <= e.value.offset <= len(day)
    with pytest.raises(DecodeError):
        list(itch.iter_file(p, chunk_bytes=4096))


def test_early_close_stops_the_thread():
    data = gzip.compress(_payload(300_000))
    r = files.GzipReader(io.BytesIO(data), out_bytes=1000, depth=1)
    assert r.readinto(bytearray(10)) == 10
    r.close()
    assert not r._thread.is_alive()
    assert not any(t.name == "hftcore-gunzip" and t is r._thread for t in threading.enumerate())


def test_backend_choice(monkeypatch):
    monkeypatch.setenv("HFTCORE_GZIP", "zlib")
    assert files.gzip_backend() == "zlib"
    with pytest.raises(ValueError, match="must be 'isal' or 'zlib'"):
        files.gzip_backend("brotli")
    monkeypatch.setattr(files, "_isal_zlib", None)
    monkeypatch.delenv("HFTCORE_GZIP")
    assert files.gzip_backend() == "zlib"
    with pytest.raises(ImportError, match="pip install isal"):
        files.gzip_backend("isal")
