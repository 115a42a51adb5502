"""Reason codes: the stable vocabulary of the risk engine's verdicts and state changes.

The strings are stored in the audit trail and shown in reports, so they never change meaning; new rules add
new codes. `DESCRIPTIONS` is the one-line meaning of each (docs/risk.md lists them all).
"""

from __future__ import annotations

# -- entry gates: block every opening decision of an agent; never counted as the agent's rejections -------
GLOBAL_PAUSE = "GLOBAL_PAUSE"
AGENT_HALTED = "AGENT_HALTED"
REDUCE_ONLY = "REDUCE_ONLY"
DRAWDOWN_HALT = "DRAWDOWN_HALT"
DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"

# -- the world, not the agent: rejections that are not counted either -------------------------------------
NO_MARKET_DATA = "NO_MARKET_DATA"
BAD_MARKET_DATA = "BAD_MARKET_DATA"
NO_EQUITY = "NO_EQUITY"

# -- rejections of an opening decision (counted towards the consecutive-rejection halt) --------------------
INVALID_DECISION = "INVALID_DECISION"
DUPLICATE_SYMBOL = "DUPLICATE_SYMBOL"
BLOCKLISTED = "BLOCKLISTED"
SPOT_NO_SHORT = "SPOT_NO_SHORT"
POSITION_EXISTS = "POSITION_EXISTS"
MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
STOP_LOSS_MISSING = "STOP_LOSS_MISSING"
STOP_LOSS_WRONG_SIDE = "STOP_LOSS_WRONG_SIDE"
TAKE_PROFIT_WRONG_SIDE = "TAKE_PROFIT_WRONG_SIDE"
PRICE_OUTSIDE_BAND = "PRICE_OUTSIDE_BAND"
STOP_BEYOND_LIQUIDATION = "STOP_BEYOND_LIQUIDATION"
SIZE_ABSURD = "SIZE_ABSURD"
BELOW_MIN_SIZE = "BELOW_MIN_SIZE"
INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"

# -- amendments: the decision goes ahead with changed values ----------------------------------------------
LEVERAGE_CAPPED = "LEVERAGE_CAPPED"
LEVERAGE_REDUCED_FOR_STOP = "LEVERAGE_REDUCED_FOR_STOP"
SIZE_REDUCED_TO_RISK_BUDGET = "SIZE_REDUCED_TO_RISK_BUDGET"
LOSS_AT_STOP_CAPPED = "LOSS_AT_STOP_CAPPED"
SIZE_REDUCED_TO_MARGIN = "SIZE_REDUCED_TO_MARGIN"
REVERSAL_CLOSES_POSITION = "REVERSAL_CLOSES_POSITION"
CLOSE_AS_MARKET = "CLOSE_AS_MARKET"

# -- informational: accepted, nothing to send -------------------------------------------------------------
NO_POSITION_TO_CLOSE = "NO_POSITION_TO_CLOSE"

# -- agent state changes (StateChange.code) ---------------------------------------------------------------
CONSECUTIVE_INVALID_PLANS = "CONSECUTIVE_INVALID_PLANS"
CONSECUTIVE_REJECTIONS = "CONSECUTIVE_REJECTIONS"
DAILY_LOSS_CLEARED = "DAILY_LOSS_CLEARED"
RESUMED = "RESUMED"
STATE_SET = "STATE_SET"

DESCRIPTIONS: dict[str, str] = {
    GLOBAL_PAUSE: "trading is paused for every agent; no new entries",
    AGENT_HALTED: "the agent is halted (the next code says why); no new entries until a human resumes it",
    REDUCE_ONLY: "the agent is reduce-only; no new entries",
    DRAWDOWN_HALT: "equity is max_drawdown_pct or more below the agent's peak; the agent is halted",
    DAILY_LOSS_LIMIT: "the loss since 00:00 UTC exceeded daily_loss_pct; no new entries until the next UTC day",
    NO_MARKET_DATA: "no market snapshot for the symbol in this run",
    BAD_MARKET_DATA: "the snapshot's prices or instrument rules are not positive finite numbers",
    NO_EQUITY: "the account's equity is not a positive finite number",
    INVALID_DECISION: "size, leverage (>= 1), limit price, stop or take profit missing or not a positive finite number",
    DUPLICATE_SYMBOL: "an earlier decision of the same plan already acted on this symbol",
    BLOCKLISTED: "the symbol is on the agent's blocklist",
    SPOT_NO_SHORT: "spot instruments cannot be sold short",
    POSITION_EXISTS: "a position on this symbol is already open and allow_adding is false",
    MAX_OPEN_POSITIONS: "opening would exceed max_open_positions (earlier openings of the plan included)",
    STOP_LOSS_MISSING: "an opening decision without a stop loss",
    STOP_LOSS_WRONG_SIDE: "the stop loss is not on the losing side of both the entry and the last price",
    TAKE_PROFIT_WRONG_SIDE: "the take profit is not on the winning side of both the entry and the last price",
    PRICE_OUTSIDE_BAND: "the limit price is more than price_band_pct away from the last price",
    STOP_BEYOND_LIQUIDATION: "the stop is so far away that even 1x leverage would be liquidated first",
    SIZE_ABSURD: "the requested size is beyond any sane value (notional > equity x 100, or risk > equity)",
    BELOW_MIN_SIZE: "after the caps and lot rounding the size is below the instrument's minimum",
    INSUFFICIENT_MARGIN: "the free margin (after earlier openings of the plan) cannot pay for the minimum size",
    LEVERAGE_CAPPED: "leverage lowered to the smallest of max_leverage, the hard cap, the instrument's maximum (1 for spot)",
    LEVERAGE_REDUCED_FOR_STOP: "leverage lowered so that the stop triggers before liquidation",
    SIZE_REDUCED_TO_RISK_BUDGET: "size lowered to the risk budget computed from the stop distance",
    LOSS_AT_STOP_CAPPED: "the risk budget was above max_loss_at_stop_pct; the loss cap set the size",
    SIZE_REDUCED_TO_MARGIN: "size lowered to what the free margin can pay for",
    REVERSAL_CLOSES_POSITION: "an opening against an opposite position was turned into a close of that position",
    CLOSE_AS_MARKET: "a limit close outside the price band (or without market data) is sent as a market close",
    NO_POSITION_TO_CLOSE: "a close for a symbol with no open position: accepted, nothing to send",
    CONSECUTIVE_INVALID_PLANS: "max_consecutive_invalid_plans invalid plans in a row; the agent is halted",
    CONSECUTIVE_REJECTIONS: "max_consecutive_rejections rejected openings in a row; the agent is halted",
    DAILY_LOSS_CLEARED: "a new UTC day began; the daily loss breaker is cleared",
    RESUMED: "a human resumed the agent; counters reset",
    STATE_SET: "an operator set the agent's trading state",
}

# Entry gates: the agent's or the operator's state, not a fault of the decision.
GATE_REASONS: frozenset[str] = frozenset({GLOBAL_PAUSE, AGENT_HALTED, REDUCE_ONLY, DRAWDOWN_HALT, DAILY_LOSS_LIMIT})

# Rejections that never count towards the consecutive-rejection halt: gates and missing/bad inputs.
UNCOUNTED_REJECTIONS: frozenset[str] = GATE_REASONS | {NO_MARKET_DATA, BAD_MARKET_DATA, NO_EQUITY}

# Rules whose purpose is limiting risk. A close is never rejected for any of these (nor for anything else).
RISK_BUDGET_REASONS: frozenset[str] = frozenset({
    STOP_LOSS_MISSING, STOP_LOSS_WRONG_SIDE, SIZE_ABSURD, BELOW_MIN_SIZE, INSUFFICIENT_MARGIN,
    MAX_OPEN_POSITIONS, POSITION_EXISTS, STOP_BEYOND_LIQUIDATION,
}) | GATE_REASONS
