"""Per-symbol indicators for a run, computed with TA-Lib on the snapshot's closed candles.

The latest value of each indicator is stored (the features record) and shown to LLM planners. Rule
strategies compute their own indicator series from the same candles (okxlab/strategies).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import talib

from okxlab.db.models import FeatureSet
from okxlab.outcome import StageOutcome

FEATURES_VERSION = "okxlab.features.v1"


def _last(series: np.ndarray) -> float | None:
    if series.size == 0:
        return None
    value = float(series[-1])
    return None if math.isnan(value) else value


def compute_features(candles: list[list[float]]) -> dict[str, Any]:
    """Latest indicator values over closed bars (oldest first). Missing history gives None, not a guess."""
    arr = np.asarray(candles, dtype=float).reshape(-1, 6)
    high, low, close, volume = arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5]
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, mid, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0)
    atr = talib.ATR(high, low, close, timeperiod=14)
    values = {
        "close": _last(close),
        "ema_fast": _last(talib.EMA(close, timeperiod=12)),
        "ema_slow": _last(talib.EMA(close, timeperiod=26)),
        "sma_20": _last(talib.SMA(close, timeperiod=20)),
        "sma_50": _last(talib.SMA(close, timeperiod=50)),
        "macd": _last(macd),
        "macd_signal": _last(signal),
        "macd_hist": _last(hist),
        "rsi": _last(talib.RSI(close, timeperiod=14)),
        "atr": _last(atr),
        "bb_upper": _last(upper),
        "bb_mid": _last(mid),
        "bb_lower": _last(lower),
        "volume_sma_20": _last(talib.SMA(volume, timeperiod=20)),
    }
    close_last, atr_last = values["close"], values["atr"]
    values["atr_pct"] = atr_last / close_last * 100 if close_last and atr_last else None
    values["version"] = FEATURES_VERSION
    return values


def decide_features(run_id: str, windows: list[tuple[str, Any]]) -> StageOutcome:
    """The features stage: the latest indicator values per instrument, from `windows` [(symbol, candles)]."""
    out = StageOutcome()
    for symbol, candles in windows:
        values = compute_features(candles)
        out.add(FeatureSet, {"run_id": run_id, "symbol": symbol, "values": values})
        out.output[symbol] = {k: (round(v, 4) if isinstance(v, float) else v)
                              for k, v in values.items() if k in ("ema_fast", "ema_slow", "rsi", "atr")}
    return out
