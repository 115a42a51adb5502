"""Unmodified ccxt trading against the simulator over HTTP, from loading markets to closing the position.

The account's final balance must equal 10,000 plus the realised PnL minus the fees, recomputed here from
the fills alone (prices, sizes, maker/taker) with OKX's contract value and Lv1 fee rates, to the cent.
"""

from __future__ import annotations

import ccxt
import pytest

from okxlab.marketdata.candles import load_series
from okxlab.simulator.clock import parse_time

SYM = "ETH/USDT:USDT"
CT_VAL = 0.1  # ETH-USDT-SWAP
MAKER, TAKER = 0.0002, 0.0005  # OKX Lv1, USDT-margined perpetuals


def ledger(trades: list[dict]) -> tuple[float, float, float]:
    """(realised PnL, fees paid, position in contracts) from fills, by average cost in net mode."""
    pos = avg = pnl = fees = 0.0
    for t in sorted(trades, key=lambda t: (t["timestamp"], int(t["info"]["billId"]))):
        px, qty = t["price"], t["amount"]
        fees += px * qty * CT_VAL * (MAKER if t["takerOrMaker"] == "maker" else TAKER)
        signed = qty if t["side"] == "buy" else -qty
        if pos and (pos > 0) != (signed > 0):
            closed = min(abs(signed), abs(pos))
            pnl += (px - avg) * closed * CT_VAL * (1 if pos > 0 else -1)
            rest = abs(signed) - closed
            pos += signed
            if rest > 1e-9:
                avg = px
        else:
            avg = (avg * abs(pos) + px * abs(signed)) / (abs(pos) + abs(signed))
            pos += signed
    return pnl, fees, round(pos, 6)


def test_full_trading_session_reconciles_to_the_cent(new_world) -> None:
    w = new_world("2022-09-13T08:00:00Z")
    ex = w.exchange()

    markets = ex.load_markets()
    assert {"BTC/USDT", "ETH/USDT", "BTC/USDT:USDT", "ETH/USDT:USDT"} <= set(markets)
    assert markets["BTC/USDT:USDT"]["contractSize"] == 0.01 and markets[SYM]["contractSize"] == 0.1
    assert markets[SYM]["precision"]["price"] == 0.01 and markets[SYM]["limits"]["amount"]["min"] == 0.1

    # Market data at the clock: the 08:00 open of the shipped 5m candles, never anything later.
    eth5 = load_series("ETH-USDT-SWAP", "5m")
    now = parse_time("2022-09-13T08:00:00Z")
    i0 = int((eth5.ts == now).nonzero()[0][0])
    ticker = ex.fetch_ticker(SYM)
    assert ticker["last"] == eth5.open[i0] and ticker["timestamp"] == now
    assert ticker["bid"] < ticker["last"] < ticker["ask"]

    since = now - 24 * 5 * 60_000
    first = ex.fetch_ohlcv(SYM, "5m", since=since, limit=12)
    second = ex.fetch_ohlcv(SYM, "5m", since=first[-1][0] + 300_000, limit=12)
    got = first + second
    assert [c[0] for c in got] == [since + k * 300_000 for k in range(24)]
    for c in got:
        j = int((eth5.ts == c[0]).nonzero()[0][0])
        assert c[1:5] == [eth5.open[j], eth5.high[j], eth5.low[j], eth5.close[j]]
    assert max(c[0] for c in ex.fetch_ohlcv(SYM, "5m", limit=300)) <= now

    book = ex.fetch_order_book(SYM, 5)
    assert len(book["asks"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
    assert [a[0] for a in book["asks"]] == sorted(a[0] for a in book["asks"])

    assert ex.fetch_balance()["USDT"]["total"] == 10_000

    ex.set_leverage(10, SYM)
    assert ex.fetch_leverage(SYM)["longLeverage"] == 10

    # Market open with a stop loss and a take profit attached.
    entry = ex.create_order(SYM, "market", "buy", 10, None,
                            {"stopLoss": {"triggerPrice": 1650}, "takeProfit": {"triggerPrice": 1900}})
    order = ex.fetch_order(entry["id"], SYM)
    assert order["status"] == "closed" and order["filled"] == 10
    assert order["average"] >= ticker["ask"]  # paid the spread
    position = ex.fetch_position(SYM)
    assert position["contracts"] == 10 and position["side"] == "long" and position["leverage"] == 10
    assert position["entryPrice"] == order["average"]
    pending = ex.fetch_open_orders(SYM, params={"ordType": "oco", "trigger": True})
    assert len(pending) == 1 and pending[0]["stopLossPrice"] == 1650 and pending[0]["takeProfitPrice"] == 1900

    # A resting limit order that fills when the path comes down to it (the 08:00-09:00 low is 1707.35).
    bid = ex.create_order(SYM, "limit", "buy", 5, 1710)
    assert [o["id"] for o in ex.fetch_open_orders(SYM)] == [bid["id"]]
    w.set_clock("2022-09-13T09:00:00Z")
    filled = ex.fetch_order(bid["id"], SYM)
    assert filled["status"] == "closed" and filled["average"] == 1710
    assert ex.fetch_open_orders(SYM) == []

    # A limit order cancelled before it fills.
    ask = ex.create_order(SYM, "limit", "sell", 5, 1800)
    ex.cancel_order(ask["id"], SYM)
    assert ex.fetch_order(ask["id"], SYM)["status"] == "canceled"

    trades = ex.fetch_my_trades(SYM)
    assert [t["takerOrMaker"] for t in sorted(trades, key=lambda t: t["timestamp"])][-1] == "maker"
    assert ex.fetch_position(SYM)["contracts"] == 15

    # The CPI release at 12:30 takes ETH through the stop: it closes the 10 contracts it was attached to.
    w.set_clock("2022-09-13T13:00:00Z")
    history = ex.fetch_closed_orders(SYM, params={"trigger": True, "ordType": "oco"})
    assert len(history) == 1
    assert history[0]["info"]["actualSide"] == "sl" and history[0]["info"]["state"] == "effective"
    exit_order = ex.fetch_order(history[0]["info"]["ordId"], SYM)
    assert exit_order["info"]["algoId"] == history[0]["id"] and exit_order["info"]["slTriggerPx"] == "1650.00"
    assert exit_order["side"] == "sell" and exit_order["filled"] == 10
    assert 1640 < exit_order["average"] <= 1650
    assert ex.fetch_position(SYM)["contracts"] == 5

    ex.close_position(SYM)
    assert ex.fetch_positions([SYM]) == []

    trades = ex.fetch_my_trades(SYM, limit=100)
    pnl, fees, pos = ledger(trades)
    assert pos == 0 and len(trades) >= 4
    assert sum(t["fee"]["cost"] for t in trades) == pytest.approx(fees, abs=1e-9)
    balance = ex.fetch_balance()["USDT"]["total"]
    assert abs(balance - (10_000 + pnl - fees)) < 0.005
    assert pnl < 0  # stopped out in the crash


def test_spot_trading_charges_the_fee_in_the_currency_received(new_world) -> None:
    w = new_world("2022-02-01T12:00:00Z")
    ex = w.exchange()
    ex.load_markets()
    buy = ex.create_order("BTC/USDT", "market", "buy", 0.01)
    order = ex.fetch_order(buy["id"], "BTC/USDT")
    bal = ex.fetch_balance()
    assert bal["BTC"]["total"] == pytest.approx(0.01 * (1 - 0.001), abs=1e-12)
    assert bal["USDT"]["total"] == pytest.approx(10_000 - 0.01 * order["average"], abs=1e-9)
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "market", "sell", 0.01)  # the fee was taken in BTC
    sell = ex.create_order("BTC/USDT", "market", "sell", 0.00999)
    sold = ex.fetch_order(sell["id"], "BTC/USDT")
    assert sold["fee"]["currency"] == "USDT"
    assert sold["fee"]["cost"] == pytest.approx(0.00999 * sold["average"] * 0.001, rel=1e-9)
