"""Every fuzz target, its seed inputs, and the targets with known findings.

Imported by ``run.py`` (atheris), ``make_corpus.py`` (seed corpora on disk) and
``tests/test_fuzz_targets.py`` (the targets without atheris). Seeds are made by the
project's own encoders and simulators, so they are valid inputs the fuzzer mutates.
"""

from __future__ import annotations

import gzip
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

#: Targets that find a known bug today: target -> the issue 9 item(s) it reproduces. The
#: CI smoke run and the pytest skip them; remove a line once its bug is fixed.
KNOWN_FINDINGS: dict[str, str] = {}

#: Hand-made seeds committed in fuzz/seeds/<group>/ (the rest is generated).
SEED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


#: The target modules beside this file: every ``*_targets.py`` (each has a ``TARGETS``
#: dict, name -> function), found by name so a new one needs no edit here.
MODULES = tuple(
    sorted(f for f in os.listdir(os.path.dirname(os.path.abspath(__file__)))
           if f.endswith("_targets.py"))
)  # fmt: skip


def _module(filename: str):
    import importlib

    return importlib.import_module(filename[: -len(".py")])


def all_targets() -> dict:
    """name -> target function (imports hftcore: call after atheris instruments it)."""
    return {name: fn for mod in MODULES for name, fn in _module(mod).TARGETS.items()}


# ---------------------------------------------------------------------------- seeds


def _itch_streams(small: bool) -> list[bytes]:
    import numpy as np

    from hftcore import itch
    from hftcore.sim import itch as simitch

    day = simitch.generate(messages=200 if small else 3000, symbols=4, seed=7)
    one_of_each = b"".join(itch.encode(m.type) for m in itch.MESSAGES)
    book = (
        itch.encode("R", stock_locate=1, stock="AAPL")
        + itch.encode("A", stock_locate=1, order_ref=7, side="B", shares=100, price=1_892_500,
                      timestamp=34_200_000_000_000)
        + itch.encode("F", stock_locate=1, order_ref=8, side="S", shares=50, price=1_893_000,
                      timestamp=34_200_000_000_001, attribution="MPID")
        + itch.encode("E", stock_locate=1, order_ref=7, executed_shares=40, match_number=1)
        + itch.encode("C", stock_locate=1, order_ref=8, executed_shares=10, printable="Y",
                      execution_price=1_893_000)
        + itch.encode("X", stock_locate=1, order_ref=7, cancelled_shares=10)
        + itch.encode("U", stock_locate=1, original_order_ref=7, new_order_ref=9, shares=30,
                      price=1_892_600)
        + itch.encode("D", stock_locate=1, order_ref=9)
        + itch.encode("H", stock_locate=1, stock="AAPL", trading_state="H")
    )  # fmt: skip
    # Re-encoding a decoded day checks the encoder round trip is a valid stream too.
    tables = itch.decode(day[:4000])
    again = itch.encode_stream({t: a for t, a in tables.items() if len(a)})
    eos = b"\x00\x00"
    unknown = b"\x00\x03Z\x01\x02"
    seeds = [day, book, one_of_each, again, book + eos, book + eos + b"junk", unknown + book]
    seeds.append(bytes(np.frombuffer(book, np.uint8)[: len(book) - 5]))  # cut in a message
    return seeds


def _until_prefixed(streams: list[bytes]) -> list[bytes]:
    out = []
    for s in streams[:4]:
        for until in (0, 34_200_000_000_000, 2**47):
            out.append(until.to_bytes(8, "big", signed=True) + s)
    return out


def _json_messages(small: bool) -> list[bytes]:
    from hftcore.sim import binance as sim

    n = 40 if small else 400
    msgs = sim.generate_messages(n, seed=3) + sim.generate_messages(n // 2, seed=4, market="usdm")
    msgs += [
        b'{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,'
        b'"u":2,"b":[["1.5","2"]],"a":[]}}',
        b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}',
        b'{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}',
        b'{"lastUpdateId":160,"E":5,"T":4,"bids":[],"asks":[]}',
        b'{"e":"kline","E":1,"s":"X","k":{"t":1,"T":2,"s":"X","i":"1m","f":1,"L":2,"o":"1",'
        b'"c":"2","h":"3","l":"0.5","v":"9","n":3,"x":true,"q":"1","V":"1","Q":"1","B":"0"}}',
        b'{"e":"aggTrade","E":1,"s":"X","a":5,"p":"1.0","q":"2.0","f":1,"l":2,"T":1,"m":true}',
        b'{"result":null,"id":1}',
        b'{"code":2,"msg":"Invalid request","id":3}',
        b'{"e":"serverShutdown","E":1}',
        b'{"e":"24hrTicker","E":1,"s":"X","p":"1"}',
        b'{"event":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[],"a":[]}}',
    ]
    return msgs


def _sbe_messages(small: bool) -> list[bytes]:
    from hftcore.binance import sbe_encode
    from hftcore.sim import binance as sim

    msgs = sim.generate_sbe_messages(30 if small else 300, seed=5)
    msgs.append(sbe_encode.encode_depth_snapshot(1, 100, "BTCUSDT", [(10**9, 10**8)],
                                                 [(11 * 10**8, 10**8)]))  # fmt: skip
    msgs.append(sbe_encode.encode_depth_diff(1, 5, 6, "ETHUSDT", [], [], -2, -3))
    msgs.append(sbe_encode.encode_trades(1, 2, "X", [(1, 10**8, 10**8, True)] * 3, -4, -5))
    return msgs


def _depth_only(msgs: list[bytes]) -> list[bytes]:
    return [m for m in msgs if b"depthUpdate" in m or b"lastUpdateId" in m]


def _sbe_depth_only(msgs: list[bytes]) -> list[bytes]:
    from hftcore.binance.schema import DEPTH_DIFF_STREAM_EVENT, DEPTH_SNAPSHOT_STREAM_EVENT

    ids = {DEPTH_DIFF_STREAM_EVENT, DEPTH_SNAPSHOT_STREAM_EVENT}
    return [m for m in msgs if int.from_bytes(m[2:4], "little") in ids]


def _sync_streams(small: bool) -> list[bytes]:
    """Combined-stream lines continuing the targets' live books (update id 101)."""
    lines = []
    for sym in ("BTCUSDT", "ETHUSDT", "BNBUSDT"):
        for u in (102, 103, 110):
            lines.append(f'{{"e":"depthUpdate","E":2,"s":"{sym}","U":{u},"u":{u},"pu":{u - 1},'
                         f'"b":[["10.5","1.0"]],"a":[["11.0","0"]]}}'.encode())  # fmt: skip
    lines.append(b'{"stream":"ethusdt@depth","data":{"e":"depthUpdate","E":2,"s":"ETHUSDT",'
                 b'"U":102,"u":102,"pu":101,"b":[["9","1"]],"a":[]}}')  # fmt: skip
    return [b"\n".join(lines), b"\n".join(lines[::2]), lines[0], lines[-1]]


def _files(streams: list[bytes]) -> list[bytes]:
    """File targets write the input plain and gzipped themselves."""
    return streams


def _raw_files(streams: list[bytes]) -> list[bytes]:
    out = []
    for s in streams[:4]:
        gz = gzip.compress(s, 1)
        out += [gz, gz + gzip.compress(b"", 1), gz + b"\x1f\x8b junk", s]
    return out


def _capture_files(small: bool, records_only: bool) -> list[bytes]:
    """Captures written by CaptureWriter: JSON text, SBE binary, empty and 0-byte records,
    a torn tail, a corrupt record inside (``records_only``: without the file header)."""
    import tempfile

    from hftcore.feed.capture import CaptureWriter

    msgs = _json_messages(True)[: 20 if small else 60]
    sbe = _sbe_messages(True)[:5]
    out = []
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "seed.cap")
        for payloads in (msgs, sbe, [b"", b"x", b"12345678"], []):
            with CaptureWriter(path, metadata={"url": "wss://x/ws"}) as w:
                for i, m in enumerate(payloads):
                    w.append(m, 1 + i % 2, (i, i * 2, 0))
            with open(path, "rb") as f:
                out.append(f.read())
    whole = out[0]
    start = int.from_bytes(whole[12:16], "little")
    corrupt = bytearray(whole)
    corrupt[start + 60] ^= 1
    out += [whole[:-5], bytes(corrupt)]
    if records_only:
        out = [s[int.from_bytes(s[12:16], "little") :] for s in out]
    return out


def seeds(name: str, small: bool = False) -> list[bytes]:
    """Seed inputs of target ``name`` (``small``: a quicker set for the tests)."""
    group = name.split("_", 1)[0]
    if group == "capture":
        out = _capture_files(small, records_only=name == "capture_records")
    elif group == "wire":
        import wire_targets

        out = wire_targets.seeds(name, small)
    elif group in ("net", "latency"):
        # Modules whose seeds() come with them: a dict per target, or one list for all.
        seeds_of = _module(f"{group}_targets.py").seeds(small)
        out = seeds_of[name] if isinstance(seeds_of, dict) else seeds_of
    elif group == "itch":
        streams = _itch_streams(small)
        if name == "itch_book_apply_until":
            out = _until_prefixed(streams)
        elif name == "itch_files_raw":
            out = _raw_files(streams)
        else:
            out = streams
    else:
        json_msgs = _json_messages(small)
        ndjson = [b"\n".join(json_msgs), b"\n".join(json_msgs[:5]) + b"\n"]
        sbe = _sbe_messages(small)
        by_target = {
            "binance_decode": json_msgs,
            "binance_decode_many": ndjson + json_msgs[:10],
            "binance_decode_many_skip": ndjson + json_msgs[:10],
            "binance_decode_many_list": ndjson,
            "binance_decode_sbe": sbe,
            "binance_decode_many_sbe": [b"".join(sbe), b"".join(sbe[:3])] + sbe[:5],
            "binance_apply_depth_json": _depth_only(json_msgs),
            "binance_apply_depth_json_after": _depth_only(json_msgs),
            "binance_apply_depth_sbe": _sbe_depth_only(sbe),
            "binance_apply_depth_json_many": [b"\n".join(_depth_only(json_msgs))]
            + _depth_only(json_msgs)[:5],
            "binance_apply_depth_sbe_many": [b"".join(_sbe_depth_only(sbe))],
            "binance_book_sync": _sync_streams(small),
            "binance_files": ndjson,
            "binance_files_raw": _raw_files(ndjson),
        }
        out = by_target[name]
    group_dir = os.path.join(SEED_DIR, group)
    if os.path.isdir(group_dir):
        for fn in sorted(os.listdir(group_dir)):
            if fn.startswith(name + "."):
                with open(os.path.join(group_dir, fn), "rb") as f:
                    out.append(f.read())
    return out
