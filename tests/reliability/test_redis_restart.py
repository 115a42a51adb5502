"""Redis killed and restarted (empty: no persistence) in the middle of a stream of runs.

A redis-server of the test's own is the broker of two worker processes. Runs are sent one after another; in
the middle of the stream Redis is SIGKILLed, runs are still sent while it is down (those sends fail, as
dispatch's would), and it is started again on the same port, with nothing in it. Runs sent afterwards must
complete on their own (the workers reconnected); the runs whose messages died with Redis are driven on by
one reconciler pass. Then every run has completed, each stage has one record per run, and each accepted
decision has exactly one order at the simulator.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from okxlab.db import models as m
from okxlab.db.models import utcnow
from okxlab.pipeline.runner import resume_stuck
from okxlab.pipeline.stages import STAGE_TIME_LIMITS, STAGES
from tests.reliability.conftest import Lab, open_lab
from tests.reliability.harness import (
    RedisServer,
    Results,
    WorldRun,
    buy_and_hold_config,
    orders_check,
    run_rows,
    wait_ended,
    world_run,
)

START = datetime(2022, 11, 20, tzinfo=UTC)
AGENTS = ("stream-a", "stream-b")
CONFIG = buy_and_hold_config(*AGENTS)
BEFORE, DURING, AFTER = 8, 3, 5  # runs sent before the kill, while Redis is down, after it is back
DOWN_S = 3.0


@pytest.fixture
def broker(tmp_path: Path):  # noqa: ANN201
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture
def lab(pg_url: str, tmp_path: Path, broker: RedisServer):  # noqa: ANN201
    with open_lab(pg_url, tmp_path, CONFIG, broker_url=broker.url) as lab:
        yield lab


def _send(lab: Lab, sender, runs: list[WorldRun], n: int, i0: int, gap: float = 0.0) -> list[str]:  # noqa: ANN001
    """Create n runs, then send them `gap` seconds apart; returns the ids whose message could not be sent."""
    fresh = [world_run(lab.env, lab.admin, lab.sim.world_url, AGENTS[i % len(AGENTS)], START) for i in range(i0, i0 + n)]
    runs += fresh
    failed = []
    for wr in fresh:
        try:
            sender.start_run(wr.run_id)
        except Exception:  # the broker is away: the run exists, its message does not
            failed.append(wr.run_id)
        time.sleep(gap)
    return failed


def _records_per_run(lab: Lab, run_ids: list[str]) -> dict[str, int]:
    """Rows per run in each stage's table: one stage record per stage, one row per symbol or per run."""
    tables = {"stage_records": m.StageRecord, "market_snapshots": m.MarketSnapshot, "account_snapshots": m.AccountSnapshot,
              "quality_checks": m.QualityCheck, "features": m.FeatureSet, "plans": m.PlanRecord,
              "plan_validations": m.PlanValidation, "risk_verdicts": m.RiskVerdictRecord, "orders": m.Order,
              "equity_snapshots": m.EquitySnapshot}
    out = {}
    with lab.env.sessions() as s:
        for name, model in tables.items():
            counts = dict(s.execute(select(model.run_id, func.count()).where(model.run_id.in_(run_ids))
                                    .group_by(model.run_id)).all())
            out[name] = max(counts.values(), default=0)
    return out


def test_redis_restarted_during_a_stream_of_runs(lab: Lab, broker: RedisServer, results: Results) -> None:
    workers = [lab.worker(f"redis-{i}", concurrency=4) for i in range(2)]
    sender = lab.sender()
    runs: list[WorldRun] = []
    unsent = _send(lab, sender, runs, BEFORE, 0, gap=0.1)
    killed = time.monotonic()
    broker.kill()
    in_flight = [r.id for r in run_rows(lab.env, [w.run_id for w in runs]).values()
                 if r.status not in ("completed", "skipped", "invalid_plan", "rejected", "failed")]
    unsent += _send(lab, sender, runs, DURING, BEFORE, gap=0.2)
    time.sleep(max(0.0, DOWN_S - (time.monotonic() - killed)))
    broker.start()
    back = time.monotonic()
    back_at = utcnow()
    after: list[WorldRun] = []
    unsent_after = _send(lab, sender, after, AFTER, BEFORE + DURING, gap=0.2)
    runs += after
    # Sent after the restart: completed by the workers on their own, so both reconnected to the new Redis.
    after_ids = [r.run_id for r in after if r.run_id not in unsent_after]
    assert after_ids, "no run could be sent after the restart"
    wait_ended(lab.env, after_ids, timeout=90)
    reconnected_s = round(time.monotonic() - back, 2)
    assert all(w.proc is not None and w.proc.poll() is None for w in workers)
    with lab.env.sessions() as s:
        consuming = set(s.scalars(select(m.StageRecord.worker).where(m.StageRecord.run_id.in_(after_ids))))
    # Runs whose messages died with Redis (queued, in flight, or never sent) are still open: one reconciler
    # pass, with a clock past the stages' limits and the queue grace, drives them on.
    time.sleep(2.0)  # let in-flight stages settle before judging what is stuck
    moving = [r for r in run_rows(lab.env, [w.run_id for w in runs]).values()
              if r.status not in ("completed", "skipped", "invalid_plan", "rejected", "failed")]
    horizon = timedelta(seconds=max(STAGE_TIME_LIMITS.values()) + 60)
    reconciler = dataclasses.replace(lab.env, now=lambda: utcnow() + horizon)
    resumed = resume_stuck(sender.start_run, reconciler)
    ended = wait_ended(lab.env, [w.run_id for w in runs], timeout=120)
    recovered_s = round(max((r.finished_at - back_at).total_seconds() for r in ended.values()), 2)
    statuses = [r.status for r in ended.values()]
    orders = orders_check(lab.env, lab.admin, runs)
    per_run = _records_per_run(lab, [w.run_id for w in runs])
    results.record("redis_restart", runs=len(runs), completed=statuses.count("completed"),
                   in_flight_at_kill=len(in_flight), sends_refused_while_down=len(unsent) + len(unsent_after),
                   stuck_after_restart=len(moving),
                   resumed_by_reconciler=resumed, accepted_decisions=orders.accepted,
                   orders_at_exchange=orders.orders_at_exchange, duplicates=orders.duplicates,
                   duplicate_sends_refused=orders.duplicate_sends_refused, missing=orders.missing,
                   max_rows_per_run=per_run, redis_down_s=DOWN_S, reconnected_within_s=reconnected_s,
                   recovery_s=recovered_s, workers=len(workers), workers_consuming_after_restart=len(consuming))
    assert consuming == {w.hostname for w in workers}  # both workers took tasks from the new Redis
    assert statuses == ["completed"] * len(runs), {r.id: (r.status, r.reason) for r in ended.values()}
    assert resumed == len(moving) and resumed >= len(unsent) >= 1
    assert orders.accepted == len(runs) and orders.orders_at_exchange == len(runs), orders
    assert orders.duplicates == 0 and orders.missing == 0 and orders.unresolved == [], orders
    assert per_run == {"stage_records": len(STAGES), "market_snapshots": 1, "account_snapshots": 1, "quality_checks": 1,
                       "features": 1, "plans": 1, "plan_validations": 1, "risk_verdicts": 1, "orders": 1,
                       "equity_snapshots": 1}
