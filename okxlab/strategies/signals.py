"""Signals: boolean arrays, one value per bar, computed for the whole window at once.

Every signal at bar t reads bars <= t only, and is False wherever an input it needs is NaN (warm-up).
Exact definitions (a, b are lines or a constant level; t-1 is the previous bar of the window):

- cross_above(a, b): a[t-1] <= b[t-1] and a[t] > b[t]  (golden cross when a is the faster line)
- cross_below(a, b): a[t-1] >= b[t-1] and a[t] < b[t]  (death cross)
- above(a, b): a[t] > b[t];  below(a, b): a[t] < b[t]
- overbought(a, level): a[t] >= level;  oversold(a, level): a[t] <= level
- touch_upper: high[t] >= upper[t];  touch_lower: low[t] <= lower[t]
- break_upper: cross_above(close, upper);  break_lower: cross_below(close, lower)
- alignment(ma_1..ma_k), periods ascending: bullish when ma_1[t] > ma_2[t] > ... > ma_k[t], bearish when <
- bullish_divergence(low, x, L): low[t] < min(low[t-L..t-1]) (a lower low than the previous L bars) and
  x[t] > x[j], j the bar of that previous lowest low (the oscillator makes a higher low)
- bearish_divergence(high, x, L): high[t] > max(high[t-L..t-1]) and x[t] < x[j], j the bar of that highest high
- pattern_bullish: p[t] > 0; pattern_bearish: p[t] < 0; pattern_present: p[t] != 0 (TA-Lib CDL* output)
- within(s, n): s was true at some bar in t-n+1..t
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Line = np.ndarray
Operand = np.ndarray | float


def _prev(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x, dtype=np.float64)
    out[:1] = np.nan
    out[1:] = x[:-1]
    return out


def _as_line(x: Operand, like: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(x, dtype=np.float64), like.shape)


def cross_above(a: Line, b: Operand) -> np.ndarray:
    b = _as_line(b, a)
    return (_prev(a) <= _prev(b)) & (a > b)


def cross_below(a: Line, b: Operand) -> np.ndarray:
    b = _as_line(b, a)
    return (_prev(a) >= _prev(b)) & (a < b)


def above(a: Line, b: Operand) -> np.ndarray:
    return a > _as_line(b, a)


def below(a: Line, b: Operand) -> np.ndarray:
    return a < _as_line(b, a)


def overbought(a: Line, level: float) -> np.ndarray:
    return a >= level


def oversold(a: Line, level: float) -> np.ndarray:
    return a <= level


def touch_upper(high: Line, upper: Line) -> np.ndarray:
    return high >= upper


def touch_lower(low: Line, lower: Line) -> np.ndarray:
    return low <= lower


def break_upper(close: Line, upper: Line) -> np.ndarray:
    return cross_above(close, upper)


def break_lower(close: Line, lower: Line) -> np.ndarray:
    return cross_below(close, lower)


def aligned(lines: Sequence[Line], bullish: bool) -> np.ndarray:
    """Moving averages ordered fastest first: bullish when each is above the next one."""
    result = np.ones(len(lines[0]), dtype=bool)
    for faster, slower in zip(lines, lines[1:], strict=False):
        result &= (faster > slower) if bullish else (faster < slower)
    return result


def _previous_extreme(price: Line, lookback: int, lowest: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each bar t >= lookback: the extreme of price[t-lookback..t-1] and the bar where it occurred."""
    n = len(price)
    value = np.full(n, np.nan)
    where = np.zeros(n, dtype=np.int64)
    if n <= lookback:
        return value, where
    windows = sliding_window_view(price[:-1], lookback)  # row k covers bars k..k+lookback-1, used at t = k+lookback
    # NaN-safe: a window holding NaN yields NaN, so the comparison with it is False
    offset = np.argmin(windows, axis=1) if lowest else np.argmax(windows, axis=1)
    rows = np.arange(len(windows))
    where[lookback:] = rows + offset
    value[lookback:] = windows[rows, offset]
    value[lookback:][np.isnan(windows).any(axis=1)] = np.nan
    return value, where


def bullish_divergence(low: Line, x: Line, lookback: int) -> np.ndarray:
    prior_low, at = _previous_extreme(low, lookback, lowest=True)
    return (low < prior_low) & (x > x[at])


def bearish_divergence(high: Line, x: Line, lookback: int) -> np.ndarray:
    prior_high, at = _previous_extreme(high, lookback, lowest=False)
    return (high > prior_high) & (x < x[at])


def pattern_bullish(p: Line) -> np.ndarray:
    return p > 0


def pattern_bearish(p: Line) -> np.ndarray:
    return p < 0


def pattern_present(p: Line) -> np.ndarray:
    return np.isfinite(p) & (p != 0)


def within(signal: np.ndarray, n: int) -> np.ndarray:
    """True at t when `signal` was true at any of the last n bars (t included)."""
    if n <= 1:
        return signal.astype(bool)
    counts = np.concatenate([[0], np.cumsum(signal, dtype=np.int64)])
    idx = np.arange(len(signal))
    return counts[idx + 1] - counts[np.maximum(idx + 1 - n, 0)] > 0
