"""The strategy planner: plans at exactly the right bars, and every plan passes the plan schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from strategy_helpers import make_ctx, position, shipped

from okxlab.config import AgentConfig
from okxlab.planning.schema import PLAN_SCHEMA_VERSION, validate_plan
from okxlab.risk.limits import RiskLimits
from okxlab.strategies import StrategyPlanner, build_strategy, builtin_names, load_strategy

BTC, ETH = "BTC-USDT-SWAP", "ETH-USDT-SWAP"


def independent_ema(close: np.ndarray, period: int) -> pd.Series:
    """EMA seeded with the SMA of the first `period` closes (TA-Lib's convention), via pandas."""
    seeded = pd.Series(close[period - 1:], dtype=float).copy()
    seeded.iloc[0] = close[:period].mean()
    ema = seeded.ewm(alpha=2 / (period + 1), adjust=False).mean()
    return pd.concat([pd.Series([np.nan] * (period - 1)), ema], ignore_index=True)


def walk(planner: StrategyPlanner, data: pd.DataFrame, symbol: str = BTC, start: int = 0) -> list[tuple[int, dict]]:
    """Plan at every bar (each run sees the candles up to it), tracking the position the plans imply."""
    side: str | None = None
    out = []
    for t in range(start, len(data)):
        held = (position(symbol, side),) if side else ()
        result = planner.plan(make_ctx({symbol: data.iloc[:t + 1]}, held))
        [decision] = result.document["decisions"]
        assert validate_plan(result.document, [symbol]) == [], decision
        if decision["action"] != "hold":
            out.append((t, decision))
        if decision["action"] in ("open_long", "open_short"):
            side = decision["action"].removeprefix("open_")
        elif decision["action"] == "close":
            side = None
    return out


def test_ema_cross_plans_exactly_at_the_crosses() -> None:
    data = shipped("BTC-USDT-SWAP_15m", 2000, 2700)
    planner = StrategyPlanner("trend", load_strategy("builtin:ema_cross"))
    trades = walk(planner, data)

    fast, slow = independent_ema(data["close"].to_numpy(), 12), independent_ema(data["close"].to_numpy(), 26)
    above = fast > slow
    golden = (fast.shift(1) <= slow.shift(1)) & above
    death = (fast.shift(1) >= slow.shift(1)) & (fast < slow)
    golden_bars = list(np.flatnonzero(golden.to_numpy()))
    first = golden_bars[0]
    death_bars = [t for t in np.flatnonzero(death.to_numpy()) if t > first]
    assert len(golden_bars) >= 10, "the stretch should hold a fair number of crosses"

    assert [t for t, d in trades if d["action"] == "open_long"] == golden_bars
    assert [t for t, d in trades if d["action"] == "close"] == death_bars
    assert all(d["action"] in ("open_long", "close") for _, d in trades)
    for t, d in trades:
        close = float(data["close"].iloc[t])
        if d["action"] == "open_long":
            assert d["stop_loss"] == pytest.approx(close * 0.9, abs=0.051)  # 10% stop on the 0.1 tick grid
            assert d["size"] == {"mode": "risk_usdt", "value": 100.0}  # 1% of 10,000
            assert d["leverage"] == 1 and d["order_type"] == "market"
            assert "EMA(12) crosses above EMA(26)" in d["rationale"]
        else:
            assert "EMA(12) is below EMA(26)" in d["rationale"]


def test_fast_path_gives_the_same_decisions_as_planning_each_bar() -> None:
    data = shipped("BTC-USDT-SWAP_15m", 2000, 2400)
    planner = StrategyPlanner("trend", load_strategy("builtin:ema_trend"))
    per_run = dict(walk(planner, data))
    signals = planner.signals(data)  # once, over the whole window
    side, fast = None, {}
    limits = RiskLimits()
    for t in range(len(data)):
        d = planner.decision(BTC, signals, t, side, 10_000.0, limits, tick_size=0.1)
        if d["action"] != "hold":
            fast[t] = d
        side = d["action"].removeprefix("open_") if d["action"].startswith("open") else (None if d["action"] == "close" else side)
    assert fast == per_run
    assert {d["action"] for d in fast.values()} == {"open_long", "open_short", "close"}


def test_ema_trend_reverses_over_two_runs() -> None:
    data = shipped("BTC-USDT-SWAP_15m", 2000, 2400)
    trades = walk(StrategyPlanner("trend", load_strategy("builtin:ema_trend")), data)
    reversals = 0
    side = None
    for (t, d), (t_next, d_next) in zip(trades, trades[1:], strict=False):
        side = d["action"].removeprefix("open_") if d["action"].startswith("open") else side
        if d["action"] == "close" and t_next == t + 1:
            # the opposite cross closes the position, and the next run opens the other side
            assert f"close (exit {side})" in d["rationale"]
            assert d_next["action"] == ("open_short" if side == "long" else "open_long")
            reversals += 1
    assert reversals >= 3


@pytest.mark.parametrize("name", builtin_names())
def test_every_builtin_emits_valid_plans(name: str) -> None:
    planner = StrategyPlanner("agent", load_strategy(f"builtin:{name}"))
    btc, eth = shipped("BTC-USDT-SWAP_4H", 2000, 2600), shipped("ETH-USDT-SWAP_5m", 9000, 9600)
    actions = set()
    for t in range(150, 600, 9):
        for held in ((), (position(BTC, "long"),), (position(BTC, "short"), position(ETH, "long"))):
            result = planner.plan(make_ctx({BTC: btc.iloc[t - 150:t], ETH: eth.iloc[t - 150:t]}, held))
            assert result.error is None
            assert validate_plan(result.document, [BTC, ETH]) == []
            assert json.loads(result.raw) == result.document
            assert result.planner == f"strategy:{name}" and result.prompt is None
            assert result.document["schema_version"] == PLAN_SCHEMA_VERSION
            assert [d["symbol"] for d in result.document["decisions"]] == [BTC, ETH]
            actions |= {d["action"] for d in result.document["decisions"]}
    # and at bars where an entry fires (sampling may miss the crosses), the opening decision is valid too
    signals = planner.signals(btc.iloc[:600])
    entries = np.flatnonzero(signals.enter_long[150:] | signals.enter_short[150:]) + 150
    for t in entries[:5]:
        result = planner.plan(make_ctx({BTC: btc.iloc[t - 149:t + 1]}))
        assert validate_plan(result.document, [BTC]) == []
        actions.add(result.document["decisions"][0]["action"])
    if name == "cash":
        assert actions == {"hold"} and len(entries) == 0
    else:
        assert "close" in actions or name == "buy_and_hold"
        assert actions & {"open_long", "open_short"}


def test_buy_and_hold_opens_once_with_a_wide_stop() -> None:
    data = shipped("BTC-USDT-SWAP_4H", 0, 30)
    planner = StrategyPlanner("buyhold", load_strategy("builtin:buy_and_hold"))
    limits = RiskLimits(risk_budget_pct=9.0, max_leverage=1)
    [d] = planner.plan(make_ctx({BTC: data}, limits=limits)).document["decisions"]
    close = float(data["close"].iloc[-1])
    assert d["action"] == "open_long" and d["leverage"] == 1
    assert d["stop_loss"] == pytest.approx(close * 0.9, abs=0.051)
    assert d["size"] == {"mode": "risk_usdt", "value": 900.0}
    assert "take_profit" not in d
    [d] = planner.plan(make_ctx({BTC: data}, (position(BTC, "long"),), limits=limits)).document["decisions"]
    assert d["action"] == "hold"


def test_sizing_override_take_profit_and_invalidation() -> None:
    doc = {"schema_version": "okxlab.strategy.v1", "name": "sized",
           "entries": {"short": {"logic": "and", "conditions": [{"signal": "always"}]}},
           "exits": {"short": {"logic": "or", "conditions": [{"indicator": "rsi", "signal": "oversold"}]}},
           "stops": {"stop_loss": {"percent": 2}, "take_profit": {"atr_multiple": 3}},
           "leverage": 5, "sizing": {"mode": "notional_usdt", "equity_pct": 50}, "confidence": 0.8}
    data = shipped("BTC-USDT-SWAP_4H", 0, 40)
    [d] = StrategyPlanner("x", build_strategy(doc)).plan(make_ctx({BTC: data}, equity=8000)).document["decisions"]
    close = float(data["close"].iloc[-1])
    assert d["action"] == "open_short" and d["size"] == {"mode": "notional_usdt", "value": 4000.0}
    assert d["leverage"] == 5 and d["confidence"] == 0.8
    assert d["stop_loss"] == pytest.approx(close * 1.02, abs=0.051)
    assert d["take_profit"] < close
    assert d["invalidation"] == "exit when RSI(14) <= 30 (oversold); stop loss 2% from the close"


def test_holds_without_data_or_equity() -> None:
    planner = StrategyPlanner("x", load_strategy("builtin:buy_and_hold"))
    ctx = make_ctx({BTC: shipped("BTC-USDT-SWAP_4H", 0, 0)})
    [d] = planner.plan(ctx).document["decisions"]
    assert d["action"] == "hold" and "no closed candles" in d["rationale"]
    [d] = planner.plan(make_ctx({BTC: shipped("BTC-USDT-SWAP_4H", 0, 5)}, equity=0)).document["decisions"]
    assert d["action"] == "hold" and "equity" in d["rationale"]
    warm = StrategyPlanner("x", load_strategy("builtin:ema_trend"))
    [d] = warm.plan(make_ctx({BTC: shipped("BTC-USDT-SWAP_4H", 0, 10)})).document["decisions"]
    assert d["action"] == "hold" and "warming up" in d["rationale"]


def test_planner_for_an_agent_applies_its_params() -> None:
    agent = AgentConfig(name="fast", symbols=(BTC,), planner="strategy", strategy="builtin:ema_cross",
                        params={"fast": 5, "slow": 10, "stop_pct": 3})
    planner = StrategyPlanner.for_agent(agent)
    assert planner.agent == "fast" and planner.name == "strategy:ema_cross"
    assert planner.strategy.parameters == {"fast": 5, "slow": 10, "stop_pct": 3.0, "leverage": 1.0}
    trades = walk(planner, shipped("BTC-USDT-SWAP_15m", 0, 200))
    assert trades and "EMA(5) crosses above EMA(10)" in trades[0][1]["rationale"]
