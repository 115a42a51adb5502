"""Postgres crashes in the middle of runs and comes back a few seconds later.

The test starts a Postgres cluster of its own (initdb, pg_ctl), migrates it, and points a worker at it. Runs
are sent; while they are spread over the stages (some waiting on the exchange inside snapshot, others
further on), the cluster is stopped in immediate mode (every connection cut, as when the server dies), kept
down, and started again. Stage tasks fail with the database away and are retried by Celery; once it is
back every run completes without the reconciler, no stage is left running or failed, each stage has exactly
one record per run (a stage's rows and its "done" commit in one transaction, so nothing partial stays), and
each accepted decision has exactly one order at the simulator.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from okxlab.db import models as m
from okxlab.db.models import utcnow
from okxlab.db.session import dispose_engines
from okxlab.pipeline.stages import STAGES
from tests.reliability.conftest import Lab, open_lab
from tests.reliability.harness import (
    PgCluster,
    Results,
    buy_and_hold_config,
    orders_check,
    run_rows,
    stage_status,
    wait_ended,
    wait_until,
    world_run,
)

START = datetime(2022, 11, 20, tzinfo=UTC)
AGENTS = ("pg-a", "pg-b", "pg-c", "pg-d")
CONFIG = buy_and_hold_config(*AGENTS)
RUNS = 8
DOWN_S = 5.0
CLAIM_TTL_S = 10  # an order sent just before the crash is claimed; its resolution waits for the claim


@pytest.fixture
def cluster():  # noqa: ANN201
    pg = PgCluster()
    try:
        yield pg.init().start()
    finally:
        dispose_engines()
        pg.remove()


@pytest.fixture
def lab(cluster: PgCluster, tmp_path: Path):  # noqa: ANN201
    url = cluster.create_database("okxlab")
    with open_lab(url, tmp_path, CONFIG, extra_env={"OKXLAB_ORDER_CLAIM_TTL": str(CLAIM_TTL_S)}) as lab:
        yield lab


def test_postgres_down_for_a_while_mid_run(lab: Lab, cluster: PgCluster, results: Results) -> None:
    lab.worker("pg", concurrency=8)
    sender = lab.sender()
    # Worlds that answer one call slowly hold their runs where the database dies: inside snapshot (candles),
    # inside order while the order is in flight (trade/batch-orders, what ccxt places orders with: it reaches
    # the exchange with the database down) or after it was placed (trade/fills); the rest run freely.
    held = {1: ("snapshot", "candles"), 2: ("order", "trade/batch-orders"), 3: ("order", "trade/fills")}
    runs = [world_run(lab.env, lab.admin, lab.sim.world_url, AGENTS[i % len(AGENTS)], START,
                      faults={"latency_ms": 3000, "paths": [held[i % 4][1]]} if i % 4 in held else None)
            for i in range(RUNS)]
    for wr in runs:
        sender.start_run(wr.run_id)
    for i, wr in enumerate(runs):
        if i % 4 in held:
            wait_until(lambda wr=wr, i=i: stage_status(lab.env, wr.run_id, held[i % 4][0]) == "running", 60,
                       f"{wr.run_id} in {held[i % 4][0]}")
    at_crash = {r.id: (r.status, r.stage) for r in run_rows(lab.env, [w.run_id for w in runs]).values()}
    cluster.crash()
    crashed = time.monotonic()
    time.sleep(DOWN_S)
    cluster.start()
    back_at, down_s = utcnow(), round(time.monotonic() - crashed, 2)
    ended = wait_ended(lab.env, [w.run_id for w in runs], timeout=150)
    recovered_s = round(max((r.finished_at - back_at).total_seconds() for r in ended.values()), 2)
    with lab.env.sessions() as s:
        records = s.scalars(select(m.StageRecord).where(m.StageRecord.run_id.in_([w.run_id for w in runs]))).all()
        per_table = {}
        for model in (m.MarketSnapshot, m.AccountSnapshot, m.QualityCheck, m.FeatureSet, m.PlanRecord,
                      m.PlanValidation, m.RiskVerdictRecord, m.Order, m.EquitySnapshot, m.StageRecord):
            counts = dict(s.execute(select(model.run_id, func.count()).where(model.run_id.in_([w.run_id for w in runs]))
                                    .group_by(model.run_id)).all())
            per_table[model.__tablename__] = sorted(set(counts.get(w.run_id, 0) for w in runs))
    orders = orders_check(lab.env, lab.admin, runs)
    in_flight = [rid for rid, (status, _) in at_crash.items() if status not in ("completed",)]
    retried = [f"{r.run_id}/{r.stage}" for r in records if r.attempts > 1]
    statuses = [r.status for r in ended.values()]
    results.record("postgres_outage", runs=len(runs), in_flight_at_crash=len(in_flight),
                   stages_at_crash=sorted({stage or "queued" for status, stage in at_crash.values()
                                           if status != "completed"}, key=lambda st: (STAGES + ("queued",)).index(st)),
                   down_s=down_s, completed=statuses.count("completed"), stage_attempts_retried=len(retried),
                   records_not_done=sum(r.status != "done" for r in records), rows_per_run=per_table,
                   accepted_decisions=orders.accepted, orders_at_exchange=orders.orders_at_exchange,
                   duplicates=orders.duplicates, duplicate_sends_refused=orders.duplicate_sends_refused,
                   missing=orders.missing, recovery_s=recovered_s)
    assert in_flight, "no run was in flight when the database went down"
    assert statuses == ["completed"] * len(runs), {r.id: (r.status, r.reason) for r in ended.values()}
    assert retried, "no stage was retried: the outage did not hit any"
    assert {r.status for r in records} == {"done"} and len(records) == len(runs) * len(STAGES)
    assert all(counts == [1] for name, counts in per_table.items() if name != "stage_records"), per_table
    assert orders.accepted == len(runs) == orders.orders_at_exchange, orders
    assert orders.duplicates == 0 and orders.missing == 0 and orders.unresolved == [], orders
    assert orders.duplicate_sends_refused == 0, orders  # no order was even sent twice
