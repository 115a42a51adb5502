"""A worker SIGKILLed while runs are inside each of the seven stages.

Each round holds seven runs at once, one inside each stage, each in a simulator world of its own, by means
that need no test-only code in okxlab:

- snapshot: the world answers candle requests after a long delay (simulator latency on `candles`);
- quality, features, validate, risk: the test holds an uncommitted row with the key the stage is about to
  insert (quality_checks, features, plan_validations, risk_verdicts), so the stage waits on Postgres inside
  its record transaction;
- plan: the model (a local OpenAI-compatible server) does not answer until released;
- order: the world delays one exchange call of the order stage: `set-leverage` (the order row exists, not yet
  claimed nor sent), `trade/batch-orders` (what ccxt places orders with: claimed and sent, and accepted by the
  exchange after the worker is dead) or `trade/fills` (placed and filled; the fills are being fetched).

Then the worker is killed, the holds are released, and the runs must complete through one of the three
recovery paths: Redis redelivery after the visibility timeout to a restarted worker, the reconciler, or
(prefork) the worker's main process requeueing what its killed pool processes held. Afterwards every
accepted decision has exactly one order at the simulator, and every order's outcome is known.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import select

from okxlab.db.models import Order, StageRecord, utcnow
from okxlab.pipeline.runner import resume_stuck
from okxlab.pipeline.stages import STAGE_TIME_LIMITS, STAGES
from tests.reliability.conftest import Lab, open_lab
from tests.reliability.harness import (
    Results,
    WorldRun,
    orders_check,
    stage_status,
    wait_ended,
    wait_until,
    world_run,
)
from tests.support.llm_server import LlmServer, Reply, Request, answer
from tests.support.models import CANARY_KEY, KEY_ENV

START = datetime(2022, 11, 20, tzinfo=UTC)
SYMBOL = "BTC-USDT-SWAP"
HOLD_S = 8.0  # how long the order stage's exchange call is delayed (it must outlast the set-up of a round)
# An order claim left by the killed worker protects a send that may still be in flight; it must outlast
# HOLD_S (the delayed request lands that late). 60 s in production; shorter here to keep the suite short.
CLAIM_TTL_S = 10


def _buy_and_hold(name: str) -> str:
    return f"""
[[agents]]
name = "{name}"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["{SYMBOL}"]
[agents.risk]
risk_budget_pct = 5.0
max_leverage = 1
"""


def config_text(llm_base_url: str) -> str:
    agents = "".join(_buy_and_hold(f"k-{stage}") for stage in STAGES if stage != "plan")
    return f"""
[pipeline]
candles = 100
{agents}
[[agents]]
name = "k-plan"
planner = "llm"
symbols = ["{SYMBOL}"]
[agents.llm]
provider = "openai_compatible"
base_url = "{llm_base_url}"
model = "held-model"
api_key_env = "{KEY_ENV}"
timeout = 120
max_retries = 0
"""


class HeldModel:
    """Answers an open-long plan, but only once released: until then every request waits."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        if not self.released.is_set():
            with self._lock:
                self.waiting += 1
            self.released.wait(120)
        last = float(re.search(r"last: ([0-9.]+)", request.last_user_message.split(f"### {SYMBOL}", 1)[1]).group(1))
        decision = {"symbol": SYMBOL, "action": "open_long", "size": {"mode": "risk_usdt", "value": 50}, "leverage": 2,
                    "order_type": "market", "stop_loss": round(last * 0.97, 1), "confidence": 0.6,
                    "rationale": "held, then long"}
        return answer(json.dumps({"schema_version": "okxlab.plan.v1", "decisions": [decision]}))


# Rows whose key the stage is about to insert: holding one uncommitted makes the stage wait inside its
# record transaction (Postgres waits for the holder's transaction before it can decide on the unique key).
HOLDING_ROWS = {
    "quality": ("quality_checks", "INSERT INTO quality_checks (run_id, symbol, outcome, reasons, metrics) "
                                  "VALUES (%s, %s, 'pass', '[]', '{}')"),
    "features": ("features", 'INSERT INTO features (run_id, symbol, "values") VALUES (%s, %s, \'{}\')'),
    "validate": ("plan_validations", "INSERT INTO plan_validations (run_id, valid, schema_version, problems) "
                                     "VALUES (%s, false, 'held', '[]') -- %s"),
    "risk": ("risk_verdicts", 'INSERT INTO risk_verdicts (run_id, idx, symbol, action, outcome, reasons, proposal, '
                              'decision, "order", inputs) VALUES (%s, 0, %s, \'hold\', \'accept\', \'[]\', \'{}\', '
                              '\'{}\', NULL, \'{}\')'),
}
ORDER_HOLDS = ("account/set-leverage", "trade/batch-orders", "trade/fills")


@dataclass
class Trial:
    stage: str
    run: WorldRun
    in_place: Callable[[], bool]
    release: Callable[[], None]
    where: str


def _waiting_inserts(db_url: str, table: str) -> int:
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query LIKE %s", (f"INSERT INTO {table}%",))
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _order_state(lab: Lab, run_id: str) -> str | None:
    with lab.env.sessions() as s:
        return s.scalar(select(Order.state).where(Order.run_id == run_id))


def make_trial(lab: Lab, model: HeldModel, stage: str, tick: datetime, order_hold: str) -> Trial:
    world_url = lab.sim.world_url
    if stage == "snapshot":
        run = world_run(lab.env, lab.admin, world_url, "k-snapshot", tick,
                        faults={"latency_ms": 60_000, "paths": ["candles"]})
        return Trial(stage, run, lambda: stage_status(lab.env, run.run_id, stage) == "running",
                     lambda: lab.admin.set_faults(run.world), "waiting for candles from the exchange")
    if stage == "plan":
        run = world_run(lab.env, lab.admin, world_url, "k-plan", tick)
        asked = model.waiting
        return Trial(stage, run, lambda: stage_status(lab.env, run.run_id, stage) == "running" and model.waiting > asked,
                     model.released.set, "waiting for the model")
    if stage == "order":
        run = world_run(lab.env, lab.admin, world_url, "k-order", tick,
                        faults={"latency_ms": HOLD_S * 1000, "paths": [order_hold]})
        # set-leverage comes before the claim (the order is still new), the placement inside it, fills after it
        wanted = {"account/set-leverage": "new", "trade/batch-orders": "submitting", "trade/fills": "filled"}[order_hold]
        return Trial(stage, run, lambda: (stage_status(lab.env, run.run_id, stage) == "running"
                                          and _order_state(lab, run.run_id) == wanted),
                     lambda: lab.admin.set_faults(run.world), f"exchange call {order_hold} in flight")
    table, sql = HOLDING_ROWS[stage]
    run = world_run(lab.env, lab.admin, world_url, f"k-{stage}", tick)
    holder = psycopg2.connect(lab.db_url)
    with holder.cursor() as cur:
        cur.execute(sql, (run.run_id, SYMBOL))

    def release() -> None:
        holder.rollback()
        holder.close()

    return Trial(stage, run, lambda: (stage_status(lab.env, run.run_id, stage) == "running"
                                      and _waiting_inserts(lab.db_url, table) > 0),
                 release, f"waiting on a row lock in {table}")


def hold_round(lab: Lab, model: HeldModel, send: Callable[[str], None], tick: datetime, order_hold: str) -> list[Trial]:
    """Seven runs, each held inside its own stage. The order trial starts last: its hold is timed."""
    model.released.clear()
    trials = [make_trial(lab, model, stage, tick, order_hold) for stage in STAGES if stage != "order"]
    for t in trials:
        send(t.run.run_id)
    for t in trials:
        wait_until(t.in_place, 90, f"run {t.run.run_id} to be held in {t.stage}")
    order = make_trial(lab, model, "order", tick, order_hold)
    send(order.run.run_id)
    wait_until(order.in_place, 60, f"run {order.run.run_id} to be held in order ({order_hold})")
    trials.append(order)
    for t in trials:  # still where they were put
        assert stage_status(lab.env, t.run.run_id, t.stage) == "running", t
    return trials


def check_and_measure(lab: Lab, trials: list[Trial], killed_at: datetime, timeout: float) -> dict:
    runs = wait_ended(lab.env, [t.run.run_id for t in trials], timeout)
    orders = orders_check(lab.env, lab.admin, [t.run for t in trials])
    with lab.env.sessions() as s:
        attempts = {(r.run_id, r.stage): r.attempts for r in s.scalars(
            select(StageRecord).where(StageRecord.run_id.in_([t.run.run_id for t in trials])))}
    per_trial = []
    for t in trials:
        run = runs[t.run.run_id]
        per_trial.append({"stage": t.stage, "held": t.where, "run": run.id, "status": run.status,
                          "reason": run.reason, "attempts": attempts.get((run.id, t.stage)),
                          "recovery_s": round((run.finished_at - killed_at).total_seconds(), 2)})
    statuses = {p["run"]: p["status"] for p in per_trial}
    assert set(statuses.values()) == {"completed"}, per_trial
    assert orders.accepted == len(trials), orders  # every run's plan opened a position
    assert orders.orders_at_exchange == orders.accepted and orders.duplicates == 0 and orders.missing == 0, orders
    assert orders.unresolved == [] and orders.duplicate_sends_refused == 0, orders  # none even sent twice
    return {"trials": per_trial, "orders": dataclasses.asdict(orders)}


@pytest.fixture
def held_model() -> HeldModel:
    return HeldModel()


@pytest.fixture
def lab(pg_url: str, tmp_path: Path, held_model: HeldModel, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv(KEY_ENV, CANARY_KEY)
    with LlmServer(responder=held_model) as llm, \
            open_lab(pg_url, tmp_path, config_text(llm.base_url), extra_env={KEY_ENV: CANARY_KEY, "OKXLAB_ORDER_CLAIM_TTL": str(CLAIM_TTL_S)}) as lab:
        yield lab


def _summary(mode: str, rounds: list[dict], restart_s: list[float]) -> dict:
    trials = [t for r in rounds for t in r["trials"]]
    return {
        "mode": mode, "trials": len(trials), "stages": sorted({t["stage"] for t in trials}, key=STAGES.index),
        "completed": sum(t["status"] == "completed" for t in trials),
        "accepted_decisions": sum(r["orders"]["accepted"] for r in rounds),
        "orders_at_exchange": sum(r["orders"]["orders_at_exchange"] for r in rounds),
        "duplicates": sum(r["orders"]["duplicates"] for r in rounds),
        "duplicate_sends_refused": sum(r["orders"]["duplicate_sends_refused"] for r in rounds),
        "missing": sum(r["orders"]["missing"] for r in rounds),
        "recovery_s_max": max(t["recovery_s"] for t in trials),
        "recovery_s_median": sorted(t["recovery_s"] for t in trials)[len(trials) // 2],
        "worker_restart_s": restart_s, "rounds": rounds,
    }


VISIBILITY_S = 15


def test_killed_worker_redelivered_by_redis_to_a_new_worker(lab: Lab, held_model: HeldModel, results: Results) -> None:
    """SIGKILL the whole worker (threads pool); Redis redelivers its unacknowledged messages to a new one."""
    sender = lab.sender()
    worker = lab.worker("kill-redeliver", concurrency=10, OKXLAB_BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY_S))
    trials = hold_round(lab, held_model, sender.start_run, START, ORDER_HOLDS[2])
    killed_at = utcnow()
    worker.kill()
    for t in trials:
        t.release()
    again = lab.worker("kill-redeliver-again", concurrency=10, OKXLAB_BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY_S))
    restart = round(again.ready_at - again.started_at, 2)
    outcome = check_and_measure(lab, trials, killed_at, timeout=VISIBILITY_S + 120)
    results.record("worker_kill_redelivery", **_summary(f"SIGKILL whole worker (threads); Redis redelivers after "
                                                        f"visibility_timeout={VISIBILITY_S}s", [outcome], [restart]))


def test_killed_worker_driven_on_by_the_reconciler(lab: Lab, held_model: HeldModel, results: Results) -> None:
    """SIGKILL the whole worker with production's visibility timeout (an hour): the reconciler drives the runs
    on. Its pass is run with a clock past every stage's time limit plus grace, as its beat entry would be."""
    sender = lab.sender()
    worker = lab.worker("kill-reconcile", concurrency=10)
    trials = hold_round(lab, held_model, sender.start_run, START, ORDER_HOLDS[0])
    killed_at = utcnow()
    worker.kill()
    for t in trials:
        t.release()
    horizon = timedelta(seconds=max(STAGE_TIME_LIMITS.values()) + 60)
    reconciler = dataclasses.replace(lab.env, now=lambda: utcnow() + horizon)
    assert resume_stuck(sender.start_run, reconciler) == len(trials)
    # Driven on once, not again at the next pass. Both passes run before the new worker starts: a stage it
    # began would carry the real clock, which this reconciler's clock (an hour on) takes for a stuck stage.
    assert resume_stuck(sender.start_run, reconciler) == 0
    again = lab.worker("kill-reconcile-again", concurrency=10)
    restart = round(again.ready_at - again.started_at, 2)
    outcome = check_and_measure(lab, trials, killed_at, timeout=120)
    results.record("worker_kill_reconciler", **_summary(
        "SIGKILL whole worker (threads), visibility_timeout 3600 s; the reconciler drives the runs on", [outcome],
        [restart]), detection_s={stage: STAGE_TIME_LIMITS[stage] + 30 for stage in STAGES})


def test_killed_pool_processes_requeued_by_the_worker(lab: Lab, held_model: HeldModel, results: Results) -> None:
    """SIGKILL the prefork pool's processes (what an OOM kill does): the worker's main process requeues their
    messages at once (task_reject_on_worker_lost) and starts new pool processes."""
    sender = lab.sender()
    worker = lab.worker("kill-pool", pool="prefork", concurrency=8)
    # The order is in flight when its pool process dies: the requeued stage finds the claim fresh, waits for
    # it (OrderBusy, retried when it expires), then finds the order by clOrdId.
    trials = hold_round(lab, held_model, sender.start_run, START, ORDER_HOLDS[1])
    killed_at = utcnow()
    killed = worker.kill_pool_processes()
    assert len(killed) == 8
    for t in trials:
        t.release()
    outcome = check_and_measure(lab, trials, killed_at, timeout=120)
    assert worker.proc is not None and worker.proc.poll() is None  # the main process lived on
    results.record("worker_kill_pool", **_summary(
        "SIGKILL every prefork pool process; the main process requeues (reject_on_worker_lost)", [outcome], []))
