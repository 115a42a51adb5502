"""Agent state rules: drawdown halt, the daily breaker and its UTC-day reset, consecutive failures, resume."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from okxlab.domain import SizeRequest, TradingState
from okxlab.risk import reasons as R
from okxlab.risk.engine import assess_plan
from okxlab.risk.limits import RiskLimits
from okxlab.risk.state import (
    RiskState,
    check_account,
    counts_as_rejection,
    entry_blocks,
    record_invalid_plan,
    record_verdicts,
    resume,
    set_trading_state,
)
from tests.risk.risk_builders import (
    ETH,
    NOW,
    SOL,
    account,
    close,
    hold,
    market,
    opening,
    plan,
    position,
    run,
    swap,
)
from tests.risk.risk_builders import markets as make_markets

LIMITS = RiskLimits()
TOMORROW = NOW + timedelta(days=1)


# ---- drawdown -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("equity", "halted"), [(6_000.0, True), (5_000.0, True), (6_000.01, False), (10_000.0, False)])
def test_drawdown_halts_at_the_limit(equity, halted):
    t = check_account(account(equity=equity, peak_equity=10_000.0, day_start_equity=equity), LIMITS, RiskState(), NOW)
    assert (t.state.trading_state == TradingState.HALTED) is halted
    if halted:
        (change,) = t.changes
        assert (change.code, change.after.reason, change.after.since, change.at) == (R.DRAWDOWN_HALT,) * 2 + (NOW, NOW)
        assert "40" in change.message and change.before == RiskState()
    else:
        assert t.changes == ()


def test_drawdown_halt_keeps_the_first_halt_reason():
    halted = RiskState(TradingState.HALTED, R.CONSECUTIVE_REJECTIONS, NOW - timedelta(hours=3))
    t = check_account(account(equity=5_000.0, day_start_equity=5_000.0), LIMITS, halted, NOW)
    assert t.state == halted and t.changes == ()


def test_drawdown_halt_returns_after_resume_while_still_in_drawdown():
    acct = account(equity=5_000.0, day_start_equity=5_000.0)
    halted = check_account(acct, LIMITS, RiskState(), NOW).state
    resumed = resume(halted, NOW, by="ops").state
    assert resumed.trading_state == TradingState.ACTIVE
    assert check_account(acct, LIMITS, resumed, NOW).state.trading_state == TradingState.HALTED
    # ...but not once the limit was raised for the agent.
    assert check_account(acct, RiskLimits(max_drawdown_pct=60.0), resumed, NOW).state == resumed


# ---- daily loss breaker -------------------------------------------------------------------------------


def test_daily_breaker_trips_and_blocks_until_the_next_utc_day():
    losing = account(equity=9_400.0, day_start_equity=10_000.0)
    t = check_account(losing, LIMITS, RiskState(), NOW)
    assert t.state.daily_loss_day == NOW.date() and t.state.trading_state == TradingState.ACTIVE
    assert [c.code for c in t.changes] == [R.DAILY_LOSS_LIMIT]
    # Equity recovers the same day: still blocked (the breaker is for the day, not for the moment).
    recovered = account(equity=10_100.0, day_start_equity=10_000.0)
    later = NOW.replace(hour=23, minute=59)
    assert check_account(recovered, LIMITS, t.state, later).changes == ()
    assert entry_blocks(recovered, LIMITS, t.state, later) == (R.DAILY_LOSS_LIMIT,)
    # Next UTC day: the ledger's new day start is today's equity; the breaker clears.
    new_day = account(equity=9_400.0, day_start_equity=9_400.0)
    t2 = check_account(new_day, LIMITS, t.state, TOMORROW)
    assert [c.code for c in t2.changes] == [R.DAILY_LOSS_CLEARED] and t2.state.daily_loss_day is None
    assert entry_blocks(new_day, LIMITS, t2.state, TOMORROW) == ()


def test_daily_breaker_uses_the_utc_day_whatever_the_timezone_of_now():
    tripped = RiskState(daily_loss_day=NOW.date())
    # 07:30 in UTC+8 on the next calendar day is still 23:30 UTC of the tripped day.
    shanghai = datetime(2024, 6, 4, 7, 30, tzinfo=timezone(timedelta(hours=8)))
    assert entry_blocks(account(), LIMITS, tripped, shanghai) == (R.DAILY_LOSS_LIMIT,)
    assert check_account(account(), LIMITS, tripped, shanghai).changes == ()
    assert check_account(account(), LIMITS, tripped, shanghai + timedelta(hours=1)).state.daily_loss_day is None


def test_daily_breaker_is_a_condition_not_a_trading_state():
    t = check_account(account(equity=9_000.0), LIMITS, RiskState(), NOW)
    assert t.state.trading_state == TradingState.ACTIVE
    acct = account(equity=9_000.0, positions=(position(),))
    (verdict,) = run(close(), acct=acct, state=t.state)
    assert verdict.outcome == "accept" and verdict.order.reduce_only


def test_daily_loss_threshold_is_configurable():
    acct = account(equity=9_800.0)
    assert check_account(acct, LIMITS, RiskState(), NOW).changes == ()
    assert check_account(acct, RiskLimits(daily_loss_pct=1.0), RiskState(), NOW).state.daily_loss_day == NOW.date()


# ---- consecutive failures -----------------------------------------------------------------------------


def test_three_invalid_plans_in_a_row_halt():
    state = RiskState()
    for expected in (1, 2):
        t = record_invalid_plan(state, LIMITS, NOW)
        state = t.state
        assert (state.consecutive_invalid_plans, state.trading_state, t.changes) == (expected, TradingState.ACTIVE, ())
    t = record_invalid_plan(state, LIMITS, NOW)
    assert (t.state.trading_state, t.state.reason) == (TradingState.HALTED, R.CONSECUTIVE_INVALID_PLANS)
    assert [c.code for c in t.changes] == [R.CONSECUTIVE_INVALID_PLANS]


def test_a_valid_plan_resets_the_invalid_plan_counter():
    state = RiskState(consecutive_invalid_plans=2)
    state = record_verdicts(state, run(hold()), LIMITS, NOW).state
    assert state.consecutive_invalid_plans == 0
    assert record_invalid_plan(state, LIMITS, NOW).state.trading_state == TradingState.ACTIVE


def bad_opening():
    return opening(stop_loss=None)


def test_three_rejected_openings_in_a_row_halt_across_runs():
    state = RiskState()
    for expected in (1, 2):
        state = record_verdicts(state, run(bad_opening()), LIMITS, NOW).state
        assert (state.consecutive_rejections, state.trading_state) == (expected, TradingState.ACTIVE)
    t = record_verdicts(state, run(bad_opening()), LIMITS, NOW)
    assert (t.state.trading_state, t.state.reason) == (TradingState.HALTED, R.CONSECUTIVE_REJECTIONS)
    assert [c.code for c in t.changes] == [R.CONSECUTIVE_REJECTIONS]


def test_rejections_within_one_plan_count_in_order():
    mkts = make_markets(market(), market(swap(ETH)), market(swap(SOL)))
    verdicts = run(bad_opening(), opening(symbol=ETH, stop_loss=None), opening(symbol=SOL, stop_loss=None), mkts=mkts)
    assert [v.reasons for v in verdicts] == [(R.STOP_LOSS_MISSING,)] * 3
    assert record_verdicts(RiskState(), verdicts, LIMITS, NOW).state.trading_state == TradingState.HALTED


def test_an_opening_that_goes_ahead_resets_the_rejection_counter():
    state = RiskState(consecutive_rejections=2)
    verdicts = run(opening(size=SizeRequest("notional_usdt", 50_000.0)))  # amended, still an opening
    assert verdicts[0].outcome == "amend"
    assert record_verdicts(state, verdicts, LIMITS, NOW).state.consecutive_rejections == 0


NEUTRAL = [
    pytest.param(lambda: run(hold()), id="hold"),
    pytest.param(lambda: run(close(), acct=account(positions=(position(),))), id="close"),
    pytest.param(lambda: run(close()), id="close-without-position"),
    pytest.param(lambda: run(opening("open_short"), acct=account(positions=(position(),))), id="reversal-close"),
    pytest.param(lambda: run(opening(), state=RiskState(global_pause=True)), id="global-pause"),
    pytest.param(lambda: run(opening(), state=RiskState(TradingState.REDUCE_ONLY)), id="reduce-only"),
    pytest.param(lambda: run(opening(), state=RiskState(daily_loss_day=NOW.date())), id="daily-breaker"),
    pytest.param(lambda: run(opening(), mkts={}), id="no-market-data"),
]


@pytest.mark.parametrize("verdicts", NEUTRAL)
def test_closes_holds_gates_and_missing_data_neither_count_nor_reset(verdicts):
    state = RiskState(consecutive_rejections=2)
    t = record_verdicts(state, verdicts(), LIMITS, NOW)
    assert t.state.consecutive_rejections == 2 and t.state.trading_state == TradingState.ACTIVE


def test_rule_rejections_count():
    for reasons_source in (bad_opening(), opening(size=SizeRequest("notional_usdt", 1e9))):
        (verdict,) = run(reasons_source)
        assert counts_as_rejection(verdict), verdict.reasons


def test_limits_for_consecutive_failures_are_configurable():
    limits = RiskLimits(max_consecutive_rejections=1, max_consecutive_invalid_plans=5)
    assert record_verdicts(RiskState(), run(bad_opening()), limits, NOW).state.trading_state == TradingState.HALTED
    state = RiskState(consecutive_invalid_plans=3)
    assert record_invalid_plan(state, limits, NOW).state.trading_state == TradingState.ACTIVE


def test_zero_disables_the_consecutive_halts():
    limits = RiskLimits(max_consecutive_rejections=0, max_consecutive_invalid_plans=0)
    state = RiskState(consecutive_rejections=10, consecutive_invalid_plans=10)
    assert record_verdicts(state, run(bad_opening()), limits, NOW).state.trading_state == TradingState.ACTIVE
    assert record_invalid_plan(state, limits, NOW).state.trading_state == TradingState.ACTIVE


# ---- human actions ------------------------------------------------------------------------------------


def test_halted_agent_stays_halted_until_resumed():
    state = record_invalid_plan(RiskState(consecutive_invalid_plans=2), LIMITS, NOW).state
    for _ in range(3):  # valid plans, good openings: still halted
        state = record_verdicts(state, run(opening(), state=state), LIMITS, NOW).state
        state = check_account(account(), LIMITS, state, NOW).state
    assert state.trading_state == TradingState.HALTED
    t = resume(state, NOW, by="alice")
    assert (t.state.trading_state, t.state.consecutive_invalid_plans, t.state.consecutive_rejections) == (
        TradingState.ACTIVE, 0, 0)
    assert [c.code for c in t.changes] == [R.RESUMED] and "alice" in t.changes[0].message
    assert run(opening(), state=t.state)[0].outcome == "accept"


def test_operator_sets_reduce_only():
    t = set_trading_state(RiskState(), TradingState.REDUCE_ONLY, NOW, by="ops")
    assert (t.state.trading_state, t.state.reason, t.changes[0].code) == (TradingState.REDUCE_ONLY, R.STATE_SET,
                                                                           R.STATE_SET)
    assert entry_blocks(account(), LIMITS, t.state, NOW) == (R.REDUCE_ONLY,)
    assert set_trading_state(t.state, TradingState.ACTIVE, NOW, by="ops").state.trading_state == TradingState.ACTIVE


# ---- the whole stage ----------------------------------------------------------------------------------


def test_assess_plan_halts_on_drawdown_and_rejects_with_that_reason():
    acct = account(equity=5_900.0, day_start_equity=5_900.0, positions=(position(symbol="ETH-USDT-SWAP"),))
    outcome = assess_plan(plan(opening(), close("ETH-USDT-SWAP")), acct, make_markets(), LIMITS, RiskState(), NOW)
    opening_verdict, closing_verdict = outcome.verdicts
    assert (opening_verdict.outcome, opening_verdict.reasons) == ("reject", (R.AGENT_HALTED, R.DRAWDOWN_HALT))
    assert closing_verdict.outcome == "accept" and closing_verdict.order.reduce_only
    assert (outcome.state.trading_state, outcome.state.reason) == (TradingState.HALTED, R.DRAWDOWN_HALT)
    assert [c.code for c in outcome.changes] == [R.DRAWDOWN_HALT]
    assert outcome.state.consecutive_rejections == 0  # a gate rejection is not the agent's fault


def test_evaluate_blocks_even_without_check_account():
    acct = account(equity=5_900.0, day_start_equity=5_900.0)
    assert run(opening(), acct=acct)[0].reasons == (R.DRAWDOWN_HALT,)
