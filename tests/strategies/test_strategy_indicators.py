"""Each indicator against an independent computation on shipped OKX candles.

References are written here from the definitions: pandas rolling/ewm for the TA-Lib ones (with TA-Lib's
documented seeding: EMA and Wilder averages start from the simple mean of their first `period` inputs), and
plain loops for KDJ and BBI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from strategy_helpers import shipped

from okxlab.strategies import indicators as ind

FILES = [("BTC-USDT-SWAP_4H", 0, 1500), ("BTC-USDT-SWAP_15m", 4000, 5500), ("ETH-USDT-SWAP_5m", 20000, 21500)]


@pytest.fixture(params=FILES, ids=[f[0] for f in FILES])
def data(request: pytest.FixtureRequest) -> ind.Ohlcv:
    name, start, stop = request.param
    return ind.as_ohlcv(shipped(name, start, stop))


def same(actual: np.ndarray, expected: np.ndarray | pd.Series) -> None:
    expected = np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), "warm-up (NaN) bars differ"
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-7, equal_nan=True)


def seeded_ewm(x: np.ndarray, alpha: float, period: int, start: int = 0) -> np.ndarray:
    """y = mean(x[start:start+period]) at bar start+period-1, then y += alpha * (x - y)."""
    out = np.full(len(x), np.nan)
    s = pd.Series(x[start + period - 1:], dtype=float).copy()
    s.iloc[0] = x[start:start + period].mean()
    out[start + period - 1:] = s.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def test_sma_ema(data: ind.Ohlcv) -> None:
    close = pd.Series(data.close)
    for period in (3, 20, 50):
        same(ind.sma(data.close, period), close.rolling(period).mean())
        same(ind.ema(data.close, period), seeded_ewm(data.close, 2 / (period + 1), period))


def test_macd(data: ind.Ohlcv) -> None:
    fast, slow, signal = 12, 26, 9
    # TA-Lib starts both EMAs at the same bar: the fast one is seeded over the `fast` bars ending at slow-1
    fast_ema = seeded_ewm(data.close, 2 / (fast + 1), fast, start=slow - fast)
    slow_ema = seeded_ewm(data.close, 2 / (slow + 1), slow)
    line = fast_ema - slow_ema
    sig = np.full(len(line), np.nan)
    sig[slow - 1:] = seeded_ewm(line[slow - 1:], 2 / (signal + 1), signal)
    first = slow + signal - 2  # TA-Lib reports all three lines from the first bar the signal exists
    line[:first] = np.nan
    out = ind.macd(data.close, fast, slow, signal)
    same(out["macd"], line)
    same(out["signal"], sig)
    same(out["hist"], line - sig)


def test_rsi(data: ind.Ohlcv) -> None:
    n = 14
    change = np.diff(data.close, prepend=np.nan)
    gain, loss = np.where(change > 0, change, 0.0), np.where(change < 0, -change, 0.0)
    avg_gain = seeded_ewm(gain, 1 / n, n, start=1)
    avg_loss = seeded_ewm(loss, 1 / n, n, start=1)
    same(ind.rsi(data.close, n), 100 * avg_gain / (avg_gain + avg_loss))


def test_atr(data: ind.Ohlcv) -> None:
    n = 14
    prev_close = np.r_[np.nan, data.close[:-1]]
    tr = np.nanmax(np.vstack([data.high - data.low, abs(data.high - prev_close), abs(data.low - prev_close)]), axis=0)
    same(ind.atr(data.high, data.low, data.close, n), seeded_ewm(tr, 1 / n, n, start=1))


def test_boll(data: ind.Ohlcv) -> None:
    close = pd.Series(data.close)
    mid, sd = close.rolling(20).mean(), close.rolling(20).std(ddof=0)  # population deviation, as TA-Lib
    out = ind.boll(data.close, 20, 2.0)
    same(out["middle"], mid)
    # TA-Lib's running sum of squares differs from pandas' in the last digits
    np.testing.assert_allclose(out["upper"], mid + 2 * sd, rtol=1e-8, equal_nan=True)
    np.testing.assert_allclose(out["lower"], mid - 2 * sd, rtol=1e-8, equal_nan=True)


def test_cci(data: ind.Ohlcv) -> None:
    n = 20
    tp = pd.Series((data.high + data.low + data.close) / 3)
    mean = tp.rolling(n).mean()
    mad = tp.rolling(n).apply(lambda w: np.abs(w - w.mean()).mean(), raw=True)
    np.testing.assert_allclose(ind.cci(data.high, data.low, data.close, n), (tp - mean) / (0.015 * mad),
                               rtol=1e-7, equal_nan=True)


def kdj_reference(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int, m1: int, m2: int):
    k_out, d_out = np.full(len(close), np.nan), np.full(len(close), np.nan)
    k = d = 50.0
    for t in range(n - 1, len(close)):
        hh, ll = max(high[t - n + 1:t + 1]), min(low[t - n + 1:t + 1])
        rsv = (close[t] - ll) / (hh - ll) * 100 if hh > ll else 50.0
        k = ((m1 - 1) * k + rsv) / m1
        d = ((m2 - 1) * d + k) / m2
        k_out[t], d_out[t] = k, d
    return k_out, d_out, 3 * k_out - 2 * d_out


@pytest.mark.parametrize("n,m1,m2", [(9, 3, 3), (14, 3, 3), (5, 2, 4), (9, 1, 1)])
def test_kdj(data: ind.Ohlcv, n: int, m1: int, m2: int) -> None:
    k, d, j = kdj_reference(data.high, data.low, data.close, n, m1, m2)
    out = ind.kdj(data.high, data.low, data.close, n, m1, m2)
    same(out["k"], k)
    same(out["d"], d)
    same(out["j"], j)


def test_kdj_flat_window_is_neutral() -> None:
    flat = np.full(12, 100.0)
    out = ind.kdj(flat, flat, flat, 9, 3, 3)
    assert np.isnan(out["k"][:8]).all()
    np.testing.assert_allclose(out["k"][8:], 50.0)


def test_bbi(data: ind.Ohlcv) -> None:
    close = data.close
    expected = np.full(len(close), np.nan)
    for t in range(23, len(close)):
        expected[t] = sum(close[t - p + 1:t + 1].mean() for p in (3, 6, 12, 24)) / 4
    same(ind.bbi(close), expected)


def test_candle_patterns(data: ind.Ohlcv) -> None:
    o, h, low, c = data.open, data.high, data.low, data.close
    o1, c1 = np.r_[np.nan, o[:-1]], np.r_[np.nan, c[:-1]]
    # engulfing: this body engulfs the previous, opposite-coloured body; 100 when both ends are beyond it, 80
    # when one end only equals it
    bull = (c >= o) & (c1 < o1) & (((c >= o1) & (o < c1)) | ((c > o1) & (o <= c1)))
    bear = (c < o) & (c1 >= o1) & (((o >= c1) & (c < o1)) | ((o > c1) & (c <= o1)))
    strength = np.where(((c > o1) & (o < c1)) | ((o > c1) & (c < o1)), 100, 80)
    expected = np.where(bull, strength, np.where(bear, -strength, 0))
    expected[0] = 0
    assert np.array_equal(ind.candle_pattern(o, h, low, c, "CDLENGULFING"), expected)
    assert (expected != 0).any()
    # doji: a real body no bigger than 10% of the average high-low range of the previous 10 bars
    avg_range = pd.Series(h - low).rolling(10).mean().shift(1).to_numpy()
    doji = np.where(np.abs(c - o) <= 0.1 * avg_range, 100, 0)
    assert np.array_equal(ind.candle_pattern(o, h, low, c, "CDLDOJI"), doji)


def test_inputs_accepted() -> None:
    df = shipped("BTC-USDT-SWAP_4H", 0, 50)
    tuples = list(df[["ts", "open", "high", "low", "close", "volume"]].itertuples(index=False, name=None))
    a, b = ind.as_ohlcv(df), ind.as_ohlcv(tuples)
    assert np.array_equal(a.ts, b.ts) and np.array_equal(a.close, b.close)
    assert len(ind.as_ohlcv([])) == 0
    with pytest.raises(ValueError, match="column"):
        ind.as_ohlcv(df.drop(columns=["high"]))
