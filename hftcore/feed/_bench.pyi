import numpy as np

from hftcore.net.consumer import Consumer

class StampConsumer(Consumer):
    capacity: int
    frames: int
    bad: int
    first_batch: int
    first_ns: int
    last_ns: int
    send: np.ndarray
    recv: np.ndarray
    frame: np.ndarray
    recv_to_frame: np.ndarray
    def __init__(self, capacity: int) -> None: ...
    @property
    def done(self) -> bool: ...
