"""Responses carry the field names and JSON types of real OKX payloads (the reference fixtures).

For every fixture object, each of its keys must be in our object with the same JSON type (string,
number, bool, list, object). The fixtures are real OKX payloads kept under tests/fixtures/okx.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okxlab.simulator.orders import fnum

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okx"  # shipped with the tests (see its README)


def message(name: str) -> Any:
    return json.loads((FIXTURES / "messages" / name).read_text())


def ccxt_response(method: str, index: int = 0) -> dict[str, Any]:
    cases = json.loads((FIXTURES / "ccxt/response_okx.subset.json").read_text())["methods"][method]
    return cases[index]["httpResponse"]


def kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def same_shape(fixture: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    problems = [f"missing {k}" for k in fixture if k not in ours]
    problems += [f"{k}: {kind(ours[k])} instead of {kind(v)}" for k, v in fixture.items()
                 if k in ours and kind(ours[k]) != kind(v)]
    return problems


@pytest.fixture(scope="module")
def traded(server, admin):
    """A world with a filled order, a resting order with TP/SL attached, an algo order and a closed position."""
    from tests.simulator.conftest import make_world

    w = make_world(server, admin, "2022-09-13T08:00:00Z")
    ex = w.exchange()
    ex.load_markets()
    ex.create_order("ETH/USDT:USDT", "market", "buy", 10, None,
                    {"stopLoss": {"triggerPrice": 1600}, "takeProfit": {"triggerPrice": 1900}})
    ex.create_order("ETH/USDT:USDT", "limit", "buy", 1, 1500,
                    {"stopLoss": {"triggerPrice": 1400}, "takeProfit": {"triggerPrice": 1900}})
    ex.create_order("BTC/USDT:USDT", "market", "buy", 1)
    ex.close_position("BTC/USDT:USDT")
    yield w, ex
    admin.delete_world(w.name)


def test_market_data_payloads(traded) -> None:
    _w, ex = traded
    swap = ex.publicGetPublicInstruments({"instType": "SWAP"})["data"][0]
    spot = ex.publicGetPublicInstruments({"instType": "SPOT"})["data"][0]
    checks = [
        (message("http_get_instruments_swap.json")["data"][0], swap),
        (json.loads((FIXTURES / "ccxt/public_instruments.json").read_text())["SWAP"]["data"][0], swap),
        (message("http_get_instruments_spot.json")["data"][0], spot),
        (ccxt_response("fetchTicker")["data"][0], ex.publicGetMarketTicker({"instId": "ETH-USDT-SWAP"})["data"][0]),
        (message("http_get_order_book.json")["data"][0], ex.publicGetMarketBooks({"instId": "ETH-USDT-SWAP"})["data"][0]),
        (message("http_get_trades.json")["data"][0], ex.publicGetMarketTrades({"instId": "ETH-USDT-SWAP"})["data"][0]),
        (message("http_get_mark_price.json")["data"][0],
         ex.publicGetPublicMarkPrice({"instId": "ETH-USDT-SWAP"})["data"][0]),
        (ccxt_response("fetchTime")["data"][0], ex.publicGetPublicTime()["data"][0]),
    ]
    for fixture, ours in checks:
        assert same_shape(fixture, ours) == [], ours.get("instId")
    candle = ex.publicGetMarketHistoryCandles({"instId": "ETH-USDT-SWAP", "bar": "1H"})["data"][0]
    assert [kind(x) for x in candle] == [kind(x) for x in message("http_get_candlesticks_full.json")["data"][0]]


def test_account_payloads(traded) -> None:
    _w, ex = traded
    balance = ex.privateGetAccountBalance()["data"][0]
    position = ex.privateGetAccountPositions()["data"][0]
    checks = [
        (message("http_get_account_balance.json")["data"][0], balance),
        (message("http_get_account_balance.json")["data"][0]["details"][0], balance["details"][0]),
        (message("http_balance_detail_new_fields.json"), balance["details"][0]),
        (message("http_balance_detail_old_fields.json"), balance["details"][0]),
        (ccxt_response("fetchBalance", 1)["data"][0]["details"][0], balance["details"][0]),
        (ccxt_response("fetchPosition")["data"][0], position),
        (message("http_get_positions.json")["data"][0], position),
        (message("http_get_account_positions-history.json")["data"][0],
         ex.privateGetAccountPositionsHistory()["data"][0]),
        (ccxt_response("fetchAccounts")["data"][0], ex.privateGetAccountConfig()["data"][0]),
        (message("http_get_trade_fee_response.json")["data"][0],
         ex.privateGetAccountTradeFee({"instType": "SPOT"})["data"][0]),
    ]
    for fixture, ours in checks:
        assert same_shape(fixture, ours) == []


def test_trade_payloads(traded) -> None:
    _w, ex = traded
    pending = ex.privateGetTradeOrdersPending()["data"][0]
    history = ex.privateGetTradeOrdersHistory({"instType": "SWAP"})["data"][0]
    algo = ex.privateGetTradeOrdersAlgoPending({"ordType": "oco"})["data"][0]
    placed = ex.privatePostTradeOrder({"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                       "ordType": "market", "sz": "1"})["data"][0]
    stop = ex.privatePostTradeOrderAlgo({"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "sell",
                                         "ordType": "conditional", "sz": "1", "slTriggerPx": "1500",
                                         "reduceOnly": True})["data"][0]
    canceled = ex.privatePostTradeCancelAlgos([{"algoId": stop["algoId"], "instId": "ETH-USDT-SWAP"}])["data"][0]
    checks = [
        (message("http_get_orders_pending.json")["data"][0], pending),
        (message("http_get_orders_pending_with_attached_tp_sl.json")["data"][0], pending),
        (message("http_get_orders_pending_with_attached_tp_sl.json")["data"][0]["attachAlgoOrds"][0],
         pending["attachAlgoOrds"][0]),
        (ccxt_response("fetchOpenOrders", 1)["data"][0], pending),
        (message("http_get_orders_history.json")["data"][0], history),
        (ccxt_response("fetchClosedOrders")["data"][0], history),
        (ccxt_response("fetchOrder")["data"][0], history),
        (ccxt_response("fetchOpenOrders")["data"][0], algo),
        (message("http_get_orders_algo_pending_attached_oco.json")["data"][0], algo),
        (message("http_get_orders_algo_pending.json")["data"][0], algo),
        (ccxt_response("fetchMyTrades")["data"][0], ex.privateGetTradeFillsHistory({"instType": "SWAP"})["data"][0]),
        (ccxt_response("createOrder")["data"][0], placed),
        (message("http_place_order_response.json"), placed),
        (ccxt_response("createOrder", 1)["data"][0], stop),
        (message("http_place_algo_order_response.json")["data"][0], stop),
        (ccxt_response("cancelOrders")["data"][0], canceled),
        (message("http_cancel_algo_order_response.json")["data"][0], canceled),
    ]
    for fixture, ours in checks:
        assert same_shape(fixture, ours) == []


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                 st.floats(min_value=1e-6, max_value=1e7), st.integers(-10**9, 10**9).map(float),
                 st.integers(1, 10**8).map(lambda n: n / 100.0)))
def test_amounts_print_as_plain_shortest_decimals(x: float) -> None:
    """fnum prints like numpy's positional formatter: the shortest digits that read back as x, no exponent."""
    text = fnum(x)
    assert text == ("0" if x == 0 else np.format_float_positional(x, trim="-"))
    assert "e" not in text and float(text) == x
