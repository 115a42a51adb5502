"""Replays requested over HTTP: a replay range is recorded, queued on the replay queue, and run by a worker
in-process (inline or fast mode: the same stage decisions as the pipeline, no simulator server needed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from okxlab.db.models import Replay, Run, utcnow
from okxlab.db.ops import audit
from okxlab.errors import NotFound, UserError
from okxlab.marketdata.bars import BarError, bar_ms
from okxlab.pipeline.env import StageEnv
from okxlab.replay.inprocess import MODES, replay_in_process
from okxlab.replay.range import count_ticks, create_replay

MAX_RUNS = 200_000  # one request may not occupy the replay worker for days


def request(env: StageEnv, *, agents: list[str], start: datetime, end: datetime, bar: str | None, mode: str,
            offline_planners: bool, actor: str, enqueue: Callable[[int, str], None]) -> dict[str, Any]:
    """Record a replay range (status `queued`) and send it to the replay queue; returns its id."""
    if mode not in MODES:
        raise UserError(f"mode {mode!r} must be one of {', '.join(MODES)} (the pipeline mode runs from the "
                        "command line: `celery -A workers replay range`)")
    if not agents:
        raise UserError("give at least one agent")
    bar = bar or env.config.agent(agents[0]).bar
    try:
        bar_ms(bar)
    except BarError as exc:
        raise UserError(str(exc)) from None
    ticks = count_ticks(start, end, bar) if end >= start else 0
    if ticks * len(agents) > MAX_RUNS:
        raise UserError(f"{ticks:,} ticks x {len(agents)} agents is more than {MAX_RUNS:,} runs; shorten the window")
    for name in agents:  # what the worker would refuse, refused here, before anything is written
        cfg = env.config.agent(name)
        if cfg.planner == "llm" and not offline_planners:
            raise UserError(f"agent {name} plans with a model; in-process replays run rule-based planners only: "
                            "set offline_planners to use its offline stand-in")
        problem = env.planners.check(cfg, offline=offline_planners)
        if problem:
            raise UserError(problem)
    replay = create_replay(env, kind="range", agents=agents, start=start, end=end, bar=bar,
                           offline_planners=offline_planners, fresh_llm=False)
    with env.sessions.begin() as s:
        s.get(Replay, replay.id).status = "queued"
        audit(s, "replay.requested", f"replay {replay.id} ({mode}) requested", actor=actor,
              data={"replay_id": replay.id, "mode": mode})
    try:
        enqueue(replay.id, mode)
    except Exception as exc:  # the broker did not take it: the row must not wait in `queued` for ever
        with env.sessions.begin() as s:
            row = s.get(Replay, replay.id)
            row.status, row.finished_at = "failed", utcnow()
            row.summary = {"error": f"not queued: {type(exc).__name__}"}
        raise UserError(f"the replay could not be queued ({type(exc).__name__}); is the broker up?") from None
    return {"replay_id": replay.id, "status": "queued", "mode": mode, "ticks": ticks}


def run_queued(env: StageEnv, replay_id: int, mode: str) -> dict[str, Any]:
    """What the replay worker does. Claiming `queued` → `running` first makes a redelivered task a no-op."""
    with env.sessions.begin() as s:
        claimed = s.execute(update(Replay).where(Replay.id == replay_id, Replay.status == "queued")
                            .values(status="running")).rowcount
    if not claimed:
        return {"replay_id": replay_id, "skipped": "not queued (already run or running)"}
    with env.sessions() as s:
        row = s.get(Replay, replay_id)
        s.expunge(row)
    result = replay_in_process(env, agents=list(row.agents), start=row.start, end=row.end, bar=row.bar, mode=mode,
                               offline_planners=row.offline_planners, replay=row)
    return {"replay_id": replay_id, "runs": result.runs}


def show(s: Session, replay_id: int) -> dict[str, Any]:
    """A replay's state, progress (runs ended of those expected) and, when done, its summary."""
    row = s.get(Replay, replay_id)
    if row is None:
        raise NotFound(f"no replay {replay_id}")
    statuses = dict(s.execute(select(Run.status, func.count()).where(Run.replay_id == replay_id)
                              .group_by(Run.status)).all())
    expected = count_ticks(row.start, row.end, row.bar) * len(row.agents) if row.start and row.bar else None
    return {"id": row.id, "kind": row.kind, "status": row.status, "agents": list(row.agents), "start": row.start,
            "end": row.end, "bar": row.bar, "book": f"replay:{row.id}", "created_at": row.created_at,
            "finished_at": row.finished_at, "progress": {"runs": sum(statuses.values()), "expected_runs": expected,
                                                         "statuses": statuses},
            "summary": row.summary or {}}
