"""hftcore.itch.decode against hand-built wire bytes, the encoder, and the framing rules."""

import importlib.util
import mmap
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hftcore import DecodeError, itch
from hftcore.itch import spec

# Body layouts after the 11-byte header, restated from the TotalView-ITCH 5.0
# specification (struct codes: c = 1-byte alpha, Ns = N-byte alpha, H/I/Q = 2/4/8-byte
# big-endian unsigned integers). Independent of hftcore.itch.spec's offsets.
LAYOUT = {
    "S": [("event_code", "c")],
    "R": [
        ("stock", "8s"), ("market_category", "c"), ("financial_status", "c"),
        ("round_lot_size", "I"), ("round_lots_only", "c"), ("issue_classification", "c"),
        ("issue_subtype", "2s"), ("authenticity", "c"), ("short_sale_threshold", "c"),
        ("ipo_flag", "c"), ("luld_tier", "c"), ("etp_flag", "c"),
        ("etp_leverage_factor", "I"), ("inverse_indicator", "c"),
    ],
    "H": [("stock", "8s"), ("trading_state", "c"), ("reserved", "c"), ("reason", "4s")],
    "Y": [("stock", "8s"), ("reg_sho_action", "c")],
    "L": [
        ("mpid", "4s"), ("stock", "8s"), ("primary_market_maker", "c"),
        ("market_maker_mode", "c"), ("market_participant_state", "c"),
    ],
    "V": [("level1", "Q"), ("level2", "Q"), ("level3", "Q")],
    "W": [("breached_level", "c")],
    "K": [
        ("stock", "8s"), ("ipo_release_time", "I"), ("ipo_release_qualifier", "c"),
        ("ipo_price", "I"),
    ],
    "J": [
        ("stock", "8s"), ("reference_price", "I"), ("upper_price", "I"),
        ("lower_price", "I"), ("extension", "I"),
    ],
    "h": [("stock", "8s"), ("market_code", "c"), ("halt_action", "c")],
    "A": [
        ("order_ref", "Q"), ("side", "c"), ("shares", "I"), ("stock", "8s"), ("price", "I"),
    ],
    "F": [
        ("order_ref", "Q"), ("side", "c"), ("shares", "I"), ("stock", "8s"), ("price", "I"),
        ("attribution", "4s"),
    ],
    "E": [("order_ref", "Q"), ("executed_shares", "I"), ("match_number", "Q")],
    "C": [
        ("order_ref", "Q"), ("executed_shares", "I"), ("match_number", "Q"),
        ("printable", "c"), ("execution_price", "I"),
    ],
    "X": [("order_ref", "Q"), ("cancelled_shares", "I")],
    "D": [("order_ref", "Q")],
    "U": [("original_order_ref", "Q"), ("new_order_ref", "Q"), ("shares", "I"), ("price", "I")],
    "P": [
        ("order_ref", "Q"), ("side", "c"), ("shares", "I"), ("stock", "8s"), ("price", "I"),
        ("match_number", "Q"),
    ],
    "Q": [
        ("shares", "Q"), ("stock", "8s"), ("cross_price", "I"), ("match_number", "Q"),
        ("cross_type", "c"),
    ],
    "B": [("match_number", "Q")],
    "I": [
        ("paired_shares", "Q"), ("imbalance_shares", "Q"), ("imbalance_direction", "c"),
        ("stock", "8s"), ("far_price", "I"), ("near_price", "I"),
        ("current_reference_price", "I"), ("cross_type", "c"),
        ("price_variation_indicator", "c"),
    ],
    "N": [("stock", "8s"), ("interest_flag", "c")],
    "O": [
        ("stock", "8s"), ("open_eligibility_status", "c"), ("min_allowable_price", "I"),
        ("max_allowable_price", "I"), ("near_execution_price", "I"),
        ("near_execution_time", "Q"), ("lower_price_range_collar", "I"),
        ("upper_price_range_collar", "I"),
    ],
}  # fmt: skip

# Total message lengths from the specification.
SPEC_LENGTH = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
    "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
    "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48,
}  # fmt: skip


def hand_values(type_, salt=0):
    """Distinct values per field with bytes in every position (catches byte-order bugs)."""
    vals = {
        "stock_locate": 0x0102 + salt,
        "tracking_number": 0xA0B0 - salt,
        "timestamp": 0x1234_5678_9ABC + salt,  # 48 bits
    }
    for i, (name, code) in enumerate(LAYOUT[type_]):
        if code == "c":
            vals[name] = bytes([ord("A") + (i + salt) % 26])
        elif code.endswith("s"):
            width = int(code[:-1])
            vals[name] = bytes(ord("a") + (i + j + salt) % 26 for j in range(width))
        elif code == "I":
            vals[name] = 0x8102_0304 + 0x1_0000 * i + salt
        elif code == "Q":
            vals[name] = 0x8102_0304_0506_0708 + 0x1_0000_0000 * i + salt
    return vals


def hand_message(type_, vals):
    """One framed message built with struct only."""
    fmt = ">" + "".join(code for _, code in LAYOUT[type_])
    body = (
        type_.encode()
        + struct.pack(">HH", vals["stock_locate"], vals["tracking_number"])
        + vals["timestamp"].to_bytes(6, "big")
        + struct.pack(fmt, *(vals[name] for name, _ in LAYOUT[type_]))
    )
    assert len(body) == SPEC_LENGTH[type_]
    return struct.pack(">H", len(body)) + body


def assert_row(row, vals):
    for name, expected in vals.items():
        got = row[name]
        if isinstance(expected, bytes):
            assert bytes(got) == expected, name
        else:
            assert int(got) == expected, name


def random_stream(rng, n, types=spec.TYPES, unknown=0.0):
    """A stream of ``n`` messages of random types and field values, plus its tables.

    With ``unknown`` > 0, that fraction of messages are of a non-ITCH type byte ``z``
    (random lengths). Returns ``(bytes, {type: expected rows}, n)``.
    """
    kinds = rng.choice(list(types) + ["z"], size=n, p=_mix(len(types), unknown))
    parts, rows = [], {t: [] for t in spec.TYPES}
    for seq, t in enumerate(kinds):
        if t == "z":
            body_len = int(rng.integers(1, 60))
            parts.append(struct.pack(">H", body_len) + b"z" + bytes(body_len - 1))
            continue
        vals = hand_values(t, salt=int(rng.integers(0, 1000)))
        parts.append(hand_message(t, vals))
        rows[t].append((seq, vals))
    return b"".join(parts), rows


def _mix(k, unknown):
    return [(1 - unknown) / k] * k + [unknown]


def assert_tables_equal(a, b):
    assert list(a) == list(b)
    for t in spec.TYPES:
        assert a[t].dtype == b[t].dtype
        assert a[t].tobytes() == b[t].tobytes(), t
    assert a.counts == b.counts
    assert (a.consumed, a.unknown, a.messages, a.next_seq) == (
        b.consumed,
        b.unknown,
        b.messages,
        b.next_seq,
    )


# --- every type, hand-built ------------------------------------------------------------


@pytest.mark.parametrize("type_", sorted(LAYOUT))
def test_hand_built_message_every_field(type_):
    vals = hand_values(type_)
    wire = hand_message(type_, vals)
    tables = itch.decode(wire)
    assert len(tables[type_]) == 1
    assert_row(tables[type_][0], vals)
    assert int(tables[type_][0]["seq"]) == 0
    assert tables.consumed == len(wire) == SPEC_LENGTH[type_] + 2
    assert tables.counts[type_] == 1 and tables.messages == 1 and tables.unknown == 0
    assert all(len(tables[t]) == 0 for t in spec.TYPES if t != type_)


def test_layouts_cover_the_spec_fields():
    # The hand layout and the package's dtype agree on the set of field names.
    for t, fields in LAYOUT.items():
        names = {"seq", "stock_locate", "tracking_number", "timestamp"} | {n for n, _ in fields}
        assert set(spec.dtype(t).names) == names


def test_all_types_in_one_stream_keep_seq_and_order():
    rng = np.random.default_rng(5)
    wire, rows = random_stream(rng, 400)
    tables = itch.decode(wire)
    assert tables.messages == 400 and tables.consumed == len(wire)
    for t in spec.TYPES:
        assert len(tables[t]) == len(rows[t]) == tables.counts[t]
        for got, (seq, vals) in zip(tables[t], rows[t], strict=True):
            assert int(got["seq"]) == seq
            assert_row(got, vals)


def test_padding_is_zeroed():
    wire = hand_message("A", hand_values("A"))
    row = itch.decode(wire)["A"].tobytes()
    dt = spec.dtype("A")
    covered = np.zeros(dt.itemsize, bool)
    for name in dt.names:
        sub, off = dt.fields[name][:2]
        covered[off : off + sub.itemsize] = True
    assert all(b == 0 for b, c in zip(row, covered, strict=True) if not c)


# --- round trips through the encoder -----------------------------------------------------


def _column(draw, f, n):
    if f.kind in ("alpha", "enum"):
        alpha = st.binary(min_size=f.size, max_size=f.size).map(
            lambda b: bytes(33 + x % 94 for x in b)  # printable, no trailing-space ambiguity
        )
        return draw(st.lists(alpha, min_size=n, max_size=n))
    hi = (1 << (8 * f.size)) - 1
    return draw(st.lists(st.integers(0, hi), min_size=n, max_size=n))


@pytest.mark.parametrize("type_", spec.TYPES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_encode_table(type_, data):
    n = data.draw(st.integers(1, 20))  # encode_table of 0 rows fails in numpy 2.4 ljust
    table = np.zeros(n, dtype=spec.dtype(type_))
    table["seq"] = np.arange(n)
    for f in spec.BY_TYPE[type_].all_fields:
        table[f.name] = _column(data.draw, f, n)
    decoded = itch.decode(itch.encode_table(type_, table))
    assert np.array_equal(decoded[type_], table)
    assert decoded.consumed == n * (spec.BY_TYPE[type_].length + 2)


def test_round_trip_encode_stream_mixed():
    rng = np.random.default_rng(11)
    wire, _ = random_stream(rng, 300)
    first = itch.decode(wire)
    again = itch.encode_stream(first)
    assert again == wire
    assert_tables_equal(itch.decode(again), first)


# --- framing: chunks, unknown types, end of session, bad lengths ---------------------------


def test_resume_at_every_split_offset():
    rng = np.random.default_rng(2)
    wire, _ = random_stream(rng, 40, unknown=0.1)
    whole = itch.decode(wire)
    for cut in range(len(wire) + 1):
        a = itch.decode(wire[:cut])
        assert a.consumed <= cut
        b = itch.decode(wire[a.consumed :], seq_start=a.next_seq)
        assert_tables_equal(itch.concat_tables([a, b]), whole)


def test_partial_length_prefix_is_not_consumed():
    wire = hand_message("D", hand_values("D"))
    t = itch.decode(wire + b"\x00")
    assert t.consumed == len(wire) and t.messages == 1 and not t.end_of_session


def test_unknown_types_skipped_counted_and_use_a_seq():
    d = hand_message("D", hand_values("D"))
    wire = d + b"\x00\x03zab" + b"\x00\x01\xff" + d
    t = itch.decode(wire)
    assert t.unknown == 2 and t.messages == 4 and t.consumed == len(wire)
    assert t["D"]["seq"].tolist() == [0, 3]
    assert t.next_seq == 4


def test_zero_length_ends_the_session():
    d = hand_message("D", hand_values("D"))
    wire = d + b"\x00\x00" + d
    t = itch.decode(wire)
    assert t.end_of_session
    assert t.consumed == len(d) + 2
    assert t.messages == 1 and len(t["D"]) == 1


@pytest.mark.parametrize("type_", ["A", "D", "S", "O"])
@pytest.mark.parametrize("delta", [-1, 1, 5])
def test_bad_length_raises_at_its_prefix(type_, delta):
    good = hand_message("E", hand_values("E"))
    body = hand_message(type_, hand_values(type_))[2:]
    bad_len = len(body) + delta
    body = (body + bytes(8))[:bad_len]
    wire = good + good + struct.pack(">H", bad_len) + body + good
    with pytest.raises(DecodeError) as err:
        itch.decode(wire, source="feed.bin")
    assert err.value.offset == 2 * len(good)
    assert str(SPEC_LENGTH[type_]) in err.value.reason and str(bad_len) in err.value.reason
    assert "feed.bin" in str(err.value)


def test_bad_length_detected_even_when_type_not_decoded():
    body = hand_message("A", hand_values("A"))[2:]
    wire = struct.pack(">H", 30) + body[:30]
    with pytest.raises(DecodeError) as err:
        itch.decode(wire, types="D")
    assert err.value.offset == 0


# --- types=, inputs ---------------------------------------------------------------------


def test_types_restriction_counts_everything_decodes_some():
    rng = np.random.default_rng(3)
    wire, rows = random_stream(rng, 300)
    full = itch.decode(wire)
    part = itch.decode(wire, types=["A", "D"])
    assert part.counts == full.counts
    for t in spec.TYPES:
        if t in "AD":
            assert np.array_equal(part[t], full[t])
        else:
            assert len(part[t]) == 0
    assert set(itch.decode(wire, types="").counts.values()) == set(full.counts.values())


def test_types_rejects_unknown():
    with pytest.raises(ValueError, match="unknown ITCH"):
        itch.decode(b"", types="Az")


def test_mapping_is_read_only_and_complete():
    t = itch.decode(b"")
    assert len(t) == 23 and set(t) == set(spec.TYPES)
    with pytest.raises(TypeError):
        t["A"] = None
    assert t.consumed == 0 and t.messages == 0 and not t.end_of_session
    assert "messages=0" in repr(t)


def test_every_input_kind(tmp_path):
    rng = np.random.default_rng(4)
    wire, _ = random_stream(rng, 50)
    expected = itch.decode(wire)
    path = tmp_path / "x.bin"
    path.write_bytes(wire)
    ro = np.frombuffer(wire, dtype=np.uint8)
    assert not ro.flags.writeable
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for buf in (bytearray(wire), memoryview(wire), ro, ro.copy(), mm):
            assert_tables_equal(itch.decode(buf), expected)


def test_numpy_input_must_be_uint8():
    with pytest.raises((TypeError, ValueError)):
        itch.decode(np.zeros(4, dtype=np.int32))


def test_seq_start_offsets_every_row():
    wire, _ = random_stream(np.random.default_rng(6), 30)
    t = itch.decode(wire, seq_start=1_000_000)
    seqs = np.sort(np.concatenate([t[k]["seq"] for k in spec.TYPES]))
    assert seqs.tolist() == list(range(1_000_000, 1_000_030))
    assert t.next_seq == 1_000_030


# --- iter_messages ------------------------------------------------------------------------


def test_iter_messages_in_stream_order():
    rng = np.random.default_rng(8)
    wire, rows = random_stream(rng, 120, unknown=0.05)
    expected = sorted((seq, t, vals) for t, lst in rows.items() for seq, vals in lst)
    got = list(itch.iter_messages(wire))
    assert [(int(r["seq"]), t) for t, r in got] == [(s, t) for s, t, _ in expected]
    for (_, row), (_, _, vals) in zip(got, expected, strict=True):
        assert_row(row, vals)


def test_iter_messages_truncated_tail_is_an_error():
    wire = hand_message("D", hand_values("D"))
    with pytest.raises(DecodeError) as err:
        list(itch.iter_messages(wire + wire[:5]))
    assert err.value.offset == len(wire)


# --- the generated kernel cannot drift from the spec -----------------------------------


def _generator(repo):
    path = repo / "tools" / "gen_itch_decoder.py"
    mod_spec = importlib.util.spec_from_file_location("gen_itch_decoder", path)
    gen = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(gen)
    return gen


def test_generated_decoder_is_fresh(repo):
    checked_in = (repo / "hftcore" / "itch" / "_decode_gen.pxi").read_text()
    assert _generator(repo).generate() == checked_in


def test_generated_wire_layout_is_fresh(repo):
    checked_in = (repo / "hftcore" / "itch" / "_wire.pxd").read_text()
    assert _generator(repo).generate_wire() == checked_in


def test_wire_layout_names_every_offset_and_length():
    consts = spec.wire_constants()
    for msg in spec.MESSAGES:
        assert consts[f"LEN_{msg.type}"] == msg.length
        for f in msg.fields:
            assert consts[f"OFF_{msg.type}_{f.name.upper()}"] == f.offset
    assert consts["OFF_TIMESTAMP"] == 5 and consts["ITCH_FRAME_PREFIX"] == 2


def test_compiled_modules_refuse_a_moved_spec(monkeypatch):
    """The book and the simulator compare their compiled-in layout with the spec."""
    from hftcore.itch import _book
    from hftcore.sim import _itchgen

    assert _book._stale_offsets() == [] and not _itchgen._stale_layout()
    moved = dict(spec.wire_constants(), OFF_A_PRICE=33)
    monkeypatch.setattr(spec, "wire_constants", lambda: moved)
    assert _book._stale_offsets() == ["_wire.pxd"]
    assert _itchgen._stale_layout()


@pytest.mark.parametrize("path", ["hftcore/itch/_book.pyx", "hftcore/sim/_itchgen.pyx"])
def test_no_literal_itch_offsets(path, repo):
    """Offsets and lengths come from _wire.pxd: no ``m + 19`` or ``m[0]`` by hand."""
    import re

    text = (repo / path).read_text()
    found = re.findall(r"[(,] ?(?:m|b) \+ \d+\b|\b(?:m|b)\[\d+\]|_header\(p, \d", text)
    assert found == []


def test_fill_in_slices_with_progress_matches_one_pass():
    from hftcore.itch._decode import decode_buffer

    wire, _ = random_stream(np.random.default_rng(12), 500, unknown=0.05)
    whole = decode_buffer(wire)
    seen = []
    sliced = decode_buffer(wire, progress=seen.append, progress_every=7)
    for t in spec.TYPES:
        assert sliced[0][t].tobytes() == whole[0][t].tobytes()
    assert sliced[1:] == whole[1:]
    assert seen == sorted(seen) and seen[-1] == len(wire) and len(seen) == -(-500 // 7)


def test_encode_with_no_fields_is_one_message_of_zeros():
    # Issue 9, item 7: encode("D") returned b"" although missing fields encode as 0.
    wire = itch.encode("D")
    body = spec.BY_TYPE["D"].length
    assert wire == struct.pack(">H", body) + b"D" + bytes(body - 1)
    # alpha and enum fields are space-padded, as the wire wants
    wire = itch.encode("S")
    assert wire == struct.pack(">H", 12) + b"S" + bytes(10) + b" "
