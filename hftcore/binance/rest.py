"""Binance's REST depth snapshot: the URL, the blocking HTTP fetch and the body parser.

The I/O half of the local-book procedure; :class:`hftcore.binance.sync.BookSync` (the
state machine) calls a ``snapshot`` callable, by default :func:`rest_snapshot`, and
parses what it returns with :func:`parse_snapshot`.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

from hftcore.binance.decode import decode
from hftcore.binance.records import DepthSnapshot
from hftcore.binance.schema import check_market

__all__ = ["snapshot_url", "rest_snapshot", "parse_snapshot", "REST_DEPTH"]

#: market -> (REST depth endpoint, largest ``limit`` it accepts)
REST_DEPTH = {
    "spot": ("https://api.binance.com/api/v3/depth", 5000),
    "usdm": ("https://fapi.binance.com/fapi/v1/depth", 1000),
}


def snapshot_url(symbol: str, market: str = "spot", limit: int | None = None) -> str:
    """REST depth snapshot URL for ``symbol``.

    Parameters
    ----------
    symbol : str
        E.g. ``"BTCUSDT"`` (case-insensitive).
    market : {"spot", "usdm"}
        Binance Spot (``/api/v3/depth``) or USD-M futures (``/fapi/v1/depth``).
    limit : int, optional
        Levels per side; the market's maximum (spot 5000, USD-M 1000) when omitted.

    Returns
    -------
    str
    """
    base, max_limit = REST_DEPTH[check_market(market)]
    return f"{base}?symbol={symbol.upper()}&limit={limit or max_limit}"


def rest_snapshot(
    symbol: str, market: str = "spot", limit: int | None = None, timeout: float = 10.0
) -> Callable[[], bytes]:
    """A ``snapshot`` callable for :class:`~hftcore.binance.BookSync` that fetches
    Binance's REST depth.

    Parameters
    ----------
    symbol, market, limit
        As for :func:`snapshot_url`.
    timeout : float
        Seconds before the HTTP request gives up.

    Returns
    -------
    callable
        Takes no arguments, returns the response body (bytes); its ``url`` attribute
        is the URL it fetches.
    """
    url = snapshot_url(symbol, market, limit)

    def fetch() -> bytes:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.read()

    fetch.url = url
    return fetch


def parse_snapshot(body) -> DepthSnapshot:
    """Parse a REST depth snapshot body (``{"lastUpdateId":..,"bids":..,"asks":..}``).

    Parameters
    ----------
    body : bytes, str, dict or DepthSnapshot
        The response body as received, already-parsed JSON, or a record (returned as is).

    Returns
    -------
    DepthSnapshot

    Raises
    ------
    ValueError
        For a body that is not a depth snapshot (:class:`hftcore.DecodeError`, with the
        byte offset, for malformed JSON or numbers).
    """
    if isinstance(body, DepthSnapshot):
        return body
    if isinstance(body, dict):
        body = json.dumps(body)
    snap = decode(body)
    if not isinstance(snap, DepthSnapshot):
        raise ValueError(f"not a depth snapshot (decoded as {type(snap).__name__})")
    if snap.last_update_id < 0:
        raise ValueError(f"snapshot lastUpdateId is not an update id: {snap.last_update_id}")
    return snap
