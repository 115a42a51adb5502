"""Bills, transfers, funding and the endpoints a paper venue answers, through unmodified ccxt over HTTP."""

from __future__ import annotations

import ccxt
import pytest
import requests

from okxlab.marketdata.candles import load_series
from okxlab.simulator.clock import parse_time
from okxlab.simulator.ledger import model_rate

ETH = "ETH/USDT:USDT"
BTC = "BTC/USDT:USDT"
H8 = 8 * 3_600_000


def test_ledger_after_trades_has_fee_and_pnl_bills(new_world) -> None:
    w = new_world("2022-09-13T07:00:00Z")
    ex = w.exchange()
    ex.create_order(ETH, "market", "buy", 10)
    w.set_clock("2022-09-13T07:30:00Z")
    ex.create_order(ETH, "market", "sell", 10, None, {"reduceOnly": True})
    trades = ex.fetch_my_trades(ETH)
    ledger = ex.fetch_ledger("USDT", params={"type": "swap"})  # ccxt's default market type is spot: instType=SPOT
    assert [e["info"]["type"] for e in ledger] == ["2"] * len(trades)
    assert {e["info"]["subType"] for e in ledger} == {"3", "5"}  # open long, close long
    fee = sum(float(t["info"]["fee"]) for t in trades)
    pnl = sum(float(t["info"]["fillPnl"]) for t in trades)
    assert sum(float(e["info"]["fee"]) for e in ledger) == pytest.approx(fee)
    assert sum(float(e["info"]["pnl"]) for e in ledger) == pytest.approx(pnl)
    assert {e["info"]["billId"] for e in ledger} == {t["info"]["billId"] for t in trades}
    cash = float(ex.fetch_balance()["info"]["data"][0]["details"][0]["cashBal"])
    assert cash == pytest.approx(10_000 + pnl + fee, abs=1e-9)
    newest = max(ledger, key=lambda e: int(e["info"]["billId"]))
    assert float(newest["info"]["bal"]) == pytest.approx(cash, abs=1e-9)
    # paging by billId: after = older than, before = newer than
    ids = sorted(int(e["info"]["billId"]) for e in ledger)
    older = ex.privateGetAccountBills({"after": str(ids[-1])})["data"]
    assert [int(r["billId"]) for r in older] == sorted(ids[:-1], reverse=True)
    newer = ex.privateGetAccountBills({"before": str(ids[0]), "limit": "1"})["data"]
    assert [int(r["billId"]) for r in newer] == [ids[1]]
    assert ex.privateGetAccountBillsArchive()["data"] == ex.privateGetAccountBills()["data"]


def test_funding_settles_at_0800_long_pays_short_receives(new_world, market) -> None:
    w = new_world("2022-09-13T07:00:00Z")
    w2 = new_world("2022-09-13T07:00:00Z")
    long_ex, short_ex = w.exchange(), w2.exchange()
    long_ex.create_order(ETH, "market", "buy", 10)
    short_ex.create_order(ETH, "market", "sell", 10)
    cash0 = [w.engine.accounts[w.key].balances["USDT"], w2.engine.accounts[w2.key].balances["USDT"]]
    w.set_clock("2022-09-13T07:59:59Z")
    assert long_ex.privateGetAccountBills({"type": "8"})["data"] == []
    t8 = parse_time("2022-09-13T08:00:00Z")
    for x in (w, w2):
        x.set_clock("2022-09-13T08:10:00Z")
    rate = float(long_ex.fetch_funding_rate_history(ETH, limit=1)[0]["fundingRate"])
    assert rate == pytest.approx(0.0001)  # no ETH spot series in 2022-09: the index is the swap, premium 0
    mark = market.path("ETH-USDT-SWAP").last_known(t8)
    expected = 10 * 0.1 * mark * rate
    for ex, x, sign, before in ((long_ex, w, -1, cash0[0]), (short_ex, w2, 1, cash0[1])):
        bills = [e for e in ex.fetch_ledger("USDT", params={"type": "swap"}) if e["info"]["type"] == "8"]
        assert len(bills) == 1 and bills[0]["timestamp"] == t8 and bills[0]["type"] == "fee"
        assert float(bills[0]["info"]["balChg"]) == pytest.approx(sign * expected)
        assert bills[0]["info"]["subType"] == ("173" if sign < 0 else "174")
        assert x.engine.accounts[x.key].balances["USDT"] - before == pytest.approx(sign * expected)
        pos = ex.fetch_position(ETH)
        assert float(pos["info"]["fundingFee"]) == pytest.approx(sign * expected)
        paid = ex.fetch_funding_history(ETH)  # ccxt reads the same type-8 bills
        assert [(h["timestamp"], h["amount"]) for h in paid] == [(t8, pytest.approx(sign * expected))]


def test_funding_glided_by_a_fast_replay_is_settled_too(new_world) -> None:
    w = new_world("2022-09-13T07:00:00Z")
    w.exchange().create_order(ETH, "market", "buy", 10)
    world = w.engine
    with w.server.simulator.lock:
        assert world.next_event_at(parse_time("2022-09-14T00:00:00Z")) == parse_time("2022-09-13T08:00:00Z")
        world.glide(parse_time("2022-09-14T00:00:01Z"))
        assert [b["ts"] for b in world.bills if b["type"] == "8"] == [
            parse_time(t) for t in ("2022-09-13T08:00:00Z", "2022-09-13T16:00:00Z", "2022-09-14T00:00:00Z")]


def test_funding_rate_history_follows_the_model_over_the_spot_index(new_world) -> None:
    w = new_world("2022-02-01T01:00:00Z")  # BTC spot (the index) and BTC swap both have data here
    ex = w.exchange()
    rows = ex.fetch_funding_rate_history(BTC, limit=3)
    swap4h, spot1h = load_series("BTC-USDT-SWAP", "4H"), load_series("BTC-USDT", "1H")
    spot_open = dict(zip(spot1h.ts.tolist(), spot1h.open.tolist(), strict=True))
    assert [r["timestamp"] for r in rows] == [parse_time(t) for t in
                                              ("2022-01-31T08:00:00Z", "2022-01-31T16:00:00Z", "2022-02-01T00:00:00Z")]
    for r in rows:
        t = r["timestamp"]
        prem = [(o - spot_open[ts]) / spot_open[ts] for ts, o in zip(swap4h.ts.tolist(), swap4h.open.tolist(),
                                                                     strict=True)
                if t - H8 <= ts < t and ts in spot_open]
        assert len(prem) == 2
        assert r["fundingRate"] == pytest.approx(model_rate(sum(prem) / len(prem)))
    now = ex.fetch_funding_rate(BTC)
    assert now["fundingTimestamp"] == parse_time("2022-02-01T08:00:00Z")
    assert now["info"]["interestRate"] == "0.0001"
    t0 = parse_time("2022-02-01T00:00:00Z")  # the only common bar open of this period by 01:00
    p0 = (float(swap4h.open[swap4h.ts.tolist().index(t0)]) - spot_open[t0]) / spot_open[t0]
    assert now["fundingRate"] == pytest.approx(model_rate(p0))


def test_transfer_moves_balance_and_shows_in_both_ledgers(new_world) -> None:
    w = new_world("2022-09-13T07:00:00Z")
    ex = w.exchange()
    ex.load_markets()
    ex.currencies = ex.currencies or {}
    t = ex.privatePostAssetTransfer({"ccy": "USDT", "amt": "250", "from": "18", "to": "6", "type": "0"})["data"][0]
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(9_750)
    assert ex.fetch_balance({"type": "funding"})["USDT"]["total"] == pytest.approx(250)
    state = ex.privateGetAssetTransferState({"transId": t["transId"]})["data"]
    assert state[0]["state"] == "success" and state[0]["amt"] == "250"
    trading = ex.privateGetAccountBills({"type": "1"})["data"]
    assert [(b["balChg"], b["bal"], b["subType"], b["sz"]) for b in trading] == [("-250", "9750", "12", "-250")]
    transfers = ex.fetch_transfers("USDT")
    assert [(x["amount"], x["fromAccount"], x["toAccount"]) for x in transfers] == [(250, "trading", "funding")]
    assert ex.transfer("USDT", 1, "funding", "trading")["amount"] == 1  # ccxt's unified transfer
    ex.transfer("USDT", 1, "trading", "funding")
    funding = ex.privateGetAssetBills()["data"]
    assert [(b["balChg"], b["bal"], b["type"]) for b in funding] == [("1", "250", "130"), ("-1", "249", "131"),
                                                                      ("250", "250", "130")]
    ex.privatePostAssetTransfer({"ccy": "USDT", "amt": "50", "from": "6", "to": "18"})
    assert ex.fetch_balance()["USDT"]["total"] == pytest.approx(9_800)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.privatePostAssetTransfer({"ccy": "USDT", "amt": "201", "from": "6", "to": "18"})
    with pytest.raises(ccxt.InsufficientFunds):
        ex.privatePostAssetTransfer({"ccy": "USDT", "amt": "100000", "from": "18", "to": "6"})


def test_paper_account_lists_and_open_interest(new_world) -> None:
    w = new_world("2022-09-13T07:00:00Z")
    ex = w.exchange()
    assert ex.fetch_deposits() == [] and ex.fetch_withdrawals() == []
    assert ex.privateGetAccountInterestAccrued()["data"] == []
    oi = ex.fetch_open_interest(ETH)
    assert oi["openInterestAmount"] > 0 and oi["timestamp"] == parse_time("2022-09-13T07:00:00Z")
    hist = ex.fetch_open_interest_history(ETH, "1h", limit=5)
    assert len(hist) == 5 and hist[-1]["timestamp"] == parse_time("2022-09-13T07:00:00Z")


def test_unknown_endpoint_is_okx_not_found_and_not_retried(new_world) -> None:
    w = new_world("2022-09-13T07:00:00Z")
    resp = requests.get(f"{w.url}/api/v5/public/no-such-thing", timeout=10)
    assert resp.status_code == 404 and resp.json() == {"code": "404", "msg": "Not Found", "data": []}
    ex = w.exchange()
    ex.options["maxRetriesOnFailure"] = 3
    calls = []
    real = ex.session.request

    def counting(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("url"))
        return real(*args, **kwargs)

    ex.session.request = counting
    with pytest.raises(ccxt.ExchangeError) as err:
        ex.publicGetPublicEconomicCalendar()  # a path ccxt knows and the simulator does not serve
    assert not isinstance(err.value, ccxt.NetworkError)
    assert len(calls) == 1


def test_hedge_mode_and_isolated_margin_get_okx_51010(new_world) -> None:
    ex = new_world("2022-09-13T07:00:00Z").exchange()
    with pytest.raises(ccxt.AccountNotEnabled, match="51010"):
        ex.set_position_mode(True)
    with pytest.raises(ccxt.AccountNotEnabled, match="51010"):
        ex.set_margin_mode("isolated", ETH, {"lever": 3})
    assert ex.set_position_mode(False)["data"][0]["posMode"] == "net_mode"


def test_bills_and_funding_survive_a_restart(tmp_path, market) -> None:
    from okxlab.simulator import Simulator
    from okxlab.simulator.simulator import AccountSpec

    state = tmp_path / "s.sqlite"
    sim = Simulator(market, agents=False, default_clock="replay", start="2022-09-13T07:00:00Z",
                    accounts=[AccountSpec("k", "s", "p")], state=state)
    w = sim.world()
    w.call("POST", "trade/order", body={"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                         "ordType": "market", "sz": "10"}, api_key="k")
    w.call("POST", "asset/transfer", body={"ccy": "USDT", "amt": "100", "from": "18", "to": "6"}, api_key="k")
    w.set_clock(parse_time("2022-09-13T08:00:01Z"))
    sim.save()
    before = (list(w.bills), dict(w.accounts["k"].balances), dict(w.accounts["k"].funding), w.funding_settled)
    sim.close()
    sim2 = Simulator(market, agents=False, accounts=[AccountSpec("k", "s", "p")], state=state)
    w2 = sim2.world()
    assert (w2.bills, w2.accounts["k"].balances, w2.accounts["k"].funding, w2.funding_settled) == before
    assert [b["type"] for b in w2.bills] == ["2", "1", "130", "8"]
    assert w2.accounts["k"].positions["ETH-USDT-SWAP"].funding_fee < 0
    sim2.close()


def test_funding_history_file_overrides_the_model(tmp_path) -> None:
    from okxlab.simulator import MarketData, Simulator
    from okxlab.simulator.simulator import AccountSpec

    t8 = parse_time("2022-09-13T08:00:00Z")
    f = tmp_path / "eth-funding.csv"
    f.write_text(f"instId,fundingTime,fundingRate,realizedRate\nETH-USDT-SWAP,{t8},0.0003,0.00025\n"
                 f"ETH-USDT-SWAP,{t8 - H8},-0.0002,\n")
    market = MarketData.load((str(f),))
    assert market.funding_history["ETH-USDT-SWAP"] == {t8: (0.0003, 0.00025), t8 - H8: (-0.0002, -0.0002)}
    sim = Simulator(market, agents=False, default_clock="replay", start="2022-09-13T07:00:00Z",
                    accounts=[AccountSpec("k", "s", "p")])
    w = sim.world()
    hist = w.call("GET", "public/funding-rate-history", {"instId": "ETH-USDT-SWAP", "limit": "2"})["data"]
    assert [(r["fundingTime"], r["fundingRate"], r["realizedRate"]) for r in hist] == [
        (str(t8 - H8), "-0.0002", "-0.0002"), (str(t8 - 2 * H8), "0.0001", "0.0001")]
    w.call("POST", "trade/order", body={"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "sell",
                                         "ordType": "market", "sz": "10"}, api_key="k")
    w.set_clock(t8 + 1)
    bill = [b for b in w.bills if b["type"] == "8"][0]
    assert bill["balChg"] == pytest.approx(10 * 0.1 * market.path("ETH-USDT-SWAP").last_known(t8) * 0.00025)


def test_one_minute_candles_are_derived_from_the_path(new_world, market) -> None:
    w = new_world("2022-09-13T08:02:30Z")  # ETH-USDT-SWAP has 5m data here: 1m bars come from the path
    ex = w.exchange()
    bars = ex.fetch_ohlcv(ETH, "1m", limit=12)
    path = market.path("ETH-USDT-SWAP")
    spec = market.spec("ETH-USDT-SWAP")
    now = parse_time("2022-09-13T08:02:30Z")
    assert bars[-1][0] == parse_time("2022-09-13T08:02:00Z") and len(bars) == 12
    assert [b[0] for b in bars] == list(range(bars[0][0], bars[-1][0] + 1, 60_000))
    for ts, o, h, lo, c, _v in bars:
        end = min(ts + 60_000, now)
        pts = [path.price_at(t) for t in range(ts, end, 250)] + [path._at(path.index(end - 1), end)]
        assert o == pytest.approx(spec.round_px(pts[0]))
        assert h == pytest.approx(spec.round_px(max(pts)), abs=spec.tick_sz)
        assert lo == pytest.approx(spec.round_px(min(pts)), abs=spec.tick_sz)
        assert c == pytest.approx(spec.round_px(pts[-1]))
    # five 1m bars make the 5m bar of the data, volume included
    five = ex.fetch_ohlcv(ETH, "5m", since=parse_time("2022-09-13T07:55:00Z"), limit=1)[0]
    ones = [b for b in bars if five[0] <= b[0] < five[0] + 300_000]
    assert len(ones) == 5 and ones[0][1] == five[1] and ones[-1][4] == five[4]
    assert max(b[2] for b in ones) == five[2] and min(b[3] for b in ones) == five[3]
    assert sum(b[5] for b in ones) == pytest.approx(five[5], rel=1e-6)
    # 1m and 15m over the 4H BTC data of 2022 (ccxt's default timeframe is 1m)
    w2 = new_world("2022-02-01T01:07:30Z")
    assert len(w2.exchange().fetch_ohlcv(BTC, limit=100)) == 100


def test_admin_data_lists_ranges_per_bar_and_world_clocks(new_world, admin) -> None:
    w = new_world("2022-09-13T08:00:00Z")
    data = admin.data()
    btc = data["instruments"]["BTC-USDT-SWAP"]
    assert [r["bar"] for r in btc["ranges"]] == ["4H", "15m"]
    assert btc["ranges"][0]["start_iso"].startswith("2022-01-01")
    assert btc["bars"]["1m"] == "derived from the price path" and btc["bars"]["4H"] == "data"
    assert "index BTC-USDT" in btc["funding"]
    assert data["worlds"][w.name]["now"] == parse_time("2022-09-13T08:00:00Z")
    assert w.exchange().fetch_time() == parse_time("2022-09-13T08:00:00Z")  # public/time: the world's clock


def test_ticker_24h_range_holds_its_open(new_world) -> None:
    """open24h lies inside the bar that began before t-24h: low24h/high24h include the path from t-24h on
    (ccxt's own fetchTicker test asserts low <= open <= high)."""
    ex = new_world("2022-09-01T00:00:07Z").exchange()
    for sym in (BTC, ETH):
        t = ex.fetch_ticker(sym)
        assert t["low"] <= t["open"] <= t["high"] and t["low"] <= t["last"] <= t["high"]


def test_reconcile_counts_the_funding_the_exchange_paid(new_world) -> None:
    """okxlab's reconciler: cash = initial + pnl - fees (its ledger) + the funding the exchange reports."""
    from okxlab.config import AgentConfig
    from okxlab.execution.exchange import account_from_exchange
    from okxlab.execution.ledger import LedgerTotals, fetch_fills
    from okxlab.execution.reconcile import compare, exchange_funding

    w = new_world("2022-09-13T07:00:00Z")
    ex = w.exchange()
    ex.create_order(ETH, "market", "sell", 10)
    w.set_clock("2022-09-14T00:00:01Z")  # three funding times: 08:00, 16:00, 00:00
    funding = exchange_funding(ex)
    bills = ex.privateGetAccountBills({"type": "8"})["data"]
    assert len(bills) == 3 and funding == pytest.approx(sum(float(b["balChg"]) for b in bills)) and funding > 0
    trades = ex.fetch_my_trades(ETH)
    fee = sum(float(t["info"]["fee"]) for t in trades)
    account = account_from_exchange(ex.fetch_balance(), ex.fetch_positions([ETH]))
    pos = account["positions"]
    totals = LedgerTotals(cash=10_000 + fee, realized_pnl=0.0, fees=-fee, positions=pos)
    agent = AgentConfig.__new__(AgentConfig)
    object.__setattr__(agent, "name", "a")
    fills = fetch_fills(ex, {"ETH-USDT-SWAP": ETH}, None)
    booked = {f.trade_id for f in fills}
    assert compare(agent, "sim", totals, booked, account, fills, funding).ok
    assert not compare(agent, "sim", totals, booked, account, fills).ok  # without it: off by the funding


def test_a_state_from_before_funding_charges_nothing_for_the_past(tmp_path, market) -> None:
    import json
    import sqlite3

    from okxlab.simulator import Simulator
    from okxlab.simulator.simulator import AccountSpec

    state = tmp_path / "s.sqlite"
    spec = [AccountSpec("k", "s", "p")]
    sim = Simulator(market, agents=False, default_clock="replay", start="2022-09-13T07:00:00Z", accounts=spec,
                    state=state)
    w = sim.world()
    w.call("POST", "trade/order", body={"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                         "ordType": "market", "sz": "10"}, api_key="k")
    sim.save()
    sim.close()
    db = sqlite3.connect(state)  # as an older simulator wrote it: a clock at 2022-09-14 12:00, no funding field
    data = json.loads(db.execute("SELECT data FROM worlds").fetchone()[0])
    del data["funding_settled"]
    data["now"] = parse_time("2022-09-14T12:00:00Z")
    db.execute("UPDATE worlds SET data = ?", (json.dumps(data),))
    db.commit()
    db.close()
    sim2 = Simulator(market, agents=False, accounts=spec, state=state)
    w2 = sim2.world()
    w2.set_clock(parse_time("2022-09-14T16:00:01Z"))
    assert [b["ts"] for b in w2.bills if b["type"] == "8"] == [parse_time("2022-09-14T16:00:00Z")]
    sim2.close()
