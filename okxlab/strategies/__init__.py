"""Rule strategies as data: a JSON document (okxlab.strategy.v1) turned into a planner.

- `load_strategy("builtin:ema_trend" | path, params)` -> Strategy (validated; errors name their place)
- `evaluate(strategy, candles)` -> Signals: per-bar entry/exit booleans and stop/take-profit levels
- `decide(strategy, signals, i, side)` -> Choice: the action at one bar given the position held
- `StrategyPlanner(agent, strategy)`: the Planner of strategy agents (okxlab.plan.v1 documents)
"""

from okxlab.strategies.engine import Choice, Signals, decide, evaluate, evaluate_rolling
from okxlab.strategies.load import (
    StrategyError,
    build_strategy,
    builtin_names,
    check_document,
    load_strategy,
    strategy_schema,
)
from okxlab.strategies.model import Strategy
from okxlab.strategies.planner import StrategyPlanner

__all__ = [
    "Choice",
    "Signals",
    "Strategy",
    "StrategyError",
    "StrategyPlanner",
    "build_strategy",
    "builtin_names",
    "check_document",
    "decide",
    "evaluate",
    "evaluate_rolling",
    "load_strategy",
    "strategy_schema",
]
