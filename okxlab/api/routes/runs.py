"""Runs (the audit trail) and on-demand plans."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, Field

from okxlab.api.auth import OPERATE, READ, Caller
from okxlab.api.context import ApiContext, ctx
from okxlab.api.responses import READ_ERRORS, WRITE_ERRORS, errors
from okxlab.service import plans, runs
from okxlab.service.leaderboard import parse_when

router = APIRouter()


class RunsPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ExecuteBody(BaseModel):
    agent: str = Field(min_length=1, max_length=40)


class Executed(BaseModel):
    run_id: str
    agent: str
    book: str
    created: bool = Field(description="false when an earlier request with the same Idempotency-Key made the run")


@router.get("/runs", tags=["runs"], responses={**READ_ERRORS, **errors(400)})
def list_runs(agent: str | None = Query(None, max_length=40), book: str | None = Query(None, max_length=24),
              status: str | None = Query(None, max_length=16),
              since: str | None = Query(None, max_length=40, description="YYYY-MM-DD, an ISO time or a span (12h, 7d)"),
              limit: int = Query(50, ge=1, le=500), cursor: str | None = Query(None, max_length=400),
              _: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> RunsPage:
    """Runs, newest first, filtered; `next_cursor` pages on."""
    where = runs.RunFilter(agent=agent, book=book, status=status, since=parse_when(since, "since") if since else None)
    with c.sessions() as s:
        items, nxt = runs.list_runs(s, where, limit, cursor)
    return RunsPage(items=items, next_cursor=nxt)


@router.get("/runs/{run_id}", tags=["runs"], responses=READ_ERRORS)
def show_run(run_id: str, full: bool = False, _: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """One run's whole trail (as `okxlab runs show --json`); `full` adds prompt texts and candles."""
    with c.sessions() as s:
        return runs.show(s, run_id, full=full)


@router.post("/plans/generate", tags=["plans"], responses={**WRITE_ERRORS, **errors(503)})
def generate(body: ExecuteBody, caller: Caller = Depends(OPERATE), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """Run the stages up to the risk verdict for an agent now, in this process (no worker needed), on its trading
    book's market, account, risk state and switches, and return the plan (the planner, the model's text, the
    decisions), the validation and each verdict with whether its order would be sent now (`would_send`,
    `reason`). Nothing is sent, ever: the run is recorded in the book `dry:<book>` (see `GET /runs/{id}`),
    ends at its verdicts, takes no trading turn and changes nothing in the trading book."""
    env = plans.stage_env(c.config, c.sessions)
    return plans.generate(env, body.agent, actor=caller.actor)


@router.post("/plans/execute", tags=["plans"], status_code=202, responses=WRITE_ERRORS)
def execute(body: ExecuteBody, idempotency_key: str | None = Header(None, max_length=plans.MAX_KEY),
            caller: Caller = Depends(OPERATE), c: ApiContext = Depends(ctx)) -> Executed:
    """Dispatch a trading run of an agent now, through the workers. With an `Idempotency-Key`, repeating the
    request (or racing it) returns the same run and starts nothing more."""
    env = plans.stage_env(c.config, c.sessions)
    return Executed(**plans.execute(env, body.agent, key=idempotency_key, actor=caller.actor, start=c.start_run))
