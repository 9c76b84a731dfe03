"""Fuzz the Binance decoders: random bytes, truncation and corruption of valid messages.

Every input must give a clean result or a DecodeError, never a crash or another
exception. Run on the debug build too (bounds checks on) to catch out-of-bounds reads.
"""

import ctypes
import mmap
import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftcore import DecodeError
from hftcore.binance import (
    apply_depth_json,
    apply_depth_sbe,
    decode,
    decode_many,
    decode_many_sbe,
    decode_sbe,
)
from hftcore.book import L2Book
from hftcore.sim import binance as sim

JSON_MSGS = sim.generate_messages(60, seed=11) + sim.generate_messages(30, seed=12, market="usdm")
JSON_MSGS += [
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"B\\u00e9\\ud835\\udd18","t":1,'
    b'"p":"1.5","q":"2","T":1,"m":false}}',
    b'{"e":"kline","E":1,"s":"X","k":{"t":1,"T":2,"s":"X","i":"1m","f":1,"L":2,"o":"1",'
    b'"c":"2","h":"3","l":"0.5","v":"9","n":3,"x":true,"q":"1","V":"1","Q":"1","B":"0"}}',
    b'{"result":null,"id":1}',
    b'{"code":2,"msg":"Invalid request"}',
    b'{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}',
]
SBE_MSGS = sim.generate_sbe_messages(60, seed=13)

JSON_ALPHABET = b'{}[]":,.-+0123456789eE \n\\utrfalsnbBaApqsTmUk'


class GuardedBuffer:
    """Input placed flush against an inaccessible page: any read past its end faults
    (a crash the test run reports), which release builds would otherwise hide."""

    def __init__(self, size=1 << 16):
        self.size = size
        self.mm = mmap.mmap(-1, size + mmap.PAGESIZE)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self.mm))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        if libc.mprotect(addr + size, mmap.PAGESIZE, 0) != 0:  # PROT_NONE
            raise OSError(ctypes.get_errno(), "mprotect failed")
        self.view = memoryview(self.mm)

    def put(self, data: bytes) -> memoryview:
        n = len(data)
        self.view[self.size - n : self.size] = data
        return self.view[self.size - n : self.size]


GUARD = GuardedBuffer() if sys.platform.startswith("linux") else None


def guarded(data: bytes):
    return GUARD.put(data) if GUARD is not None else data


def check_tables(t):
    assert sum(t.counts.values()) == t.n_messages


def run(fn, data):
    try:
        result = fn(data)
    except DecodeError:
        return None
    return result


def fuzz_json(data: bytes):
    t = run(decode_many, guarded(data))
    if t is not None:
        check_tables(t)
    t = decode_many(guarded(data), errors="skip")  # never raises on content
    check_tables(t)
    assert t.counts["invalid"] == 0 or t.errors
    run(decode_many, [data])
    run(decode, data)
    run(lambda d: apply_depth_json(L2Book(max_levels=64), d), guarded(data))


def fuzz_sbe(data: bytes):
    t = run(decode_many_sbe, guarded(data))
    if t is not None:
        check_tables(t)
    run(decode_many_sbe, [data])
    run(decode_sbe, data)
    run(lambda d: apply_depth_sbe(L2Book(max_levels=64), d), guarded(data))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_json(data):
    fuzz_json(data)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(list(JSON_ALPHABET)), max_size=120).map(bytes))
def test_json_alphabet_soup(data):
    fuzz_json(data)


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_sbe(data):
    fuzz_sbe(data)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(SBE_MSGS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_sbe_corrupted(msg, flips):
    buf = bytearray(msg)
    for pos, val in flips:
        buf[pos % len(buf)] = val
    fuzz_sbe(bytes(buf))


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(JSON_MSGS),
    st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list(JSON_ALPHABET))),
             min_size=1, max_size=3),
)  # fmt: skip
def test_json_corrupted(msg, flips):
    buf = bytearray(msg)
    for pos, val in flips:
        buf[pos % len(buf)] = val
    fuzz_json(bytes(buf))


@pytest.mark.parametrize("msg", JSON_MSGS[::7] + JSON_MSGS[-5:])
def test_json_every_truncation(msg):
    for cut in range(len(msg)):
        with pytest.raises(DecodeError):
            decode_many([msg[:cut]])
        fuzz_json(msg[:cut])


@pytest.mark.parametrize("msg", SBE_MSGS[::5])
def test_sbe_every_truncation(msg):
    for cut in range(len(msg)):
        with pytest.raises(DecodeError):
            decode_many_sbe([msg[:cut]])
        fuzz_sbe(msg[:cut])


def test_random_mutations_of_whole_corpora():
    rng = random.Random(99)
    json_buf = b"\n".join(JSON_MSGS)
    sbe_buf = b"".join(SBE_MSGS)
    for _ in range(300):
        j = bytearray(json_buf)
        s = bytearray(sbe_buf)
        for _ in range(rng.randint(1, 5)):
            j[rng.randrange(len(j))] = rng.choice(JSON_ALPHABET)
            s[rng.randrange(len(s))] = rng.randrange(256)
        cut_j = rng.randrange(len(j) + 1)
        cut_s = rng.randrange(len(s) + 1)
        for data in (bytes(j), bytes(j[:cut_j])):
            t = run(decode_many, guarded(data))
            if t is not None:
                check_tables(t)
        for data in (bytes(s), bytes(s[:cut_s])):
            t = run(decode_many_sbe, guarded(data))
            if t is not None:
                check_tables(t)


def test_valid_inputs_still_decode():
    # The fuzz corpus itself is valid: a guard that the tests above exercise real messages.
    assert decode_many(JSON_MSGS).n_messages == len(JSON_MSGS)
    assert decode_many_sbe(SBE_MSGS).n_messages == len(SBE_MSGS)
