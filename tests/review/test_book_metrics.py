"""The leaderboard's fast paths give exactly the figures of the straightforward ones: every agent's metrics
read at once (load_book_metrics) against one agent at a time (load_metrics), the benchmark's prices against a
row-per-snapshot read, and the bootstrap with its cached block starts against drawing them each time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.db.models import MarketSnapshot, Run
from okxlab.db.session import session_scope
from okxlab.review.leaderboard import benchmark_prices
from okxlab.review.metrics import Window, load_book_metrics, load_metrics
from okxlab.review.noise import bootstrap_interval
from tests.review.builders import BTC, Ledger, at

AGENTS = ["a1", "a2", "a3", "idle"]
WINDOWS = [Window(), Window(at(6), at(50)), Window(None, at(30)), Window(at(20), None), Window(at(500), at(600))]


def _random_book(s: Session, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ledger = Ledger(s)
    for name in AGENTS:
        ledger.agent(name, initial_equity=float(rng.uniform(1_000, 20_000)))
    for name in AGENTS[:3]:
        equity = 10_000.0
        for hour in range(0, 64, 2):
            equity *= 1 + rng.normal(0, 0.01)
            run = ledger.run(name, at(hour), equity=equity, btc=float(100_000 * (1 + rng.normal(0, 0.02))),
                             durations={"plan": float(rng.exponential(100)), "order": float(rng.exponential(30))},
                             status=str(rng.choice(["completed", "completed", "failed"])))
            if rng.random() < 0.3:
                outcome = str(rng.choice(["accept", "amend", "reject"]))
                ledger.verdict(run, 0, outcome, list(rng.choice(["A", "B", "C"], size=int(rng.integers(0, 3)))))
            if rng.random() < 0.2:
                ledger.llm_call(run, 0, tokens_in=int(rng.integers(100, 2000)), tokens_out=int(rng.integers(0, 500)),
                                cost=float(rng.uniform(0, 0.01)), cached=bool(rng.random() < 0.3))
            if rng.random() < 0.1:
                ledger.invalid_plan(run, ["bad"])
        # fills are written as they happen, in time order (the order their fees are summed in)
        for n, hour in enumerate(sorted(rng.uniform(0, 60, size=25))):
            ledger.fill(name, at(float(hour)), fee=float(rng.uniform(0, 3)), trade_id=f"{name}{n}",
                        slippage_bps=None if rng.random() < 0.2 else float(rng.normal(2, 3)))
        for _ in range(6):
            opened = float(rng.uniform(0, 60))
            closed = None if rng.random() < 0.3 else opened + float(rng.uniform(1, 20))
            ledger.position(name, at(opened), at(closed) if closed is not None else None,
                            pnl=float(rng.normal(0, 50)), fees=float(rng.uniform(0, 5)), reason="signal")


def _same_series(a: pd.Series, b: pd.Series) -> bool:
    return a.index.equals(b.index) and np.array_equal(a.to_numpy(), b.to_numpy())


def _prices_one_row_each(s: Session, book: str, symbol: str, window: Window) -> pd.Series:
    """Every snapshot read, duplicates dropped in pandas (the prices' earlier reading)."""
    m = MarketSnapshot
    base = select(m.as_of, m.last).join(Run, Run.id == m.run_id).where(Run.book == book, m.symbol == symbol)
    inside = base.where(*([m.as_of >= window.start] if window.start else []),
                        *([m.as_of < window.end] if window.end else []))
    rows = list(s.execute(inside.order_by(m.as_of, m.id)).all())
    if window.start is not None:
        prior = s.execute(base.where(m.as_of < window.start).order_by(m.as_of.desc(), m.id.desc()).limit(1)).first()
        rows = ([prior] if prior else []) + rows
    series = pd.Series([float(r.last) for r in rows], index=pd.DatetimeIndex([r.as_of for r in rows]), dtype=float)
    return series[~series.index.duplicated(keep="last")]


@pytest.mark.parametrize("seed", [1, 2])
def test_book_metrics_are_exactly_the_per_agent_ones(any_db: str, seed: int) -> None:
    with session_scope(any_db) as s:
        _random_book(s, seed)
    with session_scope(any_db) as s:
        for window in WINDOWS:
            fast = load_book_metrics(s, AGENTS, "sim", window)
            for agent, got in zip(AGENTS, fast, strict=True):
                want = load_metrics(s, agent, "sim", window)
                assert got.agent == agent
                assert _same_series(got.curve, want.curve)
                assert (got.opening, got.opened_at, got.trades) == (want.opening, want.opened_at, want.trades)
                assert got.performance == want.performance  # floats compared with ==: the last digit too
                assert got.activity == want.activity
            prices = benchmark_prices(s, "sim", BTC, window)
            assert _same_series(prices, _prices_one_row_each(s, "sim", BTC, window))


def _interval_drawing_each_time(diffs: np.ndarray, samples: int, confidence: float, seed: int) -> tuple[float, float]:
    n = len(diffs)
    block = max(1, math.ceil(n ** (1 / 3)))
    blocks = math.ceil(n / block)
    sums = np.convolve(np.concatenate([diffs, diffs[: block - 1]]), np.ones(block), mode="valid")[:n]
    starts = np.random.default_rng(seed).integers(0, n, size=(samples, blocks))
    stats = sums[starts].sum(axis=1) * (n / (blocks * block))
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(stats, [tail, 100.0 - tail])
    return float(low), float(high)


def test_cached_block_starts_give_the_same_intervals() -> None:
    rng = np.random.default_rng(5)
    for n in (2, 3, 20, 150, 2880, 2880, 2881):  # 2880 twice: the second from the cache
        for seed in (7, 8):
            diffs = rng.normal(0, 0.01, size=n)
            assert bootstrap_interval(diffs, samples=500, confidence=0.9, seed=seed) == \
                _interval_drawing_each_time(diffs, 500, 0.9, seed)
