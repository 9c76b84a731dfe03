import socket

from hftcore.net.consumer import Consumer

class TcpReader:
    sock: socket.socket
    buffer_size: int
    kernel_stamps: bool
    closed: bool
    bytes_received: int
    messages: int
    recv_calls: int
    def __init__(
        self, sock: socket.socket, buffer_size: int = ..., kernel_stamps: bool = True
    ) -> None: ...
    def fileno(self) -> int: ...
    @property
    def last_stamp(self) -> tuple[int, int, int]: ...
    def pump(self, consumer: Consumer, timeout: float = 0.05, spin: bool = False) -> int: ...
    def counters(self) -> dict[str, int]: ...
