"""LOBSTER message/orderbook files from a hand-built ITCH day (issue 11)."""

from __future__ import annotations

import gzip

import pytest

from hftcore.cli import main
from hftcore.export.lobster import write_lobster
from hftcore.itch import encode

H = 3600 * 10**9
T0 = 10 * H  # 10:00, inside LOBSTER's default 09:30-16:00 window


def _day() -> bytes:
    m = [
        encode("R", stock_locate=1, timestamp=1, stock="AAPL", round_lot_size=100),
        encode("R", stock_locate=2, timestamp=2, stock="MSFT", round_lot_size=100),
        encode("A", stock_locate=1, timestamp=T0 + 1, order_ref=10, side="B", shares=100,
               stock="AAPL", price=1_000_000),
        encode("A", stock_locate=2, timestamp=T0 + 2, order_ref=11, side="B", shares=5,
               stock="MSFT", price=2_000_000),  # another stock: no row
        encode("F", stock_locate=1, timestamp=T0 + 3, order_ref=12, side="S", shares=50,
               stock="AAPL", price=1_010_000, attribution="GSCO"),
        encode("A", stock_locate=1, timestamp=T0 + 4, order_ref=13, side="B", shares=30,
               stock="AAPL", price=1_000_000),
        encode("E", stock_locate=1, timestamp=T0 + 5, order_ref=10, executed_shares=40,
               match_number=1),
        encode("X", stock_locate=1, timestamp=T0 + 6, order_ref=12, cancelled_shares=20),
        encode("C", stock_locate=1, timestamp=T0 + 7, order_ref=12, executed_shares=10,
               match_number=2, printable="Y", execution_price=1_009_000),
        encode("U", stock_locate=1, timestamp=T0 + 8, original_order_ref=13,
               new_order_ref=14, shares=70, price=999_000),
        encode("D", stock_locate=1, timestamp=T0 + 9, order_ref=10),
        encode("P", stock_locate=1, timestamp=T0 + 10, order_ref=0, side="S", shares=7,
               stock="AAPL", price=1_005_000, match_number=3),
        encode("A", stock_locate=1, timestamp=1, order_ref=15, side="S", shares=1,
               stock="AAPL", price=1_020_000),  # before 09:30: applied, not written
    ]  # fmt: skip
    return b"".join(m)


# The expected files, written by hand from the messages above (levels=2).
E_ASK, E_BID = "9999999999,0", "-9999999999,0"
EXPECTED_MESSAGES = [
    f"{T0 // 10**9}.000000001,1,10,100,1000000,1",
    f"{T0 // 10**9}.000000003,1,12,50,1010000,-1",
    f"{T0 // 10**9}.000000004,1,13,30,1000000,1",
    f"{T0 // 10**9}.000000005,4,10,40,1000000,1",
    f"{T0 // 10**9}.000000006,2,12,20,1010000,-1",
    f"{T0 // 10**9}.000000007,4,12,10,1009000,-1",
    f"{T0 // 10**9}.000000008,3,13,30,1000000,1",
    f"{T0 // 10**9}.000000008,1,14,70,999000,1",
    f"{T0 // 10**9}.000000009,3,10,60,1000000,1",
    f"{T0 // 10**9}.000000010,5,0,7,1005000,-1",
]
EXPECTED_BOOK = [
    f"{E_ASK},1000000,100,{E_ASK},{E_BID}",
    f"1010000,50,1000000,100,{E_ASK},{E_BID}",
    f"1010000,50,1000000,130,{E_ASK},{E_BID}",
    f"1010000,50,1000000,90,{E_ASK},{E_BID}",
    f"1010000,30,1000000,90,{E_ASK},{E_BID}",
    f"1010000,20,1000000,90,{E_ASK},{E_BID}",
    f"1010000,20,1000000,60,{E_ASK},999000,70",
    f"1010000,20,1000000,60,{E_ASK},999000,70",
    f"1010000,20,999000,70,{E_ASK},{E_BID}",
    f"1010000,20,999000,70,{E_ASK},{E_BID}",
]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("chunk_bytes", [64, 1 << 20])
def test_lobster_files_equal_the_hand_written_ones(tmp_path, compress, chunk_bytes):
    day = _day()
    p = tmp_path / ("01302020.NASDAQ_ITCH50" + (".gz" if compress else ""))
    p.write_bytes(gzip.compress(day) if compress else day)
    res = write_lobster(p, ["AAPL"], tmp_path / "out", levels=2, chunk_bytes=chunk_bytes,
                        progress=False)  # fmt: skip
    r = res["AAPL"]
    assert r["message"].endswith("AAPL_2020-01-30_34200000_57600000_message_2.csv")
    assert r["orderbook"].endswith("AAPL_2020-01-30_34200000_57600000_orderbook_2.csv")
    with open(r["message"]) as f:
        assert f.read().splitlines() == EXPECTED_MESSAGES
    with open(r["orderbook"]) as f:
        assert f.read().splitlines() == EXPECTED_BOOK
    assert r["rows"] == len(EXPECTED_MESSAGES)
    assert not list((tmp_path / "out").glob(".*"))


def test_lobster_cli(tmp_path, capsys):
    p = tmp_path / "day.itch"
    p.write_bytes(_day())
    out = tmp_path / "lob"
    rc = main(["itch", "lobster", str(p), "--symbol", "AAPL", "--symbol", "MSFT",
               "--levels", "2", "--date", "2020-01-30", str(out)])  # fmt: skip
    assert rc == 0
    names = sorted(q.name for q in out.iterdir())
    assert names == [
        "AAPL_2020-01-30_34200000_57600000_message_2.csv",
        "AAPL_2020-01-30_34200000_57600000_orderbook_2.csv",
        "MSFT_2020-01-30_34200000_57600000_message_2.csv",
        "MSFT_2020-01-30_34200000_57600000_orderbook_2.csv",
    ]
    msft = (out / names[2]).read_text().splitlines()
    assert msft == [f"{T0 // 10**9}.000000002,1,11,5,2000000,1"]
    assert "AAPL: 10 rows" in capsys.readouterr().out


def test_truncated_day_is_an_error_and_leaves_no_files(tmp_path):
    from hftcore.errors import DecodeError

    p = tmp_path / "cut.itch"
    p.write_bytes(_day()[:-5])
    with pytest.raises(DecodeError, match="ends inside a message") as info:
        write_lobster(p, "AAPL", tmp_path / "out", levels=2, date="2020-01-30")
    assert info.value.source == str(p)
    assert list((tmp_path / "out").iterdir()) == []
