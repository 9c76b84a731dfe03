import socket
from typing import Any

SO_TIMESTAMPNS: int
HAVE_RECVMMSG: bool

def enable_kernel_timestamps(sock: socket.socket | int) -> bool: ...
def set_nonblocking(sock: socket.socket | int, flag: bool = True) -> None: ...
def is_nonblocking(sock: socket.socket | int) -> bool: ...
def recv_into_stamped(
    sock: socket.socket | int,
    buffer: Any,
    kernel_stamps: bool = False,
    timeout: float = 0.0,
    spin: bool = False,
) -> tuple[int, tuple[int, int, int]] | None: ...
def wait(sock: socket.socket | int, timeout: float) -> bool: ...
