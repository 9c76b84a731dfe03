"""A Binance Spot stream corpus for the peer comparison, when ``hftcore.sim.binance`` is absent.

Newline-delimited JSON with the documented shapes (web-socket-streams.md): ``depthUpdate``
diffs of 1-20 levels a side (a share of them quantity 0, i.e. removals), ``trade`` events
and ``bookTicker`` (spot: no ``e``/``E``). Prices and quantities are 8-decimal strings.
"""

from __future__ import annotations

import numpy as np


def _dec8(units: int) -> str:
    """An integer count of 1e-8 units as Binance's 8-decimal string."""
    return f"{units // 100_000_000}.{units % 100_000_000:08d}"


def generate(messages: int = 100_000, symbol: str = "BTCUSDT", seed: int = 1) -> list[bytes]:
    """Return ``messages`` JSON messages: 50% depth diffs, 30% trades, 20% bookTicker."""
    rng = np.random.default_rng(seed)
    kinds = rng.random(messages).tolist()
    tick = 1_000_000  # 0.01 in 1e-8 units
    mid = 4_325_000 * tick  # 43250.00
    out = []
    update_id = 1_000_000
    trade_id = 5_000_000
    event_ms = 1_700_000_000_000
    for k in kinds:
        event_ms += int(rng.integers(0, 3))
        mid += int(rng.integers(-2, 3)) * tick
        if k < 0.5:
            sides = []
            for sign in (-1, 1):
                n = int(rng.integers(1, 21))
                offs = rng.choice(200, size=n, replace=False) + 1
                qtys = rng.integers(1, 5_000_000_000, n)
                qtys[rng.random(n) < 0.3] = 0  # removals
                sides.append(
                    ",".join(
                        f'["{_dec8(mid + sign * int(o) * tick)}","{_dec8(int(q))}"]'
                        for o, q in zip(offs, qtys, strict=True)
                    )
                )
            first = update_id + 1
            update_id += int(rng.integers(1, 10))
            msg = (
                f'{{"e":"depthUpdate","E":{event_ms},"s":"{symbol}","U":{first},'
                f'"u":{update_id},"b":[{sides[0]}],"a":[{sides[1]}]}}'
            )
        elif k < 0.8:
            trade_id += 1
            msg = (
                f'{{"e":"trade","E":{event_ms},"s":"{symbol}","t":{trade_id},'
                f'"p":"{_dec8(mid)}","q":"{_dec8(int(rng.integers(1, 10**9)))}",'
                f'"T":{event_ms},"m":{"true" if rng.random() < 0.5 else "false"},"M":true}}'
            )
        else:
            update_id += 1
            msg = (
                f'{{"u":{update_id},"s":"{symbol}","b":"{_dec8(mid - tick)}",'
                f'"B":"{_dec8(int(rng.integers(1, 10**9)))}","a":"{_dec8(mid + tick)}",'
                f'"A":"{_dec8(int(rng.integers(1, 10**9)))}"}}'
            )
        out.append(msg.encode())
    return out
