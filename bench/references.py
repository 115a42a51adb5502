"""The same strategy in backtrader and backtesting.py, for bench/replay_speed.py.

SMA(20) crossing above SMA(50) opens a long; SMA(20) below SMA(50) closes it (okxlab's builtin `sma_cross`:
entry `cross_above`, exit `below`). Orders are market orders decided on a bar's close and filled at the next
bar's open; fees 0.05 % of the traded value on each side (OKX's taker fee on USDT swaps). The position is
sized as a fraction of equity, the fraction okxlab's risk engine gives sma_cross (1 % of equity at risk over
its 20 % stop plus 0.15 % cost buffers), in 0.001 BTC steps (one lot of 0.1 BTC-USDT-SWAP contracts).

Each function returns its trades as dicts: entry/exit bar index and time, entry/exit price, size.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

FEE = 0.0005
FAST, SLOW = 20, 50
FRACTION = 1.0 / (20.0 + 0.10 + 0.05)  # risk_budget_pct / (stop % + fee buffer % + slippage buffer %)
LOT_BTC = 0.001


def frame(path: str) -> pd.DataFrame:
    """OHLCV with a UTC DatetimeIndex, the columns both libraries read."""
    df = pd.read_csv(path)
    df.index = pd.to_datetime(df["ts"], unit="ms")
    df.index.name = "datetime"
    return df[["open", "high", "low", "close", "volume"]].rename(columns=str.capitalize).astype(float)


def run_backtrader(data: pd.DataFrame) -> tuple[list[dict[str, Any]], float, float]:
    """(trades, final value, seconds)."""
    import backtrader as bt

    class SmaCross(bt.Strategy):
        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=FAST)
            self.slow = bt.indicators.SMA(self.data.close, period=SLOW)
            self.fills: list[tuple[int, float, bool]] = []

        def next(self) -> None:
            if not self.position:
                if self.fast[-1] <= self.slow[-1] and self.fast[0] > self.slow[0]:
                    size = np.floor(self.broker.getvalue() * FRACTION / self.data.close[0] / LOT_BTC) * LOT_BTC
                    if size > 0:
                        self.buy(size=size)
            elif self.fast[0] < self.slow[0]:
                self.close()

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:  # filled at this bar's open: the bar index is len - 1
                self.fills.append((len(self.data) - 1, float(order.executed.price), order.isbuy()))

    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=data))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(10_000.0)
    cerebro.broker.setcommission(commission=FEE)
    strategy = cerebro.run()[0]
    seconds = time.perf_counter() - t0
    value = cerebro.broker.getvalue()
    fills = strategy.fills
    trades = [{"entry_bar": b[0], "exit_bar": s[0], "entry_price": b[1], "exit_price": s[1]}
              for b, s in zip(fills[::2], fills[1::2], strict=False) if b[2] and not s[2]]
    return trades, value, seconds


def run_backtesting(data: pd.DataFrame) -> tuple[list[dict[str, Any]], float, float]:
    """(trades, final equity, seconds)."""
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    def sma(values: Any, n: int) -> np.ndarray:
        return pd.Series(values).rolling(n).mean().to_numpy()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            f, s = self.fast, self.slow
            if not self.position:
                if f[-2] <= s[-2] and f[-1] > s[-1]:
                    self.buy(size=FRACTION)
            elif f[-1] < s[-1]:
                self.position.close()

    t0 = time.perf_counter()
    bt = FractionalBacktest(data, SmaCross, cash=10_000.0, commission=FEE, fractional_unit=LOT_BTC,
                            finalize_trades=False)
    stats = bt.run()
    seconds = time.perf_counter() - t0
    # FractionalBacktest reports trade prices on the original scale
    trades = [{"entry_bar": int(r.EntryBar), "exit_bar": int(r.ExitBar), "entry_price": float(r.EntryPrice),
               "exit_price": float(r.ExitPrice)} for r in stats._trades.itertuples()]
    return trades, float(stats["Equity Final [$]"]), seconds
