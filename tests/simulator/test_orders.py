"""Order rules: OKX's sCode/sMsg for rejections, clOrdId uniqueness, order types, algo orders, liquidation."""

from __future__ import annotations

import json

import ccxt
import pytest

from tests.simulator.test_auth import call

SYM = "ETH/USDT:USDT"


def place(w, **fields) -> dict:
    body = {"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1", **fields}
    body = {k: v for k, v in body.items() if v is not None}
    resp = call(w, "POST", "/api/v5/trade/order", json.dumps(body))
    assert resp.status_code == 200
    return resp.json()


def test_duplicate_client_order_id_is_refused_and_the_first_is_found_by_it(new_world, admin) -> None:
    w = new_world()
    ex = w.exchange()
    first = ex.create_order(SYM, "limit", "buy", 1, 1500, {"clientOrderId": "run42dec0"})
    with pytest.raises(ccxt.InvalidOrder, match="51016"):
        ex.create_order(SYM, "market", "buy", 1, None, {"clientOrderId": "run42dec0"})
    ex.cancel_order(first["id"], SYM)
    with pytest.raises(ccxt.InvalidOrder, match="51016"):  # unique forever, not only while open
        ex.create_order(SYM, "market", "buy", 1, None, {"clientOrderId": "run42dec0"})
    found = ex.fetch_order(None, SYM, {"clientOrderId": "run42dec0"})
    assert found["id"] == first["id"] and found["status"] == "canceled"
    reply = place(w, clOrdId="run42dec0")
    assert reply["code"] == "1" and reply["data"][0]["sCode"] == "51016"
    assert reply["data"][0]["sMsg"] == "Client order ID already exists."
    # The admin API shows what arrived on the wire, refused requests included.
    wire = admin.orders(w.name)
    assert [o["clOrdId"] for o in wire["orders"]] == ["run42dec0"]
    assert {r["sCode"] for r in wire["rejections"]} == {"51016"} and len(wire["rejections"]) == 3


def test_ccxt_broker_tag_and_client_id_arrive_as_sent(new_world, admin) -> None:
    w = new_world()
    ex = w.exchange(options={"brokerId": "c314b0aecb5bBCDE"})
    ex.create_order(SYM, "market", "buy", 1)
    order = admin.orders(w.name)["orders"][0]
    assert order["tag"] == "c314b0aecb5bBCDE" and order["raw"]["tag"] == "c314b0aecb5bBCDE"
    assert order["clOrdId"].startswith("c314b0aecb5bBCDE") and len(order["clOrdId"]) == 32


@pytest.mark.parametrize("fields, code, message", [
    ({"instId": "DOGE-USDT-SWAP"}, "51001", "Instrument ID, Instrument ID code or Spread ID doesn't exist."),
    ({"sz": "abc"}, "51000", "Parameter sz error"),
    ({"sz": "-1"}, "51000", "Parameter sz error"),
    ({"sz": None}, "50014", "Parameter sz can not be empty."),
    ({"side": None}, "50014", "Parameter side error".replace("side error", "side can not be empty.")),
    ({"side": "up"}, "51000", "Parameter side error"),
    ({"ordType": "stop"}, "51000", "Parameter ordType error"),
    ({"sz": "0.15"}, "51121", "Order quantity must be a multiple of the lot size."),
    ({"ordType": "limit", "px": "1710.005"}, "51000", "Parameter px error"),
    ({"ordType": "limit", "px": "1,710"}, "51000", "Parameter px error"),
    ({"ordType": "limit"}, "51204", "The price for the limit order cannot be empty."),
    ({"sz": "10000"}, "51008", "Order failed. Insufficient USDT margin in account"),
    ({"sz": "100000"}, "51202", "Market order amount exceeds the maximum amount."),
    ({"clOrdId": "has space"}, "51000", "Parameter clOrdId error"),
    ({"tdMode": "isolated"}, "51010", "Request unsupported under current account mode"),
    ({"reduceOnly": "true"}, "51169", "Order failed because you don't have any positions in this direction "
                                      "for this contract to reduce or close."),
    ({"attachAlgoOrds": [{"slTriggerPx": "1800"}]}, "51051",
     "The stop loss trigger price must be lower than the best ask price"),
    ({"instId": "BTC-USDT", "tdMode": "cash", "sz": "0.000001"}, "51020",
     "Your order should meet or exceed the minimum order amount."),
])
def test_rejections_carry_okx_scode_and_smsg(new_world, fields, code, message) -> None:
    w = new_world()
    if fields.get("instId") == "BTC-USDT":
        w = new_world("2022-02-01T00:00:00Z")
    reply = place(w, **fields)
    assert reply["code"] == "1" and reply["msg"] == "Operation failed."
    assert (reply["data"][0]["sCode"], reply["data"][0]["sMsg"]) == (code, message)


def test_orders_priced_beyond_the_price_limit_are_refused_as_okx_does(new_world) -> None:
    w = new_world()
    last = float(w.exchange().fetch_ticker(SYM)["last"])
    hi, lo = w.engine.spec("ETH-USDT-SWAP").price_limits(w.engine.tradable_price(w.engine.spec("ETH-USDT-SWAP")))
    assert lo < last * 0.951 and hi > last * 1.049  # OKX's outer limit (Z, 5 %) around the last price
    message = f"Order price is not within the price limit (max buy price: {hi:.2f} , min sell price: {lo:.2f} )"
    for side, px in (("buy", hi + 0.01), ("sell", lo - 0.01), ("buy", 1e308)):
        reply = place(w, side=side, ordType="limit", px=repr(px))
        assert (reply["data"][0]["sCode"], reply["data"][0]["sMsg"]) == ("51006", message)
    assert place(w, ordType="limit", px="1e-300")["data"][0]["sCode"] == "51122"  # below one tick
    assert place(w, side="sell", ordType="limit", px="1e308")["data"][0]["sCode"] == "51000"  # not on the grid
    # Far on the resting side is allowed, as on OKX; at the limit on the taking side too.
    assert place(w, ordType="limit", px=f"{lo / 2:.2f}")["code"] == "0"
    assert place(w, ordType="limit", px=f"{hi:.2f}")["code"] == "0"
    assert place(w, ordType="limit", sz="1", side="sell", px=f"{hi * 1.5:.2f}", reduceOnly=True)["code"] == "0"
    order = next(o for o in w.exchange().fetch_open_orders(SYM) if o["side"] == "buy")
    with pytest.raises(ccxt.InvalidOrder, match="51006"):
        w.exchange().edit_order(order["id"], SYM, "limit", "buy", 1, hi * 2)


def test_reduce_only_in_the_same_direction_is_refused(new_world) -> None:
    w = new_world()
    assert place(w)["code"] == "0"
    reply = place(w, reduceOnly=True)
    assert reply["data"][0]["sCode"] == "51170"
    assert place(w, side="sell", sz="5", reduceOnly=True)["code"] == "0"  # capped at the 1 contract held
    assert w.exchange().fetch_positions([SYM]) == []


@pytest.mark.parametrize("method, path, body, status, code", [
    ("POST", "/api/v5/trade/order", "", 400, "50000"),
    ("POST", "/api/v5/trade/order", "{not json", 400, "50002"),
    ("POST", "/api/v5/trade/batch-orders", json.dumps([{"instId": "ETH-USDT-SWAP"}] * 21), 200, "51111"),
    ("GET", "/api/v5/trade/order?ordId=1", "", 400, "50014"),
    ("GET", "/api/v5/trade/order?instId=ETH-USDT-SWAP&ordId=42", "", 200, "51603"),
    ("GET", "/api/v5/trade/order?instId=ETH-USDT-SWAP", "", 200, "51003"),
    ("GET", "/api/v5/trade/orders-history", "", 400, "50014"),
    ("GET", "/api/v5/account/positions?instId=NOPE-USDT-SWAP", "", 200, "51001"),
    ("GET", "/api/v5/market/candles?instId=ETH-USDT-SWAP&bar=7m", "", 400, "51000"),
    ("GET", "/api/v5/market/candles?instId=ETH-USDT-SWAP&limit=ten", "", 400, "51000"),
    ("GET", "/api/v5/public/instruments", "", 400, "50014"),
    ("GET", "/api/v5/public/instruments?instType=BOND", "", 400, "51000"),
    ("GET", "/api/v5/no/such-endpoint", "", 404, "404"),
    ("DELETE", "/api/v5/trade/order", "", 405, "50115"),
])
def test_bad_requests_get_okx_errors(new_world, method, path, body, status, code) -> None:
    w = new_world()
    resp = call(w, method, path, body, signed_path=path)
    assert resp.status_code == status
    assert resp.json()["code"] == code


def test_no_garbage_ever_gets_a_500(new_world) -> None:
    from okxlab.simulator.router import ROUTES

    w = new_world()
    junk_values = ["", "x", "-1", "1e999", "NaN", "0", "null", "[]", "ETH-USDT-SWAP", "99999999999999999999"]
    junk_bodies = ["[]", "{}", "[1, 2]", '"text"', "null", json.dumps({"instId": ["a"], "sz": {"x": 1}}),
                   json.dumps([{"instId": "ETH-USDT-SWAP", "sz": "NaN", "tdMode": "cross", "side": "buy",
                                "ordType": "limit", "px": "inf"}])]
    params = ["instId", "sz", "px", "bar", "limit", "after", "before", "ordId", "algoId", "instType", "ordType",
              "state", "lever", "mgnMode", "ccy", "clOrdId", "newSz", "newPx"]
    n = 0
    for (method, endpoint), _ in ROUTES.items():
        for i, value in enumerate(junk_values):
            query = "&".join(f"{p}={value}" for p in params[i % 5::3])
            path = f"/api/v5/{endpoint}" + (f"?{query}" if method == "GET" else "")
            body = "" if method == "GET" else junk_bodies[i % len(junk_bodies)]
            resp = call(w, method, path, body, signed_path=path)
            n += 1
            assert resp.status_code < 500, (method, path, body, resp.text)
            assert set(resp.json()) == {"code", "msg", "data"}
    assert n > 400


def test_post_only_that_would_take_is_canceled_and_one_that_rests_fills_as_maker(new_world) -> None:
    w = new_world()
    ex = w.exchange()
    ask = ex.fetch_order_book(SYM, 1)["asks"][0][0]
    taking = ex.create_order(SYM, "limit", "buy", 1, ask, {"postOnly": True})
    got = ex.fetch_order(taking["id"], SYM)
    assert got["status"] == "canceled" and got["filled"] == 0 and got["info"]["cancelSource"] == "31"
    resting = ex.create_order(SYM, "limit", "buy", 1, 1708, {"postOnly": True})
    w.set_clock("2022-09-13T09:00:00Z")
    got = ex.fetch_order(resting["id"], SYM)
    assert got["status"] == "closed" and got["average"] == 1708
    assert ex.fetch_my_trades(SYM)[0]["takerOrMaker"] == "maker"


def test_big_market_order_walks_the_book_and_ioc_cancels_the_rest(new_world) -> None:
    w = new_world()
    ex = w.exchange()
    ex.set_leverage(50, SYM)
    book = ex.fetch_order_book(SYM, 10)
    big = ex.create_order(SYM, "market", "buy", 2000)
    fills = sorted(ex.fetch_my_trades(SYM), key=lambda t: t["price"])
    assert len(fills) > 2 and sum(f["amount"] for f in fills) == 2000
    assert [f["price"] for f in fills] == [a[0] for a in book["asks"][:len(fills)]]
    order = ex.fetch_order(big["id"], SYM)
    assert book["asks"][0][0] < order["average"] < fills[-1]["price"]  # size-dependent slippage
    # IOC sell limited to the best two bids: fills those levels, cancels the rest.
    book = ex.fetch_order_book(SYM, 3)
    ioc = ex.create_order(SYM, "limit", "sell", 2000, book["bids"][1][0], {"timeInForce": "IOC"})
    got = ex.fetch_order(ioc["id"], SYM)
    assert got["status"] == "canceled" and got["filled"] == book["bids"][0][1] + book["bids"][1][1]
    assert got["info"]["cancelSource"] == "14"


def test_amended_limit_order_fills_at_its_new_price(new_world) -> None:
    w = new_world()
    ex = w.exchange()
    order = ex.create_order(SYM, "limit", "buy", 2, 1600)
    ex.edit_order(order["id"], SYM, "limit", "buy", 3, 1709)
    w.set_clock("2022-09-13T09:00:00Z")
    got = ex.fetch_order(order["id"], SYM)
    assert got["status"] == "closed" and got["filled"] == 3 and got["average"] == 1709


def test_standalone_stop_loss_triggers_and_is_labelled(new_world) -> None:
    w = new_world()
    ex = w.exchange()
    ex.create_order(SYM, "market", "buy", 2)
    stop = ex.create_order(SYM, "market", "sell", 2, None, {"stopLossPrice": 1700, "reduceOnly": True})
    tp = ex.create_order(SYM, "market", "sell", 2, None, {"takeProfitPrice": 1900, "reduceOnly": True})
    assert {o["id"] for o in ex.fetch_open_orders(SYM, params={"trigger": True, "ordType": "conditional"})} == \
        {stop["id"], tp["id"]}
    w.set_clock("2022-09-13T13:00:00Z")
    algo = ex.fetch_order(stop["id"], SYM, {"trigger": True})
    assert algo["info"]["state"] == "effective" and algo["info"]["actualSide"] == "sl"
    child = ex.fetch_order(algo["info"]["ordId"], SYM)
    assert child["info"]["algoId"] == stop["id"] and child["reduceOnly"] and child["filled"] == 2
    # The position is gone, so the take profit that would have reduced it is canceled.
    assert ex.fetch_order(tp["id"], SYM, {"trigger": True})["info"]["state"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(tp["id"], SYM, {"trigger": True})


def test_take_profit_below_the_last_price_is_refused(new_world) -> None:
    w = new_world()
    ex = w.exchange()
    ex.create_order(SYM, "market", "buy", 1)
    with pytest.raises(ccxt.InvalidOrder, match="51279"):
        ex.create_order(SYM, "market", "sell", 1, None, {"takeProfitPrice": 1600, "reduceOnly": True})


def test_an_overleveraged_position_is_liquidated_in_the_crash(new_world) -> None:
    w = new_world("2022-09-13T12:00:00Z")
    ex = w.exchange()
    btc = "BTC/USDT:USDT"
    ex.set_leverage(100, btc)
    ex.create_order(btc, "market", "buy", 700)  # 7 BTC (~158k USDT) on 10k: gone about 6% lower
    liq = ex.fetch_position(btc)["liquidationPrice"]
    assert 21000 < liq < 21400  # equity meets 0.4% maintenance margin there
    w.set_clock("2022-09-13T16:00:00Z")  # the 12:00 4H bar falls to 20759.3
    assert ex.fetch_positions([btc]) == []
    closing = [o for o in ex.fetch_closed_orders(btc) if o["info"]["category"] == "full_liquidation"]
    assert len(closing) == 1 and closing[0]["filled"] == 700
    assert closing[0]["average"] == pytest.approx(liq, rel=0.002)
    equity = ex.fetch_balance()["USDT"]["total"]
    assert 0 < equity < 0.004 * 700 * 0.01 * liq  # what is left is below the maintenance margin
