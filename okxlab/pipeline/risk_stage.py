"""The risk stage of the pipeline: the run takes its book's trading turn, and the risk engine judges the plan
(okxlab/risk/decide.py) on the run's stored inputs; the agent's state is stored with the verdicts.

A dry run (a book `dry:<book>`, okxlab.domain) is judged on its trading book's state and switches, read only:
it takes no turn, stores no state, and ends here, so it never reaches the order stage."""

from __future__ import annotations

from sqlalchemy import select

from okxlab.db.models import AccountSnapshot, MarketSnapshot, PlanValidation
from okxlab.domain import RunStatus, account_book, is_dry_book
from okxlab.outcome import StageOutcome
from okxlab.pipeline.context import StageContext
from okxlab.pipeline.inputs import load_account, load_markets
from okxlab.pipeline.turns import take_turn
from okxlab.planning.schema import parse_plan
from okxlab.risk.decide import decide_risk
from okxlab.risk.switches import load_risk_state, peek_state_row, state_row, store_state


def risk_stage(ctx: StageContext) -> StageOutcome:
    run, agent, s = ctx.run, ctx.agent, ctx.session
    validation = s.scalar(select(PlanValidation).where(PlanValidation.run_id == run.id))
    if validation is None or not validation.valid:
        raise LookupError(f"run {run.id} has no valid plan")
    dry = is_dry_book(run.book)
    if not dry and not ctx.env.is_rerun(run):  # a re-run or a dry run sends nothing, so it needs no turn
        epoch = s.scalar(select(AccountSnapshot.trading_epoch).where(AccountSnapshot.run_id == run.id))
        refused = take_turn(s, run, epoch)
        if refused is not None:
            return StageOutcome(output={"turn": refused[0]}, end=("skipped", f"skipped: {refused[0]} — {refused[1]}"))
    markets = load_markets(s, run.id)
    as_of = next(iter(markets.values())).as_of if markets else run.scheduled_for
    row = peek_state_row(s, agent.name, account_book(run.book)) if dry else state_row(s, agent.name, run.book)
    judged_on = {"plan_validation_id": validation.id,
                 "account_snapshot_id": s.scalar(select(AccountSnapshot.id).where(AccountSnapshot.run_id == run.id)),
                 "market_snapshot_ids": {m.symbol: m.id for m in s.scalars(select(MarketSnapshot)
                                                                           .where(MarketSnapshot.run_id == run.id))}}
    outcome, state, _ = decide_risk(run.id, agent=agent.name, book=run.book, plan=parse_plan(validation.plan),
                                    account=load_account(s, run, agent, as_of), markets=markets, limits=agent.limits,
                                    state=load_risk_state(s, row), as_of=as_of, judged_on=judged_on)
    if dry:
        sendable = outcome.output.get("orders", 0)
        outcome.end = (RunStatus.COMPLETED.value, f"completed: dry run; {sendable} order(s) would go to the order "
                                                  f"stage, nothing sent")
        return outcome
    store_state(row, state)
    # The run always goes on to the order stage, even with nothing to send: it syncs fills (stops that
    # triggered since the last run) and snapshots equity every cycle.
    return outcome
