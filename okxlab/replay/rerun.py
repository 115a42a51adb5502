"""Re-executing one past run from a stage, on its stored inputs, into a new run linked to the original.

Stages before `from_stage` are not executed again: their records are copied from the original, so the new
run sees exactly what the original saw (the same snapshot, the same candles, the same account). Stages from
`from_stage` on run through the workers with today's code. The plan stage rebuilds the same prompt, so the
recorded model answer is reused unless a fresh one is asked for.

A re-run never trades: the market it was decided for is gone. Its order stage records the orders it would
have sent (state `not_sent`) and sends nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.db import models as m
from okxlab.db.models import Replay, Run, StageRecord, utcnow
from okxlab.db.ops import audit
from okxlab.errors import NotFound, UserError
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.stages import STAGES

# The rows each stage writes, copied for the stages a re-run does not execute again.
STAGE_TABLES: dict[str, tuple[type[m.Base], ...]] = {
    "snapshot": (m.MarketSnapshot, m.AccountSnapshot),
    "quality": (m.QualityCheck,),
    "features": (m.FeatureSet,),
    "plan": (m.PlanRecord, m.LlmCallRecord),
    "validate": (m.PlanValidation,),
    "risk": (m.RiskVerdictRecord,),
}


def _copy_rows(s: Session, model: type[m.Base], source: str, target: str) -> int:
    columns = [c.key for c in model.__table__.columns if c.key not in ("id", "run_id")]
    rows = s.scalars(select(model).where(model.run_id == source)).all()
    for row in rows:
        s.add(model(run_id=target, **{c: getattr(row, c) for c in columns}))
    return len(rows)


def check_rerun(env: StageEnv, run_id: str, from_stage: str, *, fresh_market: bool) -> None:
    """Refuse, before anything is written, a re-run that would not be the run it claims to re-run."""
    if from_stage not in STAGES:
        raise UserError(f"--from-stage {from_stage!r} is not a stage ({', '.join(STAGES)})")
    with env.sessions() as s:
        original = s.get(Run, run_id)
        if original is None:
            raise NotFound(f"no run {run_id!r}; list runs with `okxlab runs list`")
        if from_stage == "snapshot" and not fresh_market:
            taken = s.scalar(select(m.MarketSnapshot.as_of).where(m.MarketSnapshot.run_id == run_id))
            raise UserError(f"--from-stage snapshot reads the market again now, not as run {run_id} saw it"
                            + (f" at {taken:%Y-%m-%d %H:%M} UTC" if taken else "")
                            + ", so it plans on other data; add --fresh-market to do that, or re-run from quality "
                            "or later to keep the original's inputs")


def create_rerun(env: StageEnv, run_id: str, from_stage: str, *, fresh_llm: bool) -> tuple[Replay, str]:
    """The new run (pending, with the earlier stages' records in place) and its replay row."""
    if from_stage not in STAGES:
        raise UserError(f"--from-stage {from_stage!r} is not a stage ({', '.join(STAGES)})")
    with env.sessions.begin() as s:
        original = s.get(Run, run_id)
        if original is None:
            raise NotFound(f"no run {run_id!r}; list runs with `okxlab runs list`")
        done = {r.stage for r in s.scalars(select(StageRecord).where(StageRecord.run_id == run_id,
                                                                     StageRecord.status == "done"))}
        missing = [st for st in STAGES[:STAGES.index(from_stage)] if st not in done]
        if missing:
            raise UserError(f"run {run_id} never finished {missing[0]}; replay it from {missing[0]} or earlier")
        referenced = s.scalars(select(m.MarketSnapshot.candles).where(m.MarketSnapshot.run_id == run_id)).first()
        if isinstance(referenced, dict) and from_stage in ("quality", "features", "plan"):
            raise UserError(f"run {run_id} comes from an in-process replay, which stores its candles as a reference "
                            f"to dataset {str(referenced.get('dataset'))[:12]}…; re-run it from validate, risk or "
                            "order, or replay its range again with --mode pipeline")
        replay = Replay(kind="run", agents=[original.agent], start=original.scheduled_for, end=original.scheduled_for,
                        bar=None, offline_planners=original.replay_id is not None and _offline(s, original),
                        fresh_llm=fresh_llm, status="running",
                        summary={"original": run_id, "from_stage": from_stage})
        s.add(replay)
        s.flush()
        book = f"replay:{replay.id}"
        (new_id,) = create_runs(s, book, [(original.agent, book)], original.scheduled_for, replay_id=replay.id,
                                replay_of=run_id, now=utcnow())
        for stage in STAGES[:STAGES.index(from_stage)]:
            for model in STAGE_TABLES[stage]:
                _copy_rows(s, model, run_id, new_id)
            rec = s.scalar(select(StageRecord).where(StageRecord.run_id == run_id, StageRecord.stage == stage))
            s.add(StageRecord(run_id=new_id, stage=stage, status="done", attempts=0, queue=None, worker=None,
                              started_at=rec.started_at, finished_at=utcnow(), duration_ms=0.0,
                              output={**rec.output, "copied_from": run_id}))
        audit(s, "replay.rerun", f"run {new_id} re-executes {run_id} from {from_stage}"
              + (" with a fresh model answer" if fresh_llm else ""), agent=original.agent, run_id=new_id,
              data={"original": run_id, "from_stage": from_stage, "replay_id": replay.id})
    return replay, new_id


def _offline(s: Session, run: Run) -> bool:
    replay = s.get(Replay, run.replay_id)
    return bool(replay and replay.offline_planners)


def side_by_side(s: Session, original_id: str, rerun_id: str) -> list[dict[str, Any]]:
    """One row per aspect: what the original and the re-run each recorded."""
    def stage_status(run_id: str) -> dict[str, str]:
        return {r.stage: r.status for r in s.scalars(select(StageRecord).where(StageRecord.run_id == run_id))}

    def plan(run_id: str) -> str:
        v = s.scalar(select(m.PlanValidation).where(m.PlanValidation.run_id == run_id))
        if v is None:
            return "-"
        if not v.valid:
            return "invalid: " + "; ".join(v.problems[:2])
        return ", ".join(f"{d['symbol']} {d['action']}" for d in v.plan["decisions"]) or "(empty)"

    def verdicts(run_id: str) -> str:
        rows = s.scalars(select(m.RiskVerdictRecord).where(m.RiskVerdictRecord.run_id == run_id)
                         .order_by(m.RiskVerdictRecord.idx)).all()
        return ", ".join(f"{v.symbol} {v.outcome}" + (f" ({'/'.join(v.reasons)})" if v.reasons else "") for v in rows) or "-"

    def orders(run_id: str) -> str:
        rows = s.scalars(select(m.Order).where(m.Order.run_id == run_id).order_by(m.Order.idx)).all()
        return ", ".join(f"{o.symbol} {o.side} {o.contracts:g} ({o.state})" for o in rows) or "-"

    def llm(run_id: str) -> str:
        calls = s.scalars(select(m.LlmCallRecord).where(m.LlmCallRecord.run_id == run_id)).all()
        if not calls:
            return "-"
        return ", ".join(f"{c.purpose}{' (recorded answer)' if c.cached else ''}" for c in calls)

    a, b = s.get(Run, original_id), s.get(Run, rerun_id)
    sa, sb = stage_status(original_id), stage_status(rerun_id)
    rows = [{"aspect": "status", "original": f"{a.status}", "replay": f"{b.status}"}]
    rows += [{"aspect": f"stage {st}", "original": sa.get(st, "-"), "replay": sb.get(st, "-")} for st in STAGES]
    for name, fn in (("llm calls", llm), ("plan", plan), ("verdicts", verdicts), ("orders", orders)):
        rows.append({"aspect": name, "original": fn(original_id), "replay": fn(rerun_id)})
    return rows


def finish(env: StageEnv, replay: Replay, run_id: str) -> None:
    with env.sessions.begin() as s:
        row = s.get(Replay, replay.id)
        run = s.get(Run, run_id)
        row.status, row.finished_at = "done", utcnow()
        row.summary = {**row.summary, "run": run_id, "status": run.status,
                       "llm_calls": s.scalar(select(func.count()).select_from(m.LlmCallRecord)
                                             .where(m.LlmCallRecord.run_id == run_id))}
