"""Issue 9's Binance findings, each from the issue's input (as bytes), and the rule they
broke: every public entry point returns correct results or raises DecodeError naming
the offset; output bounded by the input; value types never depend on the input; one
symbol's message never touches another symbol's book; duplicate keys rejected.
"""

import numpy as np
import pytest

from hftcore import binance
from hftcore.binance.records import ControlReply, DepthSnapshot, DepthUpdate, ErrorReply
from hftcore.book import L2Book
from hftcore.errors import DecodeError

E6 = 1_000_000  # ns per ms
DIFF_EMPTY = b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}'


def book_state(book):
    bids, asks = book.depth()
    return (bids.tolist(), asks.tolist())


# ---- items 1, 2: the header of a depth message with no levels --------------------------


def test_event_envelope_without_levels():
    rec = binance.decode(b'{"event":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}}')
    assert isinstance(rec, DepthUpdate)
    assert (rec.event_time, rec.symbol, rec.first_update_id, rec.final_update_id) == (
        E6,
        "X",
        1,
        2,
    )
    assert rec.bids.shape == rec.asks.shape == (0, 2)


def test_data_envelope_without_levels_as_with():
    raw = b'{"stream":"x@depth","data":{"e":"depthUpdate","E":5,"T":6,"s":"X","U":1,"u":2,"pu":0,'
    empty = binance.decode(raw + b'"b":[],"a":[]}}')
    full = binance.decode(raw + b'"b":[["1","2"]],"a":[]}}')
    assert tuple(empty)[:6] == tuple(full)[:6] == (5 * E6, 6 * E6, "X", 1, 2, 0)


@pytest.mark.parametrize(
    "t",
    [b"{}", b"[0]", b"[" + b"0," * 50 + b"0]", b'"' + b"x" * 100 + b'"', b"null", b"true"],
)
def test_optional_time_of_another_type_is_absent(t):
    """A "T" that is not an integer is not a transaction time (typed fields take only
    their JSON type): 0, an int, whatever the value."""
    msg = b'{"e":"depthUpdate","E":1,"T":' + t + b',"s":"X","U":1,"u":2,"b":[],"a":[]}'
    rec = binance.decode(msg)
    assert type(rec.transaction_time) is int and rec.transaction_time == 0
    assert type(rec.event_time) is int


def test_snapshot_without_levels():
    rec = binance.decode(b'{"lastUpdateId":7,"E":5,"T":4,"bids":[],"asks":[]}')
    assert rec[:4] == DepthSnapshot(7, 5 * E6, 4 * E6, "", None, None)[:4]
    assert type(rec.last_update_id) is int


@pytest.mark.parametrize(
    "msg, key, offset",
    [
        (b'{"e":"depthUpdate","E":1,"E":"x","s":"X","U":1,"u":2,"b":[],"a":[]}', "E", 25),
        (b'{"lastUpdateId":1,"lastUpdateId":"x","bids":[],"asks":[]}', "lastUpdateId", 18),
        (b'{"e":"depthUpdate","E":1,"s":"","U":1,"u":2,"b":[],"s":[]}', "s", 51),
        (b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[],"u":3}', "u", 59),
        (b'{"stream":"s","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]},'
         b'"data":{}}', "data", 81),
        (b'{"e":"kline","E":1,"s":"X","k":{"t":1,"T":2,"i":"1m","o":"1","c":"1","h":"1",'
         b'"l":"1","v":"1","o":"2"}}', "k.o", 93),
    ],
)  # fmt: skip
def test_duplicate_keys_rejected_on_every_path(msg, key, offset):
    """Issue 9 item 6: a key the decoder reads, twice in one message, is a DecodeError
    naming the key and the offset of its second occurrence, on every path."""
    for call in (
        lambda: binance.decode(msg),
        lambda: binance.decode_many(msg),
        lambda: binance.decode_many([msg]),
        lambda: binance.apply_depth_json(L2Book(4), msg),
        lambda: binance.apply_depth_json_after(L2Book(4), msg, 0),
        lambda: binance.apply_depth_json_many(L2Book(4), msg),
    ):
        with pytest.raises(DecodeError, match=f"duplicate key '{key}'") as info:
            call()
        assert info.value.offset == offset
        if b'"k"' in msg:
            break  # the appliers reject a kline as another kind first


def test_duplicate_keys_in_a_payload_of_parsed_json():
    with pytest.raises(DecodeError, match="duplicate key 'x'"):
        binance.decode(b'{"e":"24hrTicker","E":1,"x":1,"x":2}')
    with pytest.raises(DecodeError, match="duplicate key 'id'"):
        binance.decode(b'{"result":null,"id":1,"id":2}')


# ---- typed replies -----------------------------------------------------------------------


def test_error_reply_msg_must_be_a_string():
    with pytest.raises(DecodeError, match="'msg' has the wrong JSON type"):
        binance.decode(b'{"code":2,"msg":3}')
    with pytest.raises(DecodeError, match="'msg' has the wrong JSON type"):
        binance.decode_many(b'{"code":2,"msg":3}')


@pytest.mark.parametrize("code", [b'"2"', b"2.5", b"[2]", b"true", b"99999999999999999999"])
def test_error_reply_code_must_be_an_int64(code):
    with pytest.raises(DecodeError):
        binance.decode(b'{"code":' + code + b',"msg":"m"}')


@pytest.mark.parametrize("rid", [b"{}", b"[1]", b"1.5", b"true"])
def test_reply_id_int_str_or_null(rid):
    for msg in (b'{"result":null,"id":' + rid + b"}", b'{"code":1,"msg":"m","id":' + rid + b"}"):
        with pytest.raises(DecodeError, match="'id' has the wrong JSON type|malformed"):
            binance.decode(msg)


def test_reply_types():
    assert binance.decode(b'{"code":-2,"msg":"bad","id":"a"}') == ErrorReply(-2, "bad", "a")
    assert binance.decode(b'{"code":-2,"msg":"bad"}') == ErrorReply(-2, "bad", None)
    assert binance.decode(b'{"result":[1,{"a":2}],"id":null}') == ControlReply([1, {"a": 2}], None)
    rec = binance.decode(b'{"result":null,"id":7}')
    assert rec == ControlReply(None, 7) and type(rec.id) is int


def test_unknown_event_type_is_a_string():
    rec = binance.decode(b'{"e":5,"E":1}')
    assert rec.event_type == "" and rec.payload == {"e": 5, "E": 1}


def test_output_bounded_by_input():
    """The 166-byte message of item 2 made a 100,000,000-character string."""
    msg = b'{"e":"depthUpdate","E":1,"T":"' + b"x" * 100 + b'","s":"X","U":1,"u":2,"b":[],"a":[]}'
    rec = binance.decode(msg)
    assert rec.transaction_time == 0


# ---- item 3: apply_depth_json_many's header table ----------------------------------------


@pytest.mark.parametrize(
    "one, sep",
    [
        (b'{"e":"depthUpdate","E":1,"s":"","U":1,"u":2,"b":[],"a":[]}', b""),
        (b'{"e":"depthUpdate","E":1,"s":"","U":1,"u":2,"b":[],"a":[]}', b"\n"),
        (b'{"lastUpdateId":0,"bids":[]}', b""),  # the shortest depth message
        (b'{"lastUpdateId":0,"bids":[]}', b" "),
    ],
)
def test_apply_many_short_messages(one, sep):
    data = sep.join([one] * 1000)
    heads = binance.apply_depth_json_many(L2Book(10), data)
    assert len(heads) == 1000


def test_apply_many_short_non_depth_rejected_not_capacity():
    with pytest.raises(DecodeError, match="message 0") as info:
        binance.apply_depth_json_many(L2Book(10), b'{"U":1,"u":2}\n' * 100)
    assert "capacity" not in str(info.value)


# ---- item 4: errors="skip" counts a rejected message once --------------------------------

TRADE = b'{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1,"m":true}'
CONTROL = b'{"result":null,"id":1}'


def test_skip_list_trailing_junk_counted_once():
    t = binance.decode_many([TRADE + b"x", CONTROL], errors="skip")
    assert t.n_messages == 2
    assert t.kinds.tolist() == [0, binance.KINDS.index("control")]
    assert t.counts["invalid"] == 1 and t.counts["trade"] == 0 and t.counts["control"] == 1
    assert len(t["trades"]) == 0
    assert len(t.errors) == 1 and t.errors[0].offset == len(TRADE)


def test_skip_list_rows_only_of_decoded_messages():
    depth = b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","1"]],"a":[]}'
    t = binance.decode_many([depth + b"}", TRADE, depth], errors="skip")
    assert t.kinds.tolist() == [0, 1, 3]
    assert t["depth"]["msg_index"].tolist() == [2]
    assert t["trades"]["msg_index"].tolist() == [1]
    assert sum(t.counts.values()) == t.n_messages == 3


def test_skip_buffer_each_message_once():
    """A buffer: the junk after a message is the next (bad) message, counted once; the
    decoder resumes at the next line."""
    t = binance.decode_many(TRADE + b"x\n" + CONTROL, errors="skip")
    assert t.kinds.tolist() == [1, 0, binance.KINDS.index("control")]
    assert sum(t.counts.values()) == t.n_messages == 3
    assert t["trades"]["msg_index"].tolist() == [0]


# ---- item 5: one symbol's event never touches another symbol's book ----------------------

SNAPSHOT = b'{"lastUpdateId":100,"bids":[["10.0","1.0"]],"asks":[["11.0","1.0"]]}'


def live_sync(symbol="BTCUSDT", market="spot"):
    s = binance.BookSync(symbol, market, snapshot=lambda: SNAPSHOT, max_levels=16)
    pu = ',"pu":100' if market == "usdm" else ""
    s.feed(
        f'{{"e":"depthUpdate","E":1,"s":"{symbol}","U":100,"u":101{pu},'
        f'"b":[["10.0","2.0"]],"a":[]}}'
    )
    assert s.state == "live"
    return s


@pytest.mark.parametrize(
    "msg",
    [
        b'{"e":"depthUpdate","E":2,"s":"ETHUSDT","x":{"s":"BTCUSDT"},"U":102,"u":102,"pu":101,'
        b'"b":[["9","1"]],"a":[]}',
        b'{"e":"depthUpdate","E":2,"s":"ETHUSDT","U":102,"u":102,"pu":101,"b":[["9","1"]],'
        b'"a":[],"z":"\\"s\\":\\"BTCUSDT\\""}',
        b'{"stream":"ethusdt@depth","data":{"e":"depthUpdate","E":2,"s":"ETHUSDT","U":102,'
        b'"u":102,"pu":101,"b":[["9","1"]],"a":[]},"x":{"s":"BTCUSDT"}}',
    ],
)  # fmt: skip
@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_book_sync_other_symbol_untouched(msg, market):
    s = live_sync(market=market)
    before = (book_state(s.book), s.last_update_id, s.applied)
    with pytest.raises(ValueError, match="ETHUSDT"):
        s.feed(msg)
    assert (book_state(s.book), s.last_update_id, s.applied) == before


def test_book_sync_duplicated_symbol_rejected():
    s = live_sync()
    before = book_state(s.book)
    msg = (
        b'{"e":"depthUpdate","E":2,"s":"ETHUSDT","s":"BTCUSDT","U":102,"u":102,'
        b'"b":[["9","1"]],"a":[]}'
    )
    with pytest.raises(DecodeError, match="duplicate key 's'"):
        s.feed(msg)
    assert book_state(s.book) == before


def test_apply_after_symbol_verdict():
    book = L2Book(8)
    msg = b'{"e":"depthUpdate","E":2,"s":"ETHUSDT","U":102,"u":102,"b":[["9","1"]],"a":[]}'
    verdict, head = binance.apply_depth_json_after(book, msg, 101, symbol="BTCUSDT")
    assert verdict == binance.OTHER_SYMBOL and head.n_bids == 1
    assert book.bid_count == 0
    for sym in ("ETHUSDT", "ethusdt", None):
        book = L2Book(8)
        verdict, _ = binance.apply_depth_json_after(book, msg, 101, symbol=sym)
        assert verdict == binance.APPLIED and book.bid_count == 1
    # A symbol that only starts the same is another symbol.
    verdict, _ = binance.apply_depth_json_after(L2Book(8), msg, 101, symbol="ETHUSDTX")
    assert verdict == binance.OTHER_SYMBOL
    verdict, _ = binance.apply_depth_json_after(L2Book(8), msg, 101, symbol="ETHUSD")
    assert verdict == binance.OTHER_SYMBOL


def test_book_sync_both_paths_reject_missing_event_time():
    msg = b'{"e":"depthUpdate","s":"BTCUSDT","U":102,"u":102,"b":[["9","1"]],"a":[]}'
    for fast in (True, False):
        s = live_sync()
        s.fast_json = fast
        before = book_state(s.book)
        with pytest.raises(DecodeError, match="'E' missing"):
            s.feed(msg)
        assert book_state(s.book) == before


def test_book_sync_same_symbol_applies_on_both_paths():
    msg = b'{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":102,"u":102,"b":[["9","1"]],"a":[]}'
    books = []
    for fast in (True, False):
        s = live_sync()
        s.fast_json = fast
        assert s.feed(msg) == 1
        books.append(book_state(s.book))
    assert books[0] == books[1]
    assert np.array(books[0][0]).shape == (2, 2)  # 10 (snapshot, then 2.0) and 9
