"""Slippage by order size against the simulator's books, through unmodified ccxt over HTTP.

    python bench/slippage.py [--samples 100] [--seed 7] [--json out.json]

At `--samples` seeded random moments of each perpetual's shipped data (BTC-USDT-SWAP 2022-01 -> 2026-04, 4H
then 15m bars; ETH-USDT-SWAP 2022-09 -> 2022-12, 5m bars), a replay world is made at that moment and, for each
size, a fresh account sends a market buy then a market sell of that size (each account walks its own book:
depletion is per account, so sizes do not disturb each other). Slippage is the fill's average price against
the mid of the book read just before, in basis points, worse = positive: (avg - mid) / mid for a buy, (mid -
avg) / mid for a sell. It includes the half spread (0.5 bp or one tick). Sizes are BTC-equivalent notionals:
0.1, 1, 10 and 50 BTC at the BTC price of that moment; ETH orders are the same USDT notional in ETH contracts.
The seed KPI "slippage <= 2 bps" is read against these figures.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import load, machine, percentile, say, write_json  # noqa: E402

SIZES_BTC = (0.1, 1.0, 10.0, 50.0)
INSTRUMENTS = {"BTC-USDT-SWAP": "BTC/USDT:USDT", "ETH-USDT-SWAP": "ETH/USDT:USDT"}
KPI_BPS = 2.0


def sample_times(market: Any, inst_id: str, n: int, rng: random.Random) -> list[int]:
    """`n` moments with a price, on the minute, uniformly over the instrument's data (and where BTC has a price
    too, for the BTC-equivalent notional)."""
    path, btc = market.path(inst_id), market.path("BTC-USDT-SWAP")
    out: list[int] = []
    while len(out) < n:
        t = rng.randrange(path.start_ms, path.end_ms - 60_000) // 60_000 * 60_000 + 30_000
        if path.price_at(t) is not None and btc.price_at(t) is not None:
            out.append(t)
    return sorted(out)


def measure(samples: int, seed: int) -> dict[str, Any]:
    from okxlab.simulator import SimServer, Simulator, ccxt_okx

    sim = Simulator(agents=False, default_clock="replay")
    rng = random.Random(seed)
    rows: dict[str, dict[float, list[float]]] = {k: {s: [] for s in SIZES_BTC} for k in INSTRUMENTS}
    levels: dict[str, list[float]] = {k: [] for k in INSTRUMENTS}
    with SimServer(sim, port=0).start() as server:
        n = 0
        for inst_id, symbol in INSTRUMENTS.items():
            for t in sample_times(sim.market, inst_id, samples, rng):
                n += 1
                name = f"s{n}"
                accounts = [{"api_key": f"k{n}-{i}", "secret": "s", "passphrase": "P", "equity": 1e9}
                            for i in range(len(SIZES_BTC))]
                server.admin.create_world(name, clock="replay", start=t, agents=False, accounts=accounts)
                spec = sim.market.spec(inst_id)
                btc_px = sim.market.path("BTC-USDT-SWAP").price_at(t)
                for size, acct in zip(SIZES_BTC, accounts, strict=True):
                    ex = ccxt_okx(server.world_url(name), acct["api_key"], "s", "P", enableRateLimit=False)
                    if size == SIZES_BTC[0]:
                        book = ex.fetch_order_book(symbol, 1)
                        mid = (book["asks"][0][0] + book["bids"][0][0]) / 2
                        levels[inst_id].append(book["asks"][0][0] * book["asks"][0][1] * spec.ct_val)
                    ex.set_leverage(100, symbol)
                    contracts = max(spec.lot_sz, round(size * btc_px / (mid * spec.ct_val) / spec.lot_sz) * spec.lot_sz)
                    contracts = round(contracts, spec.sz_decimals)
                    for side, sign in (("buy", 1.0), ("sell", -1.0)):
                        order = ex.fetch_order(ex.create_order(symbol, "market", side, contracts)["id"], symbol)
                        rows[inst_id][size].append(sign * (order["average"] - mid) / mid * 1e4)
                server.admin.delete_world(name)
    out: dict[str, Any] = {"samples": samples, "seed": seed, "instruments": {}}
    for inst_id, by_size in rows.items():
        out["instruments"][inst_id] = {
            "first_level_usd_median": percentile(levels[inst_id], 50),
            "sizes": {str(s): {"median": percentile(v, 50), "p90": percentile(v, 90), "max": max(v), "orders": len(v)}
                      for s, v in by_size.items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=100, help="moments per instrument")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    load_before = load()
    t0 = time.perf_counter()
    result = measure(args.samples, args.seed)
    result.update(seconds=round(time.perf_counter() - t0, 1), load_before=load_before, load_after=load(),
                  machine=machine())
    for inst_id, data in result["instruments"].items():
        say(f"{inst_id}: first book level median {data['first_level_usd_median']:,.0f} USDT")
        for size, f in data["sizes"].items():
            kpi = "met" if f["median"] <= KPI_BPS else "missed"
            say(f"  {size:>5} BTC-eq: median {f['median']:.2f} bps, p90 {f['p90']:.2f}, max {f['max']:.2f} "
                f"({f['orders']} orders; KPI <= {KPI_BPS:g} bps at the median: {kpi})")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
