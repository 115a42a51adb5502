"""Indicators for rule strategies, computed over a whole window of candles at once.

TA-Lib computes everything it has (SMA, EMA, MACD, BBANDS, RSI, CCI, ATR, the CDL* patterns). KDJ and BBI,
which TA-Lib lacks, are assembled from TA-Lib primitives with their conventional definitions:

- KDJ(n, m1, m2): RSV = 100 * (close - LLV(low, n)) / (HHV(high, n) - LLV(low, n)), 50 when the range is 0;
  K = ((m1 - 1) * K[t-1] + RSV) / m1 and D = ((m2 - 1) * D[t-1] + K) / m2, both starting from 50 just
  before the first RSV; J = 3K - 2D. With the usual m1 = m2 = 3 these are the "1/3 weights".
- BBI(p1..p4) = (SMA(close, p1) + SMA(close, p2) + SMA(close, p3) + SMA(close, p4)) / 4, by default 3, 6, 12, 24.

Every function returns float arrays as long as its input, NaN where the indicator is not yet defined.
All are causal: the value at bar t depends on bars <= t only. Recursive ones (EMA, MACD, RSI, ATR, KDJ) also
depend on where the window starts, through their seed; the effect fades geometrically with the window length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import talib

from okxlab.domain import Candle, Ohlcv

FloatArray = np.ndarray


_COLUMNS = ("open", "high", "low", "close", "volume")


def as_ohlcv(candles: Any) -> Ohlcv:
    """Accepts an Ohlcv, a DataFrame (columns open..volume, optional ts), or a sequence of Candle tuples."""
    if isinstance(candles, Ohlcv):
        return candles
    if isinstance(candles, pd.DataFrame):
        missing = [c for c in _COLUMNS if c not in candles.columns]
        if missing:
            raise ValueError(f"candles lack column(s) {', '.join(missing)}")
        ts = candles["ts"].to_numpy(np.int64) if "ts" in candles.columns else np.arange(len(candles), dtype=np.int64)
        cols = [np.ascontiguousarray(candles[c].to_numpy(np.float64)) for c in _COLUMNS]
        return Ohlcv(ts, *cols)
    rows: list[Candle] = list(candles)
    if not rows:
        empty = np.empty(0, dtype=np.float64)
        return Ohlcv(np.empty(0, dtype=np.int64), empty, empty, empty, empty, empty)
    table = np.asarray(rows, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] != 6:
        raise ValueError("candles must be (ts, open, high, low, close, volume) rows")
    return Ohlcv(table[:, 0].astype(np.int64), *(np.ascontiguousarray(table[:, i]) for i in range(1, 6)))


# ---- the indicator functions ----------------------------------------------------------------------------

def sma(close: FloatArray, period: int) -> FloatArray:
    return talib.SMA(close, timeperiod=period)


def ema(close: FloatArray, period: int) -> FloatArray:
    # TA-Lib seeds with the SMA of the first `period` values, then applies alpha = 2 / (period + 1).
    return talib.EMA(close, timeperiod=period)


def macd(close: FloatArray, fast: int, slow: int, signal: int) -> dict[str, FloatArray]:
    line, sig, hist = talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return {"macd": line, "signal": sig, "hist": hist}


def boll(close: FloatArray, period: int, nbdev: float) -> dict[str, FloatArray]:
    upper, middle, lower = talib.BBANDS(close, timeperiod=period, nbdevup=nbdev, nbdevdn=nbdev, matype=0)
    return {"middle": middle, "upper": upper, "lower": lower}


def rsi(close: FloatArray, period: int) -> FloatArray:
    return talib.RSI(close, timeperiod=period)


def cci(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    return talib.CCI(high, low, close, timeperiod=period)


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int) -> FloatArray:
    return talib.ATR(high, low, close, timeperiod=period)


def bbi(close: FloatArray, p1: int = 3, p2: int = 6, p3: int = 12, p4: int = 24) -> FloatArray:
    return (sma(close, p1) + sma(close, p2) + sma(close, p3) + sma(close, p4)) / 4.0


def smooth_from_50(x: FloatArray, m: int) -> FloatArray:
    """y[t] = ((m - 1) * y[t-1] + x[t]) / m, with y = 50 just before the first finite x.

    That recursion is an EMA with alpha = 1/m, i.e. TA-Lib's EMA of period 2m - 1. TA-Lib seeds its EMA
    with the mean of the first `period` inputs, so feeding it `period` copies of 50 first makes the seed
    exactly 50, and the outputs after them are the recursion above.
    """
    out = np.full(len(x), np.nan)
    finite = np.flatnonzero(np.isfinite(x))
    if finite.size == 0:
        return out
    first = int(finite[0])
    if m == 1:
        out[first:] = x[first:]
        return out
    period = 2 * m - 1
    padded = np.concatenate([np.full(period, 50.0), x[first:]])
    out[first:] = talib.EMA(padded, timeperiod=period)[period:]
    return out


def kdj(high: FloatArray, low: FloatArray, close: FloatArray, n: int = 9, m1: int = 3, m2: int = 3) -> dict[str, FloatArray]:
    if n == 1:  # TA-Lib's MAX/MIN need a period of 2 or more; over one bar they are the bar itself
        hh, ll = high.astype(np.float64), low.astype(np.float64)
    else:
        hh, ll = talib.MAX(high, timeperiod=n), talib.MIN(low, timeperiod=n)
    span = hh - ll
    with np.errstate(invalid="ignore", divide="ignore"):
        rsv = np.where(span > 0, (close - ll) / span * 100.0, 50.0)
    rsv[~np.isfinite(span)] = np.nan  # not enough bars yet
    k = smooth_from_50(rsv, m1)
    d = smooth_from_50(k, m2)
    return {"k": k, "d": d, "j": 3.0 * k - 2.0 * d}


def candle_pattern(o: FloatArray, h: FloatArray, low: FloatArray, c: FloatArray, pattern: str) -> FloatArray:
    """A TA-Lib CDL* function: +100/+80/+200 bullish, -100/-80/-200 bearish, 0 absent (as float)."""
    return getattr(talib, pattern)(o, h, low, c).astype(np.float64)


# ---- the registry the strategy documents refer to --------------------------------------------------------

@dataclass(frozen=True)
class IndicatorDef:
    name: str
    label: str  # how descriptions print it, e.g. "EMA"
    lines: tuple[str, ...]  # output lines; the first is the default
    compute: Callable[[Ohlcv, Mapping[str, Any]], dict[str, FloatArray]]
    levels: Mapping[str, tuple[float, float]] | None = None  # line -> (oversold, overbought) defaults
    divergence: bool = False  # an oscillator divergence is defined for it


def _one(fn: Callable[..., FloatArray]) -> Callable[[Ohlcv, Mapping[str, Any]], dict[str, FloatArray]]:
    return lambda data, p: {"value": fn(data, p)}


INDICATORS: dict[str, IndicatorDef] = {
    d.name: d
    for d in (
        IndicatorDef("price", "price", ("close", "open", "high", "low", "volume"),
                     lambda data, p: {k: getattr(data, k) for k in _COLUMNS}),
        IndicatorDef("sma", "SMA", ("value",), _one(lambda data, p: sma(data.close, p["period"]))),
        IndicatorDef("ema", "EMA", ("value",), _one(lambda data, p: ema(data.close, p["period"]))),
        IndicatorDef("macd", "MACD", ("macd", "signal", "hist"),
                     lambda data, p: macd(data.close, p["fast"], p["slow"], p["signal"]), divergence=True),
        IndicatorDef("kdj", "KDJ", ("k", "d", "j"),
                     lambda data, p: kdj(data.high, data.low, data.close, p["n"], p["m1"], p["m2"]),
                     levels={"k": (20.0, 80.0), "d": (20.0, 80.0), "j": (0.0, 100.0)}, divergence=True),
        IndicatorDef("boll", "BOLL", ("middle", "upper", "lower"),
                     lambda data, p: boll(data.close, p["period"], p["nbdev"])),
        IndicatorDef("rsi", "RSI", ("value",), _one(lambda data, p: rsi(data.close, p["period"])),
                     levels={"value": (30.0, 70.0)}, divergence=True),
        IndicatorDef("bbi", "BBI", ("value",),
                     _one(lambda data, p: bbi(data.close, p["p1"], p["p2"], p["p3"], p["p4"]))),
        IndicatorDef("cci", "CCI", ("value",), _one(lambda data, p: cci(data.high, data.low, data.close, p["period"])),
                     levels={"value": (-100.0, 100.0)}, divergence=True),
        IndicatorDef("atr", "ATR", ("value",), _one(lambda data, p: atr(data.high, data.low, data.close, p["period"]))),
        IndicatorDef("candle", "candle", ("value",),
                     _one(lambda data, p: candle_pattern(data.open, data.high, data.low, data.close, p["pattern"]))),
    )
}


class IndicatorBook:
    """Computes each (indicator, params) once per window, however many conditions use it."""

    def __init__(self, data: Ohlcv) -> None:
        self.data = data
        self._cache: dict[tuple[str, tuple[tuple[str, Any], ...]], dict[str, FloatArray]] = {}

    def lines(self, indicator: str, params: tuple[tuple[str, Any], ...]) -> dict[str, FloatArray]:
        key = (indicator, params)
        if key not in self._cache:
            self._cache[key] = INDICATORS[indicator].compute(self.data, dict(params))
        return self._cache[key]

    def line(self, indicator: str, params: tuple[tuple[str, Any], ...], line: str) -> FloatArray:
        return self.lines(indicator, params)[line]
