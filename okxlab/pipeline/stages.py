"""The stage runner: idempotent execution of one stage of one run, with its record in the database.

Every stage follows the same steps, so each stage's own code only computes and adds its rows:

1. Note the attempt: the (run_id, stage) record is inserted if absent (a unique key, so two deliveries
   cannot create two) and marked running, with the queue and worker it was delivered to.
2. `gather` (optional): network I/O — the exchange, the model — outside any database transaction, so no
   lock or connection is held while waiting on the outside world. The order stage sends its orders here,
   each behind its own claim.
3. `record`: decide (a pure function of the domain, given the inputs the stage loads) and write the
   decision's rows and mark the record done **in one transaction**. If another delivery
   finished first, the conditional update finds nothing to do and this transaction rolls back: nothing is
   written twice.
4. A stage may end the run (skipped, invalid_plan, rejected, completed) with a recorded reason.

Transient errors (network, exchange unavailable, database connection lost) propagate so Celery retries the
task with backoff; anything else fails the stage and the run, with the error recorded.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ccxt
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from okxlab.db.models import Run, StageRecord
from okxlab.db.ops import insert_ignore
from okxlab.domain import STAGES, TERMINAL_RUN
from okxlab.errors import TransientError
from okxlab.pipeline.context import Stage, StageContext
from okxlab.pipeline.registry import stage_named

if TYPE_CHECKING:
    from okxlab.pipeline.env import StageEnv

log = logging.getLogger(__name__)

__all__ = ["STAGES", "TERMINAL", "Delivery", "Stage", "StageContext", "end_failed", "execute_stage", "is_transient"]
TERMINAL = TERMINAL_RUN

# Hard time limit per stage, in seconds (the soft limit is 10 s less). The plan stage waits on a model: two
# calls (plan and repair), each with the provider's timeout and the SDK's retries.
STAGE_TIME_LIMITS: dict[str, int] = {"snapshot": 90, "quality": 60, "features": 60, "plan": 600, "validate": 60,
                                     "risk": 60, "order": 180}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TransientError | ccxt.NetworkError):
        return True
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


@dataclass
class Delivery:
    """How the task running a stage was delivered (recorded, not assumed)."""

    queue: str | None = None
    worker: str | None = None
    task_id: str | None = None


class _AlreadyDone(Exception):
    pass


def _now_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _begin_attempt(env: StageEnv, stage: str, run_id: str, delivery: Delivery) -> tuple[str, Run | None]:
    """Record the attempt. Returns 'go', 'done' (already complete) or 'stop' (the run has ended), and the run.

    Four statements on the usual path (the run; this stage's and the previous stage's records in one query;
    the new record inserted already running; the run's update), since every stage of every run pays for them."""
    i = STAGES.index(stage)
    previous = STAGES[i - 1] if i > 0 else None
    with env.sessions.begin() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise LookupError(f"run {run_id} does not exist")
        if run.status in TERMINAL:
            return "stop", None
        wanted = (stage,) if previous is None else (stage, previous)
        records = {r.stage: r for r in s.scalars(select(StageRecord).where(StageRecord.run_id == run_id,
                                                                           StageRecord.stage.in_(wanted)))}
        record = records.get(stage)
        if record is not None and record.status == "done":
            return "done", None
        prev = records.get(previous) if previous else None
        if previous is not None and (prev is None or prev.status != "done"):
            # out of order (a stray message): the reconciler restarts runs properly
            log.warning("run %s: %s delivered before %s finished; ignoring", run_id, stage, previous)
            return "stop", None
        now = env.now()
        queued_at = run.created_at if prev is None else prev.finished_at  # when this stage's task was queued
        wait = round((now - queued_at).total_seconds() * 1000, 3) if queued_at else None
        if record is None:
            inserted = insert_ignore(s, StageRecord, [{
                "run_id": run_id, "stage": stage, "status": "running", "attempts": 1, "started_at": now,
                "queue": delivery.queue, "worker": delivery.worker, "task_id": delivery.task_id,
                "queue_wait_ms": wait, "error": None, "output": {}}], ["run_id", "stage"])
            if not inserted:  # another delivery of this stage inserted it meanwhile
                record = s.scalar(select(StageRecord).where(StageRecord.run_id == run_id, StageRecord.stage == stage))
        if record is not None:
            record.status = "running"
            record.attempts += 1
            record.started_at = now
            record.queue, record.worker, record.task_id = delivery.queue, delivery.worker, delivery.task_id
            record.queue_wait_ms = wait
            record.error = None
        run.status, run.stage, run.updated_at = "running", stage, now
        run.started_at = run.started_at or now
    return "go", run


def _fail(env: StageEnv, stage: str, run_id: str, error: str, *, end_run: bool) -> None:
    with env.sessions.begin() as s:
        record = s.scalar(select(StageRecord).where(StageRecord.run_id == run_id, StageRecord.stage == stage))
        run = s.get(Run, run_id)
        now = env.now()
        if record is not None and record.status != "done":
            record.error = error[:2000]
            if end_run:
                record.status, record.finished_at = "failed", now
        if run is not None and end_run and run.status not in TERMINAL:
            run.status, run.reason, run.finished_at, run.updated_at = "failed", f"{stage} failed: {error}"[:2000], now, now


def end_failed(env: StageEnv, stage: str, run_id: str, error: str) -> None:
    """End a run failed at `stage` (a caller with no retries to give a transient error, such as a dry run)."""
    _fail(env, stage, run_id, error, end_run=True)


def execute_stage(stage: str, run_id: str, env: StageEnv, delivery: Delivery | None = None) -> bool:
    """Run `stage` of `run_id` once. Returns True if the run should go on to the next stage."""
    delivery = delivery or Delivery()
    state, detached_run = _begin_attempt(env, stage, run_id, delivery)
    if state != "go":
        return state == "done"
    definition = stage_named(stage)
    started = time.perf_counter()
    try:
        gathered = definition.gather(env, detached_run) if definition.gather else None
        with env.sessions.begin() as s:
            run = s.get(Run, run_id)
            result = definition.record(StageContext(session=s, run=run, env=env, gathered=gathered))
            for model, row in result.rows:
                s.add(model(**row))
            now = env.now()
            done = s.execute(
                update(StageRecord)
                .where(StageRecord.run_id == run_id, StageRecord.stage == stage, StageRecord.status != "done")
                .values(status="done", finished_at=now, duration_ms=_now_ms(started), output=result.output, error=None)
            )
            if done.rowcount == 0:
                raise _AlreadyDone
            run.updated_at = now
            if result.end is not None:
                run.status, run.reason = result.end
                run.finished_at = now
    except (_AlreadyDone, IntegrityError) as exc:
        # Another delivery of this stage finished first: its records stand and ours were rolled back. A
        # collision on a key while this stage is still not done is something else (rows another run wrote
        # meanwhile): this attempt was rolled back whole and is tried again, so the run still completes.
        with env.sessions.begin() as s:
            run = s.get(Run, run_id)
            done = s.scalar(select(StageRecord.status).where(StageRecord.run_id == run_id,
                                                              StageRecord.stage == stage)) == "done"
        if done or isinstance(exc, _AlreadyDone):
            return run is not None and run.status not in TERMINAL
        message = f"IntegrityError: {str(exc.orig if hasattr(exc, 'orig') else exc)[:300]}"
        _fail(env, stage, run_id, message, end_run=False)
        raise TransientError(f"run {run_id}: {stage}: {message}") from exc
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}".strip()
        if is_transient(exc):
            try:
                _fail(env, stage, run_id, message, end_run=False)
            except Exception:  # the database itself may be what is away
                log.debug("could not record transient error for %s/%s", run_id, stage, exc_info=True)
            raise
        log.exception("run %s: stage %s failed", run_id, stage)
        _fail(env, stage, run_id, message, end_run=True)
        return False
    return result.end is None
