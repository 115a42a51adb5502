"""Is a lead more than noise? A paired, seeded block bootstrap of the difference in period returns.

Two equity curves (or a curve and a price path) are put on the same time grid, each period's returns are
paired, and d_t = r_a,t − r_b,t. The statistic is the sum of d over the window (close to the difference in
total return for small periods). Its sampling spread is estimated by a circular block bootstrap (blocks of
⌈n^(1/3)⌉ consecutive periods, so short-range autocorrelation in returns is kept), with a fixed seed so the
same data always gives the same interval. When the percentile interval contains 0, the lead is flagged as
within noise. Percentile intervals from a handful of periods are too narrow to trust, so below `min_periods`
(20 by default) the interval is still shown but the lead is always called within noise; with fewer than two
periods there is no interval at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class NoiseTest:
    versus: str  # what the agent is compared with: an agent's name or a baseline's
    diff: float  # sum over the window of the per-period return differences (agent − versus)
    low: float | None  # the bootstrap interval of `diff`
    high: float | None
    periods: int
    within_noise: bool
    too_few_periods: bool = False  # fewer than min_periods: within noise whatever the interval says

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def values_on(points: pd.Series, grid: pd.DatetimeIndex, before: float | None = None) -> np.ndarray:
    """The last value at or before each grid time; `before` (else the first value) ahead of the first point."""
    values = points.to_numpy(dtype=float)
    if len(values) == 0:
        if before is None:
            raise ValueError("no points and no value before them")
        return np.full(len(grid), before, dtype=float)
    pos = points.index.searchsorted(grid, side="right") - 1
    head = values[0] if before is None else before
    return np.where(pos >= 0, values[np.clip(pos, 0, None)], head)


def _returns(values: np.ndarray) -> np.ndarray:
    return values[1:] / values[:-1] - 1.0


def paired_with_prices(curve: pd.Series, opened_at: datetime, prices: pd.Series) -> np.ndarray:
    """The price path's returns over the same intervals as the curve's own period returns (the first one
    from `opened_at`), i.e. what holding the instrument would have earned in each of the agent's periods."""
    times = pd.DatetimeIndex([pd.Timestamp(opened_at)]).append(curve.index)
    return _returns(values_on(prices, times))


def paired_curves(a: pd.Series, a_opening: float, b: pd.Series, b_opening: float) -> tuple[np.ndarray, np.ndarray]:
    """Two agents' returns on the union of their snapshot times (each flat between its own snapshots)."""
    grid = a.index.union(b.index)
    va = np.concatenate([[a_opening], values_on(a, grid, a_opening)])
    vb = np.concatenate([[b_opening], values_on(b, grid, b_opening)])
    return _returns(va), _returns(vb)


def bootstrap_interval(diffs: np.ndarray, *, samples: int, confidence: float, seed: int) -> tuple[float, float] | None:
    """Percentile interval of sum(diffs) under a circular block bootstrap; None with fewer than two periods."""
    n = len(diffs)
    if n < 2:
        return None
    block = max(1, math.ceil(n ** (1 / 3)))
    blocks = math.ceil(n / block)
    # Sum of each circular block, once; a resample is then `blocks` random block sums, rescaled to n periods.
    wrapped = np.concatenate([diffs, diffs[: block - 1]])
    sums = np.convolve(wrapped, np.ones(block), mode="valid")[:n]
    stats = sums[_block_starts(n, samples, blocks, seed)].sum(axis=1) * (n / (blocks * block))
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(stats, [tail, 100.0 - tail])
    return float(low), float(high)


@lru_cache(maxsize=4)
def _block_starts(n: int, samples: int, blocks: int, seed: int) -> np.ndarray:
    """The resamples' block starts. They depend only on these four numbers, and a leaderboard tests each agent
    against cash, buy-and-hold and the next agent over the same n periods, so they are drawn once (read-only)."""
    starts = np.random.default_rng(seed).integers(0, n, size=(samples, blocks))
    starts.flags.writeable = False
    return starts


def noise_test(versus: str, ra: np.ndarray, rb: np.ndarray, *, samples: int, confidence: float, seed: int,
               min_periods: int = 20) -> NoiseTest:
    diffs = np.asarray(ra, dtype=float) - np.asarray(rb, dtype=float)
    few = len(diffs) < min_periods
    interval = bootstrap_interval(diffs, samples=samples, confidence=confidence, seed=seed)
    if interval is None:
        return NoiseTest(versus, float(diffs.sum()), None, None, len(diffs), True, few)
    low, high = interval
    return NoiseTest(versus, float(diffs.sum()), low, high, len(diffs), few or bool(low <= 0.0 <= high), few)
