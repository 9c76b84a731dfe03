"""Fuzz targets of the capture reader (hftcore.feed.capture): every reading form on any
bytes as a capture file. Each is ``fn(data: bytes)``; see :mod:`_oracle` for the rule.

Beyond the rule: the four forms (iterator, table, info, replay into a Cython consumer)
agree on the records and the counts; ``errors="skip"`` raises only for a bad file header;
every record returned lies inside the input and the payloads add up to at most the input.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from hftcore.feed import capture as cap
from hftcore.net.consumer import Consumer

try:
    from . import _oracle as o
except ImportError:  # run as a script from fuzz/
    import _oracle as o

_DIR = tempfile.mkdtemp(prefix="hftcore-fuzz-capture-")
_HEADER_ERRORS = ("not a capture", "not an hftcore capture", "capture format version",
                  "bad file header", "truncated file header", "file header checksum",
                  "metadata is not JSON")  # fmt: skip


def _check_header_error(exc) -> None:
    if not exc.reason.startswith(_HEADER_ERRORS):
        raise o.Finding(f"errors='skip' raised for a record: {exc}")


def _forms(source, n: int, errors: str):
    """Every reading form on ``source``; None when the header is bad."""
    try:
        reader = cap.read_capture(source, errors=errors)
        recs = list(reader)
        info_iter = reader.info()
    except o.DecodeError as exc:
        o.check_decode_error(exc)
        if errors == "skip":
            _check_header_error(exc)
        return None
    info = o.call(cap.capture_info, source, errors=errors)
    table = o.call(cap.read_capture_table, source, errors=errors)
    replayed = o.call(cap.replay_into, source, Consumer(), errors=errors)
    if info is None or table is None or replayed is None:
        raise o.Finding(f"{errors}: the iterator read the input, another form raised")
    if info != info_iter:
        raise o.Finding(f"{errors}: capture_info {info} != the iterator's {info_iter}")
    if table.info != info or replayed != len(recs) or len(table.records) != len(recs):
        raise o.Finding(f"{errors}: forms disagree: {len(recs)} records, table "
                        f"{len(table.records)}, replay {replayed}")  # fmt: skip
    if table.records.dtype != cap.RECORD_DTYPE or type(table.payload) is not np.ndarray:
        raise o.Finding("table types")
    if info.records != len(recs) or info.file_bytes != n:
        raise o.Finding(f"info counts {info.records} records / {info.file_bytes} bytes")
    total = 0
    for rec, row in zip(recs, table.records, strict=True):
        o.check_record(rec, "CaptureRecord")
        end = rec.offset + cap.RECORD_HEADER_SIZE + len(rec.payload)
        if rec.offset < 0 or end > n or int(row["offset"]) != rec.offset + 48:
            raise o.Finding(f"record at {rec.offset} outside the input or misplaced")
        if bytes(table.payload[int(row["offset"]) : end]) != rec.payload:
            raise o.Finding(f"table payload of the record at {rec.offset} differs")
        total += len(rec.payload) + cap.RECORD_HEADER_SIZE
    if total + info.torn_bytes + info.skipped_bytes > n:
        raise o.Finding("records and skipped bytes exceed the input")
    if info.torn_records not in (0, 1) or (info.torn_records == 0) != (info.torn_bytes == 0):
        raise o.Finding(f"torn tail counts {info.torn_records} / {info.torn_bytes}")
    return recs, info


@o.target()
def capture_read(data: bytes) -> None:
    """The input as a capture's bytes: every form, both error modes; a file too."""
    n = len(data)
    strict = _forms(data, n, "raise")
    loose = _forms(data, n, "skip")
    if strict is not None:
        if loose is None or loose[0] != strict[0] or loose[1] != strict[1]:
            raise o.Finding("errors='skip' differs on an input errors='raise' accepts")
    path = os.path.join(_DIR, "in.cap")
    with open(path, "wb") as f:
        f.write(data)
    from_file = _forms(path, n, "skip")
    if (from_file is None) != (loose is None) or (loose is not None and from_file[0] != loose[0]):
        raise o.Finding("the file and its bytes read differently")


@o.target()
def capture_records(data: bytes) -> None:
    """The input as the records after a valid file header (reaches the record walk)."""
    blob = _HEADER + data
    for errors in ("raise", "skip"):
        got = _forms(blob, len(blob), errors)
        if errors == "skip" and got is None:
            raise o.Finding("a valid header was refused")


def _header() -> bytes:
    path = os.path.join(_DIR, "header.cap")
    with cap.CaptureWriter(path, metadata={"fuzz": True}):
        pass
    with open(path, "rb") as f:
        return f.read()


_HEADER = _header()

TARGETS = {
    "capture_read": capture_read,
    "capture_records": capture_records,
}
