"""The plan and validate stages' decisions.

plan: record exactly what the planner produced (prompt and hash, raw output, parsed document, every LLM
call); a model that could not be reached fails the run. validate: check the document against the plan schema
and the agent's symbols; an invalid plan ends the run `invalid_plan` and counts towards the agent's
consecutive-invalid-plans limit (the risk engine's counter, risk/state.py).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from okxlab.db.models import LlmCallRecord, PlanRecord, PlanValidation, utcnow
from okxlab.domain import Plan
from okxlab.outcome import StageOutcome
from okxlab.planning.base import PlanResult
from okxlab.planning.schema import PLAN_SCHEMA_VERSION, Problem, parse_plan, validate_plan
from okxlab.risk import state as risk_state
from okxlab.risk.limits import RiskLimits
from okxlab.risk.switches import transition_audits


def decide_plan(run_id: str, result: PlanResult) -> StageOutcome:
    now = utcnow()
    out = StageOutcome()
    out.add(PlanRecord, {"run_id": run_id, "planner": result.planner, "prompt": result.prompt,
                         "prompt_sha256": result.prompt_sha256, "raw": result.raw, "document": result.document,
                         "error": result.error, "created_at": now})
    for seq, call in enumerate(result.llm_calls):
        out.add(LlmCallRecord, {"run_id": run_id, "seq": seq, "purpose": call.purpose, "provider": call.provider,
                                "model": call.model, "prompt": call.prompt, "prompt_sha256": call.prompt_sha256,
                                "response": call.response, "tokens_in": call.tokens_in, "tokens_out": call.tokens_out,
                                "cost_usd": call.cost_usd, "latency_ms": call.latency_ms, "cached": call.cached,
                                "error": call.error, "created_at": now})
    # Counted for `runs show` only; the document is still unchecked here (validate judges it), so it may be
    # anything a model wrote: "decisions" null, a string, an object.
    decisions = result.document.get("decisions") if isinstance(result.document, dict) else None
    out.output = {"planner": result.planner, "llm_calls": len(result.llm_calls), "prompt_sha256": result.prompt_sha256,
                  "decisions": len(decisions) if isinstance(decisions, list) else None}
    if result.error and result.error.startswith("llm_error"):
        out.output["error"] = result.error
        out.end = ("failed", result.error)
    return out


def decide_validate(run_id: str, *, agent: str, book: str, document: object, plan_error: str | None,
                    symbols: tuple[str, ...], state: risk_state.RiskState, limits: RiskLimits,
                    now: datetime) -> tuple[StageOutcome, risk_state.RiskState, Plan | None]:
    """The validation record, the agent's risk state after it, and the plan when it is valid."""
    out = StageOutcome()
    if document is None:  # the planner's error already says invalid_plan; the reason below says it once
        problems = [Problem("", (plan_error or "the planner produced no JSON plan").removeprefix("invalid_plan: "))]
    else:
        problems = validate_plan(document, list(symbols))
    if problems:
        texts = [str(p) for p in problems]
        out.add(PlanValidation, {"run_id": run_id, "valid": False, "schema_version": PLAN_SCHEMA_VERSION,
                                 "problems": texts, "plan": None})
        transition = risk_state.record_invalid_plan(state, limits, now)
        out.rows += transition_audits(agent, book, transition, run_id)
        reason = "invalid_plan: " + "; ".join(texts[:3]) + (f" (+{len(texts) - 3} more)" if len(texts) > 3 else "")
        out.output = {"valid": False, "problems": texts[:20]}
        out.end = ("invalid_plan", reason[:1000])
        return out, transition.state, None
    plan = parse_plan(document)
    out.add(PlanValidation, {"run_id": run_id, "valid": True, "schema_version": PLAN_SCHEMA_VERSION, "problems": [],
                             "plan": plan.to_json()})
    out.output = {"valid": True, "decisions": [f"{d.symbol}:{d.action}" for d in plan.decisions]}
    return out, replace(state, consecutive_invalid_plans=0), plan
