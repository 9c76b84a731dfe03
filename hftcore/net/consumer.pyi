from collections.abc import Callable
from enum import IntEnum

class MessageKind(IntEnum):
    KIND_TEXT = 1
    KIND_BINARY = 2
    KIND_STREAM = 16
    KIND_DATAGRAM = 17

class ConsumeResult(IntEnum):
    CONSUME_OK = 0
    CONSUME_STOP = 1
    CONSUME_ERROR = -1

KIND_TEXT: MessageKind
KIND_BINARY: MessageKind
KIND_STREAM: MessageKind
KIND_DATAGRAM: MessageKind
CONSUME_OK: ConsumeResult
CONSUME_STOP: ConsumeResult
CONSUME_ERROR: ConsumeResult

class Consumer:
    def check(self) -> None: ...

class PyConsumer(Consumer):
    def __init__(
        self, callback: Callable[[bytes, int, tuple[int, int, int]], object]
    ) -> None: ...
