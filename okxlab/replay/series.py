"""Market data as an in-process replay's snapshot stage sees it, and the strategy's signals over the whole
history, with the bars where a run's own window must decide instead."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from typing import Any

import numpy as np

from okxlab.domain import Instrument
from okxlab.errors import UserError
from okxlab.marketdata.bars import parse_bar
from okxlab.marketdata.quality import QualityLimits
from okxlab.simulator.world import World
from okxlab.strategies.engine import Signals, evaluate
from okxlab.strategies.indicators import Ohlcv, as_ohlcv
from okxlab.strategies.planner import StrategyPlanner

TIE_TOLERANCE = 1e-8  # relative: closer than this, a comparison is decided again on the run's own window
# Indicators whose value at bar t depends on where the window starts by more than rounding (recursive seeds).
RECURSIVE = frozenset({"ema", "macd", "rsi", "atr", "kdj"})


class SeriesView:
    """One instrument's closed candles at the replay's bar, with the numbers ccxt would have parsed from the
    simulator's candles endpoint (prices on the tick grid; volume in the base currency)."""

    def __init__(self, world: World, inst_id: str, bar: str):
        path = world.market.path(inst_id)
        if path is None:
            raise UserError(f"the simulator has no data for {inst_id}")
        self.inst_id, self.spec, self.path, self.bar = inst_id, world.spec(inst_id), path, bar
        self.bar_ms = parse_bar(bar).ms
        series, ends = path.resampled(parse_bar(bar))
        self.ends = np.asarray(ends, dtype=np.int64)
        self._ends = self.ends.tolist()
        ts = np.asarray(series.ts, dtype=np.int64)
        spec = self.spec
        prices = []
        for col in (series.open, series.high, series.low, series.close):
            col = np.asarray(col, dtype=np.float64)
            on_grid = np.round(col, spec.px_decimals)
            if not np.array_equal(on_grid, col):  # off the grid: exactly as the endpoint formats them
                on_grid = np.array([float(spec.fmt_px(x)) for x in col.tolist()])
            prices.append(on_grid)
        # ccxt reads OKX's base-currency volume (volCcy for swaps, vol for spot), printed to 8 decimals
        volume = np.array([round(x, 8) for x in np.asarray(series.volume, dtype=np.float64).tolist()])
        self.cols = (ts.astype(np.float64), *prices, volume)
        self.ts = ts
        # column-major: a window's columns are contiguous, so TA-Lib and numpy take them without copies
        self.rows = np.asfortranarray(np.column_stack(self.cols))
        self.ohlcv = Ohlcv(ts, *(np.ascontiguousarray(c) for c in self.cols[1:]))
        digest = hashlib.sha256()
        digest.update(inst_id.encode())
        digest.update(bar.encode())
        digest.update(np.ascontiguousarray(self.rows).tobytes())
        self.dataset = digest.hexdigest()

    def closed(self, t_ms: int) -> int:
        """How many bars closed at or before t."""
        return bisect_right(self._ends, t_ms)

    def reference(self, lo: int, hi: int) -> dict[str, Any]:
        return {"dataset": self.dataset, "inst_id": self.inst_id, "bar": self.bar,
                "from": int(self.ts[lo]) if hi > lo else None, "to": int(self.ts[hi - 1]) if hi > lo else None,
                "count": hi - lo}


def window_for(view: SeriesView, reference: dict[str, Any]) -> list[list[float]]:
    """The candles a snapshot reference stands for, as the pipeline would have stored them."""
    if reference.get("dataset") != view.dataset:
        raise UserError("the candle data differs from the data this replay ran on (dataset digest mismatch)")
    if not reference.get("count"):
        return []
    lo = int(np.searchsorted(view.ts, reference["from"]))
    return view.rows[lo:lo + int(reference["count"])].tolist()


def instrument_of(world: World, inst_id: str) -> Instrument:
    """The instrument as okxlab reads it from ccxt's market (execution.exchange.instrument_from_market)."""
    spec = world.spec(inst_id)
    swap = spec.is_swap
    return Instrument(inst_id=inst_id, inst_type="SWAP" if swap else "SPOT", base_ccy=spec.base_ccy,
                      quote_ccy=spec.quote_ccy, ct_val=float(spec.ct_val) if swap else 1.0,
                      lot_sz=float(spec.lot_sz), min_sz=float(spec.min_sz), tick_sz=float(spec.tick_sz),
                      max_lever=float(spec.max_lever) if swap else 1.0)


# ---- signals over the whole history, and the bars where they must be decided again -------------------

def history_signals(planner: StrategyPlanner, view: SeriesView, window: int) -> tuple[Signals, np.ndarray]:
    """Signals for every bar of the series, and a mask of bars whose decision must be taken on the run's own
    window (near-ties; every bar for strategies that read recursive indicators)."""
    strategy = planner.strategy
    data = view.ohlcv
    signals = evaluate(strategy, data)
    n = len(data)
    fragile = np.zeros(n, dtype=bool)
    if any(c.operand is not None and c.operand.indicator in RECURSIVE for c in strategy.conditions()) or \
            any(getattr(s, "kind", "") == "atr" for s in (strategy.stop_loss, strategy.take_profit) if s is not None):
        fragile[:] = True  # their values depend on the window's start: decide every bar on its own window
        return signals, fragile
    from okxlab.strategies.indicators import IndicatorBook

    book = IndicatorBook(as_ohlcv(data))

    def line(op: Any) -> np.ndarray:
        return book.line(op.indicator, op.params, op.line)

    def near(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
        scale = np.maximum(np.abs(a), np.abs(b))
        with np.errstate(invalid="ignore"):
            out = np.abs(a - b) <= TIE_TOLERANCE * scale
        # a line that turns defined within the window can differ too: NaN next to a number is fragile
        return out | (np.isnan(a) != np.isnan(b))

    for c in strategy.conditions():
        s = c.signal
        if s == "always":
            continue
        if s in ("cross_above", "cross_below", "above", "below", "overbought", "oversold"):
            a = line(c.operand)
            b = line(c.other) if c.other is not None else float(c.level)  # type: ignore[arg-type]
            tie = near(a, b)
        elif s in ("touch_upper", "break_upper", "touch_lower", "break_lower"):
            upper = s.endswith("upper")
            band = book.line(c.operand.indicator, c.operand.params, "upper" if upper else "lower")
            price = (data.high if upper else data.low) if s.startswith("touch") else data.close
            tie = near(price, band)
        elif s.endswith("_alignment"):
            lines = [book.line(c.operand.indicator, (("period", p),), "value") for p in c.periods]
            tie = np.zeros(n, dtype=bool)
            for x, y in zip(lines, lines[1:], strict=False):
                tie |= near(x, y)
        else:  # divergences, candle patterns: no cheap tie test; decide on the window
            fragile[:] = True
            return signals, fragile
        if s.startswith("cross") or s.startswith("break"):
            tie = tie | np.concatenate([[True], tie[:-1]])  # the previous bar takes part in a cross
        within = max(int(getattr(c, "within", 1) or 1), 1)
        if within > 1:  # a tie anywhere in the lookback
            counts = np.concatenate([[0], np.cumsum(tie, dtype=np.int64)])
            idx = np.arange(n)
            tie = counts[idx + 1] - counts[np.maximum(idx + 1 - within, 0)] > 0
        fragile |= tie
    # the first bars of the history: a run's window and the history start at the same bar, nothing differs;
    # bars whose window is shorter than the lookback of any indicator are decided on their window anyway
    fragile[:window] = True
    return signals, fragile


def quality_risk(view: SeriesView, window: int, limits: QualityLimits, bar_ms: int) -> np.ndarray:
    """For each number of closed bars n, whether a run seeing bars [n - window, n) might not pass the quality
    checks (too few bars, missing bars, inconsistent OHLC, the ticker far from the last close). A superset of
    the runs `assess` fails: fast mode executes those runs and lets `assess` decide."""
    ts = view.ts
    total = len(ts)
    n = np.arange(total + 1)
    lo = np.maximum(n - window, 0)
    count = n - lo
    risk = count < max(limits.min_candles, 1)
    last = np.maximum(n - 1, 0)
    expected = (ts[last] - ts[np.minimum(lo, total - 1)]) // bar_ms + 1
    risk |= expected != count
    o, h, low, c = view.cols[1], view.cols[2], view.cols[3], view.cols[4]
    bad = (h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (low <= 0) | ~np.isfinite(np.column_stack(view.cols[1:5])).all(axis=1)
    bad_count = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    risk |= (bad_count[n] - bad_count[lo]) > 0
    next_open = np.append(o, np.nan)[n]  # the price at the tick: the open of the bar starting there
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.abs(next_open / c[last] - 1.0) * 100.0
    risk |= ~(deviation <= limits.ticker_deviation_pct / 2)
    return risk
