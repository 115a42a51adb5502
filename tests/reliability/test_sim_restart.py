"""The simulator SIGKILLed with positions, orders and stops open, then started again: nothing lost, no id reused.

`okxlab sim` runs as a real process (python -m okxlab.simulator, its data directory in tmp) on a fixed port;
unmodified ccxt trades against it. Each trial trades (leverage, market orders with attached stop loss and take
profit, a resting limit order, an amended one, a canceled one, a standalone stop, a refused order, clock moves
that fill and close things), reads everything an account and the admin API show as raw payloads, SIGKILLs the
process right after the last answer, starts it again and reads everything again: it must be identical. The next
fill must then get trade, order, algo and bill ids never seen before. Last, `--fresh` starts over: 10,000 USDT,
no position, and still no id seen before. A realtime world's market time must go on from where it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ccxt
import pytest

from okxlab.simulator.clock import iso, parse_time
from tests.reliability.harness import Results, free_port
from tests.reliability.sim_process import SimProcess

KEY, SECRET, PASSPHRASE = "restart-key-5e8a1d", "restart-secret-c47b02", "restart-pass-91"
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
START = parse_time("2022-09-13T08:00:00Z")
HOUR = 3_600_000
TRIALS = 4
ARGS = ("--no-agents", "--account", f"{KEY}:{SECRET}:{PASSPHRASE}")


@pytest.fixture
def sim_process(tmp_path: Path) -> Iterator[SimProcess]:
    sim = SimProcess(tmp_path / "home", free_port(), *ARGS, "--clock", "replay", "--start", iso(START))
    yield sim
    sim.stop()


def client(sim: SimProcess) -> ccxt.okx:
    return sim.client(KEY, SECRET, PASSPHRASE)


def view(sim: SimProcess) -> dict:
    """Everything the account and the admin API show, as raw payloads: a replay clock stands still, so two
    reads with nothing in between are identical, timestamps included."""
    ex, admin = client(sim), sim.admin()
    swap = {"instType": "SWAP"}
    return {
        "balance": ex.privateGetAccountBalance()["data"],
        "positions": ex.privateGetAccountPositions()["data"],
        "closed positions": ex.privateGetAccountPositionsHistory()["data"],
        "leverage": [ex.privateGetAccountLeverageInfo({"instId": i, "mgnMode": "cross"})["data"]
                     for i in ("BTC-USDT-SWAP", "ETH-USDT-SWAP")],
        "open orders": ex.privateGetTradeOrdersPending()["data"],
        "orders": ex.privateGetTradeOrdersHistory(swap)["data"],
        "algo orders": ex.privateGetTradeOrdersAlgoPending({"ordType": "conditional,oco,trigger"})["data"]
        + ex.privateGetTradeOrdersAlgoHistory({"ordType": "conditional,oco,trigger", "state": "effective"})["data"]
        + ex.privateGetTradeOrdersAlgoHistory({"ordType": "conditional,oco,trigger", "state": "canceled"})["data"],
        "fills": ex.privateGetTradeFillsHistory(swap)["data"],
        "clock": ex.publicGetPublicTime()["data"],
        "admin": {"world": admin.world("default"), "orders": admin.orders("default"), "fills": admin.fills("default")},
    }


def ids(v: dict) -> set[str]:
    out = set()
    for f in v["fills"]:
        out |= {f"trade:{f['tradeId']}", f"bill:{f['billId']}"}
    out |= {f"ord:{o['ordId']}" for o in v["admin"]["orders"]["orders"]}
    out |= {f"algo:{a['algoId']}" for a in v["admin"]["orders"]["algos"]}
    return out


def trade(sim: SimProcess, trial: int) -> None:
    ex, admin = client(sim), sim.admin()
    now = ex.fetch_time()
    ex.set_leverage(3 + trial, BTC)
    last = ex.fetch_ticker(BTC)["last"]
    ex.create_order(BTC, "market", "buy", 2, None, {"stopLoss": {"triggerPrice": round(last * 0.9, 1)},
                                                    "takeProfit": {"triggerPrice": round(last * 1.1, 1)}})
    resting = ex.create_order(BTC, "limit", "buy", 1, round(last * 0.96, 1))
    ex.edit_order(resting["id"], BTC, "limit", "buy", 1, round(last * 0.97, 1))
    gone = ex.create_order(BTC, "limit", "buy", 1, round(last * 0.95, 1))
    ex.cancel_order(gone["id"], BTC)
    eth = ex.fetch_ticker(ETH)["last"]
    ex.create_order(ETH, "market", "sell", 3, None, {"stopLoss": {"triggerPrice": round(eth * 1.08, 2)}})
    ex.create_order(ETH, "market", "buy", 1, None, {"reduceOnly": True})
    with pytest.raises(ccxt.ExchangeError):
        ex.create_order(BTC, "limit", "buy", 1, round(last * 2, 1))  # beyond the price limit: a refusal
    admin.set_clock("default", now + 6 * HOUR)  # the path fills, triggers, or leaves things resting
    if ex.fetch_positions([ETH]):  # flat (unless its stop did it): a closed position
        ex.privatePostTradeClosePosition({"instId": "ETH-USDT-SWAP", "mgnMode": "cross"})
    ex.create_order(BTC, "limit", "buy", 1, round(ex.fetch_ticker(BTC)["last"] * 0.97, 1))  # resting at the kill


def test_a_simulator_killed_and_restarted_loses_nothing_and_reuses_no_id(sim_process: SimProcess,
                                                                         results: Results) -> None:
    sim = sim_process.start()
    seen: set[str] = set()
    survived = {k: 0 for k in ("balance", "positions", "closed positions", "leverage", "open orders", "orders",
                               "algo orders", "fills", "clock", "admin")}
    reused, new_ids, kinds = 0, 0, set()
    for trial in range(TRIALS):
        trade(sim, trial)
        before = view(sim)
        assert before["positions"] and before["open orders"] and before["fills"]
        sim.kill()  # right after the last answer
        sim.start()
        after = view(sim)
        for part in survived:
            survived[part] += after[part] == before[part]
        assert after == before, [k for k in before if after[k] != before[k]]
        assert "resumed from" in sim.since_start()
        # The next fill: ids never seen before (this state's, or an earlier trial's).
        seen |= ids(before)
        client(sim).create_order(BTC, "market", "buy", 1)
        fresh = ids(view(sim)) - ids(before)
        assert {i.split(":")[0] for i in fresh} >= {"trade", "bill", "ord"}
        reused += len(fresh & seen)
        new_ids += len(fresh)
        kinds |= {i.split(":")[0] for i in fresh}
        seen |= fresh
    assert reused == 0
    # Starting over on purpose: nothing of the old worlds, and still no id seen before.
    sim.kill()
    sim.start("--fresh")
    ex = client(sim)
    assert ex.fetch_balance()["USDT"]["total"] == 10_000 and ex.fetch_positions() == []
    assert ex.fetch_time() == START
    ex.create_order(BTC, "market", "buy", 1, None, {"stopLoss": {"triggerPrice": 15000}})
    after_fresh = ids(view(sim))
    fresh_reused = len(after_fresh & seen)
    assert after_fresh and fresh_reused == 0
    trade_ids = sorted(int(i.split(":")[1]) for i in seen if i.startswith("trade:"))
    assert min(int(i.split(":")[1]) for i in after_fresh if i.startswith("trade:")) > trade_ids[-1]
    results.record("sim_restart", trials=TRIALS, kill="SIGKILL right after the last answer",
                   survived={k: f"{v}/{TRIALS}" for k, v in survived.items()},
                   ids_checked=len(seen), new_ids_after_restarts=new_ids, id_kinds=sorted(kinds),
                   ids_reused=reused, fresh_start_ids_reused=fresh_reused,
                   fills_at_last_kill=len(before["fills"]), orders_at_last_kill=len(before["admin"]["orders"]["orders"]))


def test_a_realtime_world_resumes_its_market_time(tmp_path: Path, results: Results) -> None:
    sim = SimProcess(tmp_path / "home", free_port(), *ARGS, "--clock", "realtime", "--speed", "3600",
                     "--start", iso(START))
    try:
        sim.start()
        ex = client(sim)
        ex.create_order(BTC, "market", "buy", 1)
        before = ex.fetch_time()
        assert before > START
        sim.kill()
        sim.start()
        after = client(sim).fetch_time()
        assert after >= before  # on from where it was (by its wall-clock anchor), not back at its start
        assert client(sim).fetch_positions()[0]["contracts"] == 1
    finally:
        sim.stop()
    results.record("sim_restart_realtime", market_time_before_kill=iso(before), market_time_after_restart=iso(after),
                   start=iso(START), went_back=after < before)
