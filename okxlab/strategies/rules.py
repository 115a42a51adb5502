"""Which signal applies to which indicator, and which fields of a condition each signal reads."""

from __future__ import annotations

from dataclasses import dataclass

OSCILLATORS = ("rsi", "kdj", "cci")
DIVERGENCE = ("rsi", "macd", "kdj", "cci")
LINE_INDICATORS = ("price", "sma", "ema", "macd", "kdj", "boll", "rsi", "bbi", "cci", "atr")
DEFAULT_DIVERGENCE_LOOKBACK = 20


@dataclass(frozen=True)
class SignalRule:
    indicators: tuple[str, ...]  # the indicators it applies to; () for none (always)
    fields: frozenset[str]  # condition fields it reads beyond indicator, params, signal, within, label
    uses_line: bool = True
    target: bool = False  # needs exactly one of `other` / `level`


_COMPARE = SignalRule(LINE_INDICATORS, frozenset({"line", "other", "level"}), target=True)
_LEVEL = SignalRule(OSCILLATORS, frozenset({"line", "level"}))
_BAND = SignalRule(("boll",), frozenset(), uses_line=False)
_ALIGN = SignalRule(("sma", "ema"), frozenset({"periods"}), uses_line=False)
_DIVERGE = SignalRule(DIVERGENCE, frozenset({"line", "lookback"}))
_PATTERN = SignalRule(("candle",), frozenset(), uses_line=False)

SIGNAL_RULES: dict[str, SignalRule] = {
    "cross_above": _COMPARE,
    "cross_below": _COMPARE,
    "above": _COMPARE,
    "below": _COMPARE,
    "overbought": _LEVEL,
    "oversold": _LEVEL,
    "touch_upper": _BAND,
    "touch_lower": _BAND,
    "break_upper": _BAND,
    "break_lower": _BAND,
    "bullish_alignment": _ALIGN,
    "bearish_alignment": _ALIGN,
    "bullish_divergence": _DIVERGE,
    "bearish_divergence": _DIVERGE,
    "pattern_bullish": _PATTERN,
    "pattern_bearish": _PATTERN,
    "pattern_present": _PATTERN,
    "always": SignalRule((), frozenset(), uses_line=False),
}

COMMON_FIELDS = frozenset({"indicator", "params", "signal", "within", "label"})
