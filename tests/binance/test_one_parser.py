"""One parser per message kind: ``decode_many`` and the depth appliers read a message
with the same parsing functions, so they agree on every input, good or bad: whether it
is accepted, its levels and header values, and the error offset and reason.

The corpus covers the envelopes (combined-stream ``data``, WebSocket API ``event``), raw
spot and USD-M diffs, REST and partial-depth snapshots, odd number shapes, whitespace,
and corrupted, shortened and truncated variants of all of them.
"""

import json
import random

import pytest

from hftcore import DecodeError
from hftcore.binance import (
    KINDS,
    apply_depth_json,
    apply_depth_sbe,
    decode_many,
    decode_many_sbe,
    sbe_encode,
)
from hftcore.book import L2Book
from hftcore.sim import binance as sim

DEPTH_KINDS = {"depthUpdate": "depth", "depthSnapshot": "depth_snapshots"}
HEADER = ("event_time", "transaction_time", "first_update_id", "final_update_id",
          "prev_final_update_id")  # fmt: skip


def _decoded(msg: bytes, sbe: bool = False):
    """What decode_many makes of one message: an error, another kind, or depth levels."""
    try:
        tables = decode_many_sbe([msg]) if sbe else decode_many([msg])
    except DecodeError as e:
        return ("error", e.reason, e.offset)
    kind = KINDS[tables.kinds[0]]
    if kind not in DEPTH_KINDS:
        return ("other", kind)
    rows = tables[DEPTH_KINDS[kind]]
    levels = list(zip(rows["side"].tolist(), rows["price"].tolist(), rows["qty"].tolist(),
                      strict=True))  # fmt: skip
    header = tuple(rows[0][c] for c in HEADER) if len(rows) else None
    return ("depth", kind == "depthSnapshot", header, levels)


def _book_of(levels):
    """The book an empty L2Book becomes after these levels, in order."""
    sides = ({}, {})
    for side, price, qty in levels:
        if qty <= 0:  # L2Book removes the level (a corrupted SBE mantissa can be < 0)
            sides[side].pop(price, None)
        else:
            sides[side][price] = qty
    return sorted(sides[0].items(), reverse=True), sorted(sides[1].items())


SBE_OTHER_KINDS = {10000: "trade", 10001: "bookTicker"}


def _assert_agree(msg: bytes, sbe: bool = False):
    want = _decoded(msg, sbe)
    if sbe and len(msg) >= 8 and msg[4:8] == b"\x01\x00\x00\x00":
        # An SBE header names its kind up front: the appliers refuse a trade or best
        # bid/ask there, where decoding goes on to read (and perhaps reject) its body.
        other = SBE_OTHER_KINDS.get(int.from_bytes(msg[2:4], "little"))
        if other is not None:
            with pytest.raises(DecodeError) as ei:
                apply_depth_sbe(L2Book(), msg)
            assert (ei.value.reason, ei.value.offset) == (
                f"unexpected message kind {other!r}", 2)  # fmt: skip
            return "other"
    book = L2Book(max_levels=100_000)
    try:
        head = apply_depth_sbe(book, msg) if sbe else apply_depth_json(book, msg)
    except DecodeError as e:
        got = ("error", e.reason, e.offset)
        if want[0] == "other":
            assert got == ("error", f"unexpected message kind {want[1]!r}", e.offset), msg
        else:
            assert want[0] == "error", (msg, got)
            assert got == want, msg
        assert len(book) == 0
        return want[0]
    assert want[0] == "depth", (msg, want)
    _, is_snapshot, header, levels = want
    assert head.is_snapshot == is_snapshot, msg
    if header is not None:
        assert tuple(head)[:5] == header, msg
    assert (head.n_bids, head.n_asks) == (
        sum(1 for s, _, _ in levels if s == 0),
        sum(1 for s, _, _ in levels if s == 1),
    ), msg
    bids, asks = _book_of(levels)
    b, a = book.depth()
    assert [tuple(x) for x in b.tolist()] == bids, msg
    assert [tuple(x) for x in a.tolist()] == asks, msg
    return "ok"


def _diff(market="spot", pretty=False, **over):
    obj = {"e": "depthUpdate", "E": 1700000000123}
    if market == "usdm":
        obj["T"] = 1700000000120
    obj.update({"s": "BTCUSDT", "U": 157, "u": 160})
    if market == "usdm":
        obj["pu"] = 149
    obj["b"] = [["43250.01000000", "1.50000000"], ["43249.99000000", "0.00000000"]]
    obj["a"] = [["43250.02000000", "2.25000000"]]
    obj.update(over)
    if pretty:
        return json.dumps(obj, indent=2).encode()
    return json.dumps(obj, separators=(",", ":")).encode()


def _corpus():
    msgs = []
    for market in ("spot", "usdm"):
        printed = [m for m in sim.generate_messages(400, seed=21, market=market)
                   if b'"depthUpdate"' in m][:25]  # fmt: skip
        msgs += printed
        msgs += [b'{"stream":"btcusdt@depth@100ms","data":' + m + b"}" for m in printed[:8]]
        msgs += [b'{"subscriptionId":0,"event":' + m + b"}" for m in printed[:8]]
        msgs += [b'{"event":' + m + b"}" for m in printed[:4]]
        msgs += [_diff(market), _diff(market, pretty=True)]
    snap = {"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]],
            "asks": [["4.00000200", "12.00000000"], ["4.1", "0"]]}  # fmt: skip
    msgs += [
        json.dumps(snap).encode(),
        json.dumps(dict(snap, E=1700000000000, T=1699999999999)).encode(),  # USD-M REST
        b'{"lastUpdateId":160,"bids":[],"asks":[]}',
        b'{"stream":"btcusdt@depth5","data":' + json.dumps(snap).encode() + b"}",
        b'  \n{ "e" : "depthUpdate" , "E":1, "s":"X", "U":1, "u":2, "b":[ ], "a":[] }\t',
    ]
    for text in ("1", "0.5", "00.50000000", "1.123456780", "1234567.12345678",
                 "12345678.12345678", "92233720368.54775807", "0.00000001"):  # fmt: skip
        msgs.append(_diff(b=[[text, "1.00000000"]], a=[["7.00000000", text]]))
    msgs.append(_diff().replace(b'"1.50000000"', b"1.5"))  # bare numbers
    msgs.append(_diff().replace(b'"2.25000000"', b"2.25e0"))
    msgs.append(_diff(b=[["1.5", "2", "extra"]]))  # a third element is tolerated
    # Other kinds, which decode_many accepts and the appliers refuse by name.
    msgs += [m for m in sim.generate_messages(60, seed=22) if b'"depthUpdate"' not in m][:6]
    msgs += [b'{"result":null,"id":1}', b'{"e":"depthUpdatx","E":1}']
    return msgs


def _variants(msgs, seed, per_msg=6):
    rng = random.Random(seed)
    alphabet = b'0123456789.",[]{}:-e xE\\'
    out = []
    for m in msgs:
        for _ in range(per_msg):
            i = rng.randrange(len(m))
            out.append(m[:i] + bytes([rng.choice(alphabet)]) + m[i + 1 :])  # corrupted
            out.append(m[:i] + m[i + 1 :])  # one byte less
            out.append(m[:i])  # truncated
    return out


def test_corpus_agrees():
    outcomes = {_assert_agree(m) for m in _corpus()}
    assert outcomes == {"ok", "other", "error"}  # "2.25e0" is malformed for both


def test_corrupted_corpus_agrees():
    outcomes = [_assert_agree(v) for v in _variants(_corpus(), seed=23)]
    assert {"ok", "error", "other"} <= set(outcomes)


@pytest.mark.parametrize("envelope", [b'{"event":%s}', b'{"stream":"x","data":%s}'])
def test_envelopes_are_accepted_by_both(envelope):
    for market in ("spot", "usdm"):
        msg = envelope.replace(b"%s", _diff(market))
        assert _assert_agree(msg) == "ok"
        head = apply_depth_json(L2Book(), msg)
        assert (head.first_update_id, head.final_update_id, head.n_bids) == (157, 160, 2)


def test_missing_field_is_named_alike():
    msg = _diff().replace(b'"u":160,', b"")
    assert _decoded(msg) == ("error", "required field 'u' missing", 0)
    assert _assert_agree(msg) == "error"


def _sbe_corpus():
    events = sim.generate_events(300, seed=24, symbols=("BTCUSDT",))
    msgs = [sim.render_sbe(e) for e in events][:40]
    msgs.append(sbe_encode.encode_depth_snapshot(2_000, 170, "BTCUSDT", [(1, 2)], [(3, 4)]))
    msgs.append(sbe_encode.encode_depth_diff(1, 1, 2, "X", [(1230000, 0)], [(2000000, 5)],
                                             price_exponent=-4))  # fmt: skip
    return msgs


def test_sbe_corpus_agrees():
    outcomes = {_assert_agree(m, sbe=True) for m in _sbe_corpus()}
    assert "ok" in outcomes and "other" in outcomes


def test_sbe_corrupted_corpus_agrees():
    rng = random.Random(25)
    variants = []
    for m in _sbe_corpus():
        for _ in range(6):
            i = rng.randrange(len(m))
            variants.append(m[:i] + bytes([rng.randrange(256)]) + m[i + 1 :])
            variants.append(m[:i])
    outcomes = [_assert_agree(v, sbe=True) for v in variants]
    assert {"ok", "error"} <= set(outcomes)
