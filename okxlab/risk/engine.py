"""The risk engine: a validated plan in, one verdict per decision out (accept, amend or reject).

`evaluate` is a pure function of (plan, account, markets, limits, state, now): no I/O, no clock, the same
answer every time. Every accepted or amended decision that trades carries an exact, exchange-ready
`OrderIntent` (contracts on the lot grid, prices on the tick grid). docs/risk.md explains each rule.

Decisions are judged in plan order, and openings are judged *together*: margin and open-position slots
used by an earlier opening of the same plan are not available to a later one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache

from okxlab.domain import (
    OPENING_ACTIONS,
    Account,
    Decision,
    Instrument,
    OrderIntent,
    Plan,
    Position,
    SizeRequest,
    SymbolMarket,
    Verdict,
)
from okxlab.risk import reasons as R
from okxlab.risk.limits import HARD_MAX_LEVERAGE, HARD_MAX_LOSS_AT_STOP_PCT, RiskLimits
from okxlab.risk.state import RiskState, StateChange, check_account, entry_blocks, record_verdicts

# Room kept between the stop and the (isolated-margin) liquidation price, in % of the entry: maintenance
# margin (0.4-1 % on OKX's first tier) plus exit costs. Cross margin liquidates later, so this is safe there too.
LIQUIDATION_BUFFER_PCT = 1.0
# A request for more notional than this many times equity is not a trade idea but a malfunction: reject it.
ABSURD_NOTIONAL_X_EQUITY = HARD_MAX_LEVERAGE


class _Reject(Exception):
    """Raised inside the opening checks; caught once in `_judge_opening`."""

    def __init__(self, *codes: str) -> None:
        super().__init__(*codes)
        self.codes = codes


@dataclass
class _Book:
    """Running totals over one plan, so that openings share margin and position slots."""

    available: float
    open_symbols: set[str]
    touched: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Ctx:
    account: Account
    markets: Mapping[str, SymbolMarket]
    limits: RiskLimits  # sanitised: see effective_limits
    blocks: tuple[str, ...]  # entry gates in force for this run


@dataclass(frozen=True)
class _Prices:
    entry: float  # the price the stop distance is measured from
    stop: float
    take_profit: float | None
    limit: float | None

    @property
    def stop_pct(self) -> float:
        return abs(self.entry - self.stop) / self.entry * 100.0


# ---- public API ---------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def effective_limits(limits: RiskLimits) -> RiskLimits:
    """The limits the engine applies: NaN or negative values fall back to the default, hard caps clamp.

    build_limits already clamps the caps; this also protects against a RiskLimits built by hand (or a TOML
    `nan`), so the hard caps hold whatever the caller passes. Cached: limits are frozen (a limits object with a
    NaN never equals itself, so it is simply recomputed).
    """
    default = RiskLimits()
    changes: dict[str, float | int] = {}
    for f in fields(RiskLimits):
        value = getattr(limits, f.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isnan(value) or value < 0:
            changes[f.name] = getattr(default, f.name)
    out = replace(limits, **changes)
    return replace(
        out,
        max_leverage=min(max(out.max_leverage, 1.0), HARD_MAX_LEVERAGE),
        max_loss_at_stop_pct=min(out.max_loss_at_stop_pct, HARD_MAX_LOSS_AT_STOP_PCT),
    )


def evaluate(plan: Plan, account: Account, markets: Mapping[str, SymbolMarket], limits: RiskLimits,
             state: RiskState, now: datetime) -> list[Verdict]:
    """One verdict per decision of `plan`, in plan order. Pure and deterministic."""
    lim = effective_limits(limits)
    ctx = _Ctx(account, markets, lim, entry_blocks(account, lim, state, now))
    book = _Book(
        available=_nonneg(account.available),
        open_symbols={p.symbol for p in account.positions if _positive(p.contracts)},
    )
    return [_judge(i, d, ctx, book) for i, d in enumerate(plan.decisions)]


@dataclass(frozen=True)
class RiskOutcome:
    verdicts: tuple[Verdict, ...]
    state: RiskState  # to persist
    changes: tuple[StateChange, ...]  # to store as audit events


def assess_plan(plan: Plan, account: Account, markets: Mapping[str, SymbolMarket], limits: RiskLimits,
                state: RiskState, now: datetime) -> RiskOutcome:
    """The whole risk stage for a valid plan: account checks, verdicts, counters. (Invalid plans go to
    `state.record_invalid_plan` instead.)"""
    before = check_account(account, limits, state, now)
    verdicts = evaluate(plan, account, markets, limits, before.state, now)
    after = record_verdicts(before.state, verdicts, limits, now)
    return RiskOutcome(tuple(verdicts), after.state, before.changes + after.changes)


# ---- per decision -------------------------------------------------------------------------------------


def _judge(i: int, d: Decision, ctx: _Ctx, book: _Book) -> Verdict:
    if d.action == "hold":
        return _verdict(i, d, "accept", (), d, None)
    duplicate = d.symbol in book.touched
    book.touched.add(d.symbol)
    if d.action == "close":
        return _judge_close(i, d, ctx, duplicate)
    if d.action not in OPENING_ACTIONS:
        return _verdict(i, d, "reject", (R.INVALID_DECISION,), d, None)
    if duplicate:
        return _verdict(i, d, "reject", (R.DUPLICATE_SYMBOL,), d, None)
    position = _open_position(ctx.account, d.symbol)
    if position is not None and position.side != d.side:
        return _reversal(i, d, position)
    return _judge_opening(i, d, position, ctx, book)


def _verdict(i: int, d: Decision, outcome: str, reasons: tuple[str, ...], decision: Decision,
             order: OrderIntent | None) -> Verdict:
    return Verdict(index=i, symbol=d.symbol, action=d.action, outcome=outcome,  # type: ignore[arg-type]
                   reasons=reasons, decision=decision, order=order)


def _open_position(account: Account, symbol: str) -> Position | None:
    return next((p for p in account.positions if p.symbol == symbol and _positive(p.contracts)), None)


def _closing_side(position: Position) -> str:
    return "sell" if position.side == "long" else "buy"


# ---- closes: always allowed ---------------------------------------------------------------------------


def _judge_close(i: int, d: Decision, ctx: _Ctx, duplicate: bool) -> Verdict:
    position = _open_position(ctx.account, d.symbol)
    if duplicate:
        return _verdict(i, d, "accept", (R.DUPLICATE_SYMBOL,), d, None)
    if position is None:
        return _verdict(i, d, "accept", (R.NO_POSITION_TO_CLOSE,), d, None)
    limit = _close_limit(d, position, ctx) if d.order_type == "limit" else None
    order = OrderIntent(symbol=d.symbol, side=_closing_side(position),  # type: ignore[arg-type]
                        contracts=position.contracts, order_type="limit" if limit else "market",
                        reduce_only=True, limit_price=limit)
    if d.order_type == "limit" and limit is None:
        amended = replace(d, order_type="market", limit_price=None)
        return _verdict(i, d, "amend", (R.CLOSE_AS_MARKET,), amended, order)
    return _verdict(i, d, "accept", (), d, order)


def _close_limit(d: Decision, position: Position, ctx: _Ctx) -> float | None:
    """The limit close's price on the tick grid, or None when it cannot be honoured (then: market)."""
    market = ctx.markets.get(d.symbol)
    if market is None or not _market_ok(market) or not _positive(d.limit_price):
        return None
    # Rounded towards the passive side: never sell for less, nor buy for more, than asked.
    price = _to_tick(d.limit_price, market.instrument.tick_sz, up=position.side == "long")  # type: ignore[arg-type]
    return price if _inside_band(price, market.last, ctx.limits.price_band_pct) else None


def _reversal(i: int, d: Decision, position: Position) -> Verdict:
    """An opening against an opposite position (net mode): close that position, open nothing.

    The model's view now contradicts the position, so exiting is the risk-reducing half of its intent;
    a net-mode flip would leave the attached stop covering only part of the new position.
    """
    closing = Decision(symbol=d.symbol, action="close", confidence=d.confidence, rationale=d.rationale,
                       invalidation=d.invalidation)
    order = OrderIntent(symbol=d.symbol, side=_closing_side(position),  # type: ignore[arg-type]
                        contracts=position.contracts, order_type="market", reduce_only=True)
    return _verdict(i, d, "amend", (R.REVERSAL_CLOSES_POSITION,), closing, order)


# ---- openings -----------------------------------------------------------------------------------------


def _judge_opening(i: int, d: Decision, position: Position | None, ctx: _Ctx, book: _Book) -> Verdict:
    try:
        market = _admissible(d, position, ctx, book)
        _check_fields(d, ctx.account.equity)
        prices = _prices(d, market, ctx.limits)
        amends: list[str] = []
        spot = market.instrument.inst_type.upper() == "SPOT"
        leverage = _leverage(d, market.instrument, ctx.limits, spot, prices.stop_pct, amends)
        notional = _risk_notional(d, prices.stop_pct, ctx.account.equity, ctx.limits, amends)
        per_notional = 1.0 / leverage + ctx.limits.fee_buffer_pct / 100.0  # margin + opening fees
        notional, margin_bound = _margin_notional(notional, book.available / per_notional, amends)
        contracts = _contracts(notional, prices.entry, market.instrument, margin_bound)
    except _Reject as reject:
        return _verdict(i, d, "reject", reject.codes, d, None)
    inst = market.instrument
    book.available -= inst.notional(contracts, prices.entry) * per_notional
    book.open_symbols.add(d.symbol)
    order = OrderIntent(
        symbol=d.symbol, side="buy" if d.action == "open_long" else "sell", contracts=contracts,
        order_type=d.order_type, reduce_only=False, leverage=None if spot else leverage,
        limit_price=prices.limit, stop_loss=prices.stop, take_profit=prices.take_profit,
    )
    amended = _amended(d, leverage, notional, prices.stop_pct, amends)
    return _verdict(i, d, "amend" if amends else "accept", tuple(amends), amended, order)


def _admissible(d: Decision, position: Position | None, ctx: _Ctx, book: _Book) -> SymbolMarket:
    """Checks that do not depend on the decision's numbers: gates, account, data, exposure."""
    if ctx.blocks:
        raise _Reject(*ctx.blocks)
    if d.symbol in ctx.limits.blocklist:
        raise _Reject(R.BLOCKLISTED)
    if not _positive(ctx.account.equity):
        raise _Reject(R.NO_EQUITY)
    market = ctx.markets.get(d.symbol)
    if market is None:
        raise _Reject(R.NO_MARKET_DATA)
    if not _market_ok(market):
        raise _Reject(R.BAD_MARKET_DATA)
    if market.instrument.inst_type.upper() == "SPOT" and d.action == "open_short":
        raise _Reject(R.SPOT_NO_SHORT)
    if position is not None and not ctx.limits.allow_adding:
        raise _Reject(R.POSITION_EXISTS)
    if d.symbol not in book.open_symbols and len(book.open_symbols) >= ctx.limits.max_open_positions:
        raise _Reject(R.MAX_OPEN_POSITIONS)
    return market


def _check_fields(d: Decision, equity: float) -> None:
    """What the schema guarantees, checked again (the engine must be total), plus the absurd-size rule."""
    if d.stop_loss is None:
        raise _Reject(R.STOP_LOSS_MISSING)
    size = d.size
    ok = (
        size is not None and size.mode in ("risk_usdt", "notional_usdt") and _positive(size.value)
        and d.leverage is not None and math.isfinite(d.leverage) and d.leverage >= 1
        and _positive(d.stop_loss) and d.order_type in ("market", "limit")
        and (d.order_type == "market" or _positive(d.limit_price))
        and (d.take_profit is None or _positive(d.take_profit))
    )
    if not ok:
        raise _Reject(R.INVALID_DECISION)
    assert size is not None
    ceiling = equity * ABSURD_NOTIONAL_X_EQUITY if size.mode == "notional_usdt" else equity
    if size.value > ceiling:
        raise _Reject(R.SIZE_ABSURD)


def _prices(d: Decision, market: SymbolMarket, limits: RiskLimits) -> _Prices:
    """Entry, stop, take profit and limit on the tick grid, each on its correct side."""
    long = d.action == "open_long"
    tick = market.instrument.tick_sz
    limit = None
    if d.order_type == "limit":
        # Never pay more (buy) nor accept less (sell) than the model asked.
        limit = _to_tick(d.limit_price, tick, up=not long)  # type: ignore[arg-type]
        if not _inside_band(limit, market.last, limits.price_band_pct):
            raise _Reject(R.PRICE_OUTSIDE_BAND)
    # Market: the side of the book we would pay. Limit: the limit, the worst fill we can get.
    entry = limit if limit is not None else (market.ask if long else market.bid)
    # Rounded away from the entry, so rounding can never move a stop onto the winning side.
    stop = _to_tick(d.stop_loss, tick, up=not long)  # type: ignore[arg-type]
    # Against the last price too: a stop already crossed would trigger at once.
    if not (stop < min(entry, market.last) if long else stop > max(entry, market.last)):
        raise _Reject(R.STOP_LOSS_WRONG_SIDE)
    take_profit = None
    if d.take_profit is not None:
        take_profit = _to_tick(d.take_profit, tick, up=long)
        if not (take_profit > max(entry, market.last) if long else take_profit < min(entry, market.last)):
            raise _Reject(R.TAKE_PROFIT_WRONG_SIDE)
    return _Prices(entry=entry, stop=stop, take_profit=take_profit, limit=limit)


def _leverage(d: Decision, inst: Instrument, limits: RiskLimits, spot: bool, stop_pct: float,
              amends: list[str]) -> float:
    leverage = float(d.leverage)  # type: ignore[arg-type]
    cap = 1.0 if spot else min(limits.max_leverage, HARD_MAX_LEVERAGE, inst.max_lever)
    if leverage > cap:
        leverage = cap
        amends.append(R.LEVERAGE_CAPPED)
    if spot:
        return leverage
    # Isolated long liquidates about 100/L % below entry (short: above): keep the stop inside that.
    liquidation_cap = math.floor(100.0 / (stop_pct + LIQUIDATION_BUFFER_PCT))
    if liquidation_cap < 1:
        raise _Reject(R.STOP_BEYOND_LIQUIDATION)
    if leverage > liquidation_cap:
        leverage = float(liquidation_cap)
        amends.append(R.LEVERAGE_REDUCED_FOR_STOP)
    return leverage


def _risk_notional(d: Decision, stop_pct: float, equity: float, limits: RiskLimits, amends: list[str]) -> float:
    """The requested notional, or the risk budget's if smaller.

    budget = equity x risk_budget_pct / (stop % + fee % + slippage %), so the loss at the stop, costs
    included, is risk_budget_pct of equity; risk_budget_pct is itself capped by max_loss_at_stop_pct.
    """
    size = d.size
    assert size is not None
    # risk_usdt excludes fees (the schema's definition); notional_usdt is the notional itself.
    asked = size.value if size.mode == "notional_usdt" else size.value * 100.0 / stop_pct
    cost_pct = limits.fee_buffer_pct + limits.slippage_buffer_pct
    budget_pct = min(limits.risk_budget_pct, limits.max_loss_at_stop_pct)
    budget = equity * budget_pct / (stop_pct + cost_pct)
    if asked <= budget:
        return asked
    amends.append(R.SIZE_REDUCED_TO_RISK_BUDGET)
    if limits.max_loss_at_stop_pct < limits.risk_budget_pct:
        amends.append(R.LOSS_AT_STOP_CAPPED)
    return budget


def _margin_notional(notional: float, affordable: float, amends: list[str]) -> tuple[float, bool]:
    if notional <= affordable:
        return notional, False
    amends.append(R.SIZE_REDUCED_TO_MARGIN)
    return affordable, True


def _contracts(notional: float, entry: float, inst: Instrument, margin_bound: bool) -> float:
    """Rounded DOWN to the lot grid; below the minimum size is a reject."""
    contracts = _to_grid(inst.contracts_for_notional(notional, entry), inst.lot_sz, up=False)
    if not math.isfinite(contracts):
        raise _Reject(R.SIZE_ABSURD)  # only reachable with an absurd equity; never send it
    if contracts <= 0 or contracts < inst.min_sz:
        raise _Reject(R.INSUFFICIENT_MARGIN if margin_bound else R.BELOW_MIN_SIZE)
    return contracts


def _amended(d: Decision, leverage: float, notional: float, stop_pct: float, amends: list[str]) -> Decision:
    """The decision as it will be executed; equal to `d` when nothing was amended."""
    if not amends:
        return d
    out = replace(d, leverage=leverage) if leverage != d.leverage else d
    if {R.SIZE_REDUCED_TO_RISK_BUDGET, R.SIZE_REDUCED_TO_MARGIN} & set(amends):
        size = d.size
        assert size is not None
        value = notional if size.mode == "notional_usdt" else notional * stop_pct / 100.0
        out = replace(out, size=SizeRequest(size.mode, value))
    return out


# ---- numbers ------------------------------------------------------------------------------------------


def _positive(x: float | None) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x) and x > 0


def _nonneg(x: float) -> float:
    return x if math.isfinite(x) and x > 0 else 0.0


def _market_ok(m: SymbolMarket) -> bool:
    inst = m.instrument
    prices_ok = all(_positive(v) for v in (m.last, m.bid, m.ask))
    rules_ok = all(_positive(v) for v in (inst.ct_val, inst.lot_sz, inst.min_sz, inst.tick_sz))
    return prices_ok and rules_ok and math.isfinite(inst.max_lever) and inst.max_lever >= 1


def _inside_band(price: float, last: float, band_pct: float) -> bool:
    return price > 0 and abs(price - last) / last * 100.0 <= band_pct


def _to_grid(x: float, step: float, up: bool) -> float:
    """`x` rounded to a multiple of `step` in decimal arithmetic (so 0.3 / 0.1 is exactly 3)."""
    d_step = Decimal(repr(float(step)))
    k = (Decimal(repr(float(x))) / d_step).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return float(k * d_step)


def _to_tick(price: float, tick: float, up: bool) -> float:
    """A price on the tick grid; never below one tick (an exchange refuses a zero price)."""
    return max(_to_grid(price, tick, up), tick)
