"""Type stub of the compiled capture module (hftcore/feed/capture.pyx)."""

import os
from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from hftcore.net.consumer import Consumer

_Source = str | os.PathLike[str] | bytes | bytearray | memoryview
_Errors = Literal["raise", "skip"]

MAGIC: bytes
VERSION: int
FILE_HEADER_SIZE: int
RECORD_HEADER_SIZE: int
RECORD_MARKER: int
FLAG_AFTER_GAP: int
RECORD_DTYPE: np.dtype[np.void]

class AppendResult(IntEnum):
    CAPTURE_OK = 0
    CAPTURE_DROPPED = 1
    CAPTURE_TOO_LARGE = 2
    CAPTURE_CLOSED = 3
    CAPTURE_ERROR = 4

CAPTURE_OK: AppendResult
CAPTURE_DROPPED: AppendResult
CAPTURE_TOO_LARGE: AppendResult
CAPTURE_CLOSED: AppendResult
CAPTURE_ERROR: AppendResult

def crc32c(
    data: bytes | bytearray | memoryview, value: int = 0, hardware: bool | None = None
) -> int: ...
def crc32c_hardware() -> bool: ...

class CaptureWriter:
    path: str
    metadata: dict[str, Any]
    def __init__(
        self,
        path: str | os.PathLike[str],
        batch_bytes: int = 1048576,
        batches: int = 8,
        flush_interval: float = 0.05,
        metadata: dict[str, Any] | None = None,
        fsync: bool = False,
    ) -> None: ...
    def append(
        self,
        data: bytes | bytearray | memoryview,
        kind: int = 1,
        stamp: tuple[int, int, int] | None = None,
    ) -> bool: ...
    def check(self) -> None: ...
    def close(self, timeout: float = 10.0) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def dropped_records(self) -> int: ...
    def stats(self) -> dict[str, Any]: ...
    def __enter__(self) -> CaptureWriter: ...
    def __exit__(self, *exc: object) -> None: ...

class RecordingConsumer(Consumer):
    inner: Consumer
    writer: CaptureWriter
    def __init__(self, inner: Consumer, writer: CaptureWriter) -> None: ...

class CaptureRecord(NamedTuple):
    payload: bytes
    kind: int
    realtime_ns: int
    monotonic_ns: int
    kernel_ns: int
    seq: int
    flags: int
    offset: int

class CaptureInfo(NamedTuple):
    path: str
    version: int
    created_ns: int
    metadata: dict[str, Any]
    file_bytes: int
    records: int
    payload_bytes: int
    kinds: dict[int, int]
    first_realtime_ns: int
    last_realtime_ns: int
    first_monotonic_ns: int
    last_monotonic_ns: int
    torn_records: int
    torn_bytes: int
    corrupt_records: int
    skipped_bytes: int
    missing_records: int

class CaptureTable(NamedTuple):
    records: npt.NDArray[np.void]
    payload: npt.NDArray[np.uint8]
    info: CaptureInfo

class CaptureReader(Iterator[CaptureRecord]):
    header: dict[str, Any]
    def __init__(self, source: _Source, errors: _Errors = "raise") -> None: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    def __iter__(self) -> CaptureReader: ...
    def __next__(self) -> CaptureRecord: ...
    def info(self) -> CaptureInfo: ...
    def close(self) -> None: ...
    def __enter__(self) -> CaptureReader: ...
    def __exit__(self, *exc: object) -> None: ...

def read_capture(source: _Source, errors: _Errors = "raise") -> CaptureReader: ...
def capture_info(source: _Source, errors: _Errors = "raise") -> CaptureInfo: ...
def read_capture_table(source: _Source, errors: _Errors = "raise") -> CaptureTable: ...
def replay_into(source: _Source, consumer: Consumer, errors: _Errors = "raise") -> int: ...
def capture_to_ndjson(
    source: _Source,
    out: str | os.PathLike[str],
    kinds: Iterable[int] = (1,),
    errors: _Errors = "raise",
) -> dict[str, Any]: ...
