"""The plan and validate stages.

plan: build the planner's context from the run's stored inputs, ask the planner, and record exactly what it
produced (prompt and hash, raw output, parsed document, every LLM call). validate: check that document
against the plan schema and the agent's symbols; an invalid plan ends the run `invalid_plan` and counts
towards the agent's consecutive-invalid-plans limit.
"""

from __future__ import annotations

from sqlalchemy import select

from okxlab.db.models import LlmCallRecord, PlanRecord, PlanValidation, Run
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.inputs import load_account, load_markets
from okxlab.pipeline.stages import StageContext, StageResult
from okxlab.planning.base import PlanContext, PlanResult
from okxlab.planning.schema import PLAN_SCHEMA_VERSION, Problem, parse_plan, validate_plan


def plan_gather(env: StageEnv, run: Run) -> PlanResult:
    """Ask the planner, outside any database transaction (a model may take a minute to answer)."""
    agent = env.config.agent(run.agent)
    with env.sessions() as s:
        markets = load_markets(s, run.id)
        as_of = next(iter(markets.values())).as_of if markets else run.scheduled_for
        account = load_account(s, run, agent, as_of)
    replay = env.replay(run)
    planner = env.planners.for_agent(agent, offline=bool(replay and replay.offline_planners))
    return planner.plan(PlanContext(agent=agent.name, run_id=run.id, as_of=as_of, symbols=agent.symbols,
                                    account=account, markets=markets, limits=agent.limits,
                                    fresh_llm=bool(replay and replay.fresh_llm)))


def plan_record(ctx: StageContext) -> StageResult:
    run, s, result = ctx.run, ctx.session, ctx.gathered
    s.add(PlanRecord(run_id=run.id, planner=result.planner, prompt=result.prompt, prompt_sha256=result.prompt_sha256,
                     raw=result.raw, document=result.document, error=result.error))
    for seq, call in enumerate(result.llm_calls):
        s.add(LlmCallRecord(run_id=run.id, seq=seq, purpose=call.purpose, provider=call.provider, model=call.model,
                            prompt=call.prompt, prompt_sha256=call.prompt_sha256, response=call.response,
                            tokens_in=call.tokens_in, tokens_out=call.tokens_out, cost_usd=call.cost_usd,
                            latency_ms=call.latency_ms, cached=call.cached, error=call.error))
    # Counted for `runs show` only; the document is still unchecked here (validate judges it), so it may be
    # anything a model wrote: "decisions" null, a string, an object.
    decisions = result.document.get("decisions") if isinstance(result.document, dict) else None
    output = {"planner": result.planner, "llm_calls": len(result.llm_calls), "prompt_sha256": result.prompt_sha256,
              "decisions": len(decisions) if isinstance(decisions, list) else None}
    if result.error and result.error.startswith("llm_error"):
        output["error"] = result.error
        return StageResult(output=output, end=("failed", result.error))
    return StageResult(output=output)


def validate_stage(ctx: StageContext) -> StageResult:
    from okxlab.risk.stage import record_invalid_plan  # the risk engine owns the counters
    from okxlab.risk.switches import state_row

    run, agent, s = ctx.run, ctx.agent, ctx.session
    plan = s.scalar(select(PlanRecord).where(PlanRecord.run_id == run.id))
    if plan is None:
        raise LookupError(f"run {run.id} has no plan record")
    if plan.document is None:  # the planner's error already says invalid_plan; the reason below says it once
        problems = [Problem("", (plan.error or "the planner produced no JSON plan").removeprefix("invalid_plan: "))]
    else:
        problems = validate_plan(plan.document, list(agent.symbols))
    state = state_row(s, agent.name, run.book)
    if problems:
        texts = [str(p) for p in problems]
        s.add(PlanValidation(run_id=run.id, valid=False, schema_version=PLAN_SCHEMA_VERSION, problems=texts, plan=None))
        record_invalid_plan(s, state, agent.limits, ctx.env.now(), run.id)
        reason = "invalid_plan: " + "; ".join(texts[:3]) + (f" (+{len(texts) - 3} more)" if len(texts) > 3 else "")
        return StageResult(output={"valid": False, "problems": texts[:20]}, end=("invalid_plan", reason[:1000]))
    parsed = parse_plan(plan.document)
    s.add(PlanValidation(run_id=run.id, valid=True, schema_version=PLAN_SCHEMA_VERSION, problems=[],
                         plan=parsed.to_json()))
    state.consecutive_invalid_plans = 0
    actions = [f"{d.symbol}:{d.action}" for d in parsed.decisions]
    return StageResult(output={"valid": True, "decisions": actions})
