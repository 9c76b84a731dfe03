"""Type stub of the compiled MoldUDP64 module (hftcore/net/moldudp64.pyx)."""

import socket
from typing import Literal

from hftcore.net.consumer import Consumer

HEADER_LENGTH: int
SESSION_LENGTH: int
END_OF_SESSION: int

def open_socket(
    host: str, port: int, interface: str | None = None, rcvbuf: int = ...
) -> socket.socket: ...
def encode_packet(session: str | bytes, seq: int, messages: object) -> bytes: ...
def encode_heartbeat(session: str | bytes, next_seq: int) -> bytes: ...
def encode_end_of_session(session: str | bytes, next_seq: int) -> bytes: ...
def encode_request(session: str | bytes, seq: int, count: int) -> bytes: ...
def parse_request(data: bytes) -> tuple[bytes, int, int]: ...
def parse_packet(
    data: bytes | bytearray | memoryview,
) -> tuple[bytes, int, Literal["data", "heartbeat", "end"], list[bytes]]: ...

class MoldUDP64Sequencer(Consumer):
    inner: Consumer
    next_seq: int
    ended: bool
    stale: bool
    buffered: int
    packets: int
    messages: int
    heartbeats: int
    gaps: int
    requests: int
    requested: int
    recovered: int
    duplicates: int
    reordered: int
    unrecovered: int
    unrecoverable_gaps: int
    stale_periods: int
    buffer_high_water: int
    overflow: int
    malformed: int
    session_changes: int
    request_errors: int
    foreign_packets: int
    def __init__(
        self,
        inner: Consumer,
        rerequest: tuple[str, int] | None = None,
        sock: socket.socket | None = None,
        *,
        session: str | bytes | None = None,
        start_seq: int = 1,
        buffer_messages: int = 65536,
        slot_bytes: int = 64,
        max_request: int = 512,
        request_delay: float = 0.0,
        retry_timeout: float = 0.05,
        max_retries: int = 10,
        heartbeat_timeout: float = 3.0,
        on_gap: Literal["stop", "continue"] = "stop",
    ) -> None: ...
    def feed(self, datagram: bytes | bytearray | memoryview) -> int: ...
    def poll(self) -> int: ...
    @property
    def session(self) -> bytes | None: ...
    @property
    def highest_seen(self) -> int: ...
    @property
    def unrecovered_ranges(self) -> list[tuple[int, int]]: ...
    def stats(self) -> dict[str, object]: ...
