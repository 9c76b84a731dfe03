import numpy as np

from hftcore.latency import Histogram, Jitter
from hftcore.net.consumer import Consumer

class StampConsumer(Consumer):
    capacity: int
    frames: int
    bad: int
    first_batch: int
    first_ns: int
    last_ns: int
    send_to_recv: Histogram
    recv_to_frame: Histogram
    send_to_frame: Histogram
    jitter: Jitter
    send: np.ndarray | None
    recv: np.ndarray | None
    frame: np.ndarray | None
    recv_to_frame_samples: np.ndarray | None
    def __init__(self, capacity: int, samples: bool = False) -> None: ...
    @property
    def done(self) -> bool: ...
