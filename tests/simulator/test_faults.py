"""Faults on demand: 5xx, rate limits and lost responses, seeded so a faulty run can be repeated."""

from __future__ import annotations

import ccxt
import pytest
import requests

from okxlab.simulator import SimAdminError

SYM = "ETH/USDT:USDT"


def test_rate_limit_and_server_errors_look_like_okx(new_world, admin) -> None:
    w = new_world()
    ex = w.exchange()
    admin.set_faults(w.name, rate_limit_rate=1.0)
    resp = requests.get(f"{w.url}/api/v5/public/time", timeout=10)
    assert resp.status_code == 429 and resp.json() == {"code": "50011", "msg": "Too Many Requests", "data": []}
    with pytest.raises(ccxt.RateLimitExceeded):
        ex.fetch_time()
    admin.set_faults(w.name, error_5xx_rate=1.0)
    resp = requests.get(f"{w.url}/api/v5/public/time", timeout=10)
    assert resp.status_code == 500 and resp.json()["code"] == "50026"
    with pytest.raises(ccxt.ExchangeNotAvailable):
        ex.fetch_time()
    admin.set_faults(w.name)  # all off again
    assert ex.fetch_time() == w.engine.now


def test_a_lost_response_still_places_the_order_which_is_found_by_its_client_id(new_world, admin) -> None:
    w = new_world()
    ex = w.exchange()
    admin.set_faults(w.name, lost_response_rate=1.0, paths=["trade/batch-orders"])
    assert ex.fetch_balance()["USDT"]["total"] == 10_000  # other endpoints are not affected
    with pytest.raises(ccxt.NetworkError):
        ex.create_order(SYM, "market", "buy", 3, None, {"clientOrderId": "run7dec1"})
    # What a careful client does next: look the order up by clOrdId before sending anything again.
    found = ex.fetch_order(None, SYM, {"clientOrderId": "run7dec1"})
    assert found["status"] == "closed" and found["filled"] == 3
    with pytest.raises(ccxt.NetworkError):
        ex.create_order(SYM, "market", "buy", 3, None, {"clientOrderId": "run7dec1"})
    admin.set_faults(w.name)
    with pytest.raises(ccxt.InvalidOrder, match="51016"):  # the retry cannot place a second order
        ex.create_order(SYM, "market", "buy", 3, None, {"clientOrderId": "run7dec1"})
    assert ex.fetch_position(SYM)["contracts"] == 3


def test_faults_are_reproducible_from_their_seed(new_world, admin) -> None:
    w = new_world(faults={"error_5xx_rate": 0.3, "rate_limit_rate": 0.3, "seed": 11, "latency_ms": 1})
    assert admin.faults(w.name)["seed"] == 11 and admin.faults(w.name)["latency_ms"] == 1

    def run() -> list[int]:
        return [requests.get(f"{w.url}/api/v5/public/time", timeout=10).status_code for _ in range(40)]

    first = run()
    assert {200, 429, 500} <= set(first)
    admin.set_faults(w.name, error_5xx_rate=0.3, rate_limit_rate=0.3, seed=11)
    assert run() == first


def test_bad_fault_settings_are_refused(new_world, admin) -> None:
    w = new_world()
    with pytest.raises(SimAdminError, match="between 0 and 1"):
        admin.set_faults(w.name, error_5xx_rate=2)
    with pytest.raises(SimAdminError, match="unknown fault"):
        admin.set_faults(w.name, packet_loss=0.1)
