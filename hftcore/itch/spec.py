"""NASDAQ TotalView-ITCH 5.0: the message table, the single source of truth.

Every message starts with the same 11-byte header::

    offset 0  message_type     1  alpha
    offset 1  stock_locate     2  integer
    offset 3  tracking_number  2  integer
    offset 5  timestamp        6  integer (ns since midnight)

followed by the type's own fields below, at the offsets of NASDAQ's specification. Field
names are snake_case of the specification's names. The decoder (generated from this table
by ``tools/gen_itch_decoder.py``), the numpy dtypes, the encoder and the tests all read
this module; nothing else restates a length or an offset.

Field kinds
-----------
``int``
    unsigned big-endian integer of 2, 4 or 8 bytes (6 for the timestamp).
``price4`` / ``price8``
    unsigned integer price with 4 (8 for ``V``) implied decimals; kept as the raw integer.
``alpha``
    left-justified, space-padded ASCII of the field's width; kept as ``S<width>`` bytes.
``enum``
    a single ASCII code (``S1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Field",
    "Message",
    "HEADER",
    "MESSAGES",
    "BY_TYPE",
    "TYPES",
    "MAX_LENGTH",
    "dtype",
    "PRICE_SCALE",
]


@dataclass(frozen=True)
class Field:
    """One field of a message: name, byte offset in the message, size in bytes, kind."""

    name: str
    offset: int
    size: int
    kind: str  # "int", "price4", "price8", "alpha", "enum"

    @property
    def np_dtype(self) -> str:
        if self.kind in ("alpha", "enum"):
            return f"S{self.size}"
        if self.size == 6:  # the timestamp
            return "u8"
        return f"u{self.size}"


@dataclass(frozen=True)
class Message:
    """One message type: its code, the spec's name, total length and fields."""

    type: str
    name: str
    length: int
    fields: tuple[Field, ...]  # after the header

    @property
    def all_fields(self) -> tuple[Field, ...]:
        return HEADER + self.fields


HEADER = (
    Field("stock_locate", 1, 2, "int"),
    Field("tracking_number", 3, 2, "int"),
    Field("timestamp", 5, 6, "int"),
)
#: Bytes of the header every message starts with (type, locate, tracking, timestamp).
HEADER_LENGTH = 11


def _msg(type_, name, *fields):
    """Build a Message, laying fields end to end after the 11-byte header."""
    out = []
    offset = HEADER_LENGTH
    for fname, size, kind in fields:
        out.append(Field(fname, offset, size, kind))
        offset += size
    return Message(type_, name, offset, tuple(out))


_STOCK = ("stock", 8, "alpha")

MESSAGES = (
    _msg("S", "system_event", ("event_code", 1, "enum")),
    _msg(
        "R",
        "stock_directory",
        _STOCK,
        ("market_category", 1, "enum"),
        ("financial_status", 1, "enum"),
        ("round_lot_size", 4, "int"),
        ("round_lots_only", 1, "enum"),
        ("issue_classification", 1, "enum"),
        ("issue_subtype", 2, "alpha"),
        ("authenticity", 1, "enum"),
        ("short_sale_threshold", 1, "enum"),
        ("ipo_flag", 1, "enum"),
        ("luld_tier", 1, "enum"),
        ("etp_flag", 1, "enum"),
        ("etp_leverage_factor", 4, "int"),
        ("inverse_indicator", 1, "enum"),
    ),
    _msg(
        "H",
        "stock_trading_action",
        _STOCK,
        ("trading_state", 1, "enum"),
        ("reserved", 1, "alpha"),
        ("reason", 4, "alpha"),
    ),
    _msg("Y", "reg_sho_restriction", _STOCK, ("reg_sho_action", 1, "enum")),
    _msg(
        "L",
        "market_participant_position",
        ("mpid", 4, "alpha"),
        _STOCK,
        ("primary_market_maker", 1, "enum"),
        ("market_maker_mode", 1, "enum"),
        ("market_participant_state", 1, "enum"),
    ),
    _msg(
        "V",
        "mwcb_decline_level",
        ("level1", 8, "price8"),
        ("level2", 8, "price8"),
        ("level3", 8, "price8"),
    ),
    _msg("W", "mwcb_status", ("breached_level", 1, "enum")),
    _msg(
        "K",
        "ipo_quoting_period_update",
        _STOCK,
        ("ipo_release_time", 4, "int"),
        ("ipo_release_qualifier", 1, "enum"),
        ("ipo_price", 4, "price4"),
    ),
    _msg(
        "J",
        "luld_auction_collar",
        _STOCK,
        ("reference_price", 4, "price4"),
        ("upper_price", 4, "price4"),
        ("lower_price", 4, "price4"),
        ("extension", 4, "int"),
    ),
    _msg(
        "h",
        "operational_halt",
        _STOCK,
        ("market_code", 1, "enum"),
        ("halt_action", 1, "enum"),
    ),
    _msg(
        "A",
        "add_order",
        ("order_ref", 8, "int"),
        ("side", 1, "enum"),
        ("shares", 4, "int"),
        _STOCK,
        ("price", 4, "price4"),
    ),
    _msg(
        "F",
        "add_order_mpid",
        ("order_ref", 8, "int"),
        ("side", 1, "enum"),
        ("shares", 4, "int"),
        _STOCK,
        ("price", 4, "price4"),
        ("attribution", 4, "alpha"),
    ),
    _msg(
        "E",
        "order_executed",
        ("order_ref", 8, "int"),
        ("executed_shares", 4, "int"),
        ("match_number", 8, "int"),
    ),
    _msg(
        "C",
        "order_executed_with_price",
        ("order_ref", 8, "int"),
        ("executed_shares", 4, "int"),
        ("match_number", 8, "int"),
        ("printable", 1, "enum"),
        ("execution_price", 4, "price4"),
    ),
    _msg("X", "order_cancel", ("order_ref", 8, "int"), ("cancelled_shares", 4, "int")),
    _msg("D", "order_delete", ("order_ref", 8, "int")),
    _msg(
        "U",
        "order_replace",
        ("original_order_ref", 8, "int"),
        ("new_order_ref", 8, "int"),
        ("shares", 4, "int"),
        ("price", 4, "price4"),
    ),
    _msg(
        "P",
        "trade",
        ("order_ref", 8, "int"),
        ("side", 1, "enum"),
        ("shares", 4, "int"),
        _STOCK,
        ("price", 4, "price4"),
        ("match_number", 8, "int"),
    ),
    _msg(
        "Q",
        "cross_trade",
        ("shares", 8, "int"),
        _STOCK,
        ("cross_price", 4, "price4"),
        ("match_number", 8, "int"),
        ("cross_type", 1, "enum"),
    ),
    _msg("B", "broken_trade", ("match_number", 8, "int")),
    _msg(
        "I",
        "noii",
        ("paired_shares", 8, "int"),
        ("imbalance_shares", 8, "int"),
        ("imbalance_direction", 1, "enum"),
        _STOCK,
        ("far_price", 4, "price4"),
        ("near_price", 4, "price4"),
        ("current_reference_price", 4, "price4"),
        ("cross_type", 1, "enum"),
        ("price_variation_indicator", 1, "enum"),
    ),
    _msg("N", "rpii", _STOCK, ("interest_flag", 1, "enum")),
    _msg(
        "O",
        "direct_listing_capital_raise",
        _STOCK,
        ("open_eligibility_status", 1, "enum"),
        ("min_allowable_price", 4, "price4"),
        ("max_allowable_price", 4, "price4"),
        ("near_execution_price", 4, "price4"),
        ("near_execution_time", 8, "int"),
        ("lower_price_range_collar", 4, "price4"),
        ("upper_price_range_collar", 4, "price4"),
    ),
)

BY_TYPE = {m.type: m for m in MESSAGES}
TYPES = tuple(m.type for m in MESSAGES)
MAX_LENGTH = max(m.length for m in MESSAGES)
#: BinaryFILE framing: each message is preceded by its length, 2 bytes big-endian.
FRAME_PREFIX = 2

#: Implied decimals of price fields: divide the raw integer by this to get dollars.
PRICE_SCALE = {"price4": 10_000, "price8": 100_000_000}

# The lengths NASDAQ's specification gives; the table above must add up to them.
_SPEC_LENGTHS = {
    "S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35,
    "h": 21, "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44,
    "Q": 40, "B": 19, "I": 50, "N": 20, "O": 48,
}  # fmt: skip
assert {m.type: m.length for m in MESSAGES} == _SPEC_LENGTHS


def wire_constants() -> dict[str, int]:
    """Named wire offsets and lengths, as the Cython kernels see them.

    ``tools/gen_itch_decoder.py`` writes these as ``cdef enum`` constants into
    ``hftcore/itch/_wire.pxd``; the order book and the simulator cimport them and refuse
    to import when their build disagrees with this table.

    Names: ``ITCH_FRAME_PREFIX``, ``ITCH_HEADER_LENGTH``, ``ITCH_MAX_LENGTH``; the header
    fields ``OFF_<FIELD>`` (``OFF_TIMESTAMP``); per type ``LEN_<T>`` (the message length
    without the prefix), ``OFF_<T>_<FIELD>`` for each of its own fields and
    ``SIZE_<T>_<FIELD>`` for its multi-byte alpha fields (``T`` keeps its case: ``h`` and
    ``H`` are distinct types).

    Returns
    -------
    dict of str to int
        In a stable order: framing, header, then the types in :data:`MESSAGES` order.
    """
    out = {
        "ITCH_FRAME_PREFIX": FRAME_PREFIX,
        "ITCH_HEADER_LENGTH": HEADER_LENGTH,
        "ITCH_MAX_LENGTH": MAX_LENGTH,
        "OFF_MESSAGE_TYPE": 0,
    }
    for f in HEADER:
        out[f"OFF_{f.name.upper()}"] = f.offset
    for m in MESSAGES:
        out[f"LEN_{m.type}"] = m.length
        for f in m.fields:
            out[f"OFF_{m.type}_{f.name.upper()}"] = f.offset
            if f.kind == "alpha" and f.size > 1:
                out[f"SIZE_{m.type}_{f.name.upper()}"] = f.size
    return out


_DTYPES: dict[str, np.dtype] = {}


def dtype(type_: str) -> np.dtype:
    """The numpy structured dtype of a decoded table of ``type_``.

    Columns: ``seq`` (uint64, the message's 0-based index in the stream), the header
    fields ``stock_locate``, ``tracking_number``, ``timestamp`` (uint64 ns since
    midnight), then the type's fields in wire order. The dtype is aligned, so numeric
    columns are fast to compute on.

    Parameters
    ----------
    type_ : str
        A message type character, e.g. ``"A"``.

    Returns
    -------
    numpy.dtype
    """
    dt = _DTYPES.get(type_)
    if dt is None:
        msg = BY_TYPE[type_]
        cols = [("seq", "u8")] + [(f.name, f.np_dtype) for f in msg.all_fields]
        dt = _DTYPES[type_] = np.dtype(cols, align=True)
    return dt
