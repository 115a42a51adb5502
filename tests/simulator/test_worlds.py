"""Worlds and clocks: independent replays, forward-only clocks, realtime play-back, data ranges, determinism."""

from __future__ import annotations

import time

import ccxt
import pytest

from okxlab.simulator import SimAdminError, Simulator
from okxlab.simulator.clock import parse_time

SYM = "ETH/USDT:USDT"


def test_worlds_have_their_own_clock_accounts_and_orders(new_world, admin) -> None:
    a = new_world("2022-09-13T08:00:00Z")
    b = new_world("2022-09-13T08:00:00Z")
    admin.add_account(b.name, a.key, a.secret, a.passphrase)  # the same key in another world
    ex_a, ex_b = a.exchange(), b.exchange()
    ex_b.apiKey, ex_b.secret, ex_b.password = a.key, a.secret, a.passphrase
    ex_a.create_order(SYM, "market", "buy", 10)
    a.set_clock("2022-09-13T12:00:00Z")
    assert ex_a.fetch_time() == parse_time("2022-09-13T12:00:00Z")
    assert ex_b.fetch_time() == parse_time("2022-09-13T08:00:00Z")
    assert ex_b.fetch_positions() == [] and ex_b.fetch_balance()["USDT"]["total"] == 10_000
    assert ex_a.fetch_position(SYM)["contracts"] == 10
    assert max(c[0] for c in ex_b.fetch_ohlcv(SYM, "5m")) == parse_time("2022-09-13T08:00:00Z")


def test_the_default_world_is_served_at_the_root(server) -> None:
    ex = ccxt.okx({"enableRateLimit": False})
    ex.set_sandbox_mode(True)
    ex.urls["api"] = {"rest": server.url}
    assert ex.fetch_time() == server.simulator.world().now == server.simulator.default_start


def test_the_clock_only_moves_forward(new_world, admin) -> None:
    w = new_world("2022-09-13T08:00:00Z")
    assert w.set_clock("2022-09-13T09:00:00Z")["now"] == parse_time("2022-09-13T09:00:00Z")
    with pytest.raises(SimAdminError, match="forward"):
        w.set_clock("2022-09-13T08:30:00Z")
    with pytest.raises(SimAdminError, match="ISO-8601"):
        w.set_clock("soon")


def test_candles_and_prices_follow_the_clock_and_never_run_ahead(new_world) -> None:
    w = new_world("2022-09-13T08:00:00Z")
    ex = w.exchange()
    for clock in ("2022-09-13T08:07:30Z", "2022-09-13T12:31:00Z", "2022-09-14T03:00:00Z"):
        w.set_clock(clock)
        now = parse_time(clock)
        assert ex.fetch_ticker(SYM)["timestamp"] == now
        for tf in ("5m", "1h", "4h", "1d"):
            candles = ex.fetch_ohlcv(SYM, tf, limit=300)
            assert candles and max(c[0] for c in candles) <= now
        raw = ex.publicGetMarketHistoryCandles({"instId": "ETH-USDT-SWAP", "bar": "5m", "after": now + 10**9})
        assert raw["data"][0][0] == str(now // 300_000 * 300_000) and raw["data"][0][8] == "0"
        assert all(row[8] == "1" for row in raw["data"][1:])
        assert all(int(t["timestamp"]) <= now for t in ex.fetch_trades(SYM, limit=50))


def test_instruments_without_data_at_the_clock_have_no_price(new_world) -> None:
    w = new_world("2022-09-13T08:00:00Z")  # spot data covers only 2022-01-07 .. 2022-02-26
    ex = w.exchange()
    markets = ex.load_markets()
    assert markets["BTC/USDT"]["active"] is False and markets[SYM]["active"] is True
    with pytest.raises(ccxt.ExchangeError, match="51022"):
        ex.create_order("BTC/USDT", "market", "buy", 0.001)
    with pytest.raises(ccxt.ExchangeError, match="52000"):
        ex.fetch_ticker("BTC/USDT")
    early = new_world("2021-06-01T00:00:00Z").exchange()
    assert early.load_markets()[SYM]["info"]["state"] == "preopen"
    with pytest.raises(ccxt.ExchangeError, match="51021"):
        early.create_order(SYM, "market", "buy", 1)


def test_realtime_clock_plays_history_at_its_speed(market) -> None:
    sim = Simulator(market, agents=False, default_clock="replay")
    world = sim.create_world("rt", clock="realtime", start="2022-09-13T08:00:00Z", speed=60)
    world.clock.wall_anchor = time.time() - 10  # as if created ten wall-clock seconds ago
    before = time.time()
    world.sync()
    elapsed = time.time() - world.clock.wall_anchor
    start = parse_time("2022-09-13T08:00:00Z")
    assert start + 600_000 <= world.now <= start + int(elapsed * 60_000) + 1
    served = int(world.call("GET", "public/time")["data"][0]["ts"])
    assert served >= start + int((before - world.clock.wall_anchor) * 60_000)
    with pytest.raises(ValueError, match="realtime"):
        world.set_clock(start + 86_400_000)


def test_same_data_clock_and_requests_give_the_same_fills(new_world) -> None:
    def session(w) -> list[dict]:
        ex = w.exchange()
        ex.set_leverage(20, SYM)
        ex.create_order(SYM, "market", "buy", 30, None, {"clientOrderId": "e1",
                        "stopLoss": {"triggerPrice": 1690}, "takeProfit": {"triggerPrice": 1760}})
        ex.create_order(SYM, "limit", "buy", 7, 1709, {"clientOrderId": "e2"})
        ex.create_order(SYM, "limit", "sell", 3, 1735.5, {"clientOrderId": "e3"})
        for clock in ("2022-09-13T09:10:00Z", "2022-09-13T11:00:00Z", "2022-09-13T13:00:00Z"):
            w.set_clock(clock)
        ex.close_position(SYM)
        fills = ex.privateGetTradeFillsHistory({"instType": "SWAP"})["data"]
        return [{k: v for k, v in f.items()} for f in fills]

    first = session(new_world("2022-09-13T08:00:00Z"))
    second = session(new_world("2022-09-13T08:00:00Z"))
    assert len(first) >= 4 and first == second
