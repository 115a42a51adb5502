"""okxlab's Celery tasks. Each is a few lines: deliver to a domain function, stop the chain when the run ends.

Task names are stable strings (`okxlab.snapshot`, ...), independent of module paths; routes send each stage
to its own queue (celeryconfig.py).
"""

from __future__ import annotations

from celery import Task, chain

from okxlab.errors import TransientError
from okxlab.pipeline.stages import STAGES, Delivery, execute_stage, is_transient
from workers.app import app


class StageTask(Task):
    """Retries transient failures (network, exchange or database briefly away) with exponential backoff."""

    abstract = True
    autoretry_for = (TransientError,)
    retry_backoff = 1
    retry_backoff_max = 60
    retry_jitter = True
    max_retries = 8
    acks_late = True
    reject_on_worker_lost = True


def _run_stage(task: Task, stage: str, run_id: str) -> dict:
    from okxlab.pipeline.env import default_env

    info = task.request.delivery_info or {}
    delivery = Delivery(queue=info.get("routing_key"), worker=task.request.hostname, task_id=task.request.id)
    try:
        go_on = execute_stage(stage, run_id, default_env(), delivery)
    except Exception as exc:
        if is_transient(exc):
            error = TransientError(f"{type(exc).__name__}: {exc}")
            retry_after = getattr(exc, "retry_after", None)  # the error knows when trying again makes sense
            if retry_after is not None:
                raise task.retry(exc=error, countdown=retry_after) from exc
            raise error from exc
        raise
    if not go_on:
        task.request.chain = None  # the run ended at this stage: send nothing further
    return {"run_id": run_id, "stage": stage, "continue": go_on}


def _stage_task(stage: str):  # noqa: ANN202
    @app.task(name=f"okxlab.{stage}", base=StageTask, bind=True)
    def stage_task(self: Task, run_id: str) -> dict:
        return _run_stage(self, stage, run_id)

    return stage_task


STAGE_TASKS = {stage: _stage_task(stage) for stage in STAGES}


def start_run(run_id: str, from_stage: str = "snapshot") -> None:
    """Send a run's chain of stage tasks, passing only its id."""
    i = STAGES.index(from_stage)
    chain(*(STAGE_TASKS[stage].si(run_id) for stage in STAGES[i:]), app=app).apply_async()


@app.task(name="okxlab.dispatch", bind=True, acks_late=True)
def dispatch(self: Task) -> dict:
    from okxlab.pipeline.runner import dispatch_and_start

    return {"started": dispatch_and_start(start_run)}


@app.task(name="okxlab.reconcile_runs", bind=True, acks_late=True)
def reconcile_runs(self: Task) -> dict:
    from okxlab.pipeline.runner import resume_stuck

    return {"resumed": resume_stuck(start_run)}


@app.task(name="okxlab.nightly_report", bind=True, acks_late=True, autoretry_for=(TransientError,),
          retry_backoff=30, max_retries=5)
def nightly_report(self: Task) -> dict:
    """The previous UTC day's report, emailed once if SMTP is configured."""
    from datetime import UTC, datetime

    from okxlab.review.mailer import MailError
    from okxlab.review.report import nightly_report as build_and_send

    try:
        outcome = build_and_send(datetime.now(UTC))
    except MailError as exc:  # the send claim was released: a retry may send
        raise TransientError(str(exc)) from exc
    return {"day": outcome.day.isoformat(), "sent": outcome.sent, "message": outcome.message}


@app.task(name="okxlab.reconcile_ledgers", bind=True, acks_late=True)
def reconcile_ledgers(self: Task) -> dict:
    """Each agent's ledger against the exchange, for the configured (non-replay) books; results are recorded."""
    from okxlab.execution.reconcile import reconcile
    from okxlab.pipeline.env import default_env

    env = default_env()
    results = [reconcile(env, a, env.config.exchange_mode(a), source="beat") for a in env.config.agents]
    return {"checked": len(results), "mismatched": [r.agent for r in results if not r.ok]}


@app.task(name="okxlab.replay_range", bind=True, acks_late=True)
def replay_range(self: Task, replay_id: int, mode: str) -> dict:
    """A replay range requested over HTTP, run in this worker in-process (inline or fast mode)."""
    from okxlab.pipeline.env import default_env
    from okxlab.service.replays import run_queued

    return run_queued(default_env(), replay_id, mode)


def queue_replay(replay_id: int, mode: str) -> None:
    replay_range.apply_async(args=[replay_id, mode])
