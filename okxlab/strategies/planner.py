"""The planner of strategy agents: a strategy document in, a plan document (okxlab.plan.v1) out.

For each of the agent's symbols it evaluates the strategy on the run's closed candles and decides on the
last bar with the position held (see `engine.decide`). Opening decisions carry the strategy's leverage,
stop and take-profit, and a size request that the risk engine amends like any other agent's: by default
`risk_usdt` = equity x risk_budget_pct / 100, or the document's `sizing` override.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from okxlab.config import AgentConfig
from okxlab.domain import Account, Position, Side
from okxlab.planning.base import PlanContext, PlanResult
from okxlab.planning.schema import PLAN_SCHEMA_VERSION
from okxlab.risk.limits import RiskLimits
from okxlab.strategies import describe
from okxlab.strategies.engine import Choice, Signals, decide, evaluate
from okxlab.strategies.load import load_strategy
from okxlab.strategies.model import Strategy

MAX_RATIONALE = 1000
MAX_INVALIDATION = 500


def _round_to_tick(price: float, tick: float | None) -> float:
    if not tick or tick <= 0:
        return float(f"{price:.10g}")
    decimals = max(0, -math.floor(math.log10(tick)) + 2)
    return round(round(price / tick) * tick, decimals)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StrategyPlanner:
    """Implements the Planner protocol for a rule strategy."""

    def __init__(self, agent: str | AgentConfig, strategy: Strategy) -> None:
        self.agent = agent if isinstance(agent, str) else agent.name
        self.strategy = strategy
        self.name = f"strategy:{strategy.name}"
        self._conditions = {c.path: describe.condition(c) for c in strategy.conditions()}

    @classmethod
    def for_agent(cls, agent: AgentConfig, base_dir: str | Path | None = None) -> StrategyPlanner:
        """The planner of a strategy agent: its `strategy` reference with its `[agents.params]` applied."""
        if not agent.strategy:
            raise ValueError(f"agent {agent.name} has no strategy")
        return cls(agent, load_strategy(agent.strategy, agent.params, base_dir))

    # ---- vectorised access, for fast replays --------------------------------------------------------
    def signals(self, candles: Any) -> Signals:
        """Every bar's signals over a window of candles (see `engine.evaluate`)."""
        return evaluate(self.strategy, candles)

    def choice(self, signals: Signals, i: int, position: Position | Side | None) -> Choice:
        side = position.side if isinstance(position, Position) else position
        return decide(self.strategy, signals, i, side)

    def decision(self, symbol: str, signals: Signals, i: int, position: Position | Side | None, equity: float,
                 limits: RiskLimits, tick_size: float | None = None) -> dict[str, Any]:
        """The plan decision (okxlab.plan.v1 JSON) for `symbol` at bar i of `signals`; `position` is the
        position held (or just its side, "long"/"short"), None when flat."""
        choice = self.choice(signals, i, position)
        return self._decision(symbol, choice, signals, i, equity, limits, tick_size)

    # ---- the Planner protocol -----------------------------------------------------------------------
    def plan(self, ctx: PlanContext) -> PlanResult:
        def signals_at(symbol: str) -> tuple[Signals, int] | str:
            market = ctx.markets.get(symbol)
            if market is None:
                return "no market data for this run"
            if not market.candles:
                return "no closed candles in this run"
            signals = self.signals(market.candles)
            return signals, len(signals) - 1

        ticks = {s: m.instrument.tick_sz for s, m in ctx.markets.items()}
        return self.plan_with(ctx.symbols, ctx.account, ctx.limits, ticks, signals_at)

    def plan_with(self, symbols: Sequence[str], account: Account, limits: RiskLimits, tick_sizes: dict[str, float],
                  signals_at: Callable[[str], tuple[Signals, int] | str]) -> PlanResult:
        """The plan for `symbols`, deciding each at bar i of the signals `signals_at(symbol)` gives (or holding,
        when it gives the reason there is nothing to decide on). The pipeline evaluates the run's candles; an
        in-process replay passes signals it evaluated once over the whole history."""
        decisions = []
        for symbol in symbols:
            try:
                got = signals_at(symbol)
            except (ValueError, ArithmeticError) as exc:
                return PlanResult(document=None, raw="", planner=self.name, error=f"{symbol}: cannot evaluate: {exc}")
            if isinstance(got, str):
                decisions.append(self._hold(symbol, f"{self.name}: {got}; holding"))
                continue
            signals, i = got
            decisions.append(self.decision(symbol, signals, i, account.position(symbol), account.equity, limits,
                                           tick_sizes.get(symbol)))
        document = {"schema_version": PLAN_SCHEMA_VERSION, "decisions": decisions}
        return PlanResult(document=document, raw=json.dumps(document, indent=2), planner=self.name, prompt=None)

    # ---- building decisions -------------------------------------------------------------------------
    def _hold(self, symbol: str, rationale: str) -> dict[str, Any]:
        return {"symbol": symbol, "action": "hold", "confidence": self.strategy.confidence,
                "rationale": _clip(rationale, MAX_RATIONALE)}

    def _fired_text(self, choice: Choice) -> str:
        return "; ".join(self._conditions[p] for p in choice.fired)

    def _size(self, equity: float, limits: RiskLimits) -> dict[str, Any] | None:
        sizing = self.strategy.sizing
        mode, pct = (sizing.mode, sizing.equity_pct) if sizing else ("risk_usdt", limits.risk_budget_pct)
        value = round(equity * pct / 100.0, 2)
        return {"mode": mode, "value": value} if value > 0 else None

    def _invalidation(self, side: str) -> str | None:
        group = self.strategy.exits.get(side)
        parts = []
        if group is not None:
            parts.append("exit when " + describe.group_inline(group))
        if self.strategy.stop_loss:
            parts.append(describe.stop(self.strategy.stop_loss, "stop loss"))
        return _clip("; ".join(parts), MAX_INVALIDATION) if parts else None

    def _decision(self, symbol: str, choice: Choice, signals: Signals, i: int, equity: float,
                  limits: RiskLimits, tick: float | None) -> dict[str, Any]:
        close = float(signals.close[i])
        head = f"{self.name} at close {close:g}"
        fired = self._fired_text(choice)
        if choice.action == "hold":
            return self._hold(symbol, f"{head}: hold ({choice.why})" + (f": {fired}" if fired else ""))
        if choice.action == "close":
            return {"symbol": symbol, "action": "close", "confidence": self.strategy.confidence,
                    "rationale": _clip(f"{head}: close ({choice.why}): {fired}", MAX_RATIONALE)}
        side = "long" if choice.action == "open_long" else "short"
        size = self._size(equity, limits)
        if size is None or choice.stop_loss is None:
            return self._hold(symbol, f"{head}: {side} entry fired ({fired}) but equity is not positive; holding")
        stop = _round_to_tick(choice.stop_loss, tick)
        take = _round_to_tick(choice.take_profit, tick) if choice.take_profit is not None else None
        if stop <= 0 or (take is not None and take <= 0):
            return self._hold(symbol, f"{head}: {side} entry fired but its stop is not a positive price; holding")
        levels = f"stop {stop:g}" + (f", take profit {take:g}" if take is not None else "")
        out: dict[str, Any] = {
            "symbol": symbol,
            "action": choice.action,
            "size": size,
            "leverage": self.strategy.leverage,
            "order_type": "market",
            "stop_loss": stop,
            "confidence": self.strategy.confidence,
            "rationale": _clip(f"{head}: open {side} ({fired}); {levels}", MAX_RATIONALE),
        }
        if take is not None:
            out["take_profit"] = take
        invalidation = self._invalidation(side)
        if invalidation:
            out["invalidation"] = invalidation
        return out
