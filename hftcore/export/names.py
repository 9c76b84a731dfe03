"""Day labels from file names (no pyarrow needed: LOBSTER files use them too)."""

from __future__ import annotations

import datetime as _dt
import os
import re

__all__ = ["date_from_name", "source_stem", "day_label"]

_NAME_DATE = re.compile(r"(?<!\d)(\d{2})(\d{2})(\d{4})\.NASDAQ_ITCH50", re.IGNORECASE)
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_SUFFIXES = (".gz", ".itch", ".bin", ".ndjson", ".jsonl", ".json", ".txt")


def date_from_name(name) -> _dt.date | None:
    """The trading day of a NASDAQ file name (``01302020.NASDAQ_ITCH50.gz``: 2020-01-30).

    Also accepts ``YYYY-MM-DD`` / ``YYYYMMDD`` anywhere in the base name. None when the
    name carries no valid date.
    """
    base = os.path.basename(str(name))
    for rx, order in ((_NAME_DATE, (2, 0, 1)), (_ISO_DATE, (0, 1, 2))):
        m = rx.search(base)
        if m:
            parts = m.groups()
            try:
                return _dt.date(int(parts[order[0]]), int(parts[order[1]]), int(parts[order[2]]))
            except ValueError:
                continue
    return None


def source_stem(path) -> str:
    """The file name without its data suffixes: ``01302020.NASDAQ_ITCH50.gz`` ->
    ``01302020.NASDAQ_ITCH50``; ``day1.itch.gz`` -> ``day1``."""
    name = os.path.basename(os.fspath(path))
    changed = True
    while changed:
        changed = False
        for s in _SUFFIXES:
            if name.lower().endswith(s) and len(name) > len(s):
                name = name[: -len(s)]
                changed = True
    return name


def day_label(path, date=None) -> tuple[str, _dt.date | None]:
    """``(label, date)`` of a day file: the date as ``YYYY-MM-DD`` when ``date`` is given
    or the name carries one, else the file's stem and None."""
    if isinstance(date, str):
        date = _dt.date.fromisoformat(date)
    if date is None:
        date = date_from_name(path)
    if date is not None:
        return date.isoformat(), date
    return source_stem(path), None
