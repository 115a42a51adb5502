"""The market model through unmodified ccxt: partial maker fills, book depletion, depth from volume, a two-sided
tape, and mark/index prices modelled apart from the last price (docs/simulator.md, "Matching")."""

from __future__ import annotations

import pytest

from okxlab.simulator import ccxt_okx
from okxlab.simulator.clock import parse_time

SYM = "ETH/USDT:USDT"
ETH = "ETH-USDT-SWAP"
START = "2022-09-13T08:00:00Z"  # 5m bars: 08:00 trades 7,142 ETH down to 1712.01, 08:05 8,369 ETH down to 1710.84
T0 = parse_time(START)
MIN = 60_000


def test_a_resting_limit_order_fills_in_parts_across_bars(new_world) -> None:
    w = new_world(START)
    ex = w.exchange()
    ex.set_leverage(10, SYM)
    path = w.engine.market.path(ETH)
    px = 1712.10
    # what the model gives the order: 10% of the volume each bar trades at or below its price
    def share(t: int) -> float:  # in contracts (0.1 ETH) on the lot grid (0.1)
        return round(int(0.1 * path.volume_through(t, px, down=True) / 0.01 + 1e-9) * 0.1, 1)

    first, second = share(T0), share(T0 + 5 * MIN)
    assert 0 < first < 500 < first + second  # the order is bigger than the first bar gives it
    order = ex.create_order(SYM, "limit", "buy", 500, px)

    w.set_clock(T0 + 5 * MIN - 1)  # the path traded through 1712.10 near the end of the 08:00 bar
    got = ex.fetch_order(order["id"], SYM)
    assert got["status"] == "open" and got["filled"] == first and got["remaining"] == pytest.approx(500 - first)
    assert got["info"]["state"] == "partially_filled" and got["average"] == px
    assert got["info"]["accFillSz"] == got["info"]["fillSz"] == str(first)
    pending = ex.fetch_open_orders(SYM)
    assert [(o["id"], o["filled"], o["info"]["state"]) for o in pending] == [(order["id"], first, "partially_filled")]
    trades = ex.fetch_my_trades(SYM)
    assert [(t["amount"], t["price"], t["takerOrMaker"]) for t in trades] == [(first, px, "maker")]
    assert ex.fetch_position(SYM)["contracts"] == first

    w.set_clock(T0 + 10 * MIN - 1)  # the 08:05 bar trades through it again: the rest fills
    got = ex.fetch_order(order["id"], SYM)
    assert got["status"] == "closed" and got["filled"] == 500 and got["average"] == px
    assert got["info"]["state"] == "filled" and float(got["info"]["fillSz"]) == pytest.approx(500 - first)
    assert ex.fetch_open_orders(SYM) == []
    trades = ex.fetch_my_trades(SYM)
    assert [t["amount"] for t in trades] == pytest.approx([first, 500 - first])
    assert len({t["id"] for t in trades}) == 2 and trades[0]["timestamp"] < trades[1]["timestamp"]
    assert ex.fetch_position(SYM)["contracts"] == 500


def test_a_touch_without_volume_through_the_price_does_not_fill(new_world) -> None:
    w = new_world(START)
    ex = w.exchange()
    order = ex.create_order(SYM, "limit", "buy", 1, 1712.01)  # exactly the 08:00 bar's low: touched, not traded through
    w.set_clock(T0 + 5 * MIN - 1)
    got = ex.fetch_order(order["id"], SYM)
    assert got["status"] == "open" and got["filled"] == 0


def test_two_market_orders_in_one_bar_the_second_walks_a_thinner_book(new_world, admin) -> None:
    w = new_world(START)
    ex = w.exchange()
    ex.set_leverage(10, SYM)
    before = ex.fetch_order_book(SYM, 5)
    top = before["asks"][0][1]  # 08:00: one second of 7,142 ETH per 5 minutes at 1715.21, about 238 contracts
    assert 200 < top < 400
    a = ex.fetch_order(ex.create_order(SYM, "market", "buy", 200, None)["id"], SYM)
    b = ex.fetch_order(ex.create_order(SYM, "market", "buy", 200, None)["id"], SYM)
    assert a["filled"] == b["filled"] == 200
    assert a["average"] == before["asks"][0][0]  # all of it at the best ask
    # the same size at the same moment: the best ask has only what the first left, the rest comes from level 2
    left = round(top - 200, 1)
    assert b["average"] == pytest.approx((left * before["asks"][0][0] + (200 - left) * before["asks"][1][0]) / 200)
    sells = [ex.create_order(SYM, "market", "sell", 100, None) for _ in range(2)]  # the bid side is untouched
    assert ex.fetch_order(sells[0]["id"], SYM)["average"] == before["bids"][0][0]
    # depletion is per account: another account in the world walks the full book (agents never move each other)
    admin.add_account(w.name, "other", "other-secret", "OtherPass", equity=10_000)
    other = ccxt_okx(w.url, "other", "other-secret", "OtherPass", enableRateLimit=False)
    other.set_leverage(10, SYM)
    assert other.fetch_order(other.create_order(SYM, "market", "buy", 200, None)["id"], SYM)["average"] == a["average"]
    assert ex.fetch_order_book(SYM, 5) == before  # the public book shows no depletion

    w.set_clock(T0 + 5 * MIN)  # the next bar: depth recovers, scaled to that bar's volume
    after = ex.fetch_order_book(SYM, 5)
    expected = 8369.3 / 300 * 1712.97  # the 08:05 bar's quote volume per second, at its open
    assert after["bids"][0][1] * after["bids"][0][0] * 0.1 == pytest.approx(expected, rel=0.01)
    c = ex.fetch_order(ex.create_order(SYM, "market", "buy", 200, None)["id"], SYM)
    assert c["average"] == after["asks"][0][0]


def test_depth_scales_with_the_bars_volume(new_world) -> None:
    w = new_world(START)
    ex = w.exchange()
    busy = ex.fetch_order_book(SYM, 10)  # 08:00: 7,142 ETH in five minutes
    w.set_clock(T0 + 25 * MIN)  # 08:25: 2,220 ETH
    quiet = ex.fetch_order_book(SYM, 10)

    def notional(book):
        return sum(px * sz * 0.1 for px, sz, *_ in book["asks"])

    assert notional(busy) / notional(quiet) == pytest.approx(7142.1 / 2220.1, rel=0.02)
    # the first level holds one second of the bar's quote volume; each further one half of that more
    assert busy["bids"][0][1] * busy["bids"][0][0] * 0.1 == pytest.approx(7142.1 / 300 * 1715.21, rel=0.01)
    assert busy["bids"][1][1] / busy["bids"][0][1] == pytest.approx(1.5, rel=0.01)


def test_the_tape_has_both_sides_leans_with_the_path_and_is_the_same_when_asked_again(new_world) -> None:
    w = new_world("2022-09-13T08:04:00Z")  # the 08:00 bar falls from 1716.32 to 1712.01 over the last 500 s
    ex = w.exchange()
    first = ex.fetch_trades(SYM, limit=500)
    again = ex.fetch_trades(SYM, limit=500)
    assert [(t["id"], t["side"], t["amount"], t["price"]) for t in first] == \
           [(t["id"], t["side"], t["amount"], t["price"]) for t in again]
    sides = [t["side"] for t in first]
    buys, sells = sides.count("buy"), sides.count("sell")
    assert len(first) == 500 and buys > 50 and sells > 50
    # ccxt lists them oldest first
    falling = [t["side"] for older, t in zip(first[:-1], first[1:], strict=True) if t["price"] < older["price"]]
    assert falling.count("sell") > falling.count("buy")  # biased by the path's direction
    w.set_clock("2022-09-13T08:04:30Z")  # later requests see the same prints, plus new ones
    later = {t["id"]: t["side"] for t in ex.fetch_trades(SYM, limit=500)}
    assert all(later[t["id"]] == t["side"] for t in first if t["id"] in later)


def test_mark_follows_the_index_and_differs_from_last(new_world) -> None:
    # ETH in 2022-09: no spot data, the index is the perpetual's one-minute average and the mark equals it
    w = new_world("2022-09-13T08:02:00Z")
    ex = w.exchange()
    ex.set_leverage(10, SYM)
    ex.create_order(SYM, "market", "buy", 10, None)
    path = w.engine.market.path(ETH)
    now = parse_time("2022-09-13T08:02:00Z")
    pos = ex.fetch_position(SYM)
    last = ex.fetch_ticker(SYM)["last"]
    mark = float(pos["info"]["markPx"])
    assert mark == round(path.average(now - MIN, now), 2) and float(pos["info"]["idxPx"]) == mark
    assert mark != last and float(pos["info"]["last"]) == last
    row = ex.public_get_public_mark_price({"instType": "SWAP", "instId": ETH})["data"][0]
    assert float(row["markPx"]) == mark
    entry = float(pos["info"]["avgPx"])
    assert float(pos["info"]["upl"]) == pytest.approx((mark - entry) * 10 * 0.1)  # unrealised PnL at the mark
    assert float(pos["info"]["uplLastPx"]) == pytest.approx((last - entry) * 10 * 0.1)


def test_with_spot_data_the_index_is_spot_and_the_mark_adds_the_smoothed_basis(new_world) -> None:
    w = new_world("2022-01-20T10:30:00Z")  # BTC-USDT spot (1H) and BTC-USDT-SWAP (4H) both have data
    ex = w.exchange()
    ex.set_leverage(10, "BTC/USDT:USDT")
    ex.create_order("BTC/USDT:USDT", "market", "buy", 1, None)
    market = w.engine.market
    now = parse_time("2022-01-20T10:30:00Z")
    spot = ex.fetch_ticker("BTC/USDT")["last"]
    pos = ex.fetch_position("BTC/USDT:USDT")
    assert float(pos["info"]["idxPx"]) == spot
    swap, spot_path = market.path("BTC-USDT-SWAP"), market.path("BTC-USDT")
    basis = swap.average(now - 5 * MIN, now) - spot_path.average(now - 5 * MIN, now)
    assert float(pos["info"]["markPx"]) == pytest.approx(spot_path.price_at(now) + basis, abs=0.1)
    assert float(pos["info"]["markPx"]) != ex.fetch_ticker("BTC/USDT:USDT")["last"]
    fill = ex.fetch_my_trades("BTC/USDT:USDT")[0]["info"]
    assert fill["fillIdxPx"] == pos["info"]["idxPx"] and fill["fillMarkPx"] == pos["info"]["markPx"]
