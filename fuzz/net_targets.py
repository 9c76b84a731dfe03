"""Fuzz targets of hftcore.net: the WebSocket frame parser (random, truncated, corrupted
byte streams) and its UTF-8 validator. Each is ``fn(data: bytes)``; see :mod:`_oracle`.

The parser target runs the reader's own parser (``ws._parse_stream``, the code
``WebSocket.pump`` runs) over the input split into receives of a size chosen by the first
byte, with a small receive buffer and ``max_message`` so the reassembly and "frame larger
than the buffer" paths are reached. Beyond "a clean ProtocolError or a result", it checks
the parse does not depend on how the stream was split: whole, one byte at a time, and the
chosen chunking give the same messages, or the same error at the same offset.
"""

from __future__ import annotations

from hftcore.errors import ProtocolError
from hftcore.net import ws

try:
    from . import _oracle as o
except ImportError:  # run as a script from fuzz/
    import _oracle as o

_OPCODES = {1, 2, 8, 9}
_CODES = {1002, 1007, 1009}


def _run(data, chunk, buffer_size, max_message):
    try:
        return ws._parse_stream(
            data, max_message=max_message, chunks=[chunk], buffer_size=buffer_size
        ), None
    except ProtocolError as exc:
        o.check_decode_error(exc)
        if exc.code not in _CODES:
            raise o.Finding(f"ProtocolError with close code {exc.code}: {exc}") from None
        if not 0 <= exc.offset <= len(data):
            raise o.Finding(f"ProtocolError offset {exc.offset} outside 0..{len(data)}") from None
        return None, (type(exc), exc.offset, exc.code, exc.reason)


@o.target(ProtocolError)
def net_ws_frames(data: bytes) -> None:
    """``ws._parse_stream``: messages or one clean ProtocolError, independent of chunking."""
    if not data:
        return
    chunk = data[0] % 64 + 1
    buffer_size = 256 + (data[0] >> 6) * 300
    max_message = 2000
    body = data[1:]
    got, err = _run(body, chunk, buffer_size, max_message)
    if got is not None:
        total = 0
        for item in got:
            if type(item) is not tuple or len(item) != 2:
                raise o.Finding(f"parse_stream item {item!r}")
            op, payload = item
            if type(op) is not int or op not in _OPCODES or type(payload) is not bytes:
                raise o.Finding(f"parse_stream item ({op!r}, {type(payload).__name__})")
            if len(payload) > max_message:
                raise o.Finding(f"message of {len(payload)} bytes over max_message")
            if op == 1 and ws.utf8_check(payload) != -1:
                raise o.Finding("text message with invalid UTF-8 handed on")
            total += len(payload)
        if total > len(body):
            raise o.Finding(f"{total} payload bytes out of {len(body)} input bytes")
    for other in (1, len(body) or 1):
        if _run(body, other, buffer_size, max_message) != (got, err):
            raise o.Finding(f"chunks of {chunk} and {other} bytes parse differently")


@o.target()
def net_utf8(data: bytes) -> None:
    """``ws.utf8_check`` agrees with Python's strict UTF-8 decoder on the first bad byte."""
    try:
        data.decode("utf-8")
        expected = -1
    except UnicodeDecodeError as exc:
        expected = exc.start
    got = ws.utf8_check(data)
    if got != expected:
        raise o.Finding(f"utf8_check says {got}, Python's decoder {expected}")


TARGETS = {
    "net_ws_frames": net_ws_frames,
    "net_utf8": net_utf8,
}


def seeds(small: bool = False) -> dict[str, list[bytes]]:
    """Seed inputs per target: valid streams of every frame kind and size class."""
    import struct

    def frame(opcode, payload=b"", fin=True):
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack("!H", n)
        else:
            head += bytes([127]) + struct.pack("!Q", n)
        return head + payload

    streams = [
        frame(1, b"hello") + frame(2, bytes(range(200))) + frame(9, b"ping"),
        frame(1, b"ab", fin=False) + frame(9, b"mid") + frame(0, "é€😀".encode()),
        frame(2, b"x" * 126) + frame(10, b"") + frame(1, b""),
        frame(2, b"y" * 1500, fin=False) + frame(0, b"z" * 400),
        frame(1, b"a" * 300) + frame(8, struct.pack("!H", 1000) + b"bye"),
        frame(2, b"big" * 700),
        frame(1, b"\xc3\x28"),
    ]
    frames = [bytes([c]) + s for s in streams for c in (0, 7, 64, 200)]
    text = ["ascii only, longer than eight", "é€😀ß漢字", "\U0010ffff"]
    utf8 = [t.encode() for t in text] + [b"\xed\xa0\x80", b"\xf0\x80\x80\xaf", b"ab\xc3"]
    return {"net_ws_frames": frames[: 8 if small else None], "net_utf8": utf8}
