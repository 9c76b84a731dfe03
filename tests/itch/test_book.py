"""Hand-built cases for hftcore.itch.OrderBook, one behaviour at a time.

Messages are built with ``hftcore.itch.encode`` (tested on its own); expectations come
from the ITCH 5.0 specification's meaning of each message, worked out by hand.
"""

import gzip
import struct

import numpy as np
import pytest

from hftcore.errors import BookError, BookFull, DecodeError
from hftcore.itch import OrderBook, _book, encode, spec

T0 = 34_200_000_000_000  # 09:30:00 in ns since midnight


def R(loc, stock):
    return encode("R", stock_locate=loc, stock=stock, timestamp=T0)


def A(ref, side, shares, price, loc=1, ts=T0, mpid=None):
    f = dict(stock_locate=loc, timestamp=ts, order_ref=ref, side=side, shares=shares)
    f |= dict(stock="AAPL", price=price)
    if mpid:
        return encode("F", attribution=mpid, **f)
    return encode("A", **f)


def E(ref, n, match=1, loc=1, ts=T0):
    return encode("E", stock_locate=loc, timestamp=ts, order_ref=ref, executed_shares=n,
                  match_number=match)  # fmt: skip


def C(ref, n, price, match=1, printable="Y", loc=1, ts=T0):
    return encode("C", stock_locate=loc, timestamp=ts, order_ref=ref, executed_shares=n,
                  match_number=match, printable=printable, execution_price=price)  # fmt: skip


def X(ref, n, loc=1):
    return encode("X", stock_locate=loc, timestamp=T0, order_ref=ref, cancelled_shares=n)


def D(ref, loc=1):
    return encode("D", stock_locate=loc, timestamp=T0, order_ref=ref)


def U(ref, new_ref, shares, price, loc=1):
    return encode("U", stock_locate=loc, timestamp=T0, original_order_ref=ref,
                  new_order_ref=new_ref, shares=shares, price=price)  # fmt: skip


def book_of(*msgs, **kw):
    kw.setdefault("max_orders", 100)
    kw.setdefault("max_levels", 100)
    book = OrderBook(**kw)
    wire = R(1, "AAPL") + b"".join(msgs)
    assert book.apply(wire) == 1 + len(msgs)
    assert book.consumed == len(wire)
    return book


def rows(depth):
    return [(s.decode(), int(p), int(q), int(c)) for s, p, q, c in depth]


def test_field_offsets_match_the_spec():
    for (t, name), off in _book.FIELD_OFFSETS.items():
        msg = spec.BY_TYPE["A" if t == "*" else t]
        assert {f.name: f.offset for f in msg.all_fields}[name] == off, (t, name)


def test_adds_build_levels_best_first():
    book = book_of(
        A(1, "B", 100, 100_0000), A(2, "B", 200, 99_9900), A(3, "B", 50, 100_0000),
        A(4, "S", 300, 100_0100), A(5, "S", 10, 100_0300, mpid="GSCO"),
    )  # fmt: skip
    assert book.bbo("AAPL") == (100_0000, 150, 100_0100, 300)
    assert book.bbo(1) == book.bbo("AAPL")
    assert rows(book.depth("AAPL")) == [
        ("B", 100_0000, 150, 2), ("B", 99_9900, 200, 1),
        ("S", 100_0100, 300, 1), ("S", 100_0300, 10, 1),
    ]  # fmt: skip
    assert rows(book.depth("AAPL", levels=1)) == [("B", 100_0000, 150, 2), ("S", 100_0100, 300, 1)]
    assert book.live_orders == 5
    assert book.order(5) == (5, 1, "AAPL", "S", 100_0300, 10)
    assert book.order(99) is None
    assert book.symbols == {"AAPL": 1}


def test_empty_book_reads_zero():
    book = book_of()
    assert book.bbo("AAPL") == (0, 0, 0, 0)
    assert len(book.depth("AAPL")) == 0
    assert book.depth("AAPL").dtype.names == ("side", "price", "shares", "orders")


def test_partial_executions_then_delete():
    book = book_of(A(1, "B", 100, 50_0000), E(1, 30), E(1, 20), D(1))
    assert book.live_orders == 0
    assert book.bbo("AAPL") == (0, 0, 0, 0)
    book = book_of(A(1, "B", 100, 50_0000), E(1, 30), E(1, 20))
    assert book.order(1).shares == 50
    assert book.bbo("AAPL") == (50_0000, 50, 0, 0)
    assert book.stats()["anomalies"] == 0


def test_full_execution_removes_the_order():
    book = book_of(A(1, "S", 100, 50_0000), A(2, "S", 100, 50_0000), E(1, 100))
    assert book.order(1) is None
    assert rows(book.depth(1)) == [("S", 50_0000, 100, 1)]


def test_execution_with_price_records_the_execution_price():
    book = book_of(
        A(1, "B", 100, 50_0000), C(1, 40, 49_9900, match=77, printable="N"), executions=True
    )
    assert book.order(1).shares == 60
    assert book.order(1).price == 50_0000  # the order keeps its limit price
    ex = book.drain_executions()
    assert len(ex) == 1
    r = ex[0]
    assert (int(r["seq"]), int(r["order_ref"]), r["side"], int(r["price"])) == (2, 1, b"B", 49_9900)
    assert (int(r["shares"]), int(r["match_number"]), r["printable"]) == (40, 77, b"N")
    assert int(r["timestamp"]) == T0 and int(r["stock_locate"]) == 1


def test_execution_event_of_plain_e_uses_the_order_price():
    book = book_of(A(1, "S", 100, 50_0100), E(1, 100, match=5), executions=True)
    ex = book.drain_executions()
    assert [(int(r["price"]), int(r["shares"]), r["side"], r["printable"]) for r in ex] == [
        (50_0100, 100, b"S", b"Y")
    ]
    assert len(book.drain_executions()) == 0


def test_partial_cancel():
    book = book_of(A(1, "B", 100, 50_0000), X(1, 30))
    assert book.order(1).shares == 70
    assert book.bbo(1) == (50_0000, 70, 0, 0)


def test_replace_moves_price_and_loses_priority():
    book = book_of(
        A(1, "B", 100, 50_0000), A(2, "B", 200, 50_0000), A(3, "B", 300, 49_9900),
        U(1, 10, 150, 50_0000),  # same price, new size: to the back of the queue
        U(3, 11, 400, 50_0000),  # moves up to 50.00, behind 2 and 10
    )  # fmt: skip
    assert book.order(1) is None and book.order(3) is None
    q = book.orders_at("AAPL", "B", 50_0000)
    assert q["order_ref"].tolist() == [2, 10, 11]
    assert q["shares"].tolist() == [200, 150, 400]
    assert rows(book.depth(1)) == [("B", 50_0000, 750, 3)]
    assert book.order(11) == (11, 1, "AAPL", "B", 50_0000, 400)


def test_queue_position_after_orders_ahead_leave():
    book = book_of(
        A(1, "S", 100, 50_0000), A(2, "S", 200, 50_0000), A(3, "S", 300, 50_0000),
        A(4, "S", 400, 50_0000),
    )  # fmt: skip
    assert book.queue_position(4) == (3, 600)
    assert book.queue_position(1) == (0, 0)
    book.apply(E(1, 60) + D(2) + X(3, 100))
    assert book.queue_position(4) == (2, 240)
    assert book.queue_position(3) == (1, 40)
    book.apply(E(1, 40))
    assert book.queue_position(3) == (0, 0)
    assert book.queue_position(4).orders_ahead == 1
    assert book.queue_position(1) is None


def test_cross_and_broken_trades_do_not_touch_the_book():
    trade = encode("P", stock_locate=1, timestamp=T0, order_ref=0, side="B", shares=500,
                   stock="AAPL", price=50_0000, match_number=9)  # fmt: skip
    cross = encode("Q", stock_locate=1, timestamp=T0, shares=10_000, stock="AAPL",
                   cross_price=50_0000, match_number=10, cross_type="O")  # fmt: skip
    broken = encode("B", stock_locate=1, timestamp=T0, match_number=9)
    book = book_of(A(1, "B", 100, 49_0000), A(2, "S", 100, 51_0000), trade, cross, broken)
    assert rows(book.depth(1)) == [("B", 49_0000, 100, 1), ("S", 51_0000, 100, 1)]
    s = book.stats()
    assert (s["trades"], s["cross_trades"], s["broken_trades"]) == (1, 1, 1)


def test_trading_state_per_stock():
    halt = encode("H", stock_locate=1, timestamp=T0, stock="AAPL", trading_state="H",
                  reason="LUDP")  # fmt: skip
    op = encode("h", stock_locate=1, timestamp=T0, stock="AAPL", market_code="Q",
                halt_action="H")  # fmt: skip
    book = book_of(halt, op)
    assert book.trading_state("AAPL") == ("H", "H", "Q")
    book.apply(encode("H", stock_locate=1, stock="AAPL", trading_state="T"))
    assert book.trading_state(1).trading_state == "T"
    assert book.trading_state(2) == ("", "", "")


def test_book_full_names_the_capacity():
    book = OrderBook(max_orders=3, max_levels=100)
    wire = A(1, "B", 1, 100) + A(2, "B", 1, 100) + A(3, "B", 1, 100) + A(4, "B", 1, 100)
    with pytest.raises(BookFull, match=r"max_orders= \(now 3\)"):
        book.apply(wire)
    assert book.live_orders == 3
    assert book.consumed == 3 * 38  # stopped at the 4th message, not applied
    book.apply(D(1))  # room again
    assert book.apply(A(4, "B", 1, 100)) == 1
    assert book.orders_at(1, "B", 100)["order_ref"].tolist() == [2, 3, 4]


def test_book_full_on_price_levels():
    book = OrderBook(max_orders=100, max_levels=2)
    with pytest.raises(BookFull, match="max_levels"):
        book.apply(A(1, "B", 1, 100) + A(2, "B", 1, 200) + A(3, "B", 1, 300))
    assert book.live_orders == 2 and book.order(3) is None
    # A lone order's replace frees its level first, so it fits.
    assert book.apply(U(2, 8, 3, 500)) == 1
    assert rows(book.depth(1)) == [("B", 500, 3, 1), ("B", 100, 1, 1)]
    # A replace that needs a new level while none is free fails whole.
    book.apply(A(3, "B", 1, 100))
    with pytest.raises(BookFull, match="max_levels"):
        book.apply(U(1, 9, 5, 400))
    assert book.order(1) == (1, 1, "", "B", 100, 1)
    assert book.orders_at(1, "B", 100)["order_ref"].tolist() == [1, 3]


def test_unknown_order_anomalies_are_counted():
    book = book_of(E(5, 1), X(6, 1), D(7), U(8, 9, 1, 1), C(10, 1, 1), A(1, "B", 10, 100))
    s = book.stats()
    assert s["unknown_order"] == 5
    assert s["anomalies"] == 5
    assert book.live_orders == 1


def test_other_anomalies_are_counted_and_clamped():
    book = book_of(
        A(1, "B", 10, 100), A(1, "B", 20, 100),  # duplicate ref: ignored
        A(2, "S", 5, 90),                        # crosses the bid at 100
        E(2, 50),                                # overfill: order removed
        X(1, 99),                                # overcancel: order removed
    )  # fmt: skip
    s = book.stats()
    assert (s["duplicate_order"], s["crossed"], s["overfill"], s["overcancel"]) == (1, 1, 1, 1)
    assert book.live_orders == 0


def test_strict_mode_raises_at_the_offending_seq():
    book = OrderBook(max_orders=10, max_levels=10, strict=True)
    wire = R(1, "AAPL") + A(1, "B", 10, 100) + E(1, 5) + D(42) + D(1)
    with pytest.raises(BookError) as info:
        book.apply(wire)
    assert info.value.seq == 3
    assert "unknown order" in str(info.value) and "42" in str(info.value)
    assert book.order(1).shares == 5  # messages before it applied, D(42) not
    assert book.consumed == len(R(1, "AAPL") + A(1, "B", 10, 100) + E(1, 5))
    book2 = OrderBook(max_orders=10, max_levels=10, strict=True)
    with pytest.raises(BookError, match="crosses") as info:
        book2.apply(A(1, "B", 10, 100) + A(2, "S", 10, 100))
    assert info.value.seq == 1
    assert book2.live_orders == 1


def test_symbols_restriction_by_ticker_and_locate():
    wire = (
        R(1, "AAPL") + R(2, "MSFT") + R(3, "TSLA")
        + A(1, "B", 10, 100, loc=1) + A(2, "B", 20, 200, loc=2) + A(3, "B", 30, 300, loc=3)
        + E(2, 5, loc=2) + D(3, loc=3)
    )  # fmt: skip
    book = OrderBook(max_orders=10, max_levels=10, symbols=["MSFT", 1])
    assert book.apply(wire) == 8
    assert book.symbols == {"AAPL": 1, "MSFT": 2}
    assert book.bbo("MSFT") == (200, 15, 0, 0)
    assert book.bbo("AAPL") == (100, 10, 0, 0)
    assert book.bbo("TSLA") == (0, 0, 0, 0)
    assert book.live_orders == 2
    assert book.stats()["anomalies"] == 0  # D(3) of a skipped stock is not an anomaly


def test_bad_length_is_a_decode_error_with_offset():
    good = A(1, "B", 10, 100)
    bad = struct.pack(">H", 30) + b"E" + bytes(29)  # E is 31 bytes long
    book = OrderBook(max_orders=10, max_levels=10)
    with pytest.raises(DecodeError) as info:
        book.apply(good + bad)
    assert info.value.offset == len(good)
    assert "length 30" in str(info.value)
    assert book.live_orders == 1


def test_bad_side_is_a_decode_error():
    wire = bytearray(A(1, "B", 10, 100))
    wire[2 + 19] = ord("Z")
    with pytest.raises(DecodeError, match="out of range") as info:
        OrderBook(max_orders=10, max_levels=10).apply(bytes(wire))
    assert info.value.offset == 2 + 19


def test_unknown_types_are_skipped_and_counted():
    odd = struct.pack(">H", 5) + b"z" + bytes(4)
    book = OrderBook(max_orders=10, max_levels=10)
    assert book.apply(odd + A(1, "B", 10, 100)) == 2
    assert book.stats()["unknown_types"] == 1
    assert book.live_orders == 1 and book.seq == 2


def test_partial_message_is_left_for_the_next_call():
    wire = A(1, "B", 10, 100) + A(2, "S", 10, 200)
    book = OrderBook(max_orders=10, max_levels=10)
    assert book.apply(wire[:50]) == 1
    assert book.consumed == 38
    assert book.apply(wire[38:]) == 1
    assert book.live_orders == 2


def test_buffer_kinds_are_accepted_without_copy():
    wire = A(1, "B", 10, 100)
    for buf in (wire, bytearray(wire), memoryview(wire), np.frombuffer(wire, np.uint8)):
        book = OrderBook(max_orders=10, max_levels=10)
        assert book.apply(buf) == 1


def test_zero_length_ends_the_session():
    book = OrderBook(max_orders=10, max_levels=10)
    assert book.apply(A(1, "B", 10, 100) + b"\x00\x00" + A(2, "B", 10, 100)) == 1
    assert book.ended
    assert book.consumed == 40
    assert book.apply(A(3, "B", 1, 1)) == 0


def test_until_stops_before_later_messages():
    book = OrderBook(max_orders=10, max_levels=10)
    wire = A(1, "B", 10, 100, ts=T0) + A(2, "B", 10, 100, ts=T0 + 5) + A(3, "B", 1, 1, ts=T0 + 9)
    assert book.apply(wire, until=T0 + 5) == 2
    assert book.reached_until and book.consumed == 76
    assert book.timestamp == T0 + 5


def test_bbo_events_record_each_top_change():
    book = book_of(
        A(1, "B", 100, 50_0000), A(2, "B", 100, 49_0000),  # second add: top unchanged
        A(3, "S", 10, 51_0000), E(1, 100), bbo=True,
    )  # fmt: skip
    ev = book.drain_bbo()
    got = [(int(r["seq"]), int(r["bid_price"]), int(r["bid_shares"]), int(r["ask_price"]),
            int(r["ask_shares"])) for r in ev]  # fmt: skip
    assert got == [
        (1, 50_0000, 100, 0, 0),
        (3, 50_0000, 100, 51_0000, 10),
        (4, 49_0000, 100, 51_0000, 10),
    ]
    with pytest.raises(RuntimeError, match="bbo=True"):
        OrderBook(max_orders=1, max_levels=1).drain_bbo()


def test_event_tables_grow_instead_of_dropping():
    n = 10_000
    wire = b"".join(A(i, "B", 1, 100 + i) for i in range(1, n + 1))
    book = OrderBook(max_orders=n, max_levels=n, bbo=True)
    assert book.apply(wire) == n
    assert len(book.drain_bbo()) == n


def test_apply_file_plain_and_gzip(tmp_path):
    wire = R(1, "AAPL") + A(1, "B", 10, 100) + A(2, "S", 5, 200) + E(1, 4)
    for name, data in (("day.itch", wire), ("day.itch.gz", gzip.compress(wire))):
        p = tmp_path / name
        p.write_bytes(data)
        book = OrderBook(max_orders=10, max_levels=10)
        assert book.apply_file(p, chunk_bytes=7) == 4
        assert book.bbo("AAPL") == (100, 6, 200, 5)


def test_apply_file_truncated_tail_names_file_and_offset(tmp_path):
    wire = A(1, "B", 10, 100) + A(2, "S", 5, 200)
    p = tmp_path / "cut.itch"
    p.write_bytes(wire[:-3])
    with pytest.raises(DecodeError) as info:
        OrderBook(max_orders=10, max_levels=10).apply_file(p, chunk_bytes=16)
    assert info.value.offset == 38
    assert str(p) in str(info.value)
    bad = A(1, "B", 10, 100) + struct.pack(">H", 3) + b"A\x00\x00"
    p.write_bytes(bad)
    with pytest.raises(DecodeError) as info:
        OrderBook(max_orders=10, max_levels=10).apply_file(p, chunk_bytes=5)
    assert info.value.offset == 38


def test_constructor_validates_arguments():
    with pytest.raises(ValueError):
        OrderBook(max_orders=0)
    with pytest.raises(ValueError):
        OrderBook(max_orders=10, symbols=[70_000])
    with pytest.raises(TypeError):
        OrderBook(max_orders=10, symbols=[1.5])
    book = OrderBook(max_orders=10, max_levels=10)
    with pytest.raises(KeyError, match="ZZZZ"):
        book.bbo("ZZZZ")
    with pytest.raises(ValueError):
        book.orders_at(1, "X", 100)


# ---------------------------------------------------------------- command line


def _run_cli(argv):
    from hftcore.cli import main

    return main(argv)


def _day_file(tmp_path):
    wire = (
        R(1, "AAPL") + R(2, "MSFT")
        + A(1, "B", 100, 189_2500, ts=T0) + A(2, "S", 300, 189_2600, ts=T0 + 10)
        + A(3, "B", 200, 189_2400, loc=2, ts=T0 + 20)
        + A(4, "B", 50, 189_2500, ts=3_600_000_000_000 * 11)  # 11:00
    )  # fmt: skip
    p = tmp_path / "day.itch.gz"
    p.write_bytes(gzip.compress(wire))
    return p


def test_cli_book_ladder_at_a_time(tmp_path, capsys):
    p = _day_file(tmp_path)
    assert _run_cli(["itch", "book", str(p), "--symbol", "AAPL", "--at", "10:30"]) == 0
    out = capsys.readouterr().out
    assert "AAPL (stock_locate 1)" in out
    assert "189.2500" in out and "189.2600" in out
    bid_line = next(line for line in out.splitlines() if "189.2500" in line)
    assert bid_line.split()[2:] == ["100", "1"]  # the 11:00 add is not applied
    assert _run_cli(["itch", "book", str(p), "--symbol", "AAPL"]) == 0
    bid_line = next(line for line in capsys.readouterr().out.splitlines() if "189.2500" in line)
    assert bid_line.split()[2:] == ["150", "2"]


def test_cli_bbo_csv_and_npy(tmp_path):
    p = _day_file(tmp_path)
    out = tmp_path / "bbo.csv"
    assert _run_cli(["itch", "bbo", str(p), "--symbol", "AAPL", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("seq,timestamp,stock_locate,symbol,bid_price")
    assert lines[1:] == [
        f"2,{T0},1,AAPL,1892500,100,0,0",
        f"3,{T0 + 10},1,AAPL,1892500,100,1892600,300",
        f"5,{3_600_000_000_000 * 11},1,AAPL,1892500,150,1892600,300",
    ]
    npy = tmp_path / "bbo.npy"
    assert _run_cli(["itch", "bbo", str(p), "-o", str(npy)]) == 0
    table = np.load(npy)
    assert table["stock_locate"].tolist() == [1, 1, 2, 1]


def test_cli_time_of_day_parsing():
    from hftcore.cli.itch import parse_time_of_day

    assert parse_time_of_day("09:30") == 34_200_000_000_000
    assert parse_time_of_day("09:30:00.5") == 34_200_500_000_000
    for bad in ("9", "25:00", "10:61", "10:00:00.1234567890", "aa:bb"):
        with pytest.raises(Exception, match="time of day"):
            parse_time_of_day(bad)


# ---------------------------------------------------------------- issue 9, item 7


@pytest.mark.parametrize("until", [-1, 1 << 64, -(1 << 70)])
def test_apply_until_out_of_range_is_a_value_error(until):
    book = OrderBook()
    wire = A(1, "B", 100, 189_2500)
    with pytest.raises(ValueError, match="until"):
        book.apply(wire, until=until)
    assert book.apply(wire, until=(1 << 64) - 1) == 1  # the largest value is no limit


def test_apply_file_rejects_bad_until_and_chunk(tmp_path):
    p = tmp_path / "day.itch"
    p.write_bytes(A(1, "B", 100, 189_2500))
    with pytest.raises(ValueError, match="until"):
        OrderBook().apply_file(p, until=-5)
    with pytest.raises(ValueError, match="chunk_bytes"):
        OrderBook().apply_file(p, chunk_bytes=0)


def test_apply_file_small_gz_small_buffer_large_one_grows(tmp_path):
    # As the file readers: the buffer starts at FIRST_BUFFER and grows to chunk_bytes
    # only when the stream fills it; the book ends the same as from memory.
    import tracemalloc

    from hftcore._core.files import FIRST_BUFFER
    from hftcore.sim import itch as simitch

    small = tmp_path / "small.gz"
    small.write_bytes(gzip.compress(A(1, "B", 100, 189_2500)))
    tracemalloc.start()
    OrderBook().apply_file(small)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 16 * FIRST_BUFFER  # 64 MiB before
    day = simitch.generate(messages=100_000, symbols=20, seed=5)
    assert len(day) > 2 * FIRST_BUFFER  # the grow path runs
    p = tmp_path / "day.gz"
    p.write_bytes(gzip.compress(day))
    from_file, from_memory = OrderBook(), OrderBook()
    offsets = list(from_file.iter_file(p))
    from_memory.apply(day)
    assert offsets == [len(day)]  # one chunk of the default size, as before
    assert from_file.stats() == from_memory.stats()
