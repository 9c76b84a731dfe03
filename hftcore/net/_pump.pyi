"""Type stub of hftcore/net/_pump.pyx (the stand-in socket reader)."""

import socket

from hftcore.net.consumer import Consumer

class ConnectionClosed(ConnectionError): ...

class SocketPump:
    receives: int
    bytes_received: int
    def __init__(self, sock: socket.socket, buffer_size: int = ..., batch: int = ...) -> None: ...
    def pump(self, consumer: Consumer, timeout: float = 0.05, spin: bool = False) -> int: ...
