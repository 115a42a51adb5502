"""What a planner is: given one run's context, propose a plan document (not yet trusted).

LLM planners and rule strategies implement the same small interface, so the plan stage, replays and the
leaderboard treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from okxlab.domain import Account, SymbolMarket
from okxlab.risk.limits import RiskLimits


@dataclass(frozen=True)
class PlanContext:
    agent: str
    run_id: str
    as_of: datetime  # the run's point in time; nothing later may be used
    symbols: tuple[str, ...]  # the agent's symbols, in config order
    account: Account
    markets: dict[str, SymbolMarket]  # one per symbol, same tick for every agent
    limits: RiskLimits
    fresh_llm: bool = False  # replays: ignore the response cache


@dataclass
class LlmCall:
    """One request to a model, as the audit trail records it. Never holds the API key."""

    provider: str
    model: str
    purpose: str  # "plan" | "repair"
    prompt: str
    prompt_sha256: str
    response: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None
    cached: bool = False
    error: str | None = None


@dataclass
class PlanResult:
    document: Any  # the parsed JSON (dict) or None when nothing could be extracted
    raw: str  # exactly what the planner produced
    planner: str  # e.g. "rules:ema_trend", "llm:deepseek/deepseek-chat"
    prompt: str | None = None
    prompt_sha256: str | None = None
    llm_calls: list[LlmCall] = field(default_factory=list)
    error: str | None = None  # why no usable document was produced


class Planner(Protocol):
    name: str

    def plan(self, ctx: PlanContext) -> PlanResult: ...
