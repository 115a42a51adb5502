"""Table-driven tests: every rule of the risk engine, every amend path, with its reason codes."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from okxlab.domain import SizeRequest, TradingState
from okxlab.risk import reasons as R
from okxlab.risk.engine import effective_limits
from okxlab.risk.limits import HARD_MAX_LEVERAGE, HARD_MAX_LOSS_AT_STOP_PCT, RiskLimits
from okxlab.risk.state import RiskState
from tests.risk.risk_builders import (
    BTC,
    BTC_SPOT,
    ETH,
    NOW,
    SOL,
    account,
    close,
    hold,
    loss_at_stop,
    market,
    markets,
    one,
    opening,
    position,
    run,
    spot,
    swap,
)

HALTED = RiskState(trading_state=TradingState.HALTED, reason=R.CONSECUTIVE_REJECTIONS, since=NOW)
FOUR_OTHERS = tuple(position(f"X{i}-USDT-SWAP") for i in range(4))
SPOT_MKTS = markets(market(spot()))

# (decision, run() keyword arguments, expected outcome, expected reason codes)
REJECTIONS = [
    pytest.param(opening(stop_loss=None), {}, (R.STOP_LOSS_MISSING,), id="stop-missing"),
    pytest.param(opening(stop_loss=61_000.0), {}, (R.STOP_LOSS_WRONG_SIDE,), id="long-stop-above-entry"),
    pytest.param(opening("open_short", stop_loss=59_000.0), {}, (R.STOP_LOSS_WRONG_SIDE,), id="short-stop-below-entry"),
    # Between the last price and the ask: below the entry, but a stop already crossed by the last trade.
    pytest.param(opening(stop_loss=60_000.05), {}, (R.STOP_LOSS_WRONG_SIDE,), id="long-stop-at-last-price"),
    pytest.param(opening(take_profit=59_000.0), {}, (R.TAKE_PROFIT_WRONG_SIDE,), id="long-tp-below-entry"),
    pytest.param(opening("open_short", take_profit=62_000.0), {}, (R.TAKE_PROFIT_WRONG_SIDE,), id="short-tp-above"),
    pytest.param(opening(order_type="limit", limit_price=56_000.0, stop_loss=55_000.0), {},
                 (R.PRICE_OUTSIDE_BAND,), id="limit-below-band"),
    pytest.param(opening("open_short", order_type="limit", limit_price=63_500.0, stop_loss=65_000.0), {},
                 (R.PRICE_OUTSIDE_BAND,), id="limit-above-band"),
    pytest.param(opening(order_type="limit", limit_price=59_000.0, stop_loss=58_000.0),
                 {"limits": RiskLimits(price_band_pct=1.0)}, (R.PRICE_OUTSIDE_BAND,), id="limit-band-configurable"),
    pytest.param(opening(), {"limits": RiskLimits(blocklist=(BTC,))}, (R.BLOCKLISTED,), id="blocklisted"),
    pytest.param(opening(), {"acct": account(positions=(position(),))}, (R.POSITION_EXISTS,), id="position-exists"),
    pytest.param(opening(), {"acct": account(positions=FOUR_OTHERS)}, (R.MAX_OPEN_POSITIONS,), id="max-open-positions"),
    pytest.param(opening(), {"acct": account(available=5.0)}, (R.INSUFFICIENT_MARGIN,), id="insufficient-margin"),
    pytest.param(opening(size=SizeRequest("notional_usdt", 50.0)), {}, (R.BELOW_MIN_SIZE,), id="below-min-size"),
    pytest.param(opening(size=SizeRequest("notional_usdt", 2e6)), {}, (R.SIZE_ABSURD,), id="absurd-notional"),
    pytest.param(opening(size=SizeRequest("risk_usdt", 20_000.0)), {}, (R.SIZE_ABSURD,), id="absurd-risk"),
    pytest.param(opening(size=SizeRequest("notional_usdt", 1e9), leverage=125.0), {}, (R.SIZE_ABSURD,),
                 id="absurd-at-max-leverage"),
    pytest.param(opening("open_short", stop_loss=121_000.0, take_profit=None), {},
                 (R.STOP_BEYOND_LIQUIDATION,), id="stop-beyond-liquidation"),
    pytest.param(opening(size=None), {}, (R.INVALID_DECISION,), id="size-missing"),
    pytest.param(opening(leverage=math.nan), {}, (R.INVALID_DECISION,), id="leverage-nan"),
    pytest.param(opening(leverage=0.5), {}, (R.INVALID_DECISION,), id="leverage-below-1"),
    pytest.param(opening(order_type="limit", limit_price=None), {}, (R.INVALID_DECISION,), id="limit-without-price"),
    pytest.param(opening(stop_loss=math.inf), {}, (R.INVALID_DECISION,), id="stop-infinite"),
    pytest.param(opening(size=SizeRequest("notional_usdt", -5.0)), {}, (R.INVALID_DECISION,), id="size-negative"),
    pytest.param(opening(), {"mkts": {}}, (R.NO_MARKET_DATA,), id="no-market-data"),
    pytest.param(opening(), {"mkts": markets(market(last=0.0))}, (R.BAD_MARKET_DATA,), id="bad-market-price"),
    pytest.param(opening(), {"mkts": markets(market(swap(lot_sz=0.0)))}, (R.BAD_MARKET_DATA,), id="bad-lot-size"),
    pytest.param(opening(), {"acct": account(equity=0.0, peak_equity=0.0, day_start_equity=0.0)}, (R.NO_EQUITY,),
                 id="no-equity"),
    # Unknown equity counts as everything lost: both loss gates close.
    pytest.param(opening(), {"acct": account(equity=math.nan)}, (R.DRAWDOWN_HALT, R.DAILY_LOSS_LIMIT),
                 id="nan-equity"),
    pytest.param(opening("open_short", BTC_SPOT), {"mkts": SPOT_MKTS}, (R.SPOT_NO_SHORT,), id="spot-short"),
    # Entry gates.
    pytest.param(opening(), {"acct": account(equity=6_000.0, peak_equity=10_000.0, day_start_equity=6_000.0)}, (R.DRAWDOWN_HALT,),
                 id="drawdown-40pct"),
    pytest.param(opening(), {"acct": account(equity=8_000.0, peak_equity=10_000.0, day_start_equity=8_000.0),
                             "limits": RiskLimits(max_drawdown_pct=20.0)}, (R.DRAWDOWN_HALT,),
                 id="drawdown-configurable"),
    pytest.param(opening(), {"acct": account(equity=9_490.0, day_start_equity=10_000.0)}, (R.DAILY_LOSS_LIMIT,),
                 id="daily-loss"),
    pytest.param(opening(), {"state": RiskState(daily_loss_day=NOW.date())}, (R.DAILY_LOSS_LIMIT,),
                 id="daily-breaker-tripped-earlier-today"),
    pytest.param(opening(), {"state": HALTED}, (R.AGENT_HALTED, R.CONSECUTIVE_REJECTIONS), id="halted"),
    pytest.param(opening(), {"state": RiskState(TradingState.HALTED, R.DRAWDOWN_HALT, NOW)},
                 (R.AGENT_HALTED, R.DRAWDOWN_HALT), id="halted-for-drawdown"),
    pytest.param(opening(), {"state": RiskState(TradingState.REDUCE_ONLY, R.STATE_SET, NOW)}, (R.REDUCE_ONLY,),
                 id="reduce-only"),
    pytest.param(opening(), {"state": RiskState(global_pause=True)}, (R.GLOBAL_PAUSE,), id="global-pause"),
    pytest.param(opening(), {"state": RiskState(global_pause=True, trading_state=TradingState.REDUCE_ONLY)},
                 (R.GLOBAL_PAUSE, R.REDUCE_ONLY), id="all-gates-reported"),
]


@pytest.mark.parametrize(("decision", "env", "reasons"), REJECTIONS)
def test_rejections(decision, env, reasons):
    verdict = one(decision, **env)
    assert (verdict.outcome, verdict.reasons) == ("reject", reasons)
    assert verdict.order is None
    assert verdict.decision == decision  # a reject reports the proposal unchanged


NOT_BLOCKING = [
    pytest.param(opening(), {}, id="baseline"),
    pytest.param(opening(), {"acct": account(equity=6_001.0, peak_equity=10_000.0, day_start_equity=6_001.0)}, id="drawdown-just-under-40"),
    pytest.param(opening(), {"acct": account(equity=9_500.0, day_start_equity=10_000.0)}, id="daily-loss-exactly-5"),
    pytest.param(opening(), {"state": RiskState(daily_loss_day=(NOW - timedelta(days=1)).date())},
                 id="daily-breaker-of-yesterday"),
    pytest.param(opening(), {"acct": account(positions=(position(),)), "limits": RiskLimits(allow_adding=True)},
                 id="adding-allowed"),
    pytest.param(opening(), {"acct": account(positions=FOUR_OTHERS[:3])}, id="three-of-four-positions"),
    pytest.param(opening(take_profit=None), {}, id="no-take-profit"),
    pytest.param(opening(order_type="limit", limit_price=57_100.0, stop_loss=56_000.0), {}, id="limit-inside-band"),
    pytest.param(opening(size=SizeRequest("risk_usdt", 50.0)), {}, id="risk-usdt-within-budget"),
    pytest.param(opening("open_long", BTC_SPOT, leverage=1.0), {"mkts": SPOT_MKTS}, id="spot-long"),
]


@pytest.mark.parametrize(("decision", "env"), NOT_BLOCKING)
def test_accepted_unchanged(decision, env):
    verdict = one(decision, **env)
    assert (verdict.outcome, verdict.reasons) == ("accept", ())
    assert verdict.decision == decision and verdict.order is not None and not verdict.order.reduce_only


def test_accepted_order_is_exact():
    verdict = one(opening())
    # 1,000 USDT at the ask 60,000.1 is 1.666 contracts of 0.01 BTC: rounded down to the 0.1 lot.
    assert verdict.order == replace(verdict.order, symbol=BTC, side="buy", contracts=1.6, order_type="market",
                                    reduce_only=False, leverage=5.0, limit_price=None, stop_loss=58_800.0,
                                    take_profit=63_000.0)


def test_short_order_sells_with_stop_above():
    order = one(opening("open_short")).order
    assert (order.side, order.stop_loss, order.take_profit, order.reduce_only) == ("sell", 61_200.0, 57_000.0, False)


def test_limit_order_prices_are_rounded_to_the_tick_on_the_safe_side():
    long = one(opening(order_type="limit", limit_price=59_000.07, stop_loss=58_000.04, take_profit=62_000.01)).order
    assert (long.limit_price, long.stop_loss, long.take_profit) == (59_000.0, 58_000.0, 62_000.1)
    short = one(opening("open_short", order_type="limit", limit_price=61_000.01, stop_loss=62_000.01,
                        take_profit=58_000.09)).order
    assert (short.limit_price, short.stop_loss, short.take_profit) == (61_000.1, 62_000.1, 58_000.0)


def test_limit_entry_is_the_limit_price_for_the_stop_distance():
    # Stop 2 % under a 59,000 limit: budget 10,000 x 1 / (2 + 0.15) = 4,651 USDT -> 7.8 contracts at 59,000.
    verdict = one(opening(order_type="limit", limit_price=59_000.0, stop_loss=57_820.0,
                          size=SizeRequest("notional_usdt", 9_000.0)))
    assert verdict.reasons == (R.SIZE_REDUCED_TO_RISK_BUDGET,)
    assert verdict.order.contracts == 7.8


# ---- amend paths --------------------------------------------------------------------------------------

AMENDS = [
    pytest.param(opening(leverage=50.0), {}, (R.LEVERAGE_CAPPED,), id="leverage-over-agent-cap"),
    pytest.param(opening(leverage=12.0), {"limits": RiskLimits(max_leverage=10.0)}, (R.LEVERAGE_CAPPED,),
                 id="leverage-cap-configurable"),
    pytest.param(opening(leverage=20.0), {"mkts": markets(market(swap(max_lever=10.0)))}, (R.LEVERAGE_CAPPED,),
                 id="leverage-over-instrument-max"),
    pytest.param(opening(leverage=20.0, stop_loss=54_000.0, take_profit=None, size=SizeRequest("notional_usdt", 500.0)), {},
                 (R.LEVERAGE_REDUCED_FOR_STOP,), id="leverage-for-stop"),
    pytest.param(opening(size=SizeRequest("notional_usdt", 10_000.0)), {}, (R.SIZE_REDUCED_TO_RISK_BUDGET,),
                 id="notional-over-budget"),
    pytest.param(opening(size=SizeRequest("risk_usdt", 500.0)), {}, (R.SIZE_REDUCED_TO_RISK_BUDGET,),
                 id="risk-over-budget"),
    pytest.param(opening(size=SizeRequest("notional_usdt", 90_000.0), leverage=20.0), {"limits": RiskLimits(risk_budget_pct=25.0)},
                 (R.SIZE_REDUCED_TO_RISK_BUDGET, R.LOSS_AT_STOP_CAPPED), id="loss-at-stop-hard-cap"),
    pytest.param(opening(), {"acct": account(available=100.0)}, (R.SIZE_REDUCED_TO_MARGIN,), id="margin"),
    pytest.param(opening("open_long", BTC_SPOT, leverage=5.0), {"mkts": SPOT_MKTS}, (R.LEVERAGE_CAPPED,),
                 id="spot-leverage"),
    pytest.param(opening(leverage=50.0, size=SizeRequest("notional_usdt", 9_000.0)), {"acct": account(available=100.0)},
                 (R.LEVERAGE_CAPPED, R.SIZE_REDUCED_TO_RISK_BUDGET, R.SIZE_REDUCED_TO_MARGIN), id="all-three"),
]


@pytest.mark.parametrize(("decision", "env", "reasons"), AMENDS)
def test_amends(decision, env, reasons):
    verdict = one(decision, **env)
    assert (verdict.outcome, verdict.reasons) == ("amend", reasons)
    assert verdict.order is not None and verdict.decision != decision


def test_leverage_amended_to_agent_cap():
    verdict = one(opening(leverage=50.0))
    assert verdict.order.leverage == 20.0 and verdict.decision.leverage == 20.0


def test_leverage_above_hard_cap_is_never_used_even_if_configured():
    limits = RiskLimits(max_leverage=500.0)
    assert effective_limits(limits).max_leverage == HARD_MAX_LEVERAGE
    verdict = one(opening(leverage=125.0, stop_loss=59_990.0, take_profit=None),
                  mkts=markets(market(swap(max_lever=125.0))), limits=limits)
    assert R.LEVERAGE_CAPPED in verdict.reasons and verdict.order.leverage <= HARD_MAX_LEVERAGE


def test_leverage_reduced_so_stop_triggers_before_liquidation():
    # Stop 10 % away: 100 / (10 + 1 % buffer) -> 9x at most.
    verdict = one(opening(leverage=20.0, stop_loss=54_000.0, take_profit=None))
    assert verdict.order.leverage == 9.0 and verdict.decision.leverage == 9.0


def test_size_amended_to_risk_budget():
    verdict = one(opening(size=SizeRequest("notional_usdt", 10_000.0)))
    stop_pct = (60_000.1 - 58_800.0) / 60_000.1 * 100
    budget = 10_000.0 * 1.0 / (stop_pct + 0.15)
    assert verdict.decision.size == SizeRequest("notional_usdt", pytest.approx(budget))
    assert verdict.order.contracts == math.floor(budget / 600.001 * 10) / 10  # 7.7
    loss = loss_at_stop(verdict, swap(), 60_000.1, RiskLimits())
    assert 90.0 < loss <= 100.0  # 1 % of equity, lot rounding takes a little off


def test_risk_usdt_amended_in_its_own_unit():
    verdict = one(opening(size=SizeRequest("risk_usdt", 500.0)))
    assert verdict.decision.size.mode == "risk_usdt"
    assert verdict.decision.size.value < 100.0  # fees come out of the 1 % budget


def test_loss_at_stop_never_exceeds_hard_cap():
    limits = RiskLimits(risk_budget_pct=25.0, max_loss_at_stop_pct=50.0)
    assert effective_limits(limits).max_loss_at_stop_pct == HARD_MAX_LOSS_AT_STOP_PCT
    verdict = one(opening(size=SizeRequest("notional_usdt", 900_000.0), leverage=20.0, stop_loss=57_000.0,
                          take_profit=None), limits=limits)
    assert verdict.outcome == "amend"
    assert loss_at_stop(verdict, swap(), 60_000.1, limits) <= 10_000.0 * 0.10


def test_margin_amend_fits_available():
    verdict = one(opening(), acct=account(available=100.0))
    notional = verdict.order.contracts * 0.01 * 60_000.1
    assert notional * (1 / 5 + 0.001) <= 100.0 and verdict.order.contracts == 0.8


def test_spot_order_has_no_leverage_and_base_units():
    verdict = one(opening("open_long", BTC_SPOT, leverage=5.0), mkts=SPOT_MKTS)
    assert verdict.order.leverage is None and verdict.decision.leverage == 1.0
    assert verdict.order.contracts == pytest.approx(1_000.0 / 60_000.1, abs=1e-8)


def test_nan_limits_fall_back_to_defaults():
    verdict = one(opening(leverage=50.0), limits=RiskLimits(max_leverage=math.nan, risk_budget_pct=math.nan))
    assert verdict.order.leverage == 20.0 and verdict.reasons == (R.LEVERAGE_CAPPED,)


# ---- closes, holds, reversals -------------------------------------------------------------------------

CLOSE_ENVS = [
    pytest.param({}, id="active"),
    pytest.param({"state": HALTED}, id="halted"),
    pytest.param({"state": RiskState(global_pause=True)}, id="global-pause"),
    pytest.param({"state": RiskState(TradingState.REDUCE_ONLY)}, id="reduce-only"),
    pytest.param({"acct_kw": {"equity": 100.0, "peak_equity": 10_000.0}}, id="drawdown"),
    pytest.param({"acct_kw": {"equity": 9_000.0, "day_start_equity": 10_000.0}}, id="daily-loss"),
    pytest.param({"acct_kw": {"equity": -50.0, "available": 0.0}}, id="negative-equity"),
    pytest.param({"mkts": {}}, id="no-market-data"),
    pytest.param({"limits": RiskLimits(blocklist=(BTC,), max_open_positions=0)}, id="blocklisted"),
]


@pytest.mark.parametrize("env", CLOSE_ENVS)
def test_close_always_allowed(env):
    acct = account(positions=(position(side="short", contracts=2.5),), **env.pop("acct_kw", {}))
    verdict = one(close(), acct=acct, **env)
    assert (verdict.outcome, verdict.reasons) == ("accept", ())
    assert verdict.order == replace(verdict.order, symbol=BTC, side="buy", contracts=2.5, order_type="market",
                                    reduce_only=True, leverage=None, stop_loss=None, take_profit=None)


def test_close_without_position_is_an_accepted_no_op():
    verdict = one(close())
    assert (verdict.outcome, verdict.reasons, verdict.order) == ("accept", (R.NO_POSITION_TO_CLOSE,), None)


def test_limit_close_inside_band_keeps_its_price_on_the_passive_side():
    acct = account(positions=(position(side="long"),))
    verdict = one(close(order_type="limit", limit_price=60_500.03), acct=acct)
    assert (verdict.outcome, verdict.order.order_type, verdict.order.limit_price) == ("accept", "limit", 60_500.1)


@pytest.mark.parametrize("env", [pytest.param({}, id="outside-band"), pytest.param({"mkts": {}}, id="no-data")])
def test_limit_close_becomes_market(env):
    acct = account(positions=(position(side="long"),))
    verdict = one(close(order_type="limit", limit_price=70_000.0), acct=acct, **env)
    assert (verdict.outcome, verdict.reasons) == ("amend", (R.CLOSE_AS_MARKET,))
    assert verdict.order.order_type == "market" and verdict.order.side == "sell" and verdict.order.reduce_only


def test_hold_is_accepted_without_order():
    verdict = one(hold(), state=HALTED)
    assert (verdict.outcome, verdict.reasons, verdict.order) == ("accept", (), None)


@pytest.mark.parametrize("env", [pytest.param({}, id="active"), pytest.param({"state": HALTED}, id="halted")])
def test_opening_against_opposite_position_closes_it(env):
    acct = account(positions=(position(side="short", contracts=3.0),))
    verdict = one(opening("open_long", size=SizeRequest("notional_usdt", 1e12)), acct=acct, **env)
    assert (verdict.outcome, verdict.reasons) == ("amend", (R.REVERSAL_CLOSES_POSITION,))
    assert verdict.decision.action == "close" and verdict.action == "open_long"
    assert (verdict.order.side, verdict.order.contracts, verdict.order.reduce_only) == ("buy", 3.0, True)


# ---- several decisions of one plan --------------------------------------------------------------------


def three_markets():
    return markets(market(), market(swap(ETH, ct_val=0.1, tick_sz=0.01), last=3_000.0, spread=0.02),
                   market(swap(SOL, ct_val=1.0, lot_sz=1.0, min_sz=1.0, tick_sz=0.01), last=150.0, spread=0.02))


def eth_long(**kw):
    return opening(symbol=ETH, stop_loss=2_940.0, take_profit=3_150.0, **kw)


def test_openings_share_the_margin():
    # 500 available at 5x with fees pays ~2,487 notional: the first takes 1,000, the second the rest.
    first, second = run(opening(), eth_long(size=SizeRequest("notional_usdt", 2_000.0)),
                        acct=account(available=500.0), mkts=three_markets())
    assert first.outcome == "accept"
    assert (second.outcome, second.reasons) == ("amend", (R.SIZE_REDUCED_TO_MARGIN,))
    used = sum(v.order.contracts * ct * px * (1 / 5 + 0.001)
               for v, ct, px in ((first, 0.01, 60_000.1), (second, 0.1, 3_000.01)))
    assert used <= 500.0


def test_margin_exhausted_by_earlier_opening_rejects_later_one():
    # The first takes 4.1 contracts (494.46 margin); 2.54 left cannot pay 0.1 ETH contract (6.03).
    first, second = run(opening(size=SizeRequest("notional_usdt", 2_470.0)), eth_long(),
                        acct=account(available=497.0), mkts=three_markets())
    assert first.outcome == "accept"
    assert (second.outcome, second.reasons) == ("reject", (R.INSUFFICIENT_MARGIN,))


def test_open_position_slots_are_shared():
    verdicts = run(opening(), eth_long(), acct=account(positions=FOUR_OTHERS[:3]), mkts=three_markets())
    assert [(v.outcome, v.reasons) for v in verdicts] == [("accept", ()), ("reject", (R.MAX_OPEN_POSITIONS,))]


def test_rejected_opening_uses_no_slot_and_no_margin():
    verdicts = run(opening(), eth_long(), acct=account(available=260.0),
                   mkts=three_markets(), limits=RiskLimits(blocklist=(BTC,), max_open_positions=1))
    assert [v.outcome for v in verdicts] == ["reject", "accept"]


def test_closing_does_not_free_a_slot_in_the_same_plan():
    acct = account(positions=(position(),))
    verdicts = run(close(), eth_long(), acct=acct, mkts=three_markets(), limits=RiskLimits(max_open_positions=1))
    assert [(v.outcome, v.reasons) for v in verdicts] == [("accept", ()), ("reject", (R.MAX_OPEN_POSITIONS,))]


def test_second_decision_on_same_symbol():
    acct = account(positions=(position(),))
    verdicts = run(close(), opening(), close(), acct=acct)
    assert [(v.outcome, v.reasons) for v in verdicts] == [
        ("accept", ()), ("reject", (R.DUPLICATE_SYMBOL,)), ("accept", (R.DUPLICATE_SYMBOL,))]
    assert verdicts[2].order is None  # the position is closed once


def test_verdicts_follow_plan_order():
    decisions = (hold(SOL), eth_long(), opening(stop_loss=None), close(BTC))
    verdicts = run(*decisions, mkts=three_markets())
    assert [(v.index, v.symbol, v.action) for v in verdicts] == [(i, d.symbol, d.action)
                                                                 for i, d in enumerate(decisions)]
