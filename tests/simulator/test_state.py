"""The simulator's state file: everything resumed after a restart, no id reused, secrets of its own accounts
not written, one simulator per file. In-process (SimServer over a Simulator with `state=`) for speed; the kill -9
of a real `okxlab sim` process is tests/reliability/test_sim_restart.py."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ccxt
import pytest

from okxlab.simulator import AccountSpec, SimServer, Simulator, ccxt_okx
from okxlab.simulator.clock import parse_time
from okxlab.simulator.state import StateError

SYM, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
KEY, SECRET, PASSPHRASE = "cfg-key-7d1e0b5a93", "cfg-secret-2c8f4e61ab", "cfg-pass-Z5x9"
ADMIN_KEY, ADMIN_SECRET, ADMIN_PASS = "adm-key-41f0c2e8d7", "adm-secret-9a3b5d7e1f", "adm-pass-K2m4"
START = "2022-09-13T08:00:00Z"


@contextmanager
def served(market, state: Path, **kwargs) -> Iterator[tuple[Simulator, SimServer]]:
    sim = Simulator(market, agents=False, accounts=[AccountSpec(KEY, SECRET, PASSPHRASE)], default_clock="replay",
                    start=START, state=state, **kwargs)
    try:
        with SimServer(sim).start() as server:
            yield sim, server
    finally:
        sim.close()


def ex_for(server: SimServer, world: str = "default", key: str = KEY, secret: str = SECRET,
           passphrase: str = PASSPHRASE) -> ccxt.okx:
    return ccxt_okx(server.world_url(world), key, secret, passphrase, enableRateLimit=False)


def view(ex: ccxt.okx, admin, world: str) -> dict:
    """Everything an account and the admin API show, as raw OKX payloads (a replay clock does not move)."""
    inst = {"instType": "SWAP"}
    return {
        "balance": ex.privateGetAccountBalance()["data"],
        "positions": ex.privateGetAccountPositions()["data"],
        "positions_history": ex.privateGetAccountPositionsHistory()["data"],
        "leverage": ex.privateGetAccountLeverageInfo({"instId": "BTC-USDT-SWAP", "mgnMode": "cross"})["data"],
        "pending": ex.privateGetTradeOrdersPending()["data"],
        "history": ex.privateGetTradeOrdersHistory(inst)["data"],
        "algos_pending": ex.privateGetTradeOrdersAlgoPending({"ordType": "conditional,oco,trigger"})["data"],
        "algos_history": ex.privateGetTradeOrdersAlgoHistory({"ordType": "conditional,oco", "state": "effective"})[
            "data"],
        "fills": ex.privateGetTradeFillsHistory(inst)["data"],
        "time": ex.publicGetPublicTime()["data"],
        "admin": admin.world(world), "admin_orders": admin.orders(world), "admin_fills": admin.fills(world),
    }


def ids(v: dict) -> set[str]:
    return ({f["tradeId"] for f in v["fills"]} | {f["billId"] for f in v["fills"]}
            | {o["ordId"] for o in v["admin_orders"]["orders"]} | {a["algoId"] for a in v["admin_orders"]["algos"]})


def trade(server: SimServer, world: str = "default") -> None:
    """Something of every kind: leverage, fills, an oco, a resting order amended, a canceled one, a trigger
    order, a stop hit (a position closed), a refused request, an account added through the admin API."""
    ex = ex_for(server, world)
    ex.set_leverage(5, SYM)
    ex.create_order(SYM, "market", "buy", 2, None, {"stopLoss": {"triggerPrice": 19000},
                                                     "takeProfit": {"triggerPrice": 25000}, "clientOrderId": "keep1"})
    resting = ex.create_order(SYM, "limit", "buy", 1, 21000, {"clientOrderId": "rest1"})
    ex.edit_order(resting["id"], SYM, "limit", "buy", 1, 21100)
    gone = ex.create_order(SYM, "limit", "buy", 1, 20900)
    ex.cancel_order(gone["id"], SYM)
    ex.create_order(ETH, "market", "sell", 1, None, {"stopLossPrice": 1500, "reduceOnly": True})
    with pytest.raises(ccxt.InvalidOrder):
        ex.create_order(SYM, "limit", "buy", 1, 1e9)  # beyond the price limit: recorded as refused
    server.admin.set_clock(world, "2022-09-13T16:00:00Z")
    ex.create_order(SYM, "limit", "buy", 1, round(ex.fetch_ticker(SYM)["last"] * 0.97, 1))  # still resting
    ex.create_order(ETH, "market", "buy", 2, None, {"stopLoss": {"triggerPrice": 1000}})
    ex.create_order(ETH, "market", "sell", 2, None, {"reduceOnly": True})  # a closed position
    server.admin.add_account(world, ADMIN_KEY, ADMIN_SECRET, ADMIN_PASS, equity=2500, label="guest")
    ex_for(server, world, ADMIN_KEY, ADMIN_SECRET, ADMIN_PASS).create_order(SYM, "market", "sell", 1)


def test_everything_is_resumed_and_no_id_is_reused(market, tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    with served(market, state) as (sim, server):
        server.admin.create_world("second", start=START, agents=False,
                                  accounts=[{"api_key": KEY, "secret": SECRET, "passphrase": PASSPHRASE}])
        trade(server)
        trade(server, "second")
        # The last requests before the stop change what no id or fill shows: still kept.
        ex_for(server).set_leverage(7, SYM)
        ex_for(server, "second").cancel_order(ex_for(server, "second").fetch_open_orders(SYM)[0]["id"], SYM)
        before = {w: view(ex_for(server, w), server.admin, w) for w in ("default", "second")}
        guest = ex_for(server, "default", ADMIN_KEY, ADMIN_SECRET, ADMIN_PASS).privateGetAccountPositions()["data"]
        assert before["default"]["positions"] and before["default"]["pending"] and before["default"]["algos_pending"]
        assert before["default"]["positions_history"] and before["default"]["admin_orders"]["rejections"]
    with served(market, state) as (sim, server):
        assert sim.resumed and set(sim.worlds) == {"default", "second"}
        for w in ("default", "second"):
            assert view(ex_for(server, w), server.admin, w) == before[w]
        # The account added through the admin API kept its own credentials.
        assert ex_for(server, "default", ADMIN_KEY, ADMIN_SECRET, ADMIN_PASS).privateGetAccountPositions()["data"] \
            == guest
        ex = ex_for(server)
        with pytest.raises(ccxt.InvalidOrder, match="51016"):  # clOrdIds are still unique forever
            ex.create_order(SYM, "market", "buy", 1, None, {"clientOrderId": "keep1"})
        assert ex.fetch_order(None, SYM, {"clientOrderId": "rest1"})["price"] == 21100
        # The clock and the resting orders go on as before: the amended order fills, the trigger order fires.
        server.admin.set_clock("default", "2022-09-14T16:00:00Z")
        ex.create_order(SYM, "market", "buy", 1)
        after = view(ex, server.admin, "default")
    old, new = ids(before["default"]), ids(after) - ids(before["default"])
    assert new and not new & old
    assert min(int(f["tradeId"]) for f in after["fills"] if f["tradeId"] in new) > \
        max(int(f["tradeId"]) for f in before["default"]["fills"])
    assert len(after["fills"]) > len(before["default"]["fills"])


def test_a_fresh_start_forgets_the_worlds_but_never_repeats_an_id(market, tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    with served(market, state) as (sim, server):
        trade(server)
        before = view(ex_for(server), server.admin, "default")
    with served(market, state, fresh=True) as (sim, server):
        assert not sim.resumed
        ex = ex_for(server)
        assert ex.fetch_balance()["USDT"]["total"] == 10_000 and ex.fetch_positions() == []
        ex.create_order(SYM, "market", "buy", 1)
        after = view(ex, server.admin, "default")
    assert after["fills"] and not ids(after) & ids(before)
    assert min(int(f["tradeId"]) for f in after["fills"]) > max(int(f["tradeId"]) for f in before["fills"])


def test_the_configured_accounts_secrets_are_not_written(market, tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    with served(market, state) as (sim, server):
        trade(server)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("sim.sqlite")]
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    blob = b"".join(p.read_bytes() for p in files)
    assert SECRET.encode() not in blob and PASSPHRASE.encode() not in blob
    assert ADMIN_SECRET.encode() in blob  # an admin-API account's credentials exist nowhere else
    # Started once without it (the account cannot sign in), then with rotated credentials: the new ones.
    sim = Simulator(market, agents=False, state=state)
    try:
        assert sim.world().accounts[KEY].secret == "" and sim.world().accounts[ADMIN_KEY].secret == ADMIN_SECRET
        sim.save(force=True)
    finally:
        sim.close()
    sim = Simulator(market, agents=False, accounts=[AccountSpec(KEY, "rotated", "new-pass")], state=state)
    try:
        assert (sim.world().accounts[KEY].secret, sim.world().accounts[KEY].passphrase) == ("rotated", "new-pass")
    finally:
        sim.close()


def test_a_realtime_clock_resumes_where_market_time_is_not_at_its_start(market, tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    sim = Simulator(market, agents=False, default_clock="realtime", start=START, speed=3600.0, state=state)
    time.sleep(0.01)  # some market time passes (36 s at this speed)
    with sim.lock:
        sim.world().sync()
        before = sim.world().now
        sim.save(force=True)
    sim.close()
    sim = Simulator(market, agents=False, default_clock="replay", start="2022-11-01T00:00:00Z", state=state)
    try:
        world = sim.world()
        world.sync()
        assert (world.clock.kind, world.clock.start_ms, world.clock.speed) == ("realtime", parse_time(START), 3600)
        assert world.now >= before > parse_time(START)  # on from where it was, by the same wall-clock anchor
    finally:
        sim.close()


def test_one_simulator_per_state_file_and_unusable_files_are_refused(market, tmp_path: Path) -> None:
    state = tmp_path / "sim.sqlite"
    first = Simulator(market, agents=False, state=state)
    try:
        with pytest.raises(StateError, match="another simulator is using"):
            Simulator(market, agents=False, state=state)
    finally:
        first.close()
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_text("not a database at all" * 100)
    with pytest.raises(StateError, match="--fresh"):
        Simulator(market, agents=False, state=garbage)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StateError, match="not a simulator state"):
        Simulator(market, agents=False, state=other)
    Simulator(market, agents=False, state=garbage, fresh=True).close()  # --fresh starts it over


def test_without_a_state_file_nothing_is_written(market, tmp_path: Path) -> None:
    home = Path(os.environ["OKXLAB_HOME"])
    with SimServer(Simulator(market, agents=False, default_clock="replay", start=START)).start() as server:
        ex_for(server).fetch_time()
        server.admin.create_world("x", start=START)
    assert not home.exists() or not any(home.iterdir())


def test_a_partly_filled_order_and_the_books_depletion_survive_a_restart(market, tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    t0 = parse_time(START)
    with served(market, state) as (_sim, server):
        ex = ex_for(server)
        ex.set_leverage(25, ETH)
        order = ex.create_order(ETH, "limit", "buy", 500, 1712.1)
        server.admin.set_clock("default", t0 + 5 * 60_000 - 2_000)  # partly filled in the 08:00 bar
        first = ex.fetch_order(order["id"], ETH)
        assert first["status"] == "open" and 0 < first["filled"] < 500
        ex.create_order(ETH, "market", "buy", 200, None)  # takes most of the best ask
    with served(market, state) as (_sim, server):
        ex = ex_for(server)
        server.admin.set_clock("default", t0 + 5 * 60_000 - 1)  # still the 08:00 bar: no second fill in it
        assert ex.fetch_order(order["id"], ETH)["filled"] == first["filled"]
        again = ex.fetch_order(ex.create_order(ETH, "market", "buy", 200, None)["id"], ETH)
        book = ex.fetch_order_book(ETH, 2)
        # the same account's second order walks the book its first depleted, as it would have without a restart
        assert again["average"] > book["asks"][0][0]
        server.admin.set_clock("default", t0 + 10 * 60_000 - 1)
        assert ex.fetch_order(order["id"], ETH)["status"] == "closed"
