"""Type stub of hftcore/itch/_feed.pyx (the live feed's book consumer)."""

from hftcore.itch._book import OrderBookCore
from hftcore.latency import Stages
from hftcore.net.consumer import Consumer

STAMPS: tuple[str, ...]
PAIRS: tuple[tuple[str, str], ...]
EVENT_STAMPS: tuple[str, ...]

def new_stages() -> Stages: ...
def new_event_stages() -> Stages: ...

class StagedConsumer(Consumer):
    inner: Consumer
    def __init__(self, inner: Consumer, stages: Stages) -> None: ...

class BookConsumer(Consumer):
    book: OrderBookCore
    messages: int
    def __init__(
        self, book: OrderBookCore, stages: Stages | None = None, event_epoch_ns: int | None = None
    ) -> None: ...
    def set_busy(self, busy: bool) -> None: ...
