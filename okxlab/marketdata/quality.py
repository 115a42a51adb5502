"""Data quality: may this run trust its snapshot? A pure function; the quality stage stores its verdict.

Outcome per symbol: `pass`, `degraded` (usable, with reasons noted) or `fail` (the run is skipped and nothing
trades). Checks: staleness, a late snapshot, too little history, missing bars, OHLC consistency, zero or
crossed spreads, price jumps between bars and between the last close and the ticker, zero-volume bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

from okxlab.db.models import QualityCheck
from okxlab.errors import ConfigError
from okxlab.outcome import StageOutcome


@dataclass(frozen=True)
class QualityLimits:
    min_candles: int = 50  # fewer closed bars than this: fail (indicators would be meaningless)
    stale_bars: float = 1.0  # the last closed bar must end no more than this many bars before the cutoff
    max_lateness_s: float | None = None  # snapshot taken this long after its time: fail (default: bar/4, ≤ 15 min)
    missing_degraded_pct: float = 0.0  # missing bars above this share: degraded
    missing_fail_pct: float = 10.0  # ... above this share: fail
    jump_pct: float = 20.0  # a close-to-close move larger than this: degraded
    ticker_deviation_pct: float = 5.0  # ticker far from the last close: fail (a bad print or a stale feed)

    @classmethod
    def from_table(cls, table: dict[str, Any] | None) -> QualityLimits:
        known = {f.name for f in fields(cls)}
        unknown = set(table or {}) - known
        if unknown:
            raise ConfigError(f"[pipeline.quality]: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(**(table or {}))


@dataclass
class QualityResult:
    outcome: str = "pass"
    reasons: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def degrade(self, reason: str) -> None:
        self.reasons.append(reason)
        if self.outcome == "pass":
            self.outcome = "degraded"

    def fail(self, reason: str) -> None:
        self.reasons.append(reason)
        self.outcome = "fail"


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%MZ")


def assess(
    candles: list[list[float]],
    *,
    bar_ms: int,
    cutoff_ms: int,
    scheduled_ms: int,
    exchange_ms: int,
    bid: float,
    ask: float,
    last: float,
    limits: QualityLimits = QualityLimits(),
) -> QualityResult:
    """Judge one symbol's snapshot. `candles`: closed bars, oldest first, [ts, o, h, l, c, v]."""
    result = QualityResult()
    result.metrics["candles"] = len(candles)

    # A snapshot taken long after its scheduled time describes a later market than the run is for.
    # (Only meaningful when the exchange's clock is ours: a simulator replaying 2022 is "early", not late.)
    lateness_ms = exchange_ms - scheduled_ms
    max_late_s = limits.max_lateness_s if limits.max_lateness_s is not None else min(bar_ms / 4000, 900)
    result.metrics["lateness_s"] = round(max(lateness_ms, 0) / 1000, 3)
    if lateness_ms > max_late_s * 1000:
        result.fail(f"run late: snapshot taken {lateness_ms / 1000:.0f} s after its scheduled time (limit {max_late_s:.0f} s)")

    if len(candles) == 0:  # a list or an array
        result.fail("stale data: no closed candles at or before the run's time")
        return result
    arr = np.asarray(candles, dtype=float)
    ts, o, h, low, c, v = (arr[:, i] for i in range(6))

    last_close_end = ts[-1] + bar_ms
    behind_bars = (cutoff_ms - last_close_end) / bar_ms
    result.metrics["bars_behind"] = round(float(behind_bars), 3)
    if behind_bars > limits.stale_bars:
        result.fail(f"stale data: the last closed bar ended {behind_bars:.1f} bars before the run's time")

    if len(candles) < limits.min_candles:
        result.fail(f"not enough history: {len(candles)} closed bars, at least {limits.min_candles} needed")

    expected = int(round((ts[-1] - ts[0]) / bar_ms)) + 1
    missing = expected - len(candles)
    missing_pct = 100.0 * missing / expected if expected else 0.0
    result.metrics["missing_bars"] = missing
    if missing_pct > limits.missing_fail_pct:
        result.fail(f"missing bars: {missing} of {expected} ({missing_pct:.1f}%)")
    elif missing_pct > limits.missing_degraded_pct:
        result.degrade(f"missing bars: {missing} of {expected} ({missing_pct:.1f}%)")

    bad = (h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (low <= 0) | ~np.isfinite(arr[:, 1:5]).all(axis=1)
    if bad.any():
        first = int(np.argmax(bad))
        result.fail(f"inconsistent OHLC in {int(bad.sum())} bar(s), first at {_iso(ts[first])}")

    if not (bid > 0 and ask > 0 and last > 0):
        result.fail(f"no usable quote: bid {bid}, ask {ask}, last {last}")
    elif bid > ask:
        result.fail(f"crossed spread: bid {bid} > ask {ask}")
    elif bid == ask:
        result.degrade(f"zero spread: bid = ask = {bid}")
    result.metrics["spread_bps"] = round((ask - bid) / ((ask + bid) / 2) * 1e4, 3) if bid > 0 and ask > 0 else None

    if len(c) > 1:
        moves = np.abs(np.diff(c) / c[:-1]) * 100.0
        jumps = np.flatnonzero(moves > limits.jump_pct)
        result.metrics["max_move_pct"] = round(float(moves.max()), 3)
        if jumps.size:
            i = int(jumps[np.argmax(moves[jumps])])
            result.degrade(f"price jump of {moves[i]:.1f}% at {_iso(ts[i + 1])}")
    if last > 0 and c[-1] > 0:
        deviation = abs(last / c[-1] - 1.0) * 100.0
        result.metrics["ticker_deviation_pct"] = round(deviation, 3)
        if deviation > limits.ticker_deviation_pct:
            result.fail(f"ticker {last} is {deviation:.1f}% away from the last close {c[-1]}")

    zero_volume = int((v <= 0).sum())
    result.metrics["zero_volume_bars"] = zero_volume
    if zero_volume:
        result.degrade(f"zero-volume bars: {zero_volume}")
    return result


@dataclass(frozen=True)
class QualityInput:
    """One instrument of a run's snapshot, as the checks need it."""

    symbol: str
    candles: Any  # closed bars, oldest first, [ts, o, h, l, c, v] (a list or an array)
    bar_ms: int
    cutoff_ms: int
    exchange_ms: int
    bid: float
    ask: float
    last: float


def decide_quality(run_id: str, scheduled_ms: int, inputs: list[QualityInput], limits: QualityLimits) -> StageOutcome:
    """The quality stage: one check per instrument; any `fail` skips the run with every failure named."""
    out = StageOutcome()
    outcomes: dict[str, Any] = {}
    failures: list[str] = []
    for q in inputs:
        result = assess(q.candles, bar_ms=q.bar_ms, cutoff_ms=q.cutoff_ms, scheduled_ms=scheduled_ms,
                        exchange_ms=q.exchange_ms, bid=q.bid, ask=q.ask, last=q.last, limits=limits)
        out.add(QualityCheck, {"run_id": run_id, "symbol": q.symbol, "outcome": result.outcome,
                               "reasons": result.reasons, "metrics": result.metrics})
        outcomes[q.symbol] = {"outcome": result.outcome, "reasons": result.reasons}
        if result.outcome == "fail":
            failures.append(f"{q.symbol}: {'; '.join(result.reasons)}")
    overall = "fail" if failures else ("degraded" if any(o["outcome"] == "degraded" for o in outcomes.values())
                                       else "pass")
    out.output = {"outcome": overall, "symbols": outcomes}
    if failures:
        out.end = ("skipped", "skipped: data quality — " + " | ".join(failures))
    return out
