"""Agents and the risk switches."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from okxlab.api.auth import OPERATE, READ, Caller
from okxlab.api.context import ApiContext, ctx
from okxlab.api.responses import READ_ERRORS, WRITE_ERRORS, errors
from okxlab.domain import TradingState
from okxlab.service import agents, risk

router = APIRouter()
BOOK = Field(None, max_length=24, description="sim | demo | live | replay:<id> (default: the agent's exchange mode)")


class HaltBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why (kept in the audit log).")
    reduce_only: bool = Field(False, description="Allow closing and reducing only, instead of a full halt.")
    book: str | None = BOOK


class BookBody(BaseModel):
    book: str | None = BOOK


class PauseBody(BaseModel):
    reason: str = Field("paused by operator", min_length=1, max_length=500)


class StateChange(BaseModel):
    agent: str
    book: str
    trading_state: str
    reason: str | None = None


@router.get("/agents", tags=["agents"], responses=READ_ERRORS)
def list_agents(book: str | None = Query(None, max_length=24), _: Caller = Depends(READ),
                c: ApiContext = Depends(ctx)) -> list[dict[str, Any]]:
    """Every configured agent with its trading state and equity in one book (default: each agent's latest)."""
    with c.sessions() as s:
        return agents.list_agents(s, c.config, book)


@router.get("/agents/{name}", tags=["agents"], responses=READ_ERRORS)
def agent(name: str, _: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """State and equity per book, open positions with unrealised PnL, open orders with stops and targets, limits."""
    with c.sessions() as s:
        return agents.detail(s, c.config, name)


def _change(c: ApiContext, name: str, book: str | None, target: TradingState, reason: str | None,
            caller: Caller) -> StateChange:
    book = agents.change_state(c.sessions, c.config, name, book, target, reason, actor=caller.actor)
    return StateChange(agent=name, book=book, trading_state=target.value, reason=reason)


@router.post("/agents/{name}/halt", tags=["agents"], responses=WRITE_ERRORS)
def halt(name: str, body: HaltBody, caller: Caller = Depends(OPERATE), c: ApiContext = Depends(ctx)) -> StateChange:
    """Stop an agent opening positions (closing is always allowed)."""
    target = TradingState.REDUCE_ONLY if body.reduce_only else TradingState.HALTED
    return _change(c, name, body.book, target, body.reason, caller)


@router.post("/agents/{name}/resume", tags=["agents"], responses=WRITE_ERRORS)
def resume(name: str, body: BookBody | None = None, caller: Caller = Depends(OPERATE),
           c: ApiContext = Depends(ctx)) -> StateChange:
    """Return a halted or reduce-only agent to ACTIVE (counters reset, a new drawdown epoch)."""
    return _change(c, name, body.book if body else None, TradingState.ACTIVE, None, caller)


@router.post("/agents/{name}/flatten", tags=["agents"], responses={**WRITE_ERRORS, **errors(502)})
def flatten(name: str, body: BookBody | None = None, caller: Caller = Depends(OPERATE),
            c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """Cancel all of the agent's orders and close all its positions at market (audited)."""
    book, result = agents.flatten(c.config, name, body.book if body else None, actor=caller.actor)
    return {"agent": name, "book": book, "cancelled": list(result.cancelled), "closed": list(result.closed)}


@router.post("/risk/pause", tags=["risk"], responses=WRITE_ERRORS)
def pause(body: PauseBody | None = None, caller: Caller = Depends(OPERATE), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """Block new entries for every agent (closing stays allowed)."""
    reason = body.reason if body else PauseBody().reason
    risk.pause(c.sessions, reason, actor=caller.actor)
    return {"paused": True, "reason": reason}


@router.post("/risk/resume", tags=["risk"], responses=WRITE_ERRORS)
def unpause(caller: Caller = Depends(OPERATE), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """Lift the global pause."""
    risk.resume(c.sessions, actor=caller.actor)
    return {"paused": False}


@router.get("/risk/exposure", tags=["risk"], responses=READ_ERRORS)
def exposure(_: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """The global pause (null when trading is not paused) and long/short notional per book and symbol."""
    with c.sessions() as s:
        return risk.exposure(s)
