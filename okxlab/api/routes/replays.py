"""Replays: requested over HTTP, run by a worker on the replay queue, followed by id."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from okxlab.api.auth import OPERATE, READ, Caller
from okxlab.api.context import ApiContext, ctx
from okxlab.api.responses import READ_ERRORS, WRITE_ERRORS
from okxlab.service import replays
from okxlab.service.plans import stage_env

router = APIRouter()


class ReplayRequest(BaseModel):
    agents: list[str] = Field(min_length=1, max_length=20)
    start: datetime = Field(description="ISO 8601; UTC unless it says otherwise")
    end: datetime = Field(description="inclusive")
    bar: str | None = Field(None, max_length=8, description="tick spacing as an OKX bar (default: the agent's)")
    mode: Literal["inline", "fast"] = "fast"
    offline_planners: bool = Field(False, description="LLM agents use their offline rule-based stand-ins")


class Queued(BaseModel):
    replay_id: int
    status: str
    mode: str
    ticks: int


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.post("/replays", tags=["replays"], status_code=202, responses=WRITE_ERRORS)
def request_replay(body: ReplayRequest, caller: Caller = Depends(OPERATE), c: ApiContext = Depends(ctx)) -> Queued:
    """Queue a replay range (in-process inline or fast mode, run by a replay worker); returns its id."""
    result = replays.request(stage_env(c.config, c.sessions), agents=body.agents, start=_utc(body.start),
                             end=_utc(body.end), bar=body.bar, mode=body.mode,
                             offline_planners=body.offline_planners, actor=caller.actor, enqueue=c.queue_replay)
    return Queued(**result)


@router.get("/replays/{replay_id}", tags=["replays"], responses=READ_ERRORS)
def get_replay(replay_id: int, _: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """State, progress (runs recorded of those expected; fast mode records only runs that act) and summary."""
    with c.sessions() as s:
        return replays.show(s, replay_id)
