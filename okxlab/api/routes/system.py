"""Health, and checking strategy documents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from okxlab.api.auth import READ, Caller
from okxlab.api.context import ApiContext, ctx
from okxlab.api.responses import READ_ERRORS, SafeJSONResponse, errors
from okxlab.service import health, strategies

router = APIRouter()


@router.get("/health", tags=["system"], responses={**READ_ERRORS, 503: {"description": "some part is failing"}})
def get_health(_: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> Any:
    """Database, broker, exchange or simulator, worker heartbeats and dispatch: 200 when all are up, 503 naming
    the failing parts."""
    from fastapi.encoders import jsonable_encoder

    state = health.check(c.sessions, c.config, c.ping_workers)
    return SafeJSONResponse(jsonable_encoder(state), status_code=200 if state["ok"] else 503)


class StrategyCheck(BaseModel):
    document: dict[str, Any] | None = Field(None, description="A strategy document (JSON object)")
    builtin: str | None = Field(None, max_length=64, description="Or a builtin strategy's name")
    params: dict[str, Any] = Field(default_factory=dict, description="Parameter overrides, as [agents.params]")


@router.post("/strategies/validate", tags=["strategies"], responses={**READ_ERRORS, **errors(400)})
def validate_strategy(body: StrategyCheck, _: Caller = Depends(READ)) -> dict[str, Any]:
    """Every problem of a strategy document, each with its place in the document. Changes nothing."""
    return strategies.validate(body.document, body.builtin, body.params)
