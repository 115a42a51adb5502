"""Exchange faults from the simulator: 5xx, rate limits (50011), latency, responses lost after acceptance.

Each fault is a replay of its own, in a simulator world of its own with the fault set, of an agent that
trades every tick (it opens when flat and closes when long), through the real pipeline (Redis, a worker,
ccxt over HTTP). The worker has one thread and the world one agent, so the same requests meet the same faults
on every run of the test (the fault RNG is seeded per world). Afterwards: every run completed, no order was
placed twice (nor even sent twice: a second placement of one clOrdId would be refused by the simulator and is
counted), every order's outcome is known, and it took at most three retries of the order stage to know it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ccxt
import pytest
from sqlalchemy import select

from okxlab.db.models import Order, Run
from tests.conftest import REDIS_URL
from tests.reliability.harness import Results
from tests.support.pipeline import running_pipeline

START = datetime(2022, 11, 1, tzinfo=UTC)
TICKS = 12
FLIPPER = {
    "schema_version": "okxlab.strategy.v1",
    "name": "flipper",
    "description": "opens a long when flat and closes it at the next run: one order every tick",
    "entries": {"long": {"logic": "and", "conditions": [{"signal": "always"}]}},
    "exits": {"long": {"logic": "or", "conditions": [{"signal": "always"}]}},
    "stops": {"stop_loss": {"percent": 5}},
    "leverage": 2,
    "confidence": 1,
}
TRADING = ["trade/", "account/set-leverage"]  # every call the order stage makes
FAULTS = {
    "5xx": {"error_5xx_rate": 0.3, "paths": TRADING, "seed": 11},
    "rate_limit": {"rate_limit_rate": 0.3, "paths": TRADING, "seed": 12},
    "latency": {"latency_ms": 250, "paths": TRADING, "seed": 13},
    "lost_response": {"lost_response_rate": 0.5, "paths": ["trade/batch-orders"], "seed": 14},
    "all_at_once": {"error_5xx_rate": 0.3, "rate_limit_rate": 0.1, "lost_response_rate": 0.3, "latency_ms": 100,
                    "paths": TRADING, "seed": 15},
}


def config(tmp_path: Path) -> str:
    doc = tmp_path / "flipper.json"
    doc.write_text(json.dumps(FLIPPER))
    return f"""
[pipeline]
candles = 100

[[agents]]
name = "flipper"
planner = "strategy"
strategy = "{doc}"
symbols = ["BTC-USDT-SWAP"]
[agents.risk]
risk_budget_pct = 2.0
"""


@pytest.fixture(scope="module")
def measured() -> dict:
    return {}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_exchange_faults_never_duplicate_an_order_and_resolve_each(fault: str, pg_url: str, redis_prefix: str,
                                                                   tmp_path: Path, results: Results,
                                                                   measured: dict) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config(tmp_path), concurrency=1) as p:
        started = time.monotonic()
        result = p.replay(["flipper"], START, START + timedelta(hours=4 * (TICKS - 1)), faults=FAULTS[fault],
                          tick_timeout=120)
        seconds = round(time.monotonic() - started, 2)
        world, book = f"replay-{result.replay_id}", f"replay:{result.replay_id}"
        with p.env.sessions() as s:
            orders = s.scalars(select(Order).where(Order.book == book)).all()
            runs = s.scalars(select(Run).where(Run.book == book)).all()
        seen = p.sim.admin.orders(world)
    placed = [o["clOrdId"] for o in seen["orders"] if o.get("clOrdId")]
    resent = [r for r in seen["rejections"] if r.get("sCode") == "51016"]
    retries = [o.send_attempts - 1 for o in orders]
    figures = {
        "faults": FAULTS[fault], "runs": len(runs), "completed": sum(r.status == "completed" for r in runs),
        "orders": len(orders), "orders_at_exchange": len(placed),
        "duplicates": len(placed) - len(set(placed)) + len(set(placed) - {o.cl_ord_id for o in orders}),
        "duplicate_sends_refused": len(resent),
        "unresolved": sum(o.state not in ("filled", "cancelled", "rejected", "submitted", "partially_filled")
                          for o in orders),
        "orders_needing_retries": sum(r > 0 for r in retries), "max_retries_to_resolve": max(retries, default=0),
        "retries_histogram": {str(n): retries.count(n) for n in sorted(set(retries))}, "seconds": seconds,
    }
    measured[fault] = figures
    results.record("exchange_faults", scenarios=dict(measured))
    assert figures["completed"] == figures["runs"] == TICKS, [(r.id, r.status, r.reason) for r in runs]
    assert figures["orders"] == TICKS == figures["orders_at_exchange"], figures
    assert figures["duplicates"] == 0 and figures["duplicate_sends_refused"] == 0, figures
    assert figures["unresolved"] == 0, [(o.cl_ord_id, o.state) for o in orders]
    assert figures["max_retries_to_resolve"] <= 3, figures
    if fault != "latency":
        assert figures["orders_needing_retries"] > 0, f"the {fault} fault never hit an order"


def test_reads_answered_5xx_or_rate_limited_are_asked_again(pg_url: str, tmp_path: Path) -> None:
    """GETs meeting a 5xx or a 429 are repeated by the HTTP layer (they change nothing at the exchange), so a
    transient error does not fail a whole stage. 30% of ticker requests fail here: almost none of 30 calls
    may fail after three repeats (a 0.3^4 chance each), where a third of them would without."""
    from okxlab.execution.exchange import Venue, new_client
    from tests.reliability.conftest import open_lab

    with open_lab(pg_url, tmp_path, config(tmp_path)) as lab:
        lab.admin.create_world("reads", clock="replay", start="2022-11-01T00:00:00Z",
                               faults={"error_5xx_rate": 0.2, "rate_limit_rate": 0.15, "paths": ["market/ticker"],
                                       "seed": 5})
        client = new_client(lab.config, lab.config.agent("flipper"), Venue("sim", lab.sim.world_url("reads")))
        failures = 0
        for _ in range(30):
            try:
                client.fetch_ticker("BTC/USDT:USDT")
            except (ccxt.ExchangeNotAvailable, ccxt.RateLimitExceeded):
                failures += 1
    assert failures <= 1
