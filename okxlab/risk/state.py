"""Agent risk state, and the pure rules that change it.

`RiskState` is what the pipeline persists per agent between runs. Every function here takes the current
state and returns a `Transition`: the new state plus the `StateChange`s to store as audit events (empty
when nothing but counters moved). Nothing here reads a clock: `now` is always passed in.

A run uses them in this order:
    t1 = check_account(account, limits, state, now)           # drawdown halt, daily breaker
    verdicts = evaluate(plan, account, markets, limits, t1.state, now)
    t2 = record_verdicts(t1.state, verdicts, limits, now)     # or record_invalid_plan(...) if no plan
    persist t2.state; store t1.changes + t2.changes
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from okxlab.domain import Account, TradingState, Verdict
from okxlab.risk import reasons as R
from okxlab.risk.limits import RiskLimits


@dataclass(frozen=True)
class RiskState:
    trading_state: TradingState = TradingState.ACTIVE
    reason: str | None = None  # reason code of the current non-ACTIVE state
    since: datetime | None = None  # when the current trading_state began
    global_pause: bool = False  # the operator's switch for every agent (not persisted per agent)
    consecutive_invalid_plans: int = 0
    consecutive_rejections: int = 0
    daily_loss_day: date | None = None  # UTC day on which the daily loss breaker tripped


@dataclass(frozen=True)
class StateChange:
    """One audit event: what changed, why (a reason code), and a sentence for humans."""

    code: str
    before: RiskState
    after: RiskState
    message: str
    at: datetime


@dataclass(frozen=True)
class Transition:
    state: RiskState
    changes: tuple[StateChange, ...] = ()


def utc_day(now: datetime) -> date:
    """The UTC calendar day of `now` (a naive datetime is taken to be UTC already)."""
    return now.date() if now.tzinfo is None else now.astimezone(UTC).date()


def _loss_pct(equity: float, reference: float) -> float:
    """How far `equity` is below `reference`, in %; 0 when the reference is unusable."""
    if not (math.isfinite(reference) and reference > 0):
        return 0.0
    if not math.isfinite(equity):
        return 100.0  # unknown equity is treated as everything lost: it must block, never allow
    return max(0.0, (reference - equity) / reference * 100.0)  # exact at round numbers


def drawdown_pct(account: Account) -> float:
    return _loss_pct(account.equity, account.peak_equity)


def daily_loss_pct(account: Account) -> float:
    return _loss_pct(account.equity, account.day_start_equity)


def _limit(value: float, default: float) -> float:
    return value if math.isfinite(value) and value >= 0 else default


def drawdown_breached(account: Account, limits: RiskLimits) -> bool:
    """At or beyond max_drawdown_pct below the peak (a 0 % drawdown never halts, even with a 0 limit)."""
    dd = drawdown_pct(account)
    return dd > 0 and dd >= _limit(limits.max_drawdown_pct, RiskLimits.max_drawdown_pct)


def daily_loss_breached(account: Account, limits: RiskLimits) -> bool:
    """More than daily_loss_pct lost since the UTC day's starting equity."""
    return daily_loss_pct(account) > _limit(limits.daily_loss_pct, RiskLimits.daily_loss_pct)


def entry_blocks(account: Account, limits: RiskLimits, state: RiskState, now: datetime) -> tuple[str, ...]:
    """Reason codes that block every opening decision right now; empty when entries are allowed.

    Computed from the account as well as the stored state, so a caller that skipped `check_account`
    still cannot open past a drawdown or the daily breaker.
    """
    out: list[str] = []
    if state.global_pause:
        out.append(R.GLOBAL_PAUSE)
    if state.trading_state == TradingState.HALTED:
        out.append(R.AGENT_HALTED)
        if state.reason and state.reason != R.AGENT_HALTED:
            out.append(state.reason)
    elif state.trading_state == TradingState.REDUCE_ONLY:
        out.append(R.REDUCE_ONLY)
    if drawdown_breached(account, limits) and R.DRAWDOWN_HALT not in out:
        out.append(R.DRAWDOWN_HALT)
    if state.daily_loss_day == utc_day(now) or daily_loss_breached(account, limits):
        out.append(R.DAILY_LOSS_LIMIT)
    return tuple(out)


def _halt(state: RiskState, code: str, message: str, now: datetime) -> Transition:
    """HALTED with `code`, unless already halted (the first reason and time are kept)."""
    if state.trading_state == TradingState.HALTED:
        return Transition(state)
    after = replace(state, trading_state=TradingState.HALTED, reason=code, since=now)
    return Transition(after, (StateChange(code, state, after, message, now),))


def _chain(first: Transition, second: Transition) -> Transition:
    return Transition(second.state, first.changes + second.changes)


def check_account(account: Account, limits: RiskLimits, state: RiskState, now: datetime) -> Transition:
    """Before a run: clear yesterday's daily breaker, trip today's, halt on drawdown."""
    t = Transition(state)
    today = utc_day(now)
    if state.daily_loss_day is not None and state.daily_loss_day != today:
        after = replace(t.state, daily_loss_day=None)
        msg = f"new UTC day {today.isoformat()}: daily loss breaker of {state.daily_loss_day.isoformat()} cleared"
        t = Transition(after, t.changes + (StateChange(R.DAILY_LOSS_CLEARED, t.state, after, msg, now),))
    if t.state.daily_loss_day != today and daily_loss_breached(account, limits):
        after = replace(t.state, daily_loss_day=today)
        msg = (f"lost {daily_loss_pct(account):.2f}% since 00:00 UTC (limit {limits.daily_loss_pct}%): "
               f"no new entries until {today.isoformat()} ends")
        t = Transition(after, t.changes + (StateChange(R.DAILY_LOSS_LIMIT, t.state, after, msg, now),))
    if drawdown_breached(account, limits):
        msg = (f"equity {account.equity:.2f} is {drawdown_pct(account):.2f}% below the peak "
               f"{account.peak_equity:.2f} (limit {limits.max_drawdown_pct}%): halted")
        t = _chain(t, _halt(t.state, R.DRAWDOWN_HALT, msg, now))
    return t


def record_invalid_plan(state: RiskState, limits: RiskLimits, now: datetime) -> Transition:
    """A run whose plan failed validation (or produced none): count it, halt after N in a row."""
    after = replace(state, consecutive_invalid_plans=state.consecutive_invalid_plans + 1)
    n = limits.max_consecutive_invalid_plans
    if n > 0 and after.consecutive_invalid_plans >= n:
        msg = f"{after.consecutive_invalid_plans} invalid plans in a row (limit {n}): halted until resumed"
        return _halt(after, R.CONSECUTIVE_INVALID_PLANS, msg, now)
    return Transition(after)


def counts_as_rejection(verdict: Verdict) -> bool:
    """A rejected opening decision, rejected for a rule of its own (not a gate, not missing data)."""
    return (verdict.outcome == "reject" and verdict.action in ("open_long", "open_short")
            and not (set(verdict.reasons) & R.UNCOUNTED_REJECTIONS))


def resets_rejections(verdict: Verdict) -> bool:
    """An opening that goes ahead (accepted or amended, with an order that adds exposure)."""
    return verdict.order is not None and not verdict.order.reduce_only


def record_verdicts(state: RiskState, verdicts: Iterable[Verdict], limits: RiskLimits, now: datetime) -> Transition:
    """After a valid plan: reset the invalid-plan counter, walk the verdicts in order, halt after N rejections.

    Holds, closes and gate rejections neither count nor reset; an opening that goes ahead resets to 0.
    """
    count = state.consecutive_rejections
    for verdict in verdicts:
        if counts_as_rejection(verdict):
            count += 1
        elif resets_rejections(verdict):
            count = 0
    after = replace(state, consecutive_invalid_plans=0, consecutive_rejections=count)
    n = limits.max_consecutive_rejections
    if n > 0 and count >= n:
        msg = f"{count} rejected opening decisions in a row (limit {n}): halted until resumed"
        return _halt(after, R.CONSECUTIVE_REJECTIONS, msg, now)
    return Transition(after)


def resume(state: RiskState, now: datetime, by: str) -> Transition:
    """A human resumes the agent: ACTIVE, counters at 0. (A drawdown halt returns at the next run unless
    equity is back within the limit or the limit was raised.)"""
    after = replace(state, trading_state=TradingState.ACTIVE, reason=None, since=now,
                    consecutive_invalid_plans=0, consecutive_rejections=0)
    msg = f"resumed by {by} (was {state.trading_state.value}{f': {state.reason}' if state.reason else ''})"
    return Transition(after, (StateChange(R.RESUMED, state, after, msg, now),))


def set_trading_state(state: RiskState, trading_state: TradingState, now: datetime, by: str,
                      reason: str | None = None) -> Transition:
    """An operator sets REDUCE_ONLY / HALTED / ACTIVE by hand; `reason` defaults to STATE_SET."""
    if trading_state == TradingState.ACTIVE:
        return resume(state, now, by)
    code = reason or R.STATE_SET
    after = replace(state, trading_state=trading_state, reason=code, since=now)
    msg = f"{by} set {trading_state.value} ({code})"
    return Transition(after, (StateChange(R.STATE_SET, state, after, msg, now),))
