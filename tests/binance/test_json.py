"""Binance JSON decoding against json.loads + decimal.Decimal computed here.

Payload examples are copied from Binance's public docs (spot ``web-socket-streams.md``,
USD-M futures market streams): they are facts, the expectations are computed from them
with the standard library, never taken from the decoder.
"""

import json
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hftcore import DecodeError
from hftcore.binance import (
    AggTrade,
    BookTicker,
    ControlReply,
    DepthSnapshot,
    DepthUpdate,
    ErrorReply,
    Kline,
    ServerShutdown,
    Trade,
    UnknownEvent,
    decode,
    decode_many,
)

MS = 1_000_000  # ns per ms
US = 1_000


def fx(s) -> int:
    """Reference: a decimal string to int with 8 implied decimals, exactly."""
    v = Decimal(str(s)) * 100_000_000
    assert v == v.to_integral_value()
    return int(v)


# ---- doc payloads (spot web-socket-streams.md) ----------------------------------------

AGG_TRADE = """{
  "e": "aggTrade",    "E": 1672515782136, "s": "BNBBTC", "a": 12345, "p": "0.001",
  "q": "100", "f": 100, "l": 105, "T": 1672515782136, "m": true, "M": true
}"""

TRADE = """{
  "e": "trade", "E": 1672515782136, "s": "BNBBTC", "t": 12345, "p": "0.001", "q": "100",
  "b": 88, "a": 50, "T": 1672515782136, "m": true, "M": true
}"""

KLINE = """{
  "e": "kline", "E": 1672515782136, "s": "BNBBTC",
  "k": {
    "t": 1672515780000, "T": 1672515839999, "s": "BNBBTC", "i": "1m", "f": 100, "L": 200,
    "o": "0.0010", "c": "0.0020", "h": "0.0025", "l": "0.0015", "v": "1000", "n": 100,
    "x": false, "q": "1.0000", "V": "500", "Q": "0.500", "B": "123456"
  }
}"""

BOOK_TICKER = """{
  "u":400900217, "s":"BNBUSDT", "b":"25.35190000", "B":"31.21000000",
  "a":"25.36520000", "A":"40.66000000"
}"""

PARTIAL_DEPTH = """{
  "lastUpdateId": 160,
  "bids": [ [ "0.0024", "10" ] ],
  "asks": [ [ "0.0026", "100" ] ]
}"""

DIFF_DEPTH = """{
  "e": "depthUpdate", "E": 1672515782136, "s": "BNBBTC", "U": 157, "u": 160,
  "b": [ [ "0.0024", "10" ] ],
  "a": [ [ "0.0026", "100" ] ]
}"""

# USD-M futures market streams
FUT_DEPTH = """{
  "e": "depthUpdate", "E": 123456789, "T": 123456788, "s": "BTCUSDT", "U": 157, "u": 160,
  "pu": 149, "b": [ [ "0.0024", "10" ] ], "a": [ [ "0.0026", "100" ] ]
}"""

FUT_PARTIAL_DEPTH = """{
  "e":"depthUpdate", "E":1591269996801, "T":1591269996646, "s":"BTCUSD_200626",
  "ps":"BTCUSD", "U":17276694, "u":17276701, "pu":17276678,
  "b":[ ["9523.0","5"], ["9522.8","8"], ["9522.6","2"], ["9522.4","1"], ["9522.0","5"] ],
  "a":[ ["9524.6","2"], ["9524.7","3"], ["9524.9","16"], ["9525.1","10"], ["9525.3","6"] ]
}"""

FUT_BOOK_TICKER = """{
  "e":"bookTicker", "u":400900217, "E": 1568014460893, "T": 1568014460891,
  "s":"BNBUSDT", "b":"25.35190000", "B":"31.21000000", "a":"25.36520000",
  "A":"40.66000000"
}"""

REST_SNAPSHOT = """{
  "lastUpdateId": 1027024,
  "bids": [ [ "4.00000000", "431.00000000" ] ],
  "asks": [ [ "4.00000200", "12.00000000" ] ]
}"""

FUT_REST_SNAPSHOT = """{
  "lastUpdateId": 1027024, "E": 1589436922972, "T": 1589436922959,
  "bids": [ [ "4.00000000", "431.00000000" ] ],
  "asks": [ [ "4.00000200", "12.00000000" ] ]
}"""

CONTROL_REPLIES = [
    '{"result": null, "id": 1}',
    '{"result": null, "id": 312}',
    '{"result": ["btcusdt@aggTrade"], "id": 3}',
    '{"result": true, "id": 2}',
]

ERROR_REPLIES = [
    '{"code": 0, "msg": "Unknown property","id": 5}',
    '{"code": 1, "msg": "Invalid value type: expected Boolean"}',
    '{"code": 2, "msg": "Invalid request: property name must be a string"}',
    '{"code":3,"msg":"Invalid JSON: expected value at line 2 column 3"}',
]

OTHER_EVENTS = [  # documented streams this decoder counts but does not tabulate
    '{"e": "24hrMiniTicker", "E": 1672515782136, "s": "BNBBTC", "c": "0.0025", '
    '"o": "0.0010", "h": "0.0025", "l": "0.0010", "v": "10000", "q": "18"}',
    '{"e": "avgPrice", "E": 1693907033000, "s": "BTCUSDT", "i": "5m", '
    '"w": "25776.86000000", "T": 1693907032213}',
]


def levels(pairs):
    return np.array([[fx(p), fx(q)] for p, q, *_ in pairs], dtype=np.int64).reshape(-1, 2)


def test_trade_doc_example():
    ref = json.loads(TRADE)
    rec = decode(TRADE)
    assert rec == Trade(
        ref["E"] * MS, ref["T"] * MS, ref["s"], ref["t"], fx(ref["p"]), fx(ref["q"]),
        ref["m"], ref["b"], ref["a"],
    )  # fmt: skip


def test_agg_trade_doc_example():
    ref = json.loads(AGG_TRADE)
    assert decode(AGG_TRADE) == AggTrade(
        ref["E"] * MS, ref["T"] * MS, ref["s"], ref["a"], fx(ref["p"]), fx(ref["q"]),
        ref["f"], ref["l"], ref["m"],
    )  # fmt: skip


def test_kline_doc_example():
    ref = json.loads(KLINE)
    k = ref["k"]
    assert decode(KLINE) == Kline(
        ref["E"] * MS, ref["s"], k["i"], k["t"] * MS, k["T"] * MS, k["f"], k["L"],
        fx(k["o"]), fx(k["h"]), fx(k["l"]), fx(k["c"]), fx(k["v"]), fx(k["q"]),
        fx(k["V"]), fx(k["Q"]), k["n"], k["x"],
    )  # fmt: skip


@pytest.mark.parametrize("payload", [BOOK_TICKER, FUT_BOOK_TICKER])
def test_book_ticker_doc_examples(payload):
    ref = json.loads(payload)
    assert decode(payload) == BookTicker(
        ref.get("E", 0) * MS, ref.get("T", 0) * MS, ref["s"], ref["u"], fx(ref["b"]),
        fx(ref["B"]), fx(ref["a"]), fx(ref["A"]),
    )  # fmt: skip


@pytest.mark.parametrize("payload", [DIFF_DEPTH, FUT_DEPTH, FUT_PARTIAL_DEPTH])
def test_depth_update_doc_examples(payload):
    ref = json.loads(payload)
    rec = decode(payload)
    assert isinstance(rec, DepthUpdate)
    assert rec.event_time == ref["E"] * MS
    assert rec.transaction_time == ref.get("T", 0) * MS
    assert rec.symbol == ref["s"]
    assert (rec.first_update_id, rec.final_update_id) == (ref["U"], ref["u"])
    assert rec.prev_final_update_id == ref.get("pu", -1)
    np.testing.assert_array_equal(rec.bids, levels(ref["b"]))
    np.testing.assert_array_equal(rec.asks, levels(ref["a"]))


@pytest.mark.parametrize("payload", [PARTIAL_DEPTH, REST_SNAPSHOT, FUT_REST_SNAPSHOT])
def test_snapshot_doc_examples(payload):
    ref = json.loads(payload)
    rec = decode(payload)
    assert isinstance(rec, DepthSnapshot)
    assert rec.last_update_id == ref["lastUpdateId"]
    assert rec.event_time == ref.get("E", 0) * MS
    assert rec.transaction_time == ref.get("T", 0) * MS
    assert rec.symbol == ""
    np.testing.assert_array_equal(rec.bids, levels(ref["bids"]))
    np.testing.assert_array_equal(rec.asks, levels(ref["asks"]))


def test_rest_snapshot_values_by_hand():
    rec = decode(REST_SNAPSHOT)
    assert rec.bids.tolist() == [[400000000, 43100000000]]
    assert rec.asks.tolist() == [[400000200, 1200000000]]


@pytest.mark.parametrize("payload", CONTROL_REPLIES)
def test_control_replies(payload):
    ref = json.loads(payload)
    assert decode(payload) == ControlReply(ref["result"], ref["id"])


@pytest.mark.parametrize("payload", ERROR_REPLIES)
def test_error_replies(payload):
    ref = json.loads(payload)
    assert decode(payload) == ErrorReply(ref["code"], ref["msg"], ref.get("id"))


def test_server_shutdown_stream_and_ws_api_shapes():
    assert decode('{"e": "serverShutdown", "E": 1770123456789}') == ServerShutdown(
        1770123456789 * MS
    )
    wrapped = '{"event": {"e": "serverShutdown", "E": 1770123456789}}'
    assert decode(wrapped) == ServerShutdown(1770123456789 * MS)


@pytest.mark.parametrize("payload", OTHER_EVENTS)
def test_other_events_are_unknown_not_errors(payload):
    rec = decode(payload)
    ref = json.loads(payload)
    assert rec == UnknownEvent(ref["e"], ref)


def test_combined_stream_envelope():
    wrapped = '{"stream":"bnbbtc@trade","data":' + TRADE + "}"
    assert decode(wrapped) == decode(TRADE)
    # data first, stream last
    wrapped = '{"data":' + DIFF_DEPTH + ',"stream":"bnbbtc@depth"}'
    rec = decode(wrapped)
    assert rec.final_update_id == 160 and rec.asks.tolist() == [[fx("0.0026"), fx("100")]]


def test_time_unit_microseconds():
    ref = json.loads(TRADE)
    rec = decode(TRADE, time_unit="us")
    assert rec.event_time == ref["E"] * US
    with pytest.raises(ValueError, match="time_unit"):
        decode(TRADE, time_unit="s")


# ---- decode_many tables ---------------------------------------------------------------

ALL_DOCS = [TRADE, AGG_TRADE, KLINE, BOOK_TICKER, PARTIAL_DEPTH, DIFF_DEPTH, FUT_DEPTH,
            FUT_PARTIAL_DEPTH, FUT_BOOK_TICKER, REST_SNAPSHOT, *CONTROL_REPLIES,
            *ERROR_REPLIES, *OTHER_EVENTS, '{"e":"serverShutdown","E":1}']  # fmt: skip


def test_decode_many_counts_every_kind():
    t = decode_many([m.encode() for m in ALL_DOCS])
    assert t.n_messages == len(ALL_DOCS)
    assert t.counts == {
        "trade": 1, "aggTrade": 1, "depthUpdate": 3, "depthSnapshot": 2, "bookTicker": 2,
        "kline": 1, "control": 4, "error": 4, "serverShutdown": 1, "unknown": 2,
        "invalid": 0,
    }  # fmt: skip
    assert sum(t.counts.values()) == len(ALL_DOCS)
    assert len(t["depth"]) == 2 + 2 + 10
    assert len(t["depth_snapshots"]) == 4
    # msg_index points back to the message
    for name in ("trades", "agg_trades", "klines", "book_ticker", "depth"):
        for idx in t[name]["msg_index"]:
            assert json.loads(ALL_DOCS[idx])  # a real message
    fut = t["depth"][t["depth"]["msg_index"] == ALL_DOCS.index(FUT_PARTIAL_DEPTH)]
    ref = json.loads(FUT_PARTIAL_DEPTH)
    exp = [(0, fx(p), fx(q)) for p, q in ref["b"]] + [(1, fx(p), fx(q)) for p, q in ref["a"]]
    assert (
        list(zip(fut["side"].tolist(), fut["price"].tolist(), fut["qty"].tolist(), strict=True))
        == exp
    )
    assert set(fut["prev_final_update_id"].tolist()) == {ref["pu"]}
    assert set(fut["symbol"].tolist()) == {b"BTCUSD_200626"}


def test_decode_many_ndjson_buffer_equals_list():
    compact = [json.dumps(json.loads(m)) for m in ALL_DOCS]
    buf = "\n".join(compact).encode()
    a = decode_many(buf)
    b = decode_many(compact)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert a.counts == b.counts
    # pretty-printed messages back to back also work on a buffer (whitespace separates)
    c = decode_many("\n\n".join(ALL_DOCS).encode())
    np.testing.assert_array_equal(c["depth"], a["depth"])


def test_decode_many_accepts_buffers_without_copy_types():
    buf = (TRADE + "\n" + BOOK_TICKER).encode()
    for data in (buf, bytearray(buf), memoryview(buf), np.frombuffer(buf, np.uint8), buf.decode()):
        t = decode_many(data)
        assert t.counts["trade"] == 1 and t.counts["bookTicker"] == 1


def test_decode_many_grows_tables():
    n = 5000
    msgs = [TRADE.replace("12345", str(i)) for i in range(n)] + [DIFF_DEPTH] * n
    t = decode_many("\n".join(msgs))
    assert t["trades"]["trade_id"].tolist() == list(range(n))
    assert len(t["depth"]) == 2 * n


def test_as_float_view():
    t = decode_many(BOOK_TICKER)
    assert t.as_float("book_ticker", "bid_price")[0] == pytest.approx(25.3519)
    with pytest.raises(KeyError):
        t.as_float("book_ticker", "update_id")


def test_error_names_message_and_offset():
    msgs = [TRADE, '{"e":"trade","E":1,"s":"X","t":1,"p":"1.2.3","q":"1","T":1,"m":true}']
    with pytest.raises(DecodeError) as ei:
        decode_many(msgs)
    assert ei.value.source == "message 1"
    assert ei.value.offset == msgs[1].index('"1.2.3"') + 4  # at the second '.'
    buf = "\n".join(msgs)
    with pytest.raises(DecodeError) as ei:
        decode_many(buf)
    assert ei.value.offset == buf.index('"1.2.3"') + 4


def test_missing_field_is_named():
    with pytest.raises(DecodeError, match="'p'"):
        decode('{"e":"trade","E":1,"s":"X","t":1,"q":"1","T":1,"m":true}')


def test_symbol_too_long():
    with pytest.raises(DecodeError, match="out of range"):
        decode(TRADE.replace('"BNBBTC"', '"' + "X" * 25 + '"'))
    assert decode(TRADE.replace('"BNBBTC"', '"' + "X" * 24 + '"')).symbol == "X" * 24


# ---- decimals -------------------------------------------------------------------------


def price_of(s: str) -> int:
    return decode(TRADE.replace('"p": "0.001"', f'"p": {s}')).price


@pytest.mark.parametrize(
    "text",
    ["0", "0.00000001", "92233720368.54775807", "43250.01000000", "0.1", "1.000000000000",
     "007.5", "-1.5", "123", "0.12345678", "99999999999.0"[1:]],
)  # fmt: skip
def test_decimal_exact(text):
    assert price_of(f'"{text}"') == fx(text)


@pytest.mark.parametrize("text", ["0", "0.5", "43250.01", "-3"])
def test_bare_json_number(text):
    assert price_of(text) == fx(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"92233720368.54775808"', "out of range"),
        ('"100000000000"', "out of range"),
        ('"0.123456789"', "9 decimals"),
        ('"1.0000000001"', "10 decimals"),
        ('"1e5"', "malformed"),
        ("1e5", "malformed"),
        ('"-"', "malformed"),
        ('""', "malformed"),
        ('"+1"', "malformed"),
        ('"1."', "malformed"),
        ('".5"', "malformed"),
        ('"1,5"', "malformed"),
        ('" 1"', "malformed"),
        ("1.", "malformed"),
    ],
)
def test_decimal_rejected(text, reason):
    with pytest.raises(DecodeError, match=reason):
        price_of(text)


@given(
    st.integers(0, 92233720367),
    st.integers(0, 99999999),
    st.integers(0, 8),
    st.integers(0, 4),
)
def test_decimal_roundtrip(ip, frac, ndec, trailing):
    frac_s = f"{frac:08d}"[:ndec]
    text = f"{ip}.{frac_s}{'0' * trailing}" if ndec or trailing else str(ip)
    if text.endswith("."):
        text += "0"
    assert price_of(f'"{text}"') == fx(text)


# ---- randomized messages against json + Decimal ----------------------------------------

WS = st.sampled_from(["", " ", "\n", "\t", "  \r\n ", " \n\t "])
decimals = st.builds(
    lambda ip, fr, nd: f"{ip}.{fr:08d}"[: len(str(ip)) + 1 + nd] if nd else str(ip),
    st.integers(0, 10**9),
    st.integers(0, 10**8 - 1),
    st.integers(0, 8),
)
symbols = st.text(
    alphabet=st.sampled_from(list('ABCXYZ019_-/"\\') + ["é", "€", "\n", "\u2028", "𝔘"]),
    min_size=1,
    max_size=6,
)
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=5),
    st.floats(allow_nan=False, allow_infinity=False),
)  # fmt: skip
junk = st.recursive(
    json_leaf,
    lambda c: st.one_of(
        st.lists(c, max_size=3), st.dictionaries(st.text(max_size=3), c, max_size=3)
    ),
    max_leaves=8,
)


def dump(obj, data):
    """Serialize with random whitespace and randomly escaped strings."""
    if isinstance(obj, dict):
        items = [
            dump(k, data) + data.draw(WS) + ":" + data.draw(WS) + dump(v, data)
            for k, v in obj.items()
        ]
        sep = data.draw(WS) + "," + data.draw(WS)
        return "{" + data.draw(WS) + sep.join(items) + data.draw(WS) + "}"
    if isinstance(obj, list):
        sep = data.draw(WS) + "," + data.draw(WS)
        return "[" + data.draw(WS) + sep.join(dump(v, data) for v in obj) + data.draw(WS) + "]"
    if isinstance(obj, str):
        s = json.dumps(obj, ensure_ascii=data.draw(st.booleans()))
        if data.draw(st.booleans()):
            s = s.replace("/", "\\/")
        return s
    return json.dumps(obj)


def shuffled(d: dict, data) -> dict:
    keys = data.draw(st.permutations(list(d)))
    return {k: d[k] for k in keys}


def with_junk(d: dict, data) -> dict:
    extra = data.draw(st.dictionaries(st.sampled_from(["x", "zz", "M", "ps", "nq", "Z"]), junk,
                                      max_size=3))  # fmt: skip
    return {**extra, **d}


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_trades(data):
    sym = data.draw(symbols)
    ref = {
        "e": "trade", "E": data.draw(st.integers(0, 2**42)), "s": sym,
        "t": data.draw(st.integers(0, 2**62)), "p": data.draw(decimals),
        "q": data.draw(decimals), "T": data.draw(st.integers(0, 2**42)),
        "m": data.draw(st.booleans()),
    }  # fmt: skip
    if data.draw(st.booleans()):
        ref["b"], ref["a"] = data.draw(st.integers(0, 2**60)), data.draw(st.integers(0, 2**60))
    msg = dump(shuffled(with_junk(ref, data), data), data)
    assert json.loads(msg)["s"] == sym
    rec = decode(msg)
    assert rec == Trade(
        ref["E"] * MS, ref["T"] * MS, sym, ref["t"], fx(ref["p"]), fx(ref["q"]), ref["m"],
        ref.get("b", -1), ref.get("a", -1),
    )  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_depth(data):
    lv = st.lists(st.tuples(decimals, decimals), max_size=6)
    ref = {
        "e": "depthUpdate", "E": data.draw(st.integers(0, 2**42)), "s": data.draw(symbols),
        "U": data.draw(st.integers(0, 2**60)), "u": data.draw(st.integers(0, 2**60)),
        "b": [list(x) for x in data.draw(lv)], "a": [list(x) for x in data.draw(lv)],
    }  # fmt: skip
    if data.draw(st.booleans()):
        ref["T"], ref["pu"] = data.draw(st.integers(0, 2**42)), data.draw(st.integers(-1, 2**60))
    msg = dump(shuffled(with_junk(ref, data), data), data)
    if data.draw(st.booleans()):
        msg = dump({"stream": "x@depth"}, data)[:-1] + ',"data":' + msg + "}"
    t = decode_many([msg])
    rows = t["depth"]
    exp = [(0, fx(p), fx(q)) for p, q in ref["b"]] + [(1, fx(p), fx(q)) for p, q in ref["a"]]
    cols = (rows["side"].tolist(), rows["price"].tolist(), rows["qty"].tolist())
    got = sorted(zip(*cols, strict=True), key=lambda r: r[0])
    assert got == exp
    assert t.counts["depthUpdate"] == 1
    for r in rows:
        assert r["event_time"] == ref["E"] * MS
        assert r["transaction_time"] == ref.get("T", 0) * MS
        assert r["first_update_id"] == ref["U"] and r["final_update_id"] == ref["u"]
        assert r["prev_final_update_id"] == ref.get("pu", -1)
        assert r["symbol"] == ref["s"].encode()


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_random_book_ticker(data):
    ref = {
        "u": data.draw(st.integers(0, 2**62)), "s": data.draw(symbols),
        "b": data.draw(decimals), "B": data.draw(decimals), "a": data.draw(decimals),
        "A": data.draw(decimals),
    }  # fmt: skip
    msg = dump(shuffled(with_junk(ref, data), data), data)
    assert decode(msg) == BookTicker(
        0, 0, ref["s"], ref["u"], fx(ref["b"]), fx(ref["B"]), fx(ref["a"]), fx(ref["A"])
    )


@pytest.mark.parametrize(
    "sym",
    ['"\\u0042TC"', '"\\ud835\\udd18X"', '"A\\"B"', '"A\\\\B"', '"A\\/B"', '"\\b\\f\\n\\r\\t"'],
)
def test_symbol_escapes(sym):
    msg = TRADE.replace('"BNBBTC"', sym)
    assert decode(msg).symbol == json.loads(sym)


@pytest.mark.parametrize("sym", ['"\\ud835"', '"\\udd18"', '"\\ud835\\u0041"', '"\\u12"', '"\\x"'])
def test_bad_escapes(sym):
    with pytest.raises(DecodeError):
        decode(TRADE.replace('"BNBBTC"', sym))


@pytest.mark.parametrize(
    "msg",
    ["", "   ", "[]", "{", '{"e":"trade"', '{"e":}', '{"a" 1}', '{"x":[1,2}', '{"x":tru}',
     '{"x":"a\x01"}', '{"x":1}}', '{"x":01.}', '{"e":"trade",}', "null", '{"u":-01}',
     '{"x":00}', '{"x":-0.5e01,"y":012}'],
)  # fmt: skip
def test_malformed(msg):
    with pytest.raises(DecodeError):
        decode_many([msg])


def test_nesting_limit():
    deep = '{"x":' + "[" * 100 + "]" * 100 + ',"result":null,"id":1}'
    with pytest.raises(DecodeError, match="nesting"):
        decode(deep)
    ok = '{"x":' + "[" * 30 + "]" * 30 + ',"result":null,"id":1}'
    assert decode(ok) == ControlReply(None, 1)


# ---- corpus generator (hftcore.sim.binance), checked with json + Decimal --------------


def test_corpus_reproducible_and_seeded():
    from hftcore.sim.binance import generate_corpus, generate_sbe_corpus

    assert generate_corpus(300, seed=1) == generate_corpus(300, seed=1)
    assert generate_corpus(300, seed=1) != generate_corpus(300, seed=2)
    assert generate_sbe_corpus(300, seed=1) == generate_sbe_corpus(300, seed=1)


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_corpus_shape_and_update_ids(market):
    from hftcore.sim.binance import generate_messages

    msgs = generate_messages(4000, seed=7, symbols=("BTCUSDT", "ETHUSDT"), market=market)
    objs = [json.loads(m) for m in msgs]
    kinds = [o.get("e", "bookTicker") for o in objs]
    n = len(objs)
    assert abs(kinds.count("depthUpdate") / n - 0.5) < 0.04
    assert abs(kinds.count("trade" if market == "spot" else "aggTrade") / n - 0.3) < 0.04
    assert abs(kinds.count("bookTicker") / n - 0.2) < 0.04
    last_u = {}
    for o in objs:
        if o.get("e") != "depthUpdate":
            continue
        assert 1 <= len(o["b"]) <= 20 and 1 <= len(o["a"]) <= 20
        if o["s"] in last_u:
            assert o["U"] == last_u[o["s"]] + 1
            if market == "usdm":
                assert o["pu"] == last_u[o["s"]]
        assert o["u"] >= o["U"]
        last_u[o["s"]] = o["u"]
        bids = [fx(p) for p, _ in o["b"]]
        asks = [fx(p) for p, _ in o["a"]]
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
        # Levels set (not removed) never cross; a removed bid may become an ask.
        set_b = [fx(p) for p, q in o["b"] if fx(q)]
        set_a = [fx(p) for p, q in o["a"] if fx(q)]
        assert not (set_b and set_a) or max(set_b) < min(set_a)
    t = decode_many(msgs)
    assert t.counts["depthUpdate"] == kinds.count("depthUpdate")
    assert len(t["depth"]) == sum(len(o["b"]) + len(o["a"]) for o in objs if "b" in o and "U" in o)


def test_corpus_json_values_match_reference():
    from hftcore.sim.binance import generate_messages

    msgs = generate_messages(1500, seed=8)
    t = decode_many(msgs)
    objs = [json.loads(m) for m in msgs]
    trades = [o for o in objs if o.get("e") == "trade"]
    assert t["trades"]["price"].tolist() == [fx(o["p"]) for o in trades]
    assert t["trades"]["qty"].tolist() == [fx(o["q"]) for o in trades]
    tickers = [o for o in objs if "e" not in o]
    assert t["book_ticker"]["ask_qty"].tolist() == [fx(o["A"]) for o in tickers]
    levels = [fx(q) for o in objs if o.get("e") == "depthUpdate" for _, q in o["b"] + o["a"]]
    assert t["depth"]["qty"].tolist() == levels


def test_sbe_corpus_decodes_like_json_corpus():
    from hftcore.binance import decode_many_sbe
    from hftcore.sim.binance import generate_messages, generate_sbe_messages

    j = decode_many(generate_messages(2000, seed=9))
    s = decode_many_sbe(generate_sbe_messages(2000, seed=9))
    assert j.counts == s.counts
    for table, cols in [
        ("depth", ("side", "price", "qty", "first_update_id", "final_update_id", "symbol")),
        ("trades", ("trade_id", "price", "qty", "buyer_is_maker", "symbol")),
        ("book_ticker", ("update_id", "bid_price", "bid_qty", "ask_price", "ask_qty")),
    ]:
        for c in cols:
            np.testing.assert_array_equal(j[table][c], s[table][c], err_msg=f"{table}.{c}")
    # SBE times are µs, JSON ms: the same instant to the millisecond
    np.testing.assert_array_equal(j["depth"]["event_time"], s["depth"]["event_time"] // MS * MS)


def test_errors_skip_counts_and_resumes():
    good = [TRADE.replace("\n", ""), BOOK_TICKER.replace("\n", "")]
    bad = '{"e":"trade","p":"1e5"}'
    lines = [good[0], bad, good[1], "{oops", good[0]]
    for data in ("\n".join(lines), lines):
        t = decode_many(data, errors="skip")
        assert t.n_messages == 5
        assert t.counts["invalid"] == 2 and t.counts["trade"] == 2
        assert t.kinds.tolist()[1] == 0 and t.kinds.tolist()[3] == 0
        assert [e.source for e in t.errors] == ["message 1", "message 3"]
        assert t["trades"]["msg_index"].tolist() == [0, 4]
    with pytest.raises(ValueError, match="errors"):
        decode_many(lines, errors="ignore")


@pytest.mark.parametrize(
    "text",
    ["1234567.12345678", "12345678.12345678", "0.00000001", "00.50000000", "1.1234567",
     "1.123456780", "5", "92233720368.54775807"],
)  # fmt: skip
def test_trade_number_shapes_match_decimal(text):
    # The compact 8-decimal fast path and the general parser agree with Decimal.
    msg = json.dumps({"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": text, "q": text,
                      "T": 1, "m": True}, separators=(",", ":"))  # fmt: skip
    t = decode(msg)
    assert t.price == t.qty == int(Decimal(text) * 10**8)
    assert decode_many([msg])["trades"]["price"][0] == int(Decimal(text) * 10**8)


@pytest.mark.parametrize("text", ["1.123456789", "1.1234567x", "1.", ".5", "1.12345678.", "+1"])
def test_trade_number_bad_shapes_raise(text):
    msg = json.dumps({"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": text, "q": "1", "T": 1,
                      "m": True}, separators=(",", ":"))  # fmt: skip
    with pytest.raises(DecodeError):
        decode(msg)
