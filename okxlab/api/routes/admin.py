"""Schedules and tokens: admin scope for every change (reading schedules is a GET, so read scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field, model_validator

from okxlab.api.auth import ADMIN, READ, Caller
from okxlab.api.context import ApiContext, ctx
from okxlab.api.responses import READ_ERRORS, WRITE_ERRORS
from okxlab.service import schedules, tokens

router = APIRouter()
NAME = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class ScheduleOut(BaseModel):
    name: str
    agent: str | None
    kind: str
    expr: str
    enabled: bool
    last_dispatched_for: datetime | None
    warnings: list[str] = []


class ScheduleCreate(BaseModel):
    name: str = NAME
    every: str | None = Field(None, max_length=40, description="An interval: 30s, 15m, 4h, 1d")
    cron: str | None = Field(None, max_length=100, description='A five-field crontab in UTC, e.g. "5 */4 * * *"')
    agent: str | None = Field(None, max_length=40, description="Only this agent (default: every agent)")


class SchedulePatch(BaseModel):
    enabled: bool | None = None
    every: str | None = Field(None, max_length=40)
    cron: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _one_timing(self) -> SchedulePatch:
        if self.every and self.cron:
            raise ValueError("give at most one of every or cron")
        return self


def _out(row: dict[str, Any], name: str, overlaps: list[dict[str, Any]]) -> ScheduleOut:
    warning = schedules.overlap_warning(name, row["agent"], overlaps)
    return ScheduleOut(**row, warnings=[warning] if warning else [])


@router.get("/schedules", tags=["schedules"], responses=READ_ERRORS)
def list_schedules(_: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> list[ScheduleOut]:
    with c.sessions() as s:
        return [ScheduleOut(**row) for row in schedules.list_schedules(s)]


@router.get("/schedules/{name}", tags=["schedules"], responses=READ_ERRORS)
def get_schedule(name: str, _: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> ScheduleOut:
    with c.sessions() as s:
        return ScheduleOut(**schedules.get(s, name))


@router.post("/schedules", tags=["schedules"], status_code=201, responses=WRITE_ERRORS)
def add_schedule(body: ScheduleCreate, caller: Caller = Depends(ADMIN), c: ApiContext = Depends(ctx)) -> ScheduleOut:
    """Add a schedule; its first run is at its next tick. Overlaps with other enabled schedules are warnings."""
    parsed = schedules.parse(body.every, body.cron)
    overlaps = schedules.add(c.sessions, c.config, body.name, parsed, body.agent, actor=caller.actor)
    with c.sessions() as s:
        return _out(schedules.get(s, body.name), body.name, overlaps)


@router.patch("/schedules/{name}", tags=["schedules"], responses=WRITE_ERRORS)
def change_schedule(name: str, body: SchedulePatch, caller: Caller = Depends(ADMIN),
                    c: ApiContext = Depends(ctx)) -> ScheduleOut:
    """Enable, disable or retime a schedule (a new timing starts from now: no past tick fires)."""
    parsed = schedules.parse(body.every, body.cron) if (body.every or body.cron) else None
    row, overlaps = schedules.update(c.sessions, name, enabled=body.enabled, parsed=parsed, actor=caller.actor)
    return _out(row, name, overlaps)


@router.delete("/schedules/{name}", tags=["schedules"], status_code=204, responses=WRITE_ERRORS)
def remove_schedule(name: str, caller: Caller = Depends(ADMIN), c: ApiContext = Depends(ctx)) -> Response:
    """Remove a schedule (its past runs stay in the audit trail)."""
    schedules.remove(c.sessions, name, actor=caller.actor)
    return Response(status_code=204)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    scope: str = Field(pattern="^(read|operate|admin)$")


class TokenOut(BaseModel):
    name: str
    scope: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewToken(BaseModel):
    name: str
    scope: str
    token: str = Field(description="Shown this once; only its hash is kept.")


@router.get("/tokens", tags=["tokens"], responses=READ_ERRORS)
def list_tokens(_: Caller = Depends(ADMIN), c: ApiContext = Depends(ctx)) -> list[TokenOut]:
    with c.sessions() as s:
        return [TokenOut(**t) for t in tokens.list_tokens(s)]


@router.post("/tokens", tags=["tokens"], status_code=201, responses=WRITE_ERRORS)
def create_token(body: TokenCreate, caller: Caller = Depends(ADMIN), c: ApiContext = Depends(ctx)) -> NewToken:
    token = tokens.create(c.sessions, body.name, body.scope, actor=caller.actor)
    return NewToken(name=body.name, scope=body.scope, token=token)


@router.delete("/tokens/{name}", tags=["tokens"], status_code=204, responses=WRITE_ERRORS)
def revoke_token(name: str, caller: Caller = Depends(ADMIN), c: ApiContext = Depends(ctx)) -> Response:
    tokens.revoke(c.sessions, name, actor=caller.actor)
    return Response(status_code=204)
