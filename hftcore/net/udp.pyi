import socket

from hftcore.net.consumer import Consumer

class UdpReader:
    sock: socket.socket
    max_datagram: int
    batch: int
    kernel_stamps: bool
    bytes_received: int
    messages: int
    recv_calls: int
    truncated_datagrams: int
    def __init__(
        self,
        sock: socket.socket,
        max_datagram: int = 65535,
        batch: int = 32,
        kernel_stamps: bool = True,
    ) -> None: ...
    def fileno(self) -> int: ...
    @property
    def last_stamp(self) -> tuple[int, int, int]: ...
    def pump(self, consumer: Consumer, timeout: float = 0.05, spin: bool = False) -> int: ...
    def counters(self) -> dict[str, int]: ...
