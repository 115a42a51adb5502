"""The reconciler: the database, not the broker, decides whether a run is still moving.

A run is stuck when its current stage has been running longer than that stage's hard time limit (its worker
died, or its message was lost), or when the next stage has not started long after the previous one finished
(the message was lost with a broker). Such runs are driven on from their first unfinished stage; stages are
idempotent and orders are claimed, so a run sent twice does no work twice. Runs stuck for too long are
failed with a reason instead of being retried for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.db.models import Run, StageRecord
from okxlab.db.ops import audit
from okxlab.pipeline.stages import STAGE_TIME_LIMITS, STAGES


@dataclass(frozen=True)
class RecoveryPolicy:
    queued_grace: timedelta = timedelta(seconds=120)  # a stage may wait this long in its queue
    running_grace: timedelta = timedelta(seconds=30)  # beyond its hard time limit
    give_up_after: timedelta = timedelta(hours=6)  # a run older than this is failed, not resumed


def _first_unfinished(records: dict[str, StageRecord]) -> str | None:
    return next((st for st in STAGES if records.get(st) is None or records[st].status != "done"), None)


def find_stuck(session: Session, now: datetime, policy: RecoveryPolicy = RecoveryPolicy()) -> list[tuple[str, str]]:
    """(run_id, stage to resume from) for every stuck run; marks them so the next pass waits again."""
    out: list[tuple[str, str]] = []
    candidates = session.scalars(select(Run).where(Run.status.in_(("pending", "running")),
                                                   Run.updated_at < now - policy.running_grace)).all()
    for run in candidates:
        records = {r.stage: r for r in session.scalars(select(StageRecord).where(StageRecord.run_id == run.id))}
        stage = _first_unfinished(records)
        if stage is None:
            continue
        if now - run.created_at > policy.give_up_after:
            run.status, run.finished_at, run.updated_at = "failed", now, now
            run.reason = f"failed: stuck in {stage} and abandoned after {policy.give_up_after}"
            audit(session, "run.abandoned", run.reason, agent=run.agent, run_id=run.id)
            continue
        record = records.get(stage)
        if record is not None and record.status in ("running", "failed") and record.started_at is not None:
            limit = timedelta(seconds=STAGE_TIME_LIMITS[stage]) + policy.running_grace
            stuck = now - record.started_at > limit
        else:
            i = STAGES.index(stage)
            previous = records.get(STAGES[i - 1]) if i else None
            waiting_since = previous.finished_at if previous is not None and previous.finished_at else run.created_at
            stuck = now - waiting_since > policy.queued_grace
        if stuck:
            run.updated_at = now
            audit(session, "run.resumed", f"run stuck in {stage}; driven on by the reconciler", agent=run.agent,
                  run_id=run.id, data={"stage": stage})
            out.append((run.id, stage))
    return out
