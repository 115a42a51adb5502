"""An EMA-cross strategy replayed through the pipeline trades when, and only when, the crosses happen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from okxlab.db import models as m
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CANDLES = Path(__file__).resolve().parents[2] / "okxlab" / "data" / "candles" / "BTC-USDT-SWAP_15m.csv.gz"
WINDOW = 100  # closed bars each run sees ([pipeline] candles)
BAR = timedelta(minutes=15)
START = datetime(2026, 2, 1, tzinfo=UTC)
END = START + timedelta(hours=36)
CONFIG = f"""
[pipeline]
candles = {WINDOW}

[[agents]]
name = "ema"
planner = "strategy"
strategy = "builtin:ema_cross"
bar = "15m"
symbols = ["BTC-USDT-SWAP"]
[agents.params]
stop_pct = 60   # far away: only the crosses move the position
"""


def ema(values: list[float], period: int) -> list[float | None]:
    """The conventional EMA: seeded with the mean of the first `period` values, then alpha = 2 / (period + 1)."""
    out: list[float | None] = [None] * len(values)
    if len(values) < period:
        return out
    out[period - 1] = sum(values[:period]) / period
    alpha = 2.0 / (period + 1)
    for i in range(period, len(values)):
        out[i] = alpha * values[i] + (1 - alpha) * out[i - 1]
    return out


def expected_trades(data: pd.DataFrame) -> list[tuple[datetime, str]]:
    """At each tick, on the closed bars the run sees: open on a golden cross when flat, close when long and fast < slow."""
    trades, long = [], False
    tick = START
    while tick <= END:
        closed = data[data.ts + BAR <= tick].tail(WINDOW).close.tolist()
        fast, slow = ema(closed, 12), ema(closed, 26)
        if not long and fast[-2] <= slow[-2] and fast[-1] > slow[-1]:
            trades.append((tick, "buy"))
            long = True
        elif long and fast[-1] < slow[-1]:
            trades.append((tick, "sell"))
            long = False
        tick += BAR
    return trades


def test_ema_cross_trades_exactly_at_the_crosses_and_fills_at_the_next_open(pg_url: str, redis_prefix: str,
                                                                            tmp_path: Path) -> None:
    data = pd.read_csv(CANDLES)
    data["ts"] = pd.to_datetime(data.ts, unit="ms", utc=True)
    expected = expected_trades(data)
    assert len(expected) >= 4, "too few crosses in the window to be a meaningful test"
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        result = p.replay(["ema"], START, END, bar="15m")
        assert result.statuses == {"completed": 145}
        with p.env.sessions() as s:
            orders = s.execute(select(m.Run.scheduled_for, m.Order.side, m.Order.avg_price)
                               .join(m.Run, m.Run.id == m.Order.run_id).order_by(m.Run.scheduled_for)).all()
    assert [(when, side) for when, side, _ in orders] == expected
    opens = data.set_index("ts").open
    for when, _side, price in orders:
        # decided on bars closed by `when`, filled at the open of the bar starting at `when` (+ spread/slippage)
        assert abs(price / opens[when] - 1) < 5e-4, (when, price, opens[when])
