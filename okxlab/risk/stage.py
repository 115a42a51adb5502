"""The risk stage and the persistence of agent trading states.

The engine (engine.py, state.py) is pure; this module loads its inputs from the run's records, stores one
verdict per decision with the identifiers of what it was judged on, and persists state changes (halts,
breakers, counters) on the agent with an audit event for each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.db.models import (
    AccountSnapshot,
    Agent,
    EquitySnapshot,
    MarketSnapshot,
    PlanValidation,
    RiskVerdictRecord,
)
from okxlab.db.ops import audit, get_control
from okxlab.domain import OrderIntent, TradingState
from okxlab.pipeline.inputs import load_account, load_markets
from okxlab.pipeline.stages import StageContext, StageResult
from okxlab.planning.schema import parse_plan
from okxlab.risk import state as risk_state
from okxlab.risk.engine import assess_plan
from okxlab.risk.limits import RiskLimits

PAUSE_KEY = "global_pause"


def global_pause(session: Session) -> dict[str, Any] | None:
    """The global pause, if one is in force: {"paused": True, "reason": ..., "by": ..., "at": ...}."""
    value = get_control(session, PAUSE_KEY)
    return value if value and value.get("paused") else None


def load_risk_state(session: Session, agent: Agent) -> risk_state.RiskState:
    return risk_state.RiskState(
        trading_state=TradingState(agent.trading_state),
        reason=agent.state_reason,
        since=agent.state_changed_at,
        global_pause=global_pause(session) is not None,
        consecutive_invalid_plans=agent.consecutive_invalid_plans,
        consecutive_rejections=agent.consecutive_rejections,
        daily_loss_day=agent.daily_loss_day,
    )


def persist(session: Session, agent: Agent, transition: risk_state.Transition, *, run_id: str | None = None,
            actor: str = "system") -> None:
    """Write a transition's state onto the agent row and one audit event per change."""
    st = transition.state
    agent.trading_state = st.trading_state.value
    agent.state_reason = st.reason
    agent.state_changed_at = st.since
    agent.consecutive_invalid_plans = st.consecutive_invalid_plans
    agent.consecutive_rejections = st.consecutive_rejections
    agent.daily_loss_day = st.daily_loss_day
    for change in transition.changes:
        audit(session, f"risk.{change.code.lower()}", change.message, agent=agent.name, run_id=run_id, actor=actor,
              data={"code": change.code, "from": change.before.trading_state.value,
                    "to": change.after.trading_state.value})


def record_invalid_plan(session: Session, agent: Agent, state: risk_state.RiskState, limits: RiskLimits,
                        now: datetime, run_id: str) -> None:
    persist(session, agent, risk_state.record_invalid_plan(state, limits, now), run_id=run_id)


def change_trading_state(session: Session, agent: Agent, target: TradingState, *, by: str, now: datetime,
                         reason: str | None = None) -> risk_state.Transition:
    """An operator's halt / reduce-only / resume, audited."""
    transition = risk_state.set_trading_state(load_risk_state(session, agent), target, now, by, reason)
    persist(session, agent, transition, actor=by)
    if target == TradingState.ACTIVE:
        # A human has looked and decided to go on: drawdown is measured afresh from here, or the drawdown
        # halt would fire again at the next run.
        agent.drawdown_reset_snapshot_id = session.scalar(
            select(func.max(EquitySnapshot.id)).where(EquitySnapshot.agent == agent.name))
    if reason and transition.changes:
        audit(session, "agent.state_note", reason, agent=agent.name, actor=by)
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
    plan = parse_plan(validation.plan)
    markets = load_markets(s, run.id)
    as_of = next(iter(markets.values())).as_of if markets else run.scheduled_for
    account = load_account(s, run, agent_cfg, as_of)
    agent = s.get(Agent, agent_cfg.name)
    outcome = assess_plan(plan, account, markets, agent_cfg.limits, load_risk_state(s, agent), as_of)
    persist(s, agent, risk_state.Transition(outcome.state, outcome.changes), run_id=run.id)

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
                  agent=agent.name, run_id=run.id, data={"reasons": list(verdict.reasons)})
    summary = {"verdicts": [f"{v.symbol} {v.action}: {v.outcome}" + (f" ({', '.join(v.reasons)})" if v.reasons else "")
                            for v in outcome.verdicts],
               "orders": sum(v.order is not None for v in outcome.verdicts), "trading_state": agent.trading_state}
    # The run always goes on to the order stage, even with nothing to send: it syncs fills (stops that
    # triggered since the last run) and snapshots equity every cycle.
    return StageResult(output=summary)
