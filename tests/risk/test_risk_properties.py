"""Property-based tests: whatever the plan, account, market and limits, hostile values included, an
opening that goes ahead is protected, capped and on the exchange's grid, and a close is never rejected."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okxlab.domain import (
    Account,
    Decision,
    Instrument,
    Plan,
    Position,
    SizeRequest,
    SymbolMarket,
    TradingState,
)
from okxlab.risk.engine import ABSURD_NOTIONAL_X_EQUITY, LIQUIDATION_BUFFER_PCT, effective_limits, evaluate
from okxlab.risk.limits import HARD_MAX_LEVERAGE, HARD_MAX_LOSS_AT_STOP_PCT, RiskLimits
from okxlab.risk.state import RiskState, entry_blocks
from tests.risk.risk_builders import NOW

SYMBOLS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP", "BTC-USDT")
TOL = 1e-9  # relative float tolerance for the inequalities

HOSTILE = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, 1e-300, 1e300])


def numbers(lo: float, hi: float, hostile: bool = True) -> st.SearchStrategy[float]:
    plain = st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)
    return st.one_of(plain, HOSTILE) if hostile else plain


@st.composite
def instruments(draw, symbol: str, hostile: bool) -> Instrument:
    is_spot = not symbol.endswith("-SWAP")
    lot = draw(st.sampled_from([1e-8, 1e-6, 0.001, 0.01, 0.1, 1.0, 10.0]))
    inst = Instrument(
        inst_id=symbol, inst_type="SPOT" if is_spot else "SWAP", base_ccy=symbol.split("-")[0], quote_ccy="USDT",
        ct_val=1.0 if is_spot else draw(st.sampled_from([0.001, 0.01, 0.1, 1.0, 10.0, 100.0])),
        lot_sz=lot, min_sz=lot * draw(st.integers(1, 10)),
        tick_sz=draw(st.sampled_from([1e-5, 1e-4, 0.01, 0.1, 1.0])),
        max_lever=draw(st.sampled_from([1.0, 3.0, 10.0, 20.0, 50.0, 75.0, 100.0, 125.0])),
    )
    if hostile and draw(st.integers(0, 19)) == 0:
        field = draw(st.sampled_from(["ct_val", "lot_sz", "min_sz", "tick_sz", "max_lever"]))
        inst = Instrument(**{**inst.__dict__, field: draw(HOSTILE)})
    return inst


@st.composite
def market_views(draw, symbol: str, hostile: bool) -> SymbolMarket:
    last = draw(st.floats(min_value=1e-3, max_value=1e6))
    half_spread = draw(st.floats(min_value=0.0, max_value=0.005))
    bid, ask = last * (1 - half_spread), last * (1 + half_spread)
    if hostile and draw(st.integers(0, 19)) == 0:
        last = draw(HOSTILE)
    return SymbolMarket(symbol=symbol, instrument=draw(instruments(symbol, hostile)), as_of=NOW, last=last,
                        bid=bid, ask=ask, bar="4H", candles=())


def prices_near(reference: float, hostile: bool, optional: bool = True) -> st.SearchStrategy[float | None]:
    near = st.floats(min_value=0.3, max_value=2.5).map(lambda k: reference * k)
    close_in = st.floats(min_value=0.9, max_value=1.1).map(lambda k: reference * k)
    anywhere = st.floats(min_value=1e-9, max_value=1e9)
    options = [near, close_in, anywhere] + ([st.none()] if optional else []) + ([HOSTILE] if hostile else [])
    return st.one_of(*options)


def sided(reference: float, losing: bool, long: bool) -> st.SearchStrategy[float]:
    """A price 0.05-50 % away from `reference`, on the losing (stop) or winning (take-profit) side."""
    below = losing == long
    return st.floats(min_value=0.0005, max_value=0.5).map(lambda k: reference * (1 - k if below else 1 + k))


@st.composite
def decisions(draw, symbol: str, markets: dict[str, SymbolMarket], equity: float, hostile: bool) -> Decision:
    ref = markets[symbol].last if symbol in markets and math.isfinite(markets[symbol].last) else 100.0
    ref = ref if ref > 0 else 100.0
    action = draw(st.sampled_from(["open_long", "open_short", "open_long", "open_short", "close", "hold"]))
    long = action == "open_long"
    if hostile:
        size_value = st.one_of(st.floats(min_value=1e-6, max_value=1e5), st.floats(min_value=1e5, max_value=1e12))  # anything, anywhere
        size = st.one_of(st.none(), st.builds(SizeRequest, st.sampled_from(["risk_usdt", "notional_usdt"]),
                                              st.one_of(size_value, HOSTILE)))
        leverage, limit = st.one_of(st.none(), numbers(1.0, 125.0)), prices_near(ref, True)
        stop, take_profit = prices_near(ref, True), st.one_of(st.none(), prices_near(ref, True))
    else:  # mostly well-formed, with prices mostly on their side, so that many openings go ahead
        # Of equity, log-uniform from 0.01 % to 300x: tiny, typical, over budget, beyond the absurd line.
        fraction = st.floats(min_value=-4.0, max_value=2.5).map(lambda e: 10.0**e)
        size = st.builds(SizeRequest, st.sampled_from(["risk_usdt", "notional_usdt"]), fraction.map(lambda f: f * equity))
        leverage = st.one_of(st.sampled_from([1.0, 2.0, 3.0, 5.0, 10.0, 20.0]), st.floats(min_value=1.0, max_value=125.0))
        limit = st.floats(min_value=0.97, max_value=1.03).map(lambda k: ref * k)
        stop = st.one_of(sided(ref, True, long), sided(ref, True, long), prices_near(ref, False, optional=False))
        take_profit = st.one_of(st.none(), sided(ref, False, long), prices_near(ref, False))
    return Decision(
        symbol=symbol, action=action, confidence=0.5, rationale="property",
        size=draw(size), leverage=draw(leverage), order_type=draw(st.sampled_from(["market", "limit"])),
        limit_price=draw(limit), stop_loss=draw(stop), take_profit=draw(take_profit),
    )


@st.composite
def accounts(draw, hostile: bool) -> Account:
    equity = draw(numbers(1.0, 1e7) if hostile else st.floats(min_value=100.0, max_value=1e7))
    scale = equity if math.isfinite(equity) and equity > 0 else 10_000.0
    held = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=3 if hostile else 1))
    positions = tuple(
        Position(symbol=s, side=draw(st.sampled_from(["long", "short"])),
                 contracts=draw(st.sampled_from([0.0, 0.1, 1.0, 7.0, 1e4])), entry_price=100.0, mark_price=100.0,
                 unrealized_pnl=0.0, leverage=3.0)
        for s in held
    )
    return Account(
        equity=equity, cash=scale, positions=positions,
        available=draw(st.one_of(st.floats(min_value=0.0, max_value=2 * scale), HOSTILE if hostile else st.nothing())),
        peak_equity=scale * draw(st.floats(min_value=1.0, max_value=2.0 if hostile else 1.2)),
        day_start_equity=scale * draw(st.floats(min_value=0.9, max_value=1.1) if hostile else st.just(1.0)),
    )


def limits_strategy(hostile: bool) -> st.SearchStrategy[RiskLimits]:
    if not hostile:  # around the defaults, hard caps exceeded now and then
        return st.builds(
            RiskLimits, max_leverage=st.floats(min_value=1.0, max_value=150.0),
            risk_budget_pct=st.floats(min_value=0.1, max_value=15.0),
            fee_buffer_pct=st.floats(min_value=0.0, max_value=0.5), slippage_buffer_pct=st.floats(min_value=0.0, max_value=0.5),
            max_loss_at_stop_pct=st.floats(min_value=0.5, max_value=15.0),
            price_band_pct=st.floats(min_value=0.5, max_value=20.0), allow_adding=st.booleans(),
            max_open_positions=st.integers(1, 6),
        )
    return st.builds(
        RiskLimits,
        max_leverage=numbers(0.0, 1_000.0), risk_budget_pct=numbers(0.0, 50.0),
        fee_buffer_pct=numbers(0.0, 1.0), slippage_buffer_pct=numbers(0.0, 1.0),
        max_loss_at_stop_pct=numbers(0.0, 60.0), price_band_pct=numbers(0.0, 50.0),
        allow_adding=st.booleans(), max_open_positions=st.integers(-1, 6),
        blocklist=st.lists(st.sampled_from(SYMBOLS), max_size=1).map(tuple),
        max_drawdown_pct=numbers(0.0, 100.0), daily_loss_pct=numbers(0.0, 100.0),
    )


states = st.builds(
    RiskState,
    trading_state=st.sampled_from(list(TradingState)),
    global_pause=st.booleans(),
    daily_loss_day=st.sampled_from([None, NOW.date(), (NOW - timedelta(days=1)).date()]),
)


@st.composite
def scenarios(draw, hostile: bool):
    present = draw(st.lists(st.sampled_from(SYMBOLS), unique=True)) if hostile else list(SYMBOLS)
    mkts = {s: draw(market_views(s, hostile)) for s in present}
    # Hostile plans may repeat a symbol (the schema forbids it; the engine must still cope).
    symbols = draw(st.lists(st.sampled_from(SYMBOLS), max_size=6, unique=not hostile))
    account = draw(accounts(hostile))
    equity = account.equity if math.isfinite(account.equity) and account.equity > 0 else 10_000.0
    plan = Plan("okxlab.plan.v1", tuple(draw(decisions(s, mkts, equity, hostile)) for s in symbols))
    return plan, account, mkts, draw(limits_strategy(hostile)), draw(states) if hostile else RiskState()


# ---- the properties -----------------------------------------------------------------------------------


def on_grid(value: float, step: float) -> bool:
    q = value / step
    return math.isclose(q, round(q), rel_tol=TOL, abs_tol=1e-6)


def check_opening_order(verdict, plan, account, markets, lim) -> float:
    """Every property of an opening that goes ahead; returns the margin it uses."""
    decision, order = plan.decisions[verdict.index], verdict.order
    market = markets[decision.symbol]
    inst = market.instrument
    long = decision.action == "open_long"
    assert order.side == ("buy" if long else "sell")
    assert decision.size is not None and decision.size.value <= (
        account.equity * ABSURD_NOTIONAL_X_EQUITY if decision.size.mode == "notional_usdt" else account.equity)
    # A stop on the losing side of the entry and of the last price, on the tick grid.
    entry = order.limit_price if order.order_type == "limit" else (market.ask if long else market.bid)
    assert order.stop_loss is not None and on_grid(order.stop_loss, inst.tick_sz)
    if long:
        assert order.stop_loss < entry and order.stop_loss < market.last
    else:
        assert order.stop_loss > entry and order.stop_loss > market.last
    if order.take_profit is not None:
        assert (order.take_profit > entry) if long else (order.take_profit < entry)
    if order.limit_price is not None:
        assert on_grid(order.limit_price, inst.tick_sz)
        assert abs(order.limit_price - market.last) / market.last * 100 <= lim.price_band_pct * (1 + TOL)
    # Leverage within every cap; for swaps, the stop triggers before liquidation.
    if inst.inst_type == "SPOT":
        assert order.leverage is None and verdict.decision.leverage == 1.0
        leverage = 1.0
    else:
        leverage = order.leverage
        assert 1.0 <= leverage <= min(lim.max_leverage, HARD_MAX_LEVERAGE, inst.max_lever)
        stop_pct = abs(entry - order.stop_loss) / entry * 100
        assert leverage * (stop_pct + LIQUIDATION_BUFFER_PCT) <= 100.0 * (1 + TOL)
    # Size on the lot grid, at least the minimum; loss at the stop within the budget and the hard cap.
    assert on_grid(order.contracts, inst.lot_sz) and order.contracts >= inst.min_sz
    units = order.contracts * inst.ct_val
    cost_pct = lim.fee_buffer_pct + lim.slippage_buffer_pct
    loss = units * abs(entry - order.stop_loss) + units * entry * cost_pct / 100
    assert loss <= account.equity * HARD_MAX_LOSS_AT_STOP_PCT / 100 * (1 + TOL)
    assert loss <= account.equity * min(lim.risk_budget_pct, lim.max_loss_at_stop_pct) / 100 * (1 + TOL)
    return units * entry * (1 / leverage + lim.fee_buffer_pct / 100)


def check_plan(plan, account, markets, limits, state) -> list:
    verdicts = evaluate(plan, account, markets, limits, state, NOW)
    assert [(v.index, v.symbol, v.action) for v in verdicts] == [
        (i, d.symbol, d.action) for i, d in enumerate(plan.decisions)]
    lim = effective_limits(limits)
    gates = entry_blocks(account, lim, state, NOW)
    held = {p.symbol: p for p in account.positions if p.contracts > 0}
    margin, new_symbols, seen = 0.0, set(), set()
    for verdict in verdicts:
        decision = plan.decisions[verdict.index]
        first_touch = decision.symbol not in seen
        if decision.action != "hold":
            seen.add(decision.symbol)
        if verdict.outcome == "reject":
            assert verdict.order is None
        if decision.action in ("close", "hold"):
            assert verdict.outcome != "reject"  # never, for risk-budget reasons or any other
        if decision.action == "close" and first_touch and decision.symbol in held:
            pos = held[decision.symbol]
            assert verdict.order.reduce_only and verdict.order.contracts == pos.contracts
            assert verdict.order.side == ("sell" if pos.side == "long" else "buy")
        if verdict.order is None or verdict.order.reduce_only:
            continue
        assert decision.action in ("open_long", "open_short") and not gates
        assert verdict.outcome in ("accept", "amend")
        margin += check_opening_order(verdict, plan, account, markets, lim)
        new_symbols |= {decision.symbol} - set(held)
    assert margin <= max(account.available, 0.0) * (1 + TOL) or not new_symbols and margin == 0
    if new_symbols:
        assert len(held) + len(new_symbols) <= lim.max_open_positions
    return verdicts


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios(hostile=True))
def test_hostile_inputs_never_produce_an_unsafe_order(scenario):
    check_plan(*scenario)


@SETTINGS
@given(scenarios(hostile=False))
def test_plausible_inputs_respect_every_cap(scenario):
    check_plan(*scenario)


@settings(max_examples=100, deadline=None)
@given(scenarios(hostile=True))
def test_evaluate_is_deterministic(scenario):
    assert repr(evaluate(*scenario, NOW)) == repr(evaluate(*scenario, NOW))


@settings(max_examples=200, deadline=None)
@given(scenarios(hostile=True), st.floats(min_value=1.01, max_value=1e6))
def test_absurd_notional_never_opens(scenario, factor):
    plan, account, markets, limits, state = scenario
    if not (math.isfinite(account.equity) and account.equity > 0):
        return
    absurd = SizeRequest("notional_usdt", account.equity * ABSURD_NOTIONAL_X_EQUITY * factor)
    plan = Plan(plan.schema_version, tuple(Decision(**{**d.__dict__, "size": absurd}) for d in plan.decisions))
    for verdict in evaluate(plan, account, markets, limits, state, NOW):
        assert verdict.order is None or verdict.order.reduce_only


def test_the_generators_do_reach_accepted_and_amended_openings():
    """Guards the properties above against a generator that only ever produces rejections."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(scenarios(hostile=False))
    def collect(scenario):
        seen.update(v.outcome for v in evaluate(*scenario, NOW) if v.order is not None and not v.order.reduce_only)

    collect()
    assert seen == {"accept", "amend"}
