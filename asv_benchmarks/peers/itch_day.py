"""A day-shaped ITCH 5.0 stream for the peer comparison, when ``hftcore.sim.itch`` is absent.

Internally consistent (every execute, cancel, delete and replace names a live order of the
same stock, executions never exceed the remaining shares), so every peer's book builder can
consume it without errors. Symbols get Zipf-like activity, as on a real day.
"""

from __future__ import annotations

import numpy as np

from hftcore import itch

DAY_START = 4 * 3600 * 10**9  # 04:00, ns since midnight
DAY_END = 20 * 3600 * 10**9


def _interleave(per_type: dict[str, dict[str, list]], seqs: dict[str, list], total: int) -> bytes:
    """Encode each type's columns and lay the messages out in ``seq`` order."""
    sizes = np.zeros(total, dtype=np.int64)
    for t, s in seqs.items():
        sizes[np.asarray(s, dtype=np.int64)] = itch.BY_TYPE[t].length + 2
    starts = np.zeros(total, dtype=np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    out = np.empty(int(sizes.sum()), dtype=np.uint8)
    for t, cols in per_type.items():
        size = itch.BY_TYPE[t].length + 2
        wire = np.frombuffer(itch.encode_table(t, cols), dtype=np.uint8).reshape(-1, size)
        mine = starts[np.asarray(seqs[t], dtype=np.int64)]
        step = 1 << 16  # bounded index arrays: a few MB at a time
        for i in range(0, len(mine), step):
            idx = mine[i : i + step, None] + np.arange(size)
            out[idx.ravel()] = wire[i : i + step].ravel()
    return out.tobytes()


def generate(messages: int = 2_000_000, symbols: int = 5000, seed: int = 1) -> bytes:
    """Generate ``messages`` framed ITCH 5.0 messages over ``symbols`` stocks.

    The stream opens with system events, the stock directory (R), trading actions (H) and a
    few Reg SHO (Y) / participant (L) messages, then order flow: adds (A/F), deletes (D),
    replaces (U), executions (E/C), partial cancels (X), non-cross trades (P) and NOII (I),
    and closes with the end-of-day system events.
    """
    rng = np.random.default_rng(seed)
    cols: dict[str, dict[str, list]] = {}
    seqs: dict[str, list] = {}
    n = 0

    def emit(t, ts, **f):
        nonlocal n
        c = cols.get(t)
        if c is None:
            c = cols[t] = {k: [] for k in ("stock_locate", "timestamp", *f) if k != "locate"}
            seqs[t] = []
        c["stock_locate"].append(f.pop("locate", 0))
        c["timestamp"].append(ts)
        for k, v in f.items():
            c[k].append(v)
        seqs[t].append(n)
        n += 1

    names = [f"S{i:05d}"[:8].encode() for i in range(symbols)]
    mids = (rng.integers(5, 500, symbols) * 10_000).tolist()  # raw price, 4 decimals
    ts = DAY_START
    emit("S", ts, locate=0, event_code=b"O")
    for loc in range(1, symbols + 1):
        emit("R", ts, locate=loc, stock=names[loc - 1], market_category=b"Q",
             financial_status=b"N", round_lot_size=100, round_lots_only=b"N",
             issue_classification=b"C", issue_subtype=b"Z", authenticity=b"P",
             short_sale_threshold=b"N", ipo_flag=b" ", luld_tier=b"1", etp_flag=b"N",
             etp_leverage_factor=0, inverse_indicator=b"N")  # fmt: skip
    for loc in range(1, symbols + 1):
        emit("H", ts, locate=loc, stock=names[loc - 1], trading_state=b"T", reserved=b" ",
             reason=b"    ")  # fmt: skip
    emit("S", ts, locate=0, event_code=b"S")
    emit("S", ts, locate=0, event_code=b"Q")
    preamble = n
    flow = max(messages - preamble - 3, 0)
    # Zipf-like activity: a few symbols carry most of the flow.
    weight = 1.0 / np.arange(1, symbols + 1) ** 0.9
    locs = (rng.choice(symbols, size=flow, p=weight / weight.sum()) + 1).tolist()
    action = rng.random(flow).tolist()
    side_draw = rng.random(flow).tolist()
    ticks = rng.integers(1, 40, flow).tolist()
    lots = rng.integers(1, 20, flow).tolist()
    pick = rng.random(flow).tolist()
    gaps = rng.integers(1, 2 * (DAY_END - DAY_START) // max(flow, 1), flow).tolist()

    live: list[list[int]] = [[] for _ in range(symbols + 1)]  # per locate: order refs
    pos: dict[int, int] = {}  # order_ref -> index in live[locate]
    orders: dict[int, list] = {}  # order_ref -> [locate, side, price, shares]
    next_ref = 1
    match = 1

    def remove(ref):
        o = orders.pop(ref)
        lst = live[o[0]]
        i = pos.pop(ref)
        last = lst.pop()
        if last != ref:
            lst[i] = last
            pos[last] = i
        return o

    def add(ref, loc, side, price, shares):
        orders[ref] = [loc, side, price, shares]
        pos[ref] = len(live[loc])
        live[loc].append(ref)

    for k in range(flow):
        ts += gaps[k]
        loc = locs[k]
        a = action[k]
        refs = live[loc]
        if a < 0.42 or not refs:
            side = b"B" if side_draw[k] < 0.5 else b"S"
            off = ticks[k] * 100
            price = mids[loc - 1] - off if side == b"B" else mids[loc - 1] + off
            shares = lots[k] * 100
            if a < 0.40 or not refs:
                emit("A", ts, locate=loc, order_ref=next_ref, side=side, shares=shares,
                     stock=names[loc - 1], price=price)  # fmt: skip
            else:
                emit("F", ts, locate=loc, order_ref=next_ref, side=side, shares=shares,
                     stock=names[loc - 1], price=price, attribution=b"MPID")  # fmt: skip
            add(next_ref, loc, side, price, shares)
            next_ref += 1
            continue
        ref = refs[int(pick[k] * len(refs))]
        o = orders[ref]
        if a < 0.69:
            remove(ref)
            emit("D", ts, locate=loc, order_ref=ref)
        elif a < 0.77:
            remove(ref)
            off = ticks[k] * 100
            price = mids[loc - 1] - off if o[1] == b"B" else mids[loc - 1] + off
            shares = lots[k] * 100
            emit("U", ts, locate=loc, original_order_ref=ref, new_order_ref=next_ref,
                 shares=shares, price=price)  # fmt: skip
            add(next_ref, loc, o[1], price, shares)
            next_ref += 1
        elif a < 0.87:
            done = min(o[3], lots[k] * 50)
            if a < 0.85:
                emit("E", ts, locate=loc, order_ref=ref, executed_shares=done,
                     match_number=match)  # fmt: skip
            else:
                emit("C", ts, locate=loc, order_ref=ref, executed_shares=done,
                     match_number=match, printable=b"Y", execution_price=o[2] + 100)  # fmt: skip
            match += 1
            o[3] -= done
            if o[3] == 0:
                remove(ref)
        elif a < 0.92 and o[3] > 100:
            cut = min(o[3] - 100, lots[k] * 50)
            emit("X", ts, locate=loc, order_ref=ref, cancelled_shares=cut)
            o[3] -= cut
        elif a < 0.985:
            emit("P", ts, locate=loc, order_ref=0, side=b"B", shares=lots[k] * 100,
                 stock=names[loc - 1], price=mids[loc - 1], match_number=match)  # fmt: skip
            match += 1
        else:
            emit("I", ts, locate=loc, paired_shares=lots[k] * 1000, imbalance_shares=500,
                 imbalance_direction=b"B", stock=names[loc - 1], far_price=mids[loc - 1],
                 near_price=mids[loc - 1], current_reference_price=mids[loc - 1],
                 cross_type=b"C", price_variation_indicator=b"1")  # fmt: skip
    for code in (b"M", b"E", b"C"):
        emit("S", ts, locate=0, event_code=code)
    return _interleave(cols, seqs, n)
