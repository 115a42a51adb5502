"""Exchange faults from the simulator: 5xx, rate limits (50011), latency, responses lost after acceptance.

Each fault is a replay of its own, in a simulator world of its own with the fault set (its fault RNG
seeded), of an agent that trades every tick (it opens when flat and closes when long), through the real
pipeline (Redis, a worker, ccxt over HTTP); the scenarios run side by side. Afterwards: every run completed,
no order was placed twice (nor even sent twice: a second placement of one clOrdId would be refused by the
simulator and is counted), every order's outcome is known, and each time an order's outcome was unknown
(its placement failed or its answer was lost) the order stage knew it again within three retries: by finding
the order at the exchange, or by finding it absent there, in which case it is sent again (a new placement,
counted in `sends_per_order`).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ccxt
from sqlalchemy import select

from okxlab.db.models import AuditEvent, Order, Run
from okxlab.replay.range import create_replay, run_range
from okxlab.simulator.admin import AdminClient
from tests.conftest import REDIS_URL
from tests.reliability.harness import Results
from tests.support.pipeline import running_pipeline
from workers.tasks import start_run

START = datetime(2022, 11, 1, tzinfo=UTC)
TICKS = 10
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
FAULTS = {  # on every endpoint unless `paths` says otherwise; each world's fault RNG is seeded
    "5xx": {"error_5xx_rate": 0.3, "seed": 11},
    "rate_limit": {"rate_limit_rate": 0.3, "seed": 12},
    "latency": {"latency_ms": 100, "seed": 13},
    "lost_response": {"lost_response_rate": 0.5, "paths": ["trade/batch-orders"], "seed": 14},
    "all_at_once": {"error_5xx_rate": 0.3, "rate_limit_rate": 0.1, "lost_response_rate": 0.3, "latency_ms": 50,
                    "seed": 15},
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


def unknown_episodes(kinds: list[str]) -> list[int]:
    """From an order's audit trail: for each time its outcome became unknown, how many retries (claims) it took
    to know it again: found at the exchange (order.resolved), found absent (order.not_found) or in a final
    state. An episode still open at the end counts as 99."""
    out, pending = [], None
    for kind in kinds:
        if kind == "order.unknown" and pending is None:
            pending = 0
        elif kind == "order.submitting" and pending is not None:
            pending += 1
        elif pending is not None and kind in ("order.resolved", "order.not_found", "order.filled", "order.submitted",
                                              "order.cancelled", "order.rejected"):
            out.append(pending)
            pending = None
    return out + ([99] if pending is not None else [])


def run_scenario(p, fault: str) -> dict:  # noqa: ANN001 - a tests.support.pipeline.Pipeline
    """One replay of the flipper in a world with `fault` set; its figures."""
    admin = AdminClient(p.sim.url, token=p.sim.admin_token)  # one per thread
    started = time.monotonic()
    replay = create_replay(p.env, kind="range", agents=["flipper"], start=START,
                           end=START + timedelta(hours=4 * (TICKS - 1)), bar="4H", offline_planners=True,
                           fresh_llm=False)
    run_range(p.env, replay, admin, p.sim.world_url, start_run, faults=FAULTS[fault], tick_timeout=150)
    world, book = f"replay-{replay.id}", f"replay:{replay.id}"
    with p.env.sessions() as s:
        orders = s.scalars(select(Order).where(Order.book == book)).all()
        runs = s.scalars(select(Run).where(Run.book == book)).all()
        trail = {o.cl_ord_id: [e.kind for e in s.scalars(select(AuditEvent).where(
            AuditEvent.run_id == o.run_id, AuditEvent.kind.like("order.%")).order_by(AuditEvent.id))]
            for o in orders}
    seen = admin.orders(world)
    placed = [o["clOrdId"] for o in seen["orders"] if o.get("clOrdId")]
    to_know = [n for o in orders for n in unknown_episodes(trail[o.cl_ord_id])]
    sends = [trail[o.cl_ord_id].count("order.submitting") - trail[o.cl_ord_id].count("order.resolved") for o in orders]
    return {
        "faults": FAULTS[fault], "runs": len(runs), "completed": sum(r.status == "completed" for r in runs),
        "orders": len(orders), "orders_at_exchange": len(placed),
        "duplicates": len(placed) - len(set(placed)) + len(set(placed) - {o.cl_ord_id for o in orders}),
        "duplicate_sends_refused": sum(r.get("sCode") == "51016" for r in seen["rejections"]),
        "unresolved": sum(o.state not in ("filled", "cancelled", "rejected", "submitted", "partially_filled")
                          for o in orders),
        "unknown_outcomes": len(to_know), "max_retries_to_know_outcome": max(to_know, default=0),
        "retries_to_know_outcome": {str(n): to_know.count(n) for n in sorted(set(to_know))},
        "sends_per_order": {str(n): sends.count(n) for n in sorted(set(sends))},
        "seconds": round(time.monotonic() - started, 2),
        "statuses": sorted((r.status, r.reason) for r in runs if r.status != "completed"),
    }


def test_exchange_faults_never_duplicate_an_order_and_resolve_each(pg_url: str, redis_prefix: str, tmp_path: Path,
                                                                   results: Results) -> None:
    """The five fault scenarios at once, one replay (and world) each, on one worker with a thread per scenario."""
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config(tmp_path), concurrency=len(FAULTS)) as p:
        with ThreadPoolExecutor(len(FAULTS)) as pool:
            futures = {fault: pool.submit(run_scenario, p, fault) for fault in FAULTS}
            measured = {fault: f.result() for fault, f in futures.items()}
    results.record("exchange_faults", ticks=TICKS, scenarios=measured)
    for fault, figures in measured.items():
        assert figures["completed"] == figures["runs"] == TICKS, (fault, figures["statuses"])
        assert figures["orders"] == TICKS == figures["orders_at_exchange"], (fault, figures)
        assert figures["duplicates"] == 0 and figures["duplicate_sends_refused"] == 0, (fault, figures)
        assert figures["unresolved"] == 0, (fault, figures)
        assert figures["max_retries_to_know_outcome"] <= 3, (fault, figures)
        if fault != "latency":
            assert figures["unknown_outcomes"] > 0, f"the {fault} fault never hit an order"


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
