"""Fixtures of the net tests."""

from __future__ import annotations

import socket
import time

import pytest

from hftcore.net import sockio


@pytest.fixture(scope="session", autouse=True)
def kernel_stamping_on():
    """Keep one socket with SO_TIMESTAMPNS open for the session.

    Linux turns receive stamping on for the whole network stack while any socket asks for
    it, and turns it on lazily (a deferred static-key switch): segments that arrive in the
    first moments after the first socket asks carry no stamp, and the readers then report
    ``kernel_ns = 0`` as documented. Holding one stamping socket open keeps the switch on,
    so the tests can require a stamp on every message.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if sockio.enable_kernel_timestamps(s):
            time.sleep(0.05)
        yield
    finally:
        s.close()
