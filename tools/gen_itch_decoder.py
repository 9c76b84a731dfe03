"""Generate the Cython that restates the ITCH 5.0 spec table: nothing else may.

The ITCH 5.0 message table in :mod:`hftcore.itch.spec` is the single source of truth. This
script writes two files from it:

``hftcore/itch/_decode_gen.pxi``
    The decoder's straight-line Cython, one ``nogil`` function per message type, that
    copies every field of one wire message into one row of the type's numpy table (offsets
    in the row come from ``spec.dtype(t).fields``). No per-field loop runs at decode time.
``hftcore/itch/_wire.pxd``
    The wire layout as named ``cdef enum`` constants (``LEN_A``, ``OFF_A_PRICE``, ...,
    see :func:`hftcore.itch.spec.wire_constants`) and the spec length per type byte that
    the one framing walk (``itch_frame`` in ``_decode.pxd``) checks against; cimported by
    the decoder, the order book and the simulator.

Both are checked in; ``tests/itch/test_decode.py`` regenerates them and asserts they are
identical, and the compiled modules compare what they were built with against the spec at
import, so neither can drift from the spec.

Usage::

    python tools/gen_itch_decoder.py            # rewrite both files
    python tools/gen_itch_decoder.py --check    # exit 1 if a checked-in file is stale
    python tools/gen_itch_decoder.py --stdout   # print instead of writing
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "hftcore" / "itch" / "_decode_gen.pxi"
WIRE_OUTPUT = ROOT / "hftcore" / "itch" / "_wire.pxd"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hftcore.itch import spec  # noqa: E402

_LOAD = {2: "load_be16", 4: "load_be32", 6: "load_be48", 8: "load_be64"}
# Messages grouped per block of the fill pass: big enough to amortize the per-type loops,
# small enough that the block's index stays in L2. The fill packs a message's offset in its
# block into 32 bits, so BLOCK * (2 + 65535) bytes must fit: BLOCK <= 65535.
BLOCK = 32768
assert BLOCK * (2 + 0xFFFF) < 1 << 32
_STORE = {2: "store16", 4: "store32", 8: "store64"}


def _writer(msg: spec.Message) -> list[str]:
    """Cython lines of ``_write_<type>``: one statement per field, padding zeroed."""
    dt = spec.dtype(msg.type)
    fn = _func_name(msg)
    lines = [
        f"cdef inline void {fn}(uint8_t *r, const uint8_t *m, uint64_t seq) noexcept nogil:",
        f'    """{msg.type!r} {msg.name}: {msg.length} bytes in, {dt.itemsize}-byte row out."""',
        "    store64(r + 0, seq)",
    ]
    covered = [(0, 8)]
    for f in msg.all_fields:
        out_off = dt.fields[f.name][1]
        out_size = dt.fields[f.name][0].itemsize
        covered.append((out_off, out_off + out_size))
        if f.kind in ("alpha", "enum"):
            if f.size == 1:
                lines.append(f"    r[{out_off}] = m[{f.offset}]  # {f.name}")
            else:
                lines.append(f"    memcpy(r + {out_off}, m + {f.offset}, {f.size})  # {f.name}")
        else:
            store = _STORE[out_size]
            lines.append(f"    {store}(r + {out_off}, {_LOAD[f.size]}(m + {f.offset}))  # {f.name}")
    # Zero the alignment padding so rows are deterministic bytes (hashable, comparable).
    covered.sort()
    pos = 0
    for start, end in covered:
        if start > pos:
            lines.extend(_zero(pos, start))
        pos = max(pos, end)
    if pos < dt.itemsize:
        lines.extend(_zero(pos, dt.itemsize))
    return lines


def _zero(start: int, end: int) -> list[str]:
    out = []
    pos = start
    while pos < end:
        for size in (8, 4, 2, 1):
            if end - pos >= size and pos % size == 0:
                break
        if size == 1:
            out.append(f"    r[{pos}] = 0  # padding")
        else:
            out.append(f"    {_STORE[size]}(r + {pos}, 0)  # padding")
        pos += size
    return out


def _func_name(msg: spec.Message) -> str:
    # 'h' and 'H' are distinct types; keep the case visible but the names unique.
    return f"_write_{msg.type}" if msg.type.isupper() else f"_write_lower_{msg.type}"


def layout(msg: spec.Message) -> tuple:
    """``(itemsize, ((name, kind, wire offset, wire size, row offset), ...))`` of a type."""
    dt = spec.dtype(msg.type)
    return (
        dt.itemsize,
        tuple((f.name, f.kind, f.offset, f.size, dt.fields[f.name][1]) for f in msg.all_fields),
    )


def _layout_lines() -> list[str]:
    lines = []
    for msg in spec.MESSAGES:
        itemsize, fields = layout(msg)
        lines.append(f"    {msg.type!r}: ({itemsize}, (")
        lines.extend(f"        {f!r}," for f in fields)
        lines.append("    )),")
    return lines


def _c_table(name: str, ctype: str, values: list[int]) -> list[str]:
    lines = [f"    static const {ctype} {name}[256] = {{"]
    for i in range(0, 256, 16):
        lines.append("        " + ", ".join(str(v) for v in values[i : i + 16]) + ",")
    lines.append("    };")
    return lines


def generate() -> str:
    """The full text of ``_decode_gen.pxi``."""
    out = [
        "# Generated by tools/gen_itch_decoder.py from hftcore/itch/spec.py. Do not edit:",
        "# change the spec or the generator and rerun it (a test checks this file is fresh).",
        "# cython: language_level=3",
        "",
        "# Table index k (1-based) of each message type, in spec.MESSAGES order.",
        "GEN_TYPES = " + repr("".join(spec.TYPES)),
        "# The layout the writers below were generated for: per type, the row size and",
        "# (field, kind, wire offset, wire size, row offset). _decode.pyx checks it against the spec",
        "# at import, so a stale build fails loudly instead of writing fields to wrong places.",
        "GEN_LAYOUT = {",
        *_layout_lines(),
        "}",
        "",
        "cdef enum:",
        f"    N_ITCH_TYPES = {len(spec.MESSAGES)}  # tables are indexed 1..N_ITCH_TYPES",
        f"    ITCH_BLOCK = {BLOCK}  # messages per block of the fill pass",
    ]
    for msg in spec.MESSAGES:
        out.append("")
        out.extend(_writer(msg))
    out += [
        "",
        "",
        "cdef inline void fill_block(uint8_t **rows, const Py_ssize_t *count,",
        "                            const uint64_t *index, const uint8_t *base,",
        "                            uint64_t seq) noexcept nogil:",
        '    """Write one block of messages, grouped by table, as rows of their tables.',
        "",
        "    ``index[k * ITCH_BLOCK + j]`` holds the j-th message of table ``k`` in the block:",
        "    its offset from ``base`` (low 32 bits) and its seq after ``seq`` (high 32 bits).",
        "    One tight loop per type: no data-dependent branch per message.",
        '    """',
        "    cdef Py_ssize_t j",
        "    cdef uint8_t *r",
        "    cdef const uint64_t *e",
    ]
    for k, msg in enumerate(spec.MESSAGES, start=1):
        size = spec.dtype(msg.type).itemsize
        out += [
            f"    if count[{k}]:  # {msg.type!r} {msg.name}",
            f"        r = rows[{k}]",
            f"        e = index + {k} * ITCH_BLOCK",
            f"        for j in range(count[{k}]):",
            f"            {_func_name(msg)}(r, base + <uint32_t>e[j], seq + (e[j] >> 32))",
            f"            r += {size}",
            f"        rows[{k}] = r",
        ]
    out.append("")
    return "\n".join(out)


def _wire_comment(name: str) -> str:
    """The trailing comment of one constant of ``_wire.pxd``."""
    kind, _, rest = name.partition("_")
    if kind == "LEN" and rest in spec.BY_TYPE:
        return f"{rest!r} {spec.BY_TYPE[rest].name}: length"
    if kind in ("OFF", "SIZE") and rest[:1] in spec.BY_TYPE and rest[1:2] == "_":
        return ""  # the name says it
    return {
        "ITCH_FRAME_PREFIX": "BinaryFILE length prefix (big-endian)",
        "ITCH_HEADER_LENGTH": "header every message starts with",
        "ITCH_MAX_LENGTH": "longest message of the spec",
    }.get(name, "header field offset")


def generate_wire() -> str:
    """The full text of ``_wire.pxd``."""
    consts = spec.wire_constants()
    lengths = [0] * 256
    for msg in spec.MESSAGES:
        lengths[ord(msg.type)] = msg.length
    width = max(len(k) for k in consts) + len(" = 00")
    out = [
        "# Generated by tools/gen_itch_decoder.py from hftcore/itch/spec.py. Do not edit:",
        "# change the spec or the generator and rerun it (a test checks this file is fresh).",
        "# cython: language_level=3",
        '"""ITCH 5.0 wire layout: lengths and field offsets as named constants.',
        "",
        "Offsets count from the message's type byte (the byte after the BinaryFILE length",
        "prefix); lengths exclude the prefix. Modules cimporting these call",
        "``wire_constants()`` at import and compare it with",
        "``hftcore.itch.spec.wire_constants()``, so a build from a stale copy fails loudly.",
        '"""',
        "",
        "from libc.stdint cimport uint16_t",
        "",
        "",
        "cdef enum:",
    ]
    for name, value in consts.items():
        comment = _wire_comment(name)
        line = f"    {name} = {value}"
        out.append(f"{line:<{width + 4}}  # {comment}" if comment else line)
    out += [
        "",
        "cdef extern from *:",
        '    """',
        "    #include <stdint.h>",
        "    /* Wire length of each type byte per the spec (0: not an ITCH 5.0 type). */",
        *_c_table("hft_itch_spec_length", "uint16_t", lengths),
        '    """',
        "    # Length of each type byte's message per the spec; 0: not an ITCH 5.0 type.",
        '    const uint16_t *ITCH_SPEC_LENGTH "hft_itch_spec_length"',
        "",
        "",
        "cdef inline dict wire_constants():",
        '    """The constants above as this build compiled them."""',
        "    return {",
        *(f'        "{name}": {name},' for name in consts),
        "    }",
        "",
    ]
    return "\n".join(out)


def _outputs() -> list[tuple[Path, str]]:
    return [(OUTPUT, generate()), (WIRE_OUTPUT, generate_wire())]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if the checked-in file is stale")
    ap.add_argument("--stdout", action="store_true", help="print the output instead of writing")
    args = ap.parse_args(argv)
    outputs = _outputs()
    if args.stdout:
        for _, text in outputs:
            sys.stdout.write(text)
        return 0
    if args.check:
        stale = [p for p, text in outputs if (p.read_text() if p.exists() else "") != text]
        for p in stale:
            print(f"{p} is stale: run python tools/gen_itch_decoder.py", file=sys.stderr)
        return 1 if stale else 0
    for p, text in outputs:
        p.write_text(text)
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
