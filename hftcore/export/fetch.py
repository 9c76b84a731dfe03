"""NASDAQ's public ITCH 5.0 sample days: list them and download them.

NASDAQ publishes sample day files (``MMDDYYYY.NASDAQ_ITCH50.gz``, several GB each) in a
plain directory listing, with an ``.md5sum`` file beside each. :func:`list_days` reads the
listing; :func:`fetch_day` downloads a day to ``DEST/<name>.part``, resuming from the
bytes already there (HTTP ``Range``) after an interruption, checks the MD5 against the
published checksum when there is one, and only then renames the file to its name.

The base URL is :data:`DEFAULT_BASE_URL`, or ``$HFTCORE_ITCH_URL``, or the ``base_url``
argument (``--base-url``): a mirror or a local server works the same way.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from hftcore.errors import HftcoreError

__all__ = ["DEFAULT_BASE_URL", "base_url", "list_days", "fetch_day", "FetchError"]

DEFAULT_BASE_URL = "https://emi.nasdaq.com/ITCH/Nasdaq%20ITCH/"
_NAME = re.compile(r"(\d{8})\.NASDAQ_ITCH50(?:\.gz)?")
_HREF = re.compile(r"""href\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")
_BLOCK = 1 << 20


class FetchError(HftcoreError):
    """A listing or download failed (the message names the URL)."""


def base_url(url=None) -> str:
    """The listing URL: ``url``, else ``$HFTCORE_ITCH_URL``, else NASDAQ's; ends in ``/``."""
    url = url or os.environ.get("HFTCORE_ITCH_URL") or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def _open(url, headers=None, timeout=30):
    req = urllib.request.Request(url, headers={"User-Agent": "hftcore", **(headers or {})})
    return urllib.request.urlopen(req, timeout=timeout)


def _date_of(name: str) -> _dt.date | None:
    m = _NAME.fullmatch(name)
    if not m:
        return None
    d = m.group(1)
    try:
        return _dt.date(int(d[4:]), int(d[:2]), int(d[2:4]))
    except ValueError:
        return None


def list_days(url=None, timeout=30) -> list[tuple[_dt.date, str]]:
    """``(date, file name)`` of every ITCH 5.0 day file in the listing, oldest first."""
    url = base_url(url)
    try:
        with _open(url, timeout=timeout) as r:
            text = r.read().decode("latin-1")
    except (urllib.error.URLError, OSError) as e:
        raise FetchError(f"{url}: cannot read the listing: {e}") from None
    found = {}
    for href in _HREF.findall(text):
        name = urllib.parse.unquote(html.unescape(href)).rstrip("/").rsplit("/", 1)[-1]
        d = _date_of(name)
        if d is not None:
            found[name] = d
    return sorted(((d, n) for n, d in found.items()), key=lambda x: (x[0], x[1]))


def parse_date(text: str) -> _dt.date:
    """``YYYY-MM-DD`` or NASDAQ's ``MMDDYYYY``."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{8}", text):
            return _dt.date(int(text[4:]), int(text[:2]), int(text[2:4]))
        return _dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD or MMDDYYYY): {text!r}") from None


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _download(url, part: Path, timeout, progress):
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        r = _open(url, headers, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already whole
            return
        raise
    with r:
        if have and r.status != 206:
            have = 0  # the server ignored the range: start again
        total = r.headers.get("Content-Length")
        total = have + int(total) if total is not None else None
        with open(part, "ab" if have else "wb") as f:
            done = have
            while block := r.read(_BLOCK):
                f.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
        if total is not None and done < total:
            raise OSError(f"connection closed after {done:,} of {total:,} bytes")


def fetch_day(date, dest=".", *, url=None, attempts=3, timeout=60, progress=None,
              listing=None) -> dict:  # fmt: skip
    """Download the sample day file of ``date`` into ``dest`` (resumable, MD5-checked).

    Parameters
    ----------
    date : str or datetime.date
        ``YYYY-MM-DD`` or ``MMDDYYYY``.
    dest : str or os.PathLike
        Directory for the file (created).
    url : str, optional
        The listing's base URL (see :func:`base_url`).
    attempts : int
        Tries, each resuming where the last stopped.
    progress : callable, optional
        ``progress(bytes_done, bytes_total_or_None)``.
    listing : list, optional
        The result of :func:`list_days`, to avoid reading it again.

    Returns
    -------
    dict
        ``path``, ``bytes``, ``md5``, ``checked`` (True: equal to the published
        checksum; None: none published), ``skipped`` (the file was already there).

    Raises
    ------
    FetchError
        No file for that date, the download kept failing (the ``.part`` file stays, so
        a rerun resumes), or the checksum differs (the ``.part`` file is deleted).
    """
    if not isinstance(date, _dt.date):
        date = parse_date(str(date))
    base = base_url(url)
    days = listing if listing is not None else list_days(base, timeout)
    names = [n for d, n in days if d == date]
    if not names:
        raise FetchError(f"{base}: no ITCH 5.0 day file for {date.isoformat()}")
    name = sorted(names, key=lambda n: not n.endswith(".gz"))[0]
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / name
    if final.exists():
        return {"path": str(final), "bytes": final.stat().st_size, "md5": None,
                "checked": None, "skipped": True}  # fmt: skip
    file_url = base + urllib.parse.quote(name)
    part = dest / (name + ".part")
    for attempt in range(1, int(attempts) + 1):
        try:
            _download(file_url, part, timeout, progress)
            break
        except (urllib.error.URLError, OSError) as e:
            if attempt == attempts:
                have = part.stat().st_size if part.exists() else 0
                raise FetchError(
                    f"{file_url}: {e} (after {attempts} attempts; {have:,} bytes kept in "
                    f"{part}: run again to resume)"
                ) from None
            time.sleep(min(0.2 * attempt, 2))
    digest = _md5(part)
    published = None
    try:
        with _open(file_url + ".md5sum", timeout=timeout) as r:
            m = _MD5.search(r.read().decode("latin-1"))
            published = m.group(1).lower() if m else None
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise FetchError(f"{file_url}.md5sum: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError) as e:
        raise FetchError(f"{file_url}.md5sum: {e}") from None
    if published is not None and published != digest:
        part.unlink()
        raise FetchError(
            f"{file_url}: MD5 {digest} differs from the published {published}; the download "
            f"was deleted"
        )
    os.replace(part, final)
    return {"path": str(final), "bytes": final.stat().st_size, "md5": digest,
            "checked": True if published is not None else None, "skipped": False}  # fmt: skip
