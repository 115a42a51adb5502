"""The risk stage and the persistence of agent trading states.

The engine (engine.py, state.py) is pure; this module loads its inputs from the run's records, stores one
verdict per decision with the identifiers of what it was judged on, and persists state changes (halts,
breakers, counters) per agent and book, with an audit event for each. Each book is its own account, so each
has its own trading state: a replay that halts an agent leaves its live trading alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.db.models import (
    AccountSnapshot,
    EquitySnapshot,
    MarketSnapshot,
    PlanValidation,
    RiskStateRecord,
    RiskVerdictRecord,
    utcnow,
)
from okxlab.db.ops import audit
from okxlab.domain import OrderIntent, TradingState
from okxlab.pipeline.inputs import load_account, load_markets
from okxlab.pipeline.stages import StageContext, StageResult
from okxlab.pipeline.turns import take_turn
from okxlab.planning.schema import parse_plan
from okxlab.risk import state as risk_state
from okxlab.risk.engine import assess_plan
from okxlab.risk.limits import RiskLimits
from okxlab.risk.switches import global_pause, pause_applies, state_row


def load_risk_state(session: Session, row: RiskStateRecord) -> risk_state.RiskState:
    return risk_state.RiskState(
        trading_state=TradingState(row.trading_state),
        reason=row.state_reason,
        since=row.state_changed_at,
        global_pause=pause_applies(row.book) and global_pause(session) is not None,
        consecutive_invalid_plans=row.consecutive_invalid_plans,
        consecutive_rejections=row.consecutive_rejections,
        daily_loss_day=row.daily_loss_day,
    )


def persist(session: Session, row: RiskStateRecord, transition: risk_state.Transition, *, run_id: str | None = None,
            actor: str = "system") -> None:
    """Write a transition's state onto the agent's state in its book, and one audit event per change."""
    st = transition.state
    row.trading_state = st.trading_state.value
    row.state_reason = st.reason
    row.state_changed_at = st.since
    row.consecutive_invalid_plans = st.consecutive_invalid_plans
    row.consecutive_rejections = st.consecutive_rejections
    row.daily_loss_day = st.daily_loss_day
    row.updated_at = utcnow()
    for change in transition.changes:
        audit(session, f"risk.{change.code.lower()}", change.message, agent=row.agent, run_id=run_id, actor=actor,
              data={"code": change.code, "book": row.book, "from": change.before.trading_state.value,
                    "to": change.after.trading_state.value})


def record_invalid_plan(session: Session, row: RiskStateRecord, limits: RiskLimits, now: datetime, run_id: str) -> None:
    persist(session, row, risk_state.record_invalid_plan(load_risk_state(session, row), limits, now), run_id=run_id)


def change_trading_state(session: Session, agent: str, book: str, target: TradingState, *, by: str, now: datetime,
                         reason: str | None = None) -> risk_state.Transition:
    """An operator's halt / reduce-only / resume of `agent` in `book`, audited."""
    row = state_row(session, agent, book)
    transition = risk_state.set_trading_state(load_risk_state(session, row), target, now, by, reason)
    persist(session, row, transition, actor=by)
    if target == TradingState.ACTIVE:
        # A human has looked and decided to go on: drawdown is measured afresh from here, or the drawdown
        # halt would fire again at the next run.
        row.drawdown_reset_snapshot_id = session.scalar(
            select(func.max(EquitySnapshot.id)).where(EquitySnapshot.agent == agent, EquitySnapshot.book == book))
    if reason and transition.changes:
        audit(session, "agent.state_note", reason, agent=agent, actor=by, data={"book": book})
    return transition


def intent_to_json(order: OrderIntent | None) -> dict[str, Any] | None:
    if order is None:
        return None
    return {"symbol": order.symbol, "side": order.side, "contracts": order.contracts, "order_type": order.order_type,
            "reduce_only": order.reduce_only, "leverage": order.leverage, "limit_price": order.limit_price,
            "stop_loss": order.stop_loss, "take_profit": order.take_profit}


def risk_stage(ctx: StageContext) -> StageResult:
    run, agent_cfg, s = ctx.run, ctx.agent, ctx.session
    validation = s.scalar(select(PlanValidation).where(PlanValidation.run_id == run.id))
    if validation is None or not validation.valid:
        raise LookupError(f"run {run.id} has no valid plan")
    if not ctx.env.is_rerun(run):  # a re-run sends nothing, so it needs no turn
        epoch = s.scalar(select(AccountSnapshot.trading_epoch).where(AccountSnapshot.run_id == run.id))
        refused = take_turn(s, run, epoch)
        if refused is not None:
            return StageResult(output={"turn": refused[0]}, end=("skipped", f"skipped: {refused[0]} — {refused[1]}"))
    plan = parse_plan(validation.plan)
    markets = load_markets(s, run.id)
    as_of = next(iter(markets.values())).as_of if markets else run.scheduled_for
    account = load_account(s, run, agent_cfg, as_of)
    state = state_row(s, agent_cfg.name, run.book)
    outcome = assess_plan(plan, account, markets, agent_cfg.limits, load_risk_state(s, state), as_of)
    persist(s, state, risk_state.Transition(outcome.state, outcome.changes), run_id=run.id)

    snapshot_ids = {m.symbol: m.id for m in s.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run.id))}
    account_id = s.scalar(select(AccountSnapshot.id).where(AccountSnapshot.run_id == run.id))
    inputs = {"plan_validation_id": validation.id, "account_snapshot_id": account_id, "market_snapshot_ids": snapshot_ids,
              "limits": agent_cfg.limits.to_json(), "trading_state": outcome.state.trading_state.value,
              "global_pause": outcome.state.global_pause, "equity": account.equity, "peak_equity": account.peak_equity,
              "day_start_equity": account.day_start_equity}
    for verdict, proposal in zip(outcome.verdicts, plan.decisions, strict=True):
        s.add(RiskVerdictRecord(run_id=run.id, idx=verdict.index, symbol=verdict.symbol, action=verdict.action,
                                outcome=verdict.outcome, reasons=list(verdict.reasons), proposal=proposal.to_json(),
                                decision=verdict.decision.to_json(), order=intent_to_json(verdict.order), inputs=inputs))
        if verdict.outcome == "reject":
            audit(s, "risk.rejected", f"{verdict.symbol} {verdict.action} rejected: {', '.join(verdict.reasons)}",
                  agent=agent_cfg.name, run_id=run.id, data={"reasons": list(verdict.reasons)})
    summary = {"verdicts": [f"{v.symbol} {v.action}: {v.outcome}" + (f" ({', '.join(v.reasons)})" if v.reasons else "")
                            for v in outcome.verdicts],
               "orders": sum(v.order is not None for v in outcome.verdicts), "trading_state": state.trading_state}
    # The run always goes on to the order stage, even with nothing to send: it syncs fills (stops that
    # triggered since the last run) and snapshots equity every cycle.
    return StageResult(output=summary)
