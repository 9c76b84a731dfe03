"""Fuzz targets of the ITCH transports: the MoldUDP64 packet parser and sequencer, the
SoupBinTCP framer. Each is ``fn(data: bytes)``; see :mod:`_oracle` for the rule."""

from __future__ import annotations

import struct

from hftcore.errors import DecodeError, SequenceGap
from hftcore.net import moldudp64 as mold
from hftcore.net import soupbintcp as soup
from hftcore.net.consumer import PyConsumer

try:
    from . import _oracle as o
except ImportError:  # run as a script from fuzz/
    import _oracle as o


def _datagrams(data: bytes) -> list[bytes]:
    """The input as datagrams: 2-byte big-endian lengths, each followed by that many
    bytes (the tail as one more datagram)."""
    out, pos = [], 0
    while len(data) - pos >= 2:
        n = struct.unpack_from(">H", data, pos)[0]
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    if pos < len(data):
        out.append(data[pos:])
    return out


@o.target()
def wire_moldudp64_parse(data: bytes) -> None:
    """``parse_packet`` on the whole input: a clean DecodeError or bounded messages."""
    session, seq, kind, messages = mold.parse_packet(data)
    if len(session) != 10 or type(seq) is not int or kind not in ("data", "heartbeat", "end"):
        raise o.Finding(f"parse_packet header: {session!r} {seq!r} {kind!r}")
    if 20 + sum(2 + len(m) for m in messages) != len(data):
        raise o.Finding("parse_packet: message blocks do not add up to the packet")
    if kind != "data" and messages:
        raise o.Finding("a heartbeat / end of session with messages")


@o.target(SequenceGap)
def wire_moldudp64_sequencer(data: bytes) -> None:
    """A sequencer fed the input's datagrams: messages leave in sequence, each once."""
    got = []
    seq = mold.MoldUDP64Sequencer(
        PyConsumer(lambda m, k, s: got.append(m)), buffer_messages=64, retry_timeout=0.0,
        max_retries=0, on_gap="continue", start_seq=0,
    )  # fmt: skip
    total = 0
    for d in _datagrams(data):
        total += len(d)
        seq.feed(d)
        seq.poll()
    seq.poll()
    st = seq.stats()
    if st["messages"] != len(got) or sum(len(m) + 2 for m in got) > total:
        raise o.Finding(f"sequencer handed on {len(got)} messages from {total} bytes: {st}")
    if st["buffered"] > st["buffer_capacity"] or st["packets"] != len(_datagrams(data)):
        raise o.Finding(f"sequencer counters: {st}")


@o.target(DecodeError, SequenceGap)
def wire_soupbintcp_framer(data: bytes) -> None:
    """The framer fed the input in chunks cut by its own bytes; then whole."""
    cuts = sorted({b * 7 % (len(data) + 1) for b in data[:16]} | {0, len(data)})
    results = []
    for pieces in ([data[a:b] for a, b in zip(cuts, cuts[1:], strict=False)], [data]):
        got = []
        f = soup.SoupBinTCPFramer(PyConsumer(lambda m, k, s, got=got: got.append(m)), 0)
        err = None
        try:
            for p in pieces:
                if f.feed(p):
                    break
        except (DecodeError, SequenceGap) as e:
            err = type(e)
        if f.messages != len(got) or 3 * len(got) > len(data):
            raise o.Finding(f"framer: {len(got)} messages from {len(data)} bytes")
        results.append((got, err))
    # However the stream is cut, the same messages come out (a stop or an error ends both
    # at the same packet).
    if results[0] != results[1]:
        raise o.Finding("the framer's output depends on how the stream is cut")


TARGETS = {
    "wire_moldudp64_parse": wire_moldudp64_parse,
    "wire_moldudp64_sequencer": wire_moldudp64_sequencer,
    "wire_soupbintcp_framer": wire_soupbintcp_framer,
}


def seeds(name: str, small: bool = False) -> list[bytes]:
    """Seed inputs of the wire targets, made by the project's encoders and simulator."""
    from hftcore.sim import itch as simitch
    from hftcore.sim import itch_exchange as ex

    day = simitch.generate(messages=300 if small else 3000, symbols=4, seed=9)
    off = ex.message_offsets(day)
    runs = ex._packet_bounds(off, 300)
    packets = [b"HFTCORE001" + struct.pack(">QH", i + 1, j - i) + day[off[i] : off[j]]
               for i, j in runs]  # fmt: skip
    if name == "wire_moldudp64_parse":
        return packets[:20] + [mold.encode_heartbeat("S", 5), mold.encode_end_of_session("S", 9)]
    if name == "wire_moldudp64_sequencer":
        order = packets[:2] + packets[3:6] + packets[2:3] + packets[5:9] + [packets[12]]
        stream = [mold.encode_heartbeat("HFTCORE001", 1), *order,
                  mold.encode_end_of_session("HFTCORE001", runs[12][1] + 1)]  # fmt: skip
        return [b"".join(struct.pack(">H", len(p)) + p for p in stream)]
    msgs = [day[off[k] + 2 : off[k + 1]] for k in range(min(200, len(off) - 1))]
    stream = (soup.encode_debug("hi") + soup.encode_login_accepted("HFTCORE001", 1)
              + b"".join(soup.encode_sequenced(m) for m in msgs) + soup.SERVER_HEARTBEAT
              + soup.encode_unsequenced(b"u") + soup.END_OF_SESSION)  # fmt: skip
    return [stream, stream[:500], soup.encode_login_rejected("A")]
