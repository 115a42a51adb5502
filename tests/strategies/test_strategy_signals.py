"""Each signal type on constructed series whose answer is known, then the same through a strategy document."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib

from okxlab.strategies import build_strategy, evaluate
from okxlab.strategies import indicators as ind
from okxlab.strategies import signals as sig

NAN = np.nan


def idx(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask).tolist()


def arr(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=float)


def test_cross_line_vs_line() -> None:
    a = arr(1, 2, 3, 4, 3, 2, 1, 2, 3)
    b = arr(2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 2.5)
    assert idx(sig.cross_above(a, b)) == [2, 8]
    assert idx(sig.cross_below(a, b)) == [5]


def test_cross_needs_a_flip_and_counts_a_touch_once() -> None:
    a = arr(1, 2, 2, 3, 2, 1)
    b = arr(2, 2, 2, 2, 2, 2)
    # equal at bars 1-2, above at 3: the cross is at 3 (t-1 <= and t >); back to equal at 4 is not a cross
    assert idx(sig.cross_above(a, b)) == [3]
    assert idx(sig.cross_below(a, b)) == [5]
    # the first bar can never cross (no bar before it), NaN never crosses
    assert idx(sig.cross_above(arr(NAN, 3, 1, 3), arr(2, 2, 2, 2))) == [3]


def test_cross_a_level_and_line_vs_signal() -> None:
    rsi = arr(50, 35, 29, 25, 31, 45, 71, 69)
    assert idx(sig.cross_below(rsi, 30.0)) == [2]
    assert idx(sig.cross_above(rsi, 30.0)) == [4]
    assert idx(sig.cross_above(rsi, 70.0)) == [6]
    macd_line, signal_line = arr(-1, -0.5, 0.2, 0.4, 0.1), arr(0, -0.2, 0.1, 0.3, 0.2)
    assert idx(sig.cross_above(macd_line, signal_line)) == [2]
    assert idx(sig.cross_below(macd_line, signal_line)) == [4]


def test_above_below_and_levels() -> None:
    a = arr(1, 2, 3, NAN, 5)
    assert idx(sig.above(a, 2.0)) == [2, 4]
    assert idx(sig.below(a, 2.0)) == [0]
    assert idx(sig.above(a, arr(0, 3, 3, 3, 3))) == [0, 4]
    rsi = arr(69.9, 70, 85, 30, 29.9, NAN)
    assert idx(sig.overbought(rsi, 70)) == [1, 2]
    assert idx(sig.oversold(rsi, 30)) == [3, 4]


def test_band_touches_and_breakouts() -> None:
    upper, lower = arr(110, 110, 110, 110, 110), arr(90, 90, 90, 90, 90)
    high = arr(105, 110, 112, 109, 111)
    low = arr(95, 91, 90, 85, 92)
    close = arr(100, 109, 111, 108, 112)
    assert idx(sig.touch_upper(high, upper)) == [1, 2, 4]
    assert idx(sig.touch_lower(low, lower)) == [2, 3]
    # a breakout is the close crossing out of the band, once per excursion
    assert idx(sig.break_upper(close, upper)) == [2, 4]
    assert idx(sig.break_lower(arr(95, 89, 88, 91, 80), lower)) == [1, 4]


def test_moving_average_alignment() -> None:
    fast, mid, slow = arr(3, 3, 1, 2, NAN), arr(2, 2, 2, 2, 2), arr(1, 2.5, 3, 3, 1)
    assert idx(sig.aligned([fast, mid, slow], bullish=True)) == [0]
    assert idx(sig.aligned([fast, mid, slow], bullish=False)) == [2]


def test_divergence() -> None:
    # price: lows at bar 2 (90) and bar 6 (85, a lower low); the oscillator is higher at 6 than at 2
    low = arr(100, 95, 90, 94, 97, 93, 85, 96)
    osc = arr(50, 40, 20, 35, 45, 38, 30, 50)
    assert idx(sig.bullish_divergence(low, osc, lookback=5)) == [6]
    # no divergence when the oscillator also makes a lower low
    assert idx(sig.bullish_divergence(low, arr(50, 40, 20, 35, 45, 38, 15, 50), lookback=5)) == []
    # the earlier low must lie within the lookback: with 3 bars, bar 6 compares with bars 3-5 (low 93 at 5)
    assert idx(sig.bullish_divergence(low, osc, lookback=3)) == []
    high = arr(100, 105, 110, 106, 103, 108, 115, 104)
    osc_hi = arr(50, 60, 80, 65, 55, 62, 70, 50)
    assert idx(sig.bearish_divergence(high, osc_hi, lookback=5)) == [6]
    # a new low before the lookback has filled is never a divergence
    assert idx(sig.bullish_divergence(arr(5, 4, 3), arr(1, 2, 3), lookback=5)) == []


def test_patterns_and_within() -> None:
    p = arr(0, 100, -100, 80, 0, -80, 200)
    assert idx(sig.pattern_bullish(p)) == [1, 3, 6]
    assert idx(sig.pattern_bearish(p)) == [2, 5]
    assert idx(sig.pattern_present(p)) == [1, 2, 3, 5, 6]
    s = np.array([False, True, False, False, False, True, False])
    assert idx(sig.within(s, 1)) == [1, 5]
    assert idx(sig.within(s, 3)) == [1, 2, 3, 5, 6]


# ---- the same signals reached through a strategy document ------------------------------------------------

def candles(close: list[float], spread: float = 1.0) -> pd.DataFrame:
    c = np.array(close, dtype=float)
    o = np.r_[c[0], c[:-1]]
    return pd.DataFrame({"ts": np.arange(len(c)) * 60_000, "open": o, "high": np.maximum(o, c) + spread,
                         "low": np.minimum(o, c) - spread, "close": c, "volume": np.ones(len(c))})


def run(conditions: list[dict], data: pd.DataFrame, logic: str = "and") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    doc = {"schema_version": "okxlab.strategy.v1", "name": "t",
           "entries": {"long": {"logic": logic, "conditions": conditions}},
           "stops": {"stop_loss": {"percent": 5}}}
    s = evaluate(build_strategy(doc), data)
    return s.enter_long, s.conditions


def test_document_cross_and_levels() -> None:
    close = [10, 10, 10, 10, 12, 14, 16, 15, 12, 9, 8, 8, 8]
    data = candles(close)
    fast = {"indicator": "sma", "params": {"period": 2}}
    enter, conds = run([{**fast, "signal": "cross_above", "other": {"indicator": "sma", "params": {"period": 4}}}], data)
    s2, s4 = pd.Series(close).rolling(2).mean().to_numpy(), pd.Series(close).rolling(4).mean().to_numpy()
    assert idx(enter) == idx(sig.cross_above(s2, s4))
    enter, _ = run([{"indicator": "price", "signal": "cross_below", "level": 13}], data)
    assert idx(enter) == [8]
    enter, _ = run([{"indicator": "price", "line": "high", "signal": "above", "level": 15.5}], data)
    assert idx(enter) == [6, 7, 8]  # high = max(open, close) + 1


def test_document_groups_and_nesting() -> None:
    data = candles([1, 2, 3, 4, 5, 4, 3, 2, 1])
    up = {"indicator": "price", "signal": "above", "level": 3.5}
    low = {"indicator": "price", "signal": "below", "level": 2.5}
    odd = {"logic": "or", "conditions": [{"indicator": "price", "signal": "above", "level": 4.5}, low]}
    enter, conds = run([up, odd], data)  # close > 3.5 and (close > 4.5 or close < 2.5)
    assert idx(enter) == [4]
    assert idx(conds["entries.long.conditions[1].conditions[1]"]) == [0, 1, 7, 8]
    enter, _ = run([up, low], data, logic="or")
    assert idx(enter) == [0, 1, 3, 4, 5, 7, 8]


def test_document_overbought_bands_alignment_divergence_pattern() -> None:
    rng = np.random.default_rng(7)
    close = list(100 + np.cumsum(rng.normal(0, 1, 300)))
    data = candles(close)
    c = np.array(close)
    rsi = ind.rsi(c, 14)
    bands = ind.boll(c, 20, 2.0)
    o = data["open"].to_numpy()
    high, low = data["high"].to_numpy(), data["low"].to_numpy()

    enter, _ = run([{"indicator": "rsi", "signal": "oversold"}], data)  # default level 30
    assert idx(enter) == idx(rsi <= 30) and enter.any()
    enter, _ = run([{"indicator": "boll", "signal": "touch_lower"}], data)
    assert idx(enter) == idx(low <= bands["lower"]) and enter.any()
    enter, _ = run([{"indicator": "boll", "params": {"period": 20, "nbdev": 2}, "signal": "break_upper"}], data)
    assert idx(enter) == idx(sig.cross_above(c, bands["upper"])) and enter.any()
    enter, _ = run([{"indicator": "ema", "signal": "bullish_alignment", "periods": [5, 10, 20]}], data)
    e5, e10, e20 = ind.ema(c, 5), ind.ema(c, 10), ind.ema(c, 20)
    assert idx(enter) == idx((e5 > e10) & (e10 > e20)) and enter.any()
    enter, _ = run([{"indicator": "rsi", "signal": "bullish_divergence", "lookback": 10}], data)
    assert idx(enter) == idx(sig.bullish_divergence(low, rsi, 10))
    enter, _ = run([{"indicator": "candle", "params": {"pattern": "CDLENGULFING"}, "signal": "pattern_bullish"}], data)
    assert idx(enter) == idx(talib.CDLENGULFING(o, high, low, c) > 0) and enter.any()
    enter, _ = run([{"indicator": "kdj", "line": "j", "signal": "oversold", "level": 0}], data)
    assert idx(enter) == idx(ind.kdj(high, low, c)["j"] <= 0)
    enter, _ = run([{"indicator": "cci", "signal": "overbought"}, {"indicator": "bbi", "signal": "below", "level": 1e9}], data)
    assert idx(enter) == idx(ind.cci(high, low, c, 14) >= 100)


def test_document_within_and_always() -> None:
    data = candles([5, 5, 6, 7, 6, 5, 4, 5, 6])
    enter, _ = run([{"indicator": "price", "signal": "cross_above", "level": 5.5, "within": 2}], data)
    assert idx(enter) == [2, 3, 8]  # crosses at 2 and 8; within 2 bars adds 3
    enter, _ = run([{"signal": "always"}], data)
    assert enter.all()


def test_entry_needs_a_stop_level() -> None:
    data = candles([10.0] * 30)
    doc = {"schema_version": "okxlab.strategy.v1", "name": "t",
           "entries": {"long": {"logic": "and", "conditions": [{"signal": "always"}]},
                       "short": {"logic": "and", "conditions": [{"signal": "always"}]}},
           "stops": {"stop_loss": {"atr_multiple": 2, "atr_period": 14}, "take_profit": {"percent": 10}}}
    s = evaluate(build_strategy(doc), data)
    # ATR(14) exists from bar 14; before it no stop can be set, so no entry
    assert idx(s.enter_long) == list(range(14, 30)) == idx(s.enter_short)
    atr = 2.0  # every bar: high - low = 2, no gaps
    np.testing.assert_allclose(s.stop_long[14:], 10 - 2 * atr)
    np.testing.assert_allclose(s.stop_short[14:], 10 + 2 * atr)
    np.testing.assert_allclose(s.take_long[14:], 11.0)
    np.testing.assert_allclose(s.take_short[14:], 9.0)
