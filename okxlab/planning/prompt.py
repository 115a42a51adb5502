"""The prompt: one deterministic, versioned format, so a prompt's hash identifies what the model was asked.

Two messages. The system message is static for a PROMPT_VERSION (rules and the exact output format with an
example), which also lets providers' prefix caches reuse it. The user message has five sections in a fixed
order: run, account, risk limits, market (per symbol, sorted, with its recent series oldest -> newest), task.

The market section is built from market data only (no agent, account or limit in it) with one canonical
number format, so every agent that sees the same tick gets byte-identical market text.

Any change to the text below must bump PROMPT_VERSION: recorded hashes and cached answers are keyed by it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from okxlab.domain import Account, SymbolMarket
from okxlab.planning.base import PlanContext
from okxlab.planning.schema import PLAN_SCHEMA_VERSION
from okxlab.risk.limits import RiskLimits

PROMPT_VERSION = "okxlab.prompt.v1"
SERIES_BARS = 24  # closed bars per symbol in the recent series
SIGNIFICANT_DIGITS = 8

Message = dict[str, str]


# ---- canonical formatting ---------------------------------------------------------------------------------

def fmt(value: float | int | None, digits: int = SIGNIFICANT_DIGITS) -> str:
    """A number as the prompt writes it: at most `digits` significant digits, no exponent, no trailing zeros.

    Goes through the shortest repr of the float, so the same float gives the same text on every machine.
    """
    if value is None or isinstance(value, bool):
        return "n/a"
    x = float(value)
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    d = Decimal(repr(x))
    d = d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1), rounding=ROUND_HALF_EVEN)
    text = format(d, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_time(value: datetime | int) -> str:
    """UTC, ISO 8601, minutes resolution unless seconds are set. Naive datetimes are taken as UTC."""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, tz=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ" if value.second else "%Y-%m-%dT%H:%MZ")


def render_messages(messages: Iterable[Message]) -> str:
    """The exact text a prompt's hash covers: every message's role and content, in order, verbatim."""
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ---- the system message (static per version) ----------------------------------------------------------------

EXAMPLE_PLAN = {
    "schema_version": PLAN_SCHEMA_VERSION,
    "decisions": [
        {
            "symbol": "BTC-USDT-SWAP",
            "action": "open_long",
            "confidence": 0.62,
            "rationale": "EMA(12) crossed above EMA(26) on the last closed bar; RSI 56 leaves room; stop under the swing low.",
            "size": {"mode": "risk_usdt", "value": 80},
            "leverage": 3,
            "order_type": "market",
            "stop_loss": 59200,
            "take_profit": 63500,
            "invalidation": "a 4H close back below EMA(26)",
        },
        {
            "symbol": "ETH-USDT-SWAP",
            "action": "hold",
            "confidence": 0.5,
            "rationale": "No edge: price inside the Bollinger bands, MACD flat.",
        },
    ],
}

SYSTEM = f"""You are a trading agent in okxlab ({PROMPT_VERSION}). You manage one paper trading account on OKX.
Each run you get your account, your risk limits and market data up to one point in time, and you answer with a trade plan.

Rules:
- Use only the data in this prompt. Times are UTC; prices and amounts are in USDT.
- Give exactly one decision for each symbol listed under "Task", and no other symbols. Use "hold" when there is nothing to do.
- open_long and open_short need size, leverage, order_type and stop_loss. A long's stop_loss is below the entry price, a short's above it.
- "close" closes your whole position in that symbol. Without a position, use "hold".
- size.mode "risk_usdt" is the USDT you lose if the stop_loss is hit (fees excluded); "notional_usdt" is the position's value.
- A risk engine checks every decision against your limits and amends or rejects what breaks them. Nothing you say is executed unchecked.

Output format: reply with one JSON object and nothing else (no prose, no code fences). The object is:
{{"schema_version": "{PLAN_SCHEMA_VERSION}", "decisions": [decision, ...]}}
Each decision has these fields and no others:
  symbol        string: one of the symbols under "Task"
  action        "open_long" | "open_short" | "close" | "hold"
  confidence    number from 0 to 1
  rationale     string, at most 1000 characters
  size          {{"mode": "risk_usdt" | "notional_usdt", "value": number > 0}}   required to open
  leverage      number from 1 to 125, and not above your max_leverage        required to open
  order_type    "market" | "limit"                                           required to open
  limit_price   number > 0; required when order_type is "limit"
  stop_loss     number > 0 or null                                           required to open
  take_profit   number > 0 or null
  invalidation  string or null: what would prove the idea wrong (at most 500 characters)

Example of the JSON shape (illustration only: use your own symbols and numbers):
{json.dumps(EXAMPLE_PLAN, separators=(", ", ": "))}"""


# ---- the user message -------------------------------------------------------------------------------------

_LIMIT_NOTES = {
    "max_leverage": "leverage above this is cut down",
    "risk_budget_pct": "% of equity at risk per opening decision",
    "fee_buffer_pct": "round-trip fees assumed, % of notional",
    "slippage_buffer_pct": "slippage assumed, % of notional",
    "max_loss_at_stop_pct": "max loss at the stop incl. fees and slippage, % of equity",
    "price_band_pct": "limit prices must lie within this % of the last price",
    "allow_adding": "may add to an open position",
    "max_open_positions": "open positions at most",
    "blocklist": "symbols you may not open",
    "max_drawdown_pct": "drawdown from peak equity that halts you",
    "daily_loss_pct": "loss since the UTC day's start that stops new entries until tomorrow",
    "max_consecutive_invalid_plans": "invalid plans in a row that halt you",
    "max_consecutive_rejections": "rejected plans in a row that halt you",
}


def _pct(part: float, whole: float) -> float:
    return (part / whole - 1.0) * 100.0 if whole else 0.0


def account_section(account: Account) -> str:
    lines = [
        "## Account",
        f"equity_usdt: {fmt(account.equity)}",
        f"cash_usdt: {fmt(account.cash)}",
        f"available_usdt: {fmt(account.available)}",
        f"start_equity_usdt: {fmt(account.start_equity)}",
        f"return_pct: {fmt(account.return_pct, 4)}",
        f"drawdown_from_peak_pct: {fmt(max(0.0, -_pct(account.equity, account.peak_equity)), 4)}",
        f"today_pnl_pct: {fmt(_pct(account.equity, account.day_start_equity), 4)}",
    ]
    if not account.positions:
        lines.append("positions: none")
    else:
        lines.append(f"positions ({len(account.positions)}):")
        for p in sorted(account.positions, key=lambda p: p.symbol):
            lines.append(
                f"- {p.symbol} {p.side}: contracts={fmt(p.contracts)} ct_val={fmt(p.ct_val)} entry={fmt(p.entry_price)} "
                f"mark={fmt(p.mark_price)} notional_usdt={fmt(p.notional)} unrealized_pnl_usdt={fmt(p.unrealized_pnl)} "
                f"leverage={fmt(p.leverage)} stop_loss={fmt(p.stop_loss)} take_profit={fmt(p.take_profit)}"
                + (f" opened={fmt_time(p.opened_at)}" if p.opened_at else "")
            )
    return "\n".join(lines)


def limits_section(limits: RiskLimits, equity: float) -> str:
    lines = ["## Risk limits (enforced by the risk engine)"]
    for key, value in limits.to_json().items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = ", ".join(value) if value else "none"
        else:
            text = fmt(value)
        note = _LIMIT_NOTES.get(key)
        lines.append(f"{key}: {text}" + (f"  ({note})" if note else ""))
    lines.append(f"risk_budget_usdt: {fmt(equity * limits.risk_budget_pct / 100.0, 6)}  (per opening decision, at current equity)")
    return "\n".join(lines)


def symbol_block(market: SymbolMarket, series_bars: int = SERIES_BARS) -> str:
    """One symbol's market data. Depends on the SymbolMarket alone, so it is identical for every agent."""
    i = market.instrument
    lines = [
        f"### {market.symbol}",
        f"as_of: {fmt_time(market.as_of)}",
        f"instrument: type={i.inst_type} ct_val={fmt(i.ct_val)} {i.base_ccy} lot_sz={fmt(i.lot_sz)} "
        f"min_sz={fmt(i.min_sz)} tick_sz={fmt(i.tick_sz)} max_lever={fmt(i.max_lever)}",
        f"last: {fmt(market.last)} bid: {fmt(market.bid)} ask: {fmt(market.ask)}",
        f"funding_rate: {fmt(market.funding_rate)}",
    ]
    features = sorted(market.features.items())
    lines.append(
        f"indicators ({market.bar}, last closed bar): "
        + (" ".join(f"{k}={fmt(v)}" for k, v in features) if features else "none")
    )
    candles = sorted(market.candles, key=lambda c: c[0])[-series_bars:] if series_bars > 0 else []
    lines.append(f"recent {len(candles)} closed {market.bar} bars, oldest first (time,open,high,low,close,volume):")
    lines.extend(",".join([fmt_time(c[0]), *(fmt(v) for v in c[1:6])]) for c in candles)
    return "\n".join(lines)


def market_section(markets: Mapping[str, SymbolMarket], symbols: Sequence[str], series_bars: int = SERIES_BARS) -> str:
    """The market section for `symbols`, sorted; a symbol without data says so (and should be held)."""
    blocks = ["## Market"]
    for symbol in sorted(set(symbols)):
        market = markets.get(symbol)
        blocks.append(symbol_block(market, series_bars) if market is not None else f"### {symbol}\nno market data this run")
    return "\n".join(blocks)


@dataclass(frozen=True)
class Prompt:
    version: str
    system: str
    user: str
    market: str  # the market section, exactly as it appears in `user`

    @property
    def messages(self) -> list[Message]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    @property
    def text(self) -> str:
        return render_messages(self.messages)

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)


def build_prompt(ctx: PlanContext, *, series_bars: int = SERIES_BARS) -> Prompt:
    """The prompt for one run. Same context in, same bytes out."""
    account = ctx.account
    market = market_section(ctx.markets, ctx.symbols, series_bars)
    run = "\n".join([
        "## Run",
        f"as_of: {fmt_time(ctx.as_of)}",
        f"invocation: {account.invocations}",
        f"minutes_since_start: {fmt(account.minutes_since_start, 6)}",
    ])
    task = "\n".join([
        "## Task",
        f"symbols: {', '.join(ctx.symbols)}",
        "Give one decision per symbol. Reply with the JSON object only.",
    ])
    user = "\n\n".join([run, account_section(account), limits_section(ctx.limits, account.equity), market, task])
    return Prompt(version=PROMPT_VERSION, system=SYSTEM, user=user, market=market)
