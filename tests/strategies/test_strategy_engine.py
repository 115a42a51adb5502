"""Evaluation uses no future bars, and the decision rule maps signals and positions to actions."""

from __future__ import annotations

import numpy as np
import pytest
from strategy_helpers import shipped

from okxlab.strategies import build_strategy, builtin_names, decide, evaluate, evaluate_rolling, load_strategy
from okxlab.strategies.engine import Signals

# one strategy reading every indicator and every signal type
EVERYTHING = {
    "schema_version": "okxlab.strategy.v1",
    "name": "everything",
    "entries": {
        "long": {"logic": "or", "conditions": [
            {"indicator": "macd", "signal": "cross_above", "other": {"line": "signal"}},
            {"indicator": "kdj", "line": "j", "signal": "oversold"},
            {"indicator": "boll", "signal": "touch_lower"},
            {"indicator": "boll", "signal": "break_upper"},
            {"indicator": "bbi", "signal": "cross_above", "other": {"indicator": "price"}},
            {"indicator": "ema", "signal": "bullish_alignment", "periods": [5, 10, 20]},
            {"indicator": "rsi", "signal": "bullish_divergence", "lookback": 14},
            {"indicator": "macd", "line": "hist", "signal": "bullish_divergence"},
            {"indicator": "candle", "params": {"pattern": "CDLHAMMER"}, "signal": "pattern_bullish", "within": 3},
            {"logic": "and", "conditions": [
                {"indicator": "cci", "signal": "oversold"},
                {"indicator": "sma", "params": {"period": 50}, "signal": "above", "other": {"indicator": "ema", "params": {"period": 50}}},
            ]},
        ]},
        "short": {"logic": "or", "conditions": [
            {"indicator": "kdj", "signal": "cross_below", "other": {"line": "d"}},
            {"indicator": "cci", "signal": "bearish_divergence"},
            {"indicator": "boll", "signal": "touch_upper"},
            {"indicator": "boll", "signal": "break_lower"},
            {"indicator": "sma", "signal": "bearish_alignment", "periods": [10, 30]},
            {"indicator": "candle", "params": {"pattern": "CDLENGULFING"}, "signal": "pattern_bearish"},
            {"indicator": "candle", "params": {"pattern": "CDLDOJI"}, "signal": "pattern_present"},
            {"indicator": "rsi", "signal": "overbought", "level": 65},
            {"indicator": "atr", "signal": "above", "level": 500},
        ]},
    },
    "exits": {
        "long": {"logic": "or", "conditions": [{"indicator": "price", "signal": "below", "other": {"indicator": "bbi"}}]},
        "short": {"logic": "or", "conditions": [{"indicator": "rsi", "signal": "cross_above", "level": 50}]},
    },
    "stops": {"stop_loss": {"atr_multiple": 2}, "take_profit": {"percent": 3}},
}

ARRAYS = ("enter_long", "exit_long", "enter_short", "exit_short", "stop_long", "take_long", "stop_short",
          "take_short", "ready")


def assert_prefix_equal(full: Signals, part: Signals) -> None:
    n = len(part)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(full, name)[:n], getattr(part, name), err_msg=name)
    for path, values in part.conditions.items():
        np.testing.assert_array_equal(full.conditions[path][:n], values, err_msg=path)


def strategies() -> list:
    return [build_strategy(EVERYTHING)] + [load_strategy(f"builtin:{n}") for n in builtin_names()]


@pytest.mark.parametrize("strategy", strategies(), ids=lambda s: s.name)
def test_truncating_the_future_changes_nothing(strategy) -> None:
    data = shipped("BTC-USDT-SWAP_4H", 3000, 3800)
    full = evaluate(strategy, data)
    for cut in (1, 2, 35, 200, 501, 799):
        assert_prefix_equal(full, evaluate(strategy, data.iloc[:cut]))


def test_everything_fires_somewhere() -> None:
    s = evaluate(build_strategy(EVERYTHING), shipped("BTC-USDT-SWAP_4H", 3000, 3800))
    silent = [path for path, values in s.conditions.items() if not values.any()]
    assert silent == []
    assert s.ready[100:].all() and not s.ready[:10].any()
    frame = s.to_frame()
    assert list(frame.columns[:3]) == ["close", "enter_long", "exit_long"] and len(frame) == 800


def test_rolling_windows_match_evaluating_each_window() -> None:
    strategy = load_strategy("builtin:macd_trend")
    data = shipped("BTC-USDT-SWAP_15m", 0, 260)
    rolling = evaluate_rolling(strategy, data, window=150)
    for t in (149, 150, 200, 259):
        one = evaluate(strategy, data.iloc[t - 149:t + 1])
        for name in ARRAYS:
            np.testing.assert_array_equal(getattr(rolling, name)[t], getattr(one, name)[-1], err_msg=f"{name}@{t}")
    assert_prefix_equal(rolling, evaluate(strategy, data.iloc[:150]))
    assert rolling.enter_long.dtype == bool and rolling.stop_long.dtype == float
    short = evaluate_rolling(strategy, data.iloc[:100], window=150)
    assert short.enter_long.dtype == bool and len(short) == 100


def signals(**arrays: list) -> Signals:
    n = len(next(iter(arrays.values())))
    base = {k: np.zeros(n, dtype=bool) for k in ("enter_long", "exit_long", "enter_short", "exit_short")}
    levels = {k: np.full(n, 90.0 if "long" in k else 110.0) for k in ("stop_long", "stop_short")}
    takes = {k: np.full(n, np.nan) for k in ("take_long", "take_short")}
    base.update({k: np.array(v, dtype=bool) for k, v in arrays.items()})
    return Signals("t", np.arange(n), np.full(n, 100.0), **base, **levels, **takes, ready=np.ones(n, dtype=bool),
                   conditions={})


def test_decision_rule() -> None:
    strategy = build_strategy(EVERYTHING)
    s = signals(enter_long=[1, 0, 1, 0, 1], enter_short=[0, 1, 1, 0, 0], exit_long=[0, 0, 0, 1, 1])
    assert decide(strategy, s, 0, None).action == "open_long"
    assert decide(strategy, s, 0, None).stop_loss == 90.0
    assert decide(strategy, s, 1, None).action == "open_short"
    assert decide(strategy, s, 2, None).action == "hold"  # both sides at once
    assert decide(strategy, s, 3, None).action == "hold"
    assert decide(strategy, s, 0, "long").action == "hold"  # already long
    assert decide(strategy, s, 1, "long").why == "reversal: short entry"
    assert decide(strategy, s, 1, "long").action == "close"
    assert decide(strategy, s, 3, "long").action == "close"
    assert decide(strategy, s, 4, "long").why == "exit long"  # exit wins over a new entry
    assert decide(strategy, s, 3, "short").action == "hold"
    assert decide(strategy, s, -1, "short").action == "close"  # a long entry reverses a short
