"""Binance spot SBE (stream_1_0.xml, schema id 1 version 0) against bytes built here with
struct from the schema, independently of hftcore's encoder; then encoder round trips."""

import struct
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftcore import DecodeError
from hftcore.binance import (
    BookTicker,
    DepthSnapshot,
    DepthUpdate,
    Trade,
    decode_many_sbe,
    decode_sbe,
)
from hftcore.binance import sbe_encode as enc


def fx(mantissa: int, exponent: int) -> int:
    v = Decimal(mantissa).scaleb(exponent) * 100_000_000
    assert v == v.to_integral_value()
    return int(v)


def header(block_length, template, schema=1, version=0):
    return struct.pack("<HHHH", block_length, template, schema, version)


def varstr(s: bytes) -> bytes:
    return bytes([len(s)]) + s


def trades_msg(ev=1_700_000_000_123_456, tt=1_700_000_000_123_400, pexp=-2, qexp=-5,
               trades=((7, 4325001, 50000, 1), (8, 4325000, 1, 0)), sym=b"BTCUSDT"):  # fmt: skip
    body = struct.pack("<qqbb", ev, tt, pexp, qexp)  # 18-byte root block
    group = struct.pack("<HI", 25, len(trades))  # groupSizeEncoding
    group += b"".join(struct.pack("<qqqB", *t) for t in trades)
    return header(18, 10000) + body + group + varstr(sym)


def bba_msg(ev=1_700_000_000_000_001, upd=400900217, pexp=-8, qexp=-8,
            vals=(2535190000, 3121000000, 2536520000, 4066000000), sym=b"BNBUSDT"):  # fmt: skip
    body = struct.pack("<qqbbqqqq", ev, upd, pexp, qexp, *vals)  # 50-byte root block
    return header(50, 10001) + body + varstr(sym)


def levels16(levels):
    return struct.pack("<HH", 16, len(levels)) + b"".join(struct.pack("<qq", *lv) for lv in levels)


def diff_msg(ev=1_700_000_000_000_002, first=157, last=160, pexp=-4, qexp=0,
             bids=((24, 10),), asks=((26, 100), (27, 0)), sym=b"BNBBTC"):  # fmt: skip
    body = struct.pack("<qqqbb", ev, first, last, pexp, qexp)  # 26-byte root block
    return header(26, 10003) + body + levels16(bids) + levels16(asks) + varstr(sym)


def snap_msg(ev=1_700_000_000_000_003, upd=160, pexp=-2, qexp=-3,
             bids=((4325001, 5), (4325000, 7)), asks=((4325100, 1),), sym=b"BTCUSDT"):  # fmt: skip
    body = struct.pack("<qqbb", ev, upd, pexp, qexp)
    return header(18, 10002) + body + levels16(bids) + levels16(asks) + varstr(sym)


def test_trades_hand_built():
    recs = decode_sbe(trades_msg())
    assert recs == [
        Trade(1_700_000_000_123_456_000, 1_700_000_000_123_400_000, "BTCUSDT", 7,
              fx(4325001, -2), fx(50000, -5), True, -1, -1),
        Trade(1_700_000_000_123_456_000, 1_700_000_000_123_400_000, "BTCUSDT", 8,
              fx(4325000, -2), fx(1, -5), False, -1, -1),
    ]  # fmt: skip
    assert recs[0].price == 4325001000000  # 43250.01


def test_best_bid_ask_hand_built():
    assert decode_sbe(bba_msg()) == BookTicker(
        1_700_000_000_000_001_000, 0, "BNBUSDT", 400900217, 2535190000, 3121000000,
        2536520000, 4066000000,
    )  # fmt: skip


def test_depth_diff_hand_built():
    rec = decode_sbe(diff_msg())
    assert isinstance(rec, DepthUpdate)
    assert (rec.event_time, rec.first_update_id, rec.final_update_id) == (
        1_700_000_000_000_002_000, 157, 160,
    )  # fmt: skip
    assert rec.prev_final_update_id == -1 and rec.symbol == "BNBBTC"
    assert rec.bids.tolist() == [[fx(24, -4), fx(10, 0)]]
    assert rec.asks.tolist() == [[fx(26, -4), fx(100, 0)], [fx(27, -4), 0]]


def test_depth_snapshot_hand_built():
    rec = decode_sbe(snap_msg())
    assert isinstance(rec, DepthSnapshot)
    assert rec.last_update_id == 160 and rec.event_time == 1_700_000_000_000_003_000
    assert rec.bids.tolist() == [[fx(4325001, -2), fx(5, -3)], [fx(4325000, -2), fx(7, -3)]]
    assert rec.asks.tolist() == [[fx(4325100, -2), fx(1, -3)]]


def test_tables_from_concatenated_and_list():
    msgs = [trades_msg(), bba_msg(), diff_msg(), snap_msg(), diff_msg(first=161, last=170)]
    a = decode_many_sbe(b"".join(msgs))
    b = decode_many_sbe(msgs)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert a.counts["trade"] == 1 and a.counts["depthUpdate"] == 2
    assert len(a["trades"]) == 2 and len(a["depth"]) == 6 and len(a["depth_snapshots"]) == 3
    assert a["depth"]["msg_index"].tolist() == [2, 2, 2, 4, 4, 4]
    assert a["depth"]["final_update_id"].tolist() == [160] * 3 + [170] * 3


def test_larger_block_length_is_honoured():
    # A later minor version may append root fields: blockLength says how far to skip.
    body = struct.pack("<qqbbqqqq", 5, 6, -8, -8, 1, 2, 3, 4) + b"\xff" * 6
    msg = header(56, 10001) + body + varstr(b"X")
    assert decode_sbe(msg) == BookTicker(5000, 0, "X", 6, 1, 2, 3, 4)


@pytest.mark.parametrize(
    ("mantissa", "exponent"),
    [(1, -8), (123456789, -8), (5, 0), (7, 3), (10, -9), (1200, -10), (-3, -1), (0, -30),
     (0, 30), (92233720368, 0)],
)  # fmt: skip
def test_exponents_exact(mantissa, exponent):
    msg = bba_msg(pexp=exponent, qexp=-8, vals=(mantissa, 1, mantissa, 1))
    assert decode_sbe(msg).bid_price == fx(mantissa, exponent)


@pytest.mark.parametrize(
    ("mantissa", "exponent", "reason"),
    [(1, -9, "9 decimals"), (123, -10, "10 decimals"), (1, 11, "out of range"),
     (92233720369, 0, "out of range"), (1, 127, "out of range"), (1, -128, "decimals")],
)  # fmt: skip
def test_exponents_inexact_or_overflow(mantissa, exponent, reason):
    with pytest.raises(DecodeError, match=reason):
        decode_sbe(bba_msg(pexp=exponent, vals=(mantissa, 1, 1, 1)))


def test_unknown_template():
    msg = header(18, 10004) + bytes(30)
    with pytest.raises(DecodeError, match="unknown message type 10004") as ei:
        decode_sbe(msg)
    assert ei.value.offset == 2


@pytest.mark.parametrize(("schema", "version"), [(2, 0), (1, 1), (0, 0)])
def test_wrong_schema(schema, version):
    msg = bytearray(bba_msg())
    struct.pack_into("<HH", msg, 4, schema, version)
    with pytest.raises(DecodeError, match=f"schema id {schema} version {version}"):
        decode_sbe(bytes(msg))


def test_truncated_every_length():
    for msg in (trades_msg(), bba_msg(), diff_msg(), snap_msg()):
        for cut in range(len(msg)):
            with pytest.raises(DecodeError):
                decode_many_sbe([msg[:cut]])
            if cut:  # an empty buffer is zero messages, not an error
                with pytest.raises(DecodeError):
                    decode_many_sbe(msg[:cut])


def test_frame_with_trailing_bytes():
    with pytest.raises(DecodeError, match="length"):
        decode_many_sbe([bba_msg() + b"\x00"])


def test_short_block_length():
    msg = bytearray(bba_msg())
    struct.pack_into("<H", msg, 0, 49)
    with pytest.raises(DecodeError, match="bad message length 49"):
        decode_sbe(bytes(msg))


def test_bad_group_entry_size():
    msg = bytearray(diff_msg())
    struct.pack_into("<H", msg, 8 + 26, 15)
    with pytest.raises(DecodeError):
        decode_sbe(bytes(msg))


def test_bad_bool():
    msg = trades_msg(trades=((1, 1, 1, 2),))
    with pytest.raises(DecodeError, match="out of range"):
        decode_sbe(msg)


# ---- encoder round trips --------------------------------------------------------------


def test_encoder_matches_hand_built():
    assert enc.encode_trades(
        1_700_000_000_123_456, 1_700_000_000_123_400, "BTCUSDT",
        [(7, fx(4325001, -2), fx(50000, -5), True), (8, fx(4325000, -2), fx(1, -5), False)],
        price_exponent=-2, qty_exponent=-5,
    ) == trades_msg()  # fmt: skip
    assert enc.encode_best_bid_ask(
        1_700_000_000_000_001, 400900217, "BNBUSDT", 2535190000, 3121000000, 2536520000,
        4066000000,
    ) == bba_msg()  # fmt: skip
    assert enc.encode_depth_diff(
        1_700_000_000_000_002, 157, 160, "BNBBTC", [(fx(24, -4), fx(10, 0))],
        [(fx(26, -4), fx(100, 0)), (fx(27, -4), 0)], price_exponent=-4, qty_exponent=0,
    ) == diff_msg()  # fmt: skip
    assert enc.encode_depth_snapshot(
        1_700_000_000_000_003, 160, "BTCUSDT",
        [(fx(4325001, -2), fx(5, -3)), (fx(4325000, -2), fx(7, -3))],
        [(fx(4325100, -2), fx(1, -3))], price_exponent=-2, qty_exponent=-3,
    ) == snap_msg()  # fmt: skip


def test_to_mantissa_rejects_inexact():
    with pytest.raises(ValueError):
        enc.to_mantissa(123, -6)  # 123e-8 is not a multiple of 1e-6


values = st.integers(0, 2**62)
level_lists = st.lists(st.tuples(values, values), max_size=20)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 2**52), st.integers(0, 2**62), st.integers(0, 2**62), level_lists,
    level_lists, st.text(min_size=0, max_size=6),
)  # fmt: skip
def test_roundtrip_depth_diff(ev, first, last, bids, asks, sym):
    msg = enc.encode_depth_diff(ev, first, last, sym, bids, asks)
    rec = decode_sbe(msg)  # at most 6 characters: at most 24 UTF-8 bytes
    assert rec.event_time == ev * 1000 and rec.symbol == sym
    assert (rec.first_update_id, rec.final_update_id) == (first, last)
    assert rec.bids.reshape(-1, 2).tolist() == [list(x) for x in bids]
    assert rec.asks.reshape(-1, 2).tolist() == [list(x) for x in asks]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(0, 9 * 10**10),
                       st.integers(0, 9 * 10**10), st.booleans()), max_size=10),
    st.sampled_from([-8, -6, -4, -2, 0]),
)  # fmt: skip
def test_roundtrip_trades(trades, exponent):
    scale = 10 ** (exponent + 8)
    trades = [(i, p * scale, q * scale, m) for i, p, q, m in trades]
    msg = enc.encode_trades(1, 2, "ETHUSDT", trades, exponent, exponent)
    t = decode_many_sbe([msg])
    rows = t["trades"]
    cols = ("trade_id", "price", "qty", "buyer_is_maker")
    assert list(zip(*(rows[c].tolist() for c in cols), strict=True)) == trades
    assert t.counts["trade"] == 1
