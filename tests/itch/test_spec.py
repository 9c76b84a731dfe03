"""The ITCH message table against facts from NASDAQ's specification."""

import struct

import numpy as np
import pytest

from hftcore.itch import encode, spec

# (type, length) pairs from the TotalView-ITCH 5.0 specification, restated independently.
SPEC_LENGTHS = [
    ("S", 12), ("R", 39), ("H", 25), ("Y", 20), ("L", 26), ("V", 35), ("W", 12),
    ("K", 28), ("J", 35), ("h", 21), ("A", 36), ("F", 40), ("E", 31), ("C", 36),
    ("X", 23), ("D", 19), ("U", 35), ("P", 44), ("Q", 40), ("B", 19), ("I", 50),
    ("N", 20), ("O", 48),
]  # fmt: skip


def test_all_23_types():
    assert len(spec.MESSAGES) == 23
    assert sorted(spec.TYPES) == sorted(t for t, _ in SPEC_LENGTHS)


@pytest.mark.parametrize(("type_", "length"), SPEC_LENGTHS)
def test_lengths_and_contiguity(type_, length):
    msg = spec.BY_TYPE[type_]
    assert msg.length == length
    pos = 1
    for f in msg.all_fields:
        assert f.offset == pos, (type_, f.name)
        pos += f.size
    assert pos == length


def test_selected_offsets_from_spec():
    # A few offsets read straight from the specification's tables.
    def off(t, name):
        return next(f.offset for f in spec.BY_TYPE[t].fields if f.name == name)

    assert off("A", "price") == 32
    assert off("R", "etp_leverage_factor") == 34
    assert off("I", "price_variation_indicator") == 49
    assert off("O", "near_execution_time") == 32
    assert off("U", "new_order_ref") == 19
    assert off("Q", "cross_type") == 39


def test_dtype_columns():
    dt = spec.dtype("A")
    assert dt.names == (
        "seq", "stock_locate", "tracking_number", "timestamp",
        "order_ref", "side", "shares", "stock", "price",
    )  # fmt: skip
    assert dt["timestamp"] == np.dtype("u8")
    assert dt["stock"] == np.dtype("S8")
    assert dt["price"] == np.dtype("u4")
    assert spec.dtype("V")["level1"] == np.dtype("u8")


def test_encode_add_order_matches_struct():
    wire = encode(
        "A", stock_locate=7, tracking_number=3, timestamp=34_200_123_456_789,
        order_ref=42, side="S", shares=300, stock="MSFT", price=4_012_345,
    )  # fmt: skip
    ts = 34_200_123_456_789
    expected = struct.pack(
        ">HcHHHIQcI8sI", 36, b"A", 7, 3, ts >> 32, ts & 0xFFFFFFFF, 42, b"S", 300,
        b"MSFT    ", 4_012_345,
    )  # fmt: skip
    assert wire == expected


def test_encode_rejects_bad_values():
    with pytest.raises(ValueError):
        encode("A", shares=1 << 32)
    with pytest.raises(ValueError):
        encode("A", stock="TOOLONGNAME")
    with pytest.raises(ValueError):
        encode("A", not_a_field=1)
    with pytest.raises(KeyError):
        encode("Z")


def test_encode_empty_table():
    from hftcore.itch import encode_table

    assert encode_table("R", np.zeros(0, dtype=spec.dtype("R"))) == b""
