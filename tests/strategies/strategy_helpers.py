"""Helpers for the strategy tests: shipped OKX candles and plan contexts (imported by the tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib import resources

import pandas as pd

from okxlab.domain import Account, Instrument, Position, SymbolMarket
from okxlab.planning.base import PlanContext
from okxlab.risk.limits import RiskLimits

BTC = Instrument("BTC-USDT-SWAP", "SWAP", "BTC", "USDT", ct_val=0.01, lot_sz=0.01, min_sz=0.01, tick_sz=0.1)
ETH = Instrument("ETH-USDT-SWAP", "SWAP", "ETH", "USDT", ct_val=0.1, lot_sz=0.01, min_sz=0.01, tick_sz=0.01)


@cache
def _candles(name: str) -> pd.DataFrame:
    path = resources.files("okxlab.data").joinpath("candles", f"{name}.csv.gz")
    with resources.as_file(path) as p:
        return pd.read_csv(p)


def shipped(name: str, start: int = 0, stop: int | None = None) -> pd.DataFrame:
    """Rows [start, stop) of a shipped candle file, e.g. shipped("BTC-USDT-SWAP_4H")."""
    return _candles(name).iloc[start:stop].reset_index(drop=True)


def rows(df: pd.DataFrame) -> tuple[tuple[int, float, float, float, float, float], ...]:
    cols = ["ts", "open", "high", "low", "close", "volume"]
    return tuple((int(r[0]), *map(float, r[1:])) for r in df[cols].itertuples(index=False, name=None))


def make_ctx(candles: dict[str, pd.DataFrame], positions: tuple[Position, ...] = (), equity: float = 10_000.0,
             limits: RiskLimits | None = None, agent: str = "test") -> PlanContext:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    markets = {}
    for symbol, df in candles.items():
        inst = BTC if symbol.startswith("BTC") else ETH
        last = float(df["close"].iloc[-1]) if len(df) else 1.0
        markets[symbol] = SymbolMarket(symbol, inst, now, last, last, last, "15m", rows(df))
    account = Account(equity=equity, cash=equity, available=equity, positions=positions)
    return PlanContext(agent, "run-1", now, tuple(candles), account, markets, limits or RiskLimits())


def position(symbol: str, side: str, price: float = 100.0) -> Position:
    return Position(symbol, side, 1.0, price, price, 0.0, 1.0)  # type: ignore[arg-type]
