"""The plan and validate stages of the pipeline; their decisions are made in okxlab/planning/decide.py."""

from __future__ import annotations

from sqlalchemy import select

from okxlab.db.models import PlanRecord, Run
from okxlab.domain import account_book, is_dry_book
from okxlab.outcome import StageOutcome
from okxlab.pipeline.context import StageContext
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.inputs import load_account, load_markets
from okxlab.planning.base import PlanContext, PlanResult
from okxlab.planning.decide import decide_plan, decide_validate
from okxlab.risk.switches import load_risk_state, peek_state_row, state_row, store_state


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


def plan_record(ctx: StageContext) -> StageOutcome:
    return decide_plan(ctx.run.id, ctx.gathered)


def validate_stage(ctx: StageContext) -> StageOutcome:
    run, agent, s = ctx.run, ctx.agent, ctx.session
    plan = s.scalar(select(PlanRecord).where(PlanRecord.run_id == run.id))
    if plan is None:
        raise LookupError(f"run {run.id} has no plan record")
    dry = is_dry_book(run.book)  # judged on its trading book's state, which it leaves as it is
    row = peek_state_row(s, agent.name, account_book(run.book)) if dry else state_row(s, agent.name, run.book)
    outcome, state, _ = decide_validate(run.id, agent=agent.name, book=run.book, document=plan.document,
                                        plan_error=plan.error, symbols=agent.symbols,
                                        state=load_risk_state(s, row), limits=agent.limits, now=ctx.env.now())
    if not dry:
        store_state(row, state)
    return outcome
