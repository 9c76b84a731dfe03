"""Fuzz targets of the Binance entry points: the JSON and SBE decoders, the depth
appliers, BookSync on a combined stream and the file readers. Each is ``fn(data: bytes)``;
see :mod:`_oracle` for the rule."""

from __future__ import annotations

import gzip
import logging
import os
import tempfile

import numpy as np

from hftcore import binance
from hftcore.binance import records
from hftcore.book import L2Book

try:
    from . import _oracle as o
except ImportError:  # run as a script from fuzz/
    import _oracle as o

logging.getLogger("hftcore.binance.sync").setLevel(logging.ERROR)  # gaps are expected

_EMPTY = binance.decode_many(b"")
_HEAD_DTYPE = binance.apply_depth_json_many(L2Book(4), b"").dtype
_RECORDS = (
    records.Trade, records.AggTrade, records.BookTicker, records.Kline, records.DepthUpdate,
    records.DepthSnapshot, records.ControlReply, records.ErrorReply, records.ServerShutdown,
    records.UnknownEvent,
)  # fmt: skip
_VERDICTS = {binance.APPLIED, binance.STALE, binance.GAP, binance.NOT_A_DIFF}


def _check_binance_tables(t, n: int, what: str, n_messages: int | None = None) -> None:
    """Tables of the schema's dtypes, sizes bounded by the input, every row's msg_index
    pointing to a decoded (not invalid) message, counts adding up to the messages."""
    o.check_tables(t, _EMPTY, what)
    if type(t.kinds) is not np.ndarray or t.kinds.dtype != np.uint8 or t.kinds.ndim != 1:
        raise o.Finding(f"{what}: kinds {type(t.kinds).__name__}")
    if n_messages is not None and t.n_messages != n_messages:
        raise o.Finding(f"{what}: {t.n_messages} messages reported for {n_messages} given")
    if sum(t.counts.values()) != t.n_messages:
        raise o.Finding(f"{what}: counts add up to {sum(t.counts.values())}, "
                        f"{t.n_messages} messages")  # fmt: skip
    kinds = t.kinds
    if len(kinds) and int(kinds.max()) >= len(binance.KINDS):
        raise o.Finding(f"{what}: kind code {int(kinds.max())}")
    rows = len(kinds)
    for name, arr in t.items():
        rows += len(arr)
        if len(arr):
            idx = arr["msg_index"]
            if idx.min() < 0 or idx.max() >= t.n_messages:
                raise o.Finding(f"{what}: {name} msg_index outside 0..{t.n_messages - 1}")
            if (kinds[idx] == 0).any():
                raise o.Finding(f"{what}: {name} keeps rows of a message counted invalid")
    o.check_size(n, rows, what)
    if type(t.errors) is not list or len(t.errors) > 100:
        raise o.Finding(f"{what}: errors {type(t.errors).__name__}")
    for e in t.errors:
        if not isinstance(e, o.DecodeError):
            raise o.Finding(f"{what}: errors holds {e!r}")
        o.check_decode_error(e)


def _check_any_record(rec, n: int, what: str) -> None:
    if type(rec) not in _RECORDS:
        raise o.Finding(f"{what}: returned {type(rec).__name__}")
    o.check_record(rec, what)
    o.check_size(n, o.weight(tuple(rec)), what)


# ---------------------------------------------------------------------------- JSON


@o.target()
def binance_decode(data: bytes) -> None:
    """``binance.decode``: one record with the declared field types, size bounded."""
    _check_any_record(binance.decode(data), len(data), "decode")


@o.target()
def binance_decode_many(data: bytes) -> None:
    """``decode_many`` on the bytes (errors="raise"), then with errors="skip"."""
    _check_binance_tables(binance.decode_many(data), len(data), "decode_many")


@o.target()
def binance_decode_many_skip(data: bytes) -> None:
    """``decode_many(bytes, errors="skip")``: never raises for bad messages."""
    _check_binance_tables(binance.decode_many(data, errors="skip"), len(data),
                          "decode_many(skip)")  # fmt: skip


@o.target()
def binance_decode_many_list(data: bytes) -> None:
    """``decode_many(list, errors="skip")``, the list made of the input's lines: one kind
    per message, rows only of the messages that decoded."""
    msgs = data.split(b"\n")
    t = binance.decode_many(msgs, errors="skip")
    _check_binance_tables(t, len(data) + len(msgs), "decode_many(list, skip)", len(msgs))


# ---------------------------------------------------------------------------- SBE


@o.target()
def binance_decode_sbe(data: bytes) -> None:
    """``decode_sbe``: a list of Trade, or one BookTicker / DepthUpdate / DepthSnapshot."""
    rec = binance.decode_sbe(data)
    if isinstance(rec, list):
        for r in rec:
            if type(r) is not records.Trade:
                raise o.Finding(f"decode_sbe: list holds {type(r).__name__}")
            o.check_record(r, "decode_sbe")
        o.check_size(len(data), o.weight([tuple(r) for r in rec]), "decode_sbe")
    else:
        if type(rec) not in (records.BookTicker, records.DepthUpdate, records.DepthSnapshot):
            raise o.Finding(f"decode_sbe: returned {type(rec).__name__}")
        _check_any_record(rec, len(data), "decode_sbe")


@o.target()
def binance_decode_many_sbe(data: bytes) -> None:
    """``decode_many_sbe`` on the concatenated messages."""
    _check_binance_tables(binance.decode_many_sbe(data), len(data), "decode_many_sbe")


# ---------------------------------------------------------------------------- appliers


def _book() -> L2Book:
    book = L2Book(max_levels=16)
    book.load_snapshot(np.array([[100, 5], [99, 7]], dtype=np.int64),
                       np.array([[101, 3], [102, 4]], dtype=np.int64))  # fmt: skip
    return book


def _check_header(head, n: int, what: str) -> None:
    if type(head) is not records.DepthHeader:
        raise o.Finding(f"{what}: returned {type(head).__name__}")
    o.check_record(head, what)
    if head.n_bids < 0 or head.n_asks < 0:
        raise o.Finding(f"{what}: negative level counts {head}")
    o.check_size(n, head.n_bids + head.n_asks, what)


def _apply_one(fn, data: bytes, what: str, *args):
    """Apply one message; on DecodeError the book must be untouched (documented)."""
    book = _book()
    before = o.l2_state(book)
    try:
        return fn(book, data, *args)
    except o.DecodeError:
        if o.l2_state(book) != before:
            raise o.Finding(f"{what}: raised DecodeError after changing the book") from None
        raise


@o.target()
def binance_apply_depth_json(data: bytes) -> None:
    _check_header(_apply_one(binance.apply_depth_json, data, "apply_depth_json"), len(data),
                  "apply_depth_json")  # fmt: skip


@o.target()
def binance_apply_depth_json_after(data: bytes) -> None:
    """``apply_depth_json_after`` at a few update ids, spot and USD-M."""
    for market in ("spot", "usdm"):
        for last in (0, 100, 2**62):
            r = _apply_one(binance.apply_depth_json_after, data, "apply_depth_json_after",
                           last, market)  # fmt: skip
            if type(r) is not tuple or len(r) != 2 or type(r[0]) is not int:
                raise o.Finding(f"apply_depth_json_after: returned {r!r}")
            if r[0] not in _VERDICTS:
                raise o.Finding(f"apply_depth_json_after: verdict {r[0]}")
            _check_header(r[1], len(data), "apply_depth_json_after")


@o.target()
def binance_apply_depth_sbe(data: bytes) -> None:
    _check_header(_apply_one(binance.apply_depth_sbe, data, "apply_depth_sbe"), len(data),
                  "apply_depth_sbe")  # fmt: skip


def _check_heads(heads, n: int, what: str) -> None:
    o.check_dtype(heads, _HEAD_DTYPE, what)
    o.check_size(n, len(heads) + int(heads["n_bids"].sum() + heads["n_asks"].sum()), what)


@o.target()
def binance_apply_depth_json_many(data: bytes) -> None:
    """``apply_depth_json_many``; when it fails, some line alone must fail too (issue 9
    item 3: messages accepted one by one must be accepted together)."""
    try:
        heads = binance.apply_depth_json_many(_book(), data)
    except o.DecodeError as exc:
        o.check_decode_error(exc)
        lines = [ln for ln in data.split(b"\n") if ln.strip()]
        if lines and all(o.call(binance.apply_depth_json, _book(), ln) for ln in lines):
            raise o.Finding(f"apply_depth_json_many raised {exc!r} although each of its "
                            f"{len(lines)} lines applies alone") from None  # fmt: skip
        return
    _check_heads(heads, len(data), "apply_depth_json_many")


@o.target()
def binance_apply_depth_sbe_many(data: bytes) -> None:
    _check_heads(binance.apply_depth_sbe_many(_book(), data), len(data), "apply_depth_sbe_many")


# ---------------------------------------------------------------------------- BookSync

_SYNC_SYMBOLS = ("BTCUSDT", "ETHUSDT")
_SNAPSHOT = b'{"lastUpdateId":100,"bids":[["10.0","1.0"]],"asks":[["11.0","1.0"]]}'


def _syncs(market: str) -> list:
    syncs = []
    for sym in _SYNC_SYMBOLS:
        s = binance.BookSync(sym, market, snapshot=lambda: _SNAPSHOT, max_levels=16)
        pu = ',"pu":100' if market == "usdm" else ""
        s.feed(f'{{"e":"depthUpdate","E":1,"s":"{sym}","U":100,"u":101{pu},'
               f'"b":[["10.0","2.0"]],"a":[]}}')  # fmt: skip
        assert s.state == "live", s
        syncs.append(s)
    return syncs


def _sync_state(s) -> tuple:
    return (o.l2_state(s.book), s.last_update_id, s.state)


def _event_symbol(msg: bytes):
    """The symbol ``decode`` reads from a depthUpdate (the general path's view), or None
    if it rejects the message or it is not a depthUpdate."""
    try:
        rec = binance.decode(msg)
    except Exception:  # noqa: BLE001 (a decode bug is the decode targets' finding)
        return None
    return rec.symbol.upper() if isinstance(rec, records.DepthUpdate) else None


@o.target()
def binance_book_sync(data: bytes) -> None:
    """A combined stream: every line is fed to a live BookSync of each symbol (spot, then
    USD-M). A sync may raise ValueError (another symbol, not a diff: documented) or
    DecodeError; a message that changes a book must be a depthUpdate of that book's
    symbol (or of no symbol) as ``decode`` reads it."""
    lines = data.split(b"\n")
    for market in ("spot", "usdm"):
        syncs = _syncs(market)
        for msg in lines:
            sym = None
            for s in syncs:
                before = _sync_state(s)
                o.call(s.feed, msg, allowed=(ValueError,))  # DecodeError is a ValueError
                if _sync_state(s) != before:
                    sym = _event_symbol(msg) if sym is None else sym
                    if sym is None:
                        raise o.Finding(f"BookSync({s.symbol!r}, {market!r}): book changed by "
                                        f"a message decode() rejects: {msg[:200]!r}")  # fmt: skip
                    if sym not in (s.symbol, ""):
                        raise o.Finding(f"BookSync({s.symbol!r}, {market!r}): book changed by "
                                        f"a message for {sym!r}: {msg[:200]!r}")  # fmt: skip


# ---------------------------------------------------------------------------- files

_DIR = tempfile.mkdtemp(prefix="hftcore-fuzz-")


def _tmp(data: bytes, name: str) -> str:
    path = os.path.join(_DIR, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _read_both(path: str, n: int, what: str) -> None:
    for errors in ("raise", "skip"):
        whole = o.call(binance.read_file, path, errors=errors, progress=False)
        if whole is not None:
            _check_binance_tables(whole, n, f"{what} read_file({errors})")

        def chunks(errors=errors):
            return list(binance.iter_file(path, 4096, errors=errors, progress=False))

        parts = o.call(chunks)
        if parts is not None:
            # msg_index counts from the start of the file: check the joined chunks.
            _check_binance_tables(binance.concat_tables(parts), n, f"{what} iter_file({errors})")
        if (whole is None) != (parts is None):
            raise o.Finding(f"{what}({errors}): read_file {'failed' if whole is None else 'passed'}"
                            f", iter_file {'failed' if parts is None else 'passed'}")  # fmt: skip


@o.target()
def binance_files(data: bytes) -> None:
    """``read_file`` / ``iter_file`` on the input written plain, then gzip-compressed."""
    _read_both(_tmp(data, "stream.ndjson"), len(data), "plain")
    _read_both(_tmp(gzip.compress(data, 1), "stream.ndjson.gz"), len(data), "gzip")


@o.target()
def binance_files_raw(data: bytes) -> None:
    """The readers on the input as the file's raw bytes (corrupt gzip included)."""
    _read_both(_tmp(data, "raw.ndjson.gz"), 1032 * len(data) + 64, "raw")


TARGETS = {
    "binance_decode": binance_decode,
    "binance_decode_many": binance_decode_many,
    "binance_decode_many_skip": binance_decode_many_skip,
    "binance_decode_many_list": binance_decode_many_list,
    "binance_decode_sbe": binance_decode_sbe,
    "binance_decode_many_sbe": binance_decode_many_sbe,
    "binance_apply_depth_json": binance_apply_depth_json,
    "binance_apply_depth_json_after": binance_apply_depth_json_after,
    "binance_apply_depth_sbe": binance_apply_depth_sbe,
    "binance_apply_depth_json_many": binance_apply_depth_json_many,
    "binance_apply_depth_sbe_many": binance_apply_depth_sbe_many,
    "binance_book_sync": binance_book_sync,
    "binance_files": binance_files,
    "binance_files_raw": binance_files_raw,
}
