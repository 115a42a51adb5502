"""Dispatching a trading run for an agent now, on demand, at most once per idempotency key."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.agents import sync_agents
from okxlab.config import Config
from okxlab.db.models import IdempotencyKey, utcnow
from okxlab.db.ops import audit, insert_new
from okxlab.errors import UserError
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.runner import skip_unready
from okxlab.service.risk import Conflict

OPERATION = "plans.execute"
MAX_KEY = 200


def stage_env(config: Config, sessions: sessionmaker[Session]) -> StageEnv:
    """What the stages need, on the caller's database and config (exchange clients and planners load lazily)."""
    from okxlab.execution.exchange import ExchangeProvider
    from okxlab.pipeline.planners import PlannerProvider

    return StageEnv(config=config, sessions=sessions, exchanges=ExchangeProvider(config),
                    planners=PlannerProvider(config, sessions))


def execute(env: StageEnv, agent: str, *, key: str | None, actor: str, start: Callable[[str], None]) -> dict[str, Any]:
    """Create one run of `agent` in its configured book for now and send its stage chain.

    With a key, the key and the run are written in one transaction: a second request with the same key (even one
    racing the first: Postgres makes its insert wait for the first's commit) returns the first's run, starts
    nothing, and says `created: false`. A run written but not started (the process died between) is driven on by
    the reconciler, as any stuck run."""
    cfg = env.config.agent(agent)  # unknown agents are refused with the known ones
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise UserError(f"the Idempotency-Key header must be 1-{MAX_KEY} characters")
    book = env.config.exchange_mode(cfg)
    now = utcnow().replace(microsecond=0)
    # Keys are the caller's own: another token sending the same key makes its own run, not a reply with ours.
    key = hashlib.sha256(f"{actor}\n{key}".encode()).hexdigest() if key is not None else None
    tag = key[:16] if key else uuid.uuid4().hex[:16]
    with env.sessions.begin() as s:
        if key is not None:
            claimed = insert_new(s, IdempotencyKey, [{"key": key, "operation": OPERATION, "created_at": now,
                                                      "result": {}}], None, "key")
            if not claimed:
                return _earlier(s, key, agent)
        sync_agents(s, env.config)
        [run_id] = create_runs(s, f"api:{tag}", [(agent, book)], now, now=now)
        if key is not None:
            s.get(IdempotencyKey, key).result = {"run_id": run_id, "agent": agent, "book": book}
        audit(s, "run.requested", f"run {run_id} of {agent} [{book}] requested", agent=agent, run_id=run_id,
              actor=actor, data={"book": book})
    for ready in skip_unready(env, [run_id]):  # an agent that cannot plan ends the run with the reason
        start(ready)
    return {"run_id": run_id, "agent": agent, "book": book, "created": True}


def _earlier(s: Any, key: str, agent: str) -> dict[str, Any]:
    row = s.scalar(select(IdempotencyKey).where(IdempotencyKey.key == key))
    if row.operation != OPERATION or row.result.get("agent") != agent:
        raise Conflict(f"this Idempotency-Key was already used for {row.operation} of "
                       f"{row.result.get('agent') or 'another request'}; use a new key")
    return {**row.result, "created": False}
