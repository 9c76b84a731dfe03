from collections.abc import Iterable, Sequence
from typing import Any

import websocket

from hftcore.errors import ProtocolError
from hftcore.net.consumer import Consumer

OPCODES: dict[int, str]
CLOSE_CODES: dict[int, str]

def utf8_check(data: bytes) -> int: ...

class FrameParser:
    cap: int
    max_message: int
    validate_utf8: bool
    frames: int
    messages: int
    pongs: int
    def __init__(
        self, buffer_size: int = 262144, max_message: int = 16777216, validate_utf8: bool = True
    ) -> None: ...
    @property
    def offset(self) -> int: ...
    @property
    def buffered(self) -> int: ...
    def error(self, source: str | None = None) -> ProtocolError | None: ...

class WebSocket:
    parser: FrameParser
    client: websocket.WebSocket
    sock: Any
    url: str
    kernel_stamps: bool
    close_code: int | None
    close_reason: str
    last_kind: int
    bytes_received: int
    recv_calls: int
    pings_answered: int
    pings_received: int
    def __init__(
        self,
        client: websocket.WebSocket,
        url: str,
        buffer_size: int = 262144,
        max_message: int = 16777216,
        validate_utf8: bool = True,
        kernel_stamps: bool = True,
    ) -> None: ...
    def pump(self, consumer: Consumer, timeout: float = 0.05, spin: bool = False) -> int: ...
    def recv(self, timeout: float | None = None) -> bytes: ...
    def send_text(self, data: str | bytes) -> None: ...
    def send_binary(self, data: bytes) -> None: ...
    def ping(self, payload: bytes | str = b"") -> None: ...
    def close(
        self,
        code: int = 1000,
        reason: str = "",
        timeout: float = 2.0,
        consumer: Consumer | None = None,
    ) -> None: ...
    def fileno(self) -> int: ...
    @property
    def frames(self) -> int: ...
    @property
    def messages(self) -> int: ...
    @property
    def pongs_received(self) -> int: ...
    @property
    def last_stamp(self) -> tuple[int, int, int]: ...
    @property
    def pending(self) -> bool: ...
    @property
    def is_open(self) -> bool: ...
    def counters(self) -> dict[str, int]: ...
    def __enter__(self) -> WebSocket: ...
    def __exit__(self, *exc: object) -> bool: ...

def connect(
    url: str,
    headers: dict[str, str] | Iterable[str] | None = None,
    timeout: float = 10.0,
    sslopt: dict[str, Any] | None = None,
    proxy: str | None = None,
    subprotocols: Sequence[str] | None = None,
    max_message: int = 16777216,
    buffer_size: int = 262144,
    validate_utf8: bool = True,
    kernel_stamps: bool = True,
    tls_memory_bio: bool = True,
) -> WebSocket: ...
def _parse_throughput(
    data: bytes, repeat: int = 1, buffer_size: int = 262144, validate_utf8: bool = True
) -> tuple[int, float]: ...
def _parse_stream(
    data: bytes,
    max_message: int = 1048576,
    chunks: Sequence[int] | None = None,
    buffer_size: int = 4096,
    validate_utf8: bool = True,
) -> list[tuple[int, bytes]]: ...
