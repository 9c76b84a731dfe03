"""The rule every fuzz target enforces, as small checks shared by the targets.

Issue 9's rule for every public entry point, on any input:

- it returns, or raises :class:`hftcore.DecodeError` (or ``BookError`` / ``ValueError``
  where the entry point documents them); any other exception is a finding;
- the output is bounded by a small constant times the input (rows, string lengths,
  array sizes): :func:`check_size`;
- the type of every returned value does not depend on the input: :func:`check_record`,
  :func:`check_tables`, :func:`check_dtype`;
- one symbol's message never touches another symbol's book (checked in the BookSync
  target).

A violated check raises :class:`Finding`, which the targets let through, so atheris saves
the input as a crash file. Exceptions the entry point does not document go through
unchanged (their traceback is the report).
"""

from __future__ import annotations

import functools
import typing
import warnings

import numpy as np

from hftcore.errors import DecodeError

#: Output weight allowed per input byte, plus a constant: generous for honest decoders
#: (an ITCH row is at most one per 3 input bytes, a Binance level needs ~8 bytes), tiny
#: next to the ~1 MB per byte of the amplification in issue 9 item 2.
SIZE_PER_BYTE = 4
SIZE_SLACK = 256


class Finding(AssertionError):
    """An input broke the rule (not raised for the documented exceptions)."""


def target(*allowed: type[BaseException]):
    """Decorate ``fn(data: bytes)``: the documented exceptions ``allowed`` (default
    :class:`DecodeError`) end the input quietly; everything else propagates.

    A ``DecodeError`` must also carry an int ``offset`` and a str ``reason`` (the rule:
    errors name the input and the offset).
    """
    allowed = allowed or (DecodeError,)

    def wrap(fn):
        @functools.wraps(fn)
        def run(data: bytes) -> None:
            with warnings.catch_warnings():
                # Documented warnings (e.g. bytes after the ITCH end-of-session) are fine.
                warnings.simplefilter("ignore")
                try:
                    fn(data)
                except allowed as exc:
                    if isinstance(exc, DecodeError):
                        check_decode_error(exc)

        run.allowed = allowed
        return run

    return wrap


def check_decode_error(exc: DecodeError) -> None:
    if type(exc.offset) is not int or not isinstance(exc.reason, str):
        raise Finding(f"DecodeError without an int offset / str reason: {exc!r}")


# ---------------------------------------------------------------------------- sizes


def weight(obj, _depth: int = 0) -> int:
    """A size of ``obj``: elements of arrays, characters of strings, items of containers
    (recursively), bytes of ints. Counts what a hostile input could make large."""
    if _depth > 50:
        return 1
    if isinstance(obj, np.ndarray):
        return int(obj.size)
    if isinstance(obj, (str, bytes, bytearray)):
        return len(obj)
    if isinstance(obj, bool) or obj is None:
        return 1
    if isinstance(obj, int):
        return obj.bit_length() // 8 + 1
    if isinstance(obj, float):
        return 1
    if isinstance(obj, dict):
        return 1 + sum(weight(k, _depth + 1) + weight(v, _depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return 1 + sum(weight(v, _depth + 1) for v in obj)
    if isinstance(obj, np.generic):
        return 1
    return 1


def check_size(n_input: int, out_weight: int, what: str) -> None:
    limit = SIZE_PER_BYTE * n_input + SIZE_SLACK
    if out_weight > limit:
        raise Finding(f"{what}: output weight {out_weight:,} for {n_input:,} input bytes "
                      f"(limit {limit:,})")  # fmt: skip


# ---------------------------------------------------------------------------- types


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _is(value, expected) -> bool:
    if expected is object:
        return True
    if expected is int:
        return type(value) is int  # not bool, not numpy ints
    if expected is bool:
        return type(value) is bool
    if expected is str:
        return type(value) is str
    if expected is np.ndarray:
        return type(value) is np.ndarray and value.dtype == np.int64 and value.ndim == 2
    if expected is dict:
        return type(value) is dict
    return isinstance(value, expected)


def check_record(rec, what: str) -> None:
    """Every field of the NamedTuple ``rec`` has its declared type (strictly: a bool is not
    an int, a numpy scalar is not an int), level arrays are int64 ``(n, 2)``."""
    for name, expected in _hints(type(rec)).items():
        value = getattr(rec, name)
        if not _is(value, expected):
            raise Finding(f"{what}: {type(rec).__name__}.{name} is {type(value).__name__} "
                          f"{_short(value)}, declared {getattr(expected, '__name__', expected)}")  # fmt: skip


def _short(value) -> str:
    r = repr(value)
    return r if len(r) < 80 else r[:77] + "..."


def _fields(dt: np.dtype):
    return None if dt.names is None else [(n, dt.fields[n][0]) for n in dt.names]


def check_dtype(arr, reference: np.dtype, what: str) -> None:
    """``arr`` is an ndarray with ``reference``'s fields (names and field dtypes; the
    byte layout may differ, as after ``np.concatenate`` of structured arrays)."""
    if (
        type(arr) is not np.ndarray
        or _fields(arr.dtype) != _fields(reference)
        or (reference.names is None and arr.dtype != reference)
    ):
        raise Finding(f"{what}: got {type(arr).__name__} {getattr(arr, 'dtype', None)}, "
                      f"expected dtype {reference}")  # fmt: skip


def check_tables(tables, reference, what: str) -> None:
    """``tables`` (a Mapping of arrays with ``counts``) has the keys, dtypes and count
    names of ``reference`` (the same function's result on empty input)."""
    if list(tables) != list(reference):
        raise Finding(f"{what}: tables {list(tables)} != {list(reference)}")
    for name in reference:
        check_dtype(tables[name], reference[name].dtype, f"{what}[{name!r}]")
    if list(tables.counts) != list(reference.counts):
        raise Finding(f"{what}: counts keys {list(tables.counts)}")
    for k, v in tables.counts.items():
        if type(v) is not int or v < 0:
            raise Finding(f"{what}: counts[{k!r}] = {v!r}")


# ---------------------------------------------------------------------------- books


def l2_state(book) -> tuple:
    """Everything observable of an L2Book, for before/after comparisons."""
    bids, asks = book.depth()
    return (bids.tobytes(), asks.tobytes(), book.bid_count, book.ask_count, book.dropped)


def call(fn, *args, allowed=(DecodeError,), **kwargs):
    """``fn(*args, **kwargs)``, or None when it raised one of ``allowed`` (checked like
    the targets do); other exceptions propagate."""
    try:
        return fn(*args, **kwargs)
    except allowed as exc:
        if isinstance(exc, DecodeError):
            check_decode_error(exc)
        return None
