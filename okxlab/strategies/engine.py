"""Evaluating a strategy over a window of candles, and the decision rule for one bar.

`evaluate` computes every signal for every bar of the window at once (one TA-Lib call per distinct
indicator, numpy for the rest). Bar t reads bars <= t only, so truncating the window after t never changes
bar t. `decide` turns one bar of those arrays plus the position held into an action; the live planner calls
it for the last bar, a fast replay can call it for every bar of the window without evaluating again.

Stops and take-profits are measured from the close of the decision bar:
percent: close * (1 -/+ p/100); atr: close -/+ k * ATR(period)[t]. A level that is not a positive price
(or an ATR still warming up) blocks the entry on that bar rather than opening without a stop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from okxlab.domain import Action, Side
from okxlab.strategies import signals as sig
from okxlab.strategies.indicators import IndicatorBook, Ohlcv, as_ohlcv
from okxlab.strategies.model import SIDES, Condition, Group, Operand, Stop, Strategy

ARRAYS = ("close", "enter_long", "exit_long", "enter_short", "exit_short",
          "stop_long", "take_long", "stop_short", "take_short", "ready")


@dataclass(frozen=True)
class Signals:
    """Per-bar results of one strategy over one window of candles (all arrays the window's length)."""

    strategy: str
    ts: np.ndarray
    close: np.ndarray
    enter_long: np.ndarray
    exit_long: np.ndarray
    enter_short: np.ndarray
    exit_short: np.ndarray
    stop_long: np.ndarray  # NaN where no level can be set
    take_long: np.ndarray
    stop_short: np.ndarray
    take_short: np.ndarray
    ready: np.ndarray  # every line the strategy reads is defined (warm-up over)
    conditions: dict[str, np.ndarray] = field(default_factory=dict)  # leaf condition path -> its array

    def __len__(self) -> int:
        return len(self.close)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: getattr(self, c) for c in ARRAYS}, index=pd.Index(self.ts, name="ts"))


class _Evaluator:
    def __init__(self, data: Ohlcv) -> None:
        self.data = data
        self.book = IndicatorBook(data)
        self.conditions: dict[str, np.ndarray] = {}
        self.ready = np.ones(len(data), dtype=bool)

    def line(self, op: Operand) -> np.ndarray:
        values = self.book.line(op.indicator, op.params, op.line)
        self.ready &= np.isfinite(values)
        return values

    def _ma(self, op: Operand, period: int) -> np.ndarray:
        return self.line(Operand(op.indicator, (("period", period),), "value"))

    def _band(self, op: Operand, which: str) -> np.ndarray:
        return self.line(Operand(op.indicator, op.params, which))

    def leaf(self, c: Condition) -> np.ndarray:
        d, s = self.data, c.signal
        if s == "always":
            out = np.ones(len(d), dtype=bool)
        else:
            assert c.operand is not None
            op = c.operand
            if s in ("cross_above", "cross_below", "above", "below"):
                target = self.line(c.other) if c.other is not None else float(c.level)  # type: ignore[arg-type]
                out = getattr(sig, s)(self.line(op), target)
            elif s in ("overbought", "oversold"):
                out = getattr(sig, s)(self.line(op), c.level)
            elif s in ("touch_upper", "break_upper"):
                price = d.high if s == "touch_upper" else d.close
                out = getattr(sig, s)(price, self._band(op, "upper"))
            elif s in ("touch_lower", "break_lower"):
                price = d.low if s == "touch_lower" else d.close
                out = getattr(sig, s)(price, self._band(op, "lower"))
            elif s.endswith("_alignment"):
                out = sig.aligned([self._ma(op, p) for p in c.periods], bullish=s.startswith("bullish"))
            elif s == "bullish_divergence":
                out = sig.bullish_divergence(d.low, self.line(op), c.lookback or 20)
            elif s == "bearish_divergence":
                out = sig.bearish_divergence(d.high, self.line(op), c.lookback or 20)
            elif s.startswith("pattern_"):
                out = getattr(sig, s)(self.line(op))
            else:
                raise ValueError(f"unknown signal {s}")
        out = sig.within(np.asarray(out, dtype=bool), c.within)
        self.conditions[c.path] = out
        return out

    def group(self, g: Group) -> np.ndarray:
        parts = [self.group(i) if isinstance(i, Group) else self.leaf(i) for i in g.items]
        return np.logical_and.reduce(parts) if g.logic == "and" else np.logical_or.reduce(parts)

    def level(self, spec: Stop | None, side: Side, kind: Literal["stop", "take"]) -> np.ndarray:
        close = self.data.close
        if spec is None:
            return np.full(len(close), np.nan)
        distance = close * spec.value / 100.0 if spec.kind == "percent" else spec.value * self.line(
            Operand("atr", (("period", spec.atr_period),), "value"))
        below = (side == "long") == (kind == "stop")  # a long's stop and a short's target are under the close
        out = close - distance if below else close + distance
        return np.where(out > 0, out, np.nan)


def evaluate(strategy: Strategy, candles: Any) -> Signals:
    """Signals for every bar of `candles` (a DataFrame, Candle tuples or Ohlcv; oldest first)."""
    data = as_ohlcv(candles)
    ev = _Evaluator(data)
    n = len(data)
    result: dict[str, np.ndarray] = {}
    for side in SIDES:
        stop = ev.level(strategy.stop_loss, side, "stop") if side in strategy.entries else np.full(n, np.nan)
        take = ev.level(strategy.take_profit, side, "take") if side in strategy.entries else np.full(n, np.nan)
        enter = ev.group(strategy.entries[side]) if side in strategy.entries else np.zeros(n, dtype=bool)
        result[f"enter_{side}"] = enter & np.isfinite(stop)
        result[f"exit_{side}"] = ev.group(strategy.exits[side]) if side in strategy.exits else np.zeros(n, dtype=bool)
        result[f"stop_{side}"] = stop
        result[f"take_{side}"] = take
    return Signals(strategy=strategy.name, ts=data.ts, close=data.close, ready=ev.ready,
                   conditions=ev.conditions, **result)


def evaluate_rolling(strategy: Strategy, candles: Any, window: int) -> Signals:
    """Like `evaluate`, but bar t is computed from exactly the `window` bars ending at t — what the live
    planner sees when each run is given `window` candles. Recursive indicators (EMA, MACD, RSI, ATR, KDJ)
    depend slightly on where their window starts; use this when a replay must match live runs bit for bit.
    It evaluates once per bar, so it is slower than `evaluate`."""
    data = as_ohlcv(candles)
    first = evaluate(strategy, data.head(window))  # the first `window` bars share one window
    later = [evaluate(strategy, data.head(t + 1).tail(window)) for t in range(window, len(data))]
    if not later:
        return first

    def join(head: np.ndarray, tail: list[Any]) -> np.ndarray:
        return np.concatenate([head, np.array(tail, dtype=head.dtype)])

    arrays = {f: join(getattr(first, f), [getattr(s, f)[-1] for s in later]) for f in ARRAYS}
    conditions = {k: join(v, [s.conditions[k][-1] for s in later]) for k, v in first.conditions.items()}
    return Signals(strategy=strategy.name, ts=data.ts, conditions=conditions, **arrays)


# ---- the decision rule ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """What the strategy does at one bar, given the position held."""

    action: Action
    why: str  # the rule that applied, e.g. "entry long", "exit long", "no entry"
    fired: tuple[str, ...] = ()  # paths of the leaf conditions that were true, in the deciding group
    stop_loss: float | None = None
    take_profit: float | None = None


def _fired(strategy: Strategy, signals: Signals, kind: str, side: str, i: int) -> tuple[str, ...]:
    group = (strategy.entries if kind == "entry" else strategy.exits).get(side)
    if group is None:
        return ()
    return tuple(c.path for c in group.leaves() if c.path in signals.conditions and signals.conditions[c.path][i])


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def decide(strategy: Strategy, signals: Signals, i: int, position: Side | None) -> Choice:
    """The action at bar i (negative counts from the end).

    Flat: open on an entry (both sides at once: hold). In a position: close on its exit group, or on an
    entry of the opposite side (a reversal closes now; the opposite entry is taken on a later bar if its
    conditions still hold then). Otherwise hold.
    """
    if position is None:
        long_, short_ = bool(signals.enter_long[i]), bool(signals.enter_short[i])
        if long_ and short_:
            return Choice("hold", "conflict: long and short entries both fired",
                          _fired(strategy, signals, "entry", "long", i) + _fired(strategy, signals, "entry", "short", i))
        for side, on in (("long", long_), ("short", short_)):
            if on:
                return Choice("open_long" if side == "long" else "open_short", f"entry {side}",
                              _fired(strategy, signals, "entry", side, i),
                              _finite(getattr(signals, f"stop_{side}")[i]),
                              _finite(getattr(signals, f"take_{side}")[i]))
        return Choice("hold", "no entry" if signals.ready[i] else "warming up")
    opposite = "short" if position == "long" else "long"
    if bool(getattr(signals, f"exit_{position}")[i]):
        return Choice("close", f"exit {position}", _fired(strategy, signals, "exit", position, i))
    if bool(getattr(signals, f"enter_{opposite}")[i]):
        return Choice("close", f"reversal: {opposite} entry", _fired(strategy, signals, "entry", opposite, i))
    return Choice("hold", f"in {position}, no exit")
