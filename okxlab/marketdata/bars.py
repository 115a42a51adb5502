"""OKX bar names, their lengths, bucket alignment, and resampling to coarser bars.

OKX aligns bars of 6 hours and longer to Hong Kong time (UTC+8) unless the name ends in `utc`
("1D" opens at 16:00 UTC, "1Dutc" at 00:00 UTC); shorter bars are the same either way. Weeks start on
Monday. Months ("1M", "3M") are calendar months. Resampling keeps only complete buckets: a coarse bar is
built only where every base bar inside it is present and fits inside it, so nothing is ever invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from okxlab.domain import Ohlcv

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
HK_OFFSET_MS = 8 * HOUR_MS
_MONDAY_ANCHOR_MS = 4 * DAY_MS  # 1970-01-05 was a Monday; the epoch was a Thursday

_FIXED = {
    "1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "30m": 30 * MINUTE_MS,
    "1H": HOUR_MS, "2H": 2 * HOUR_MS, "4H": 4 * HOUR_MS, "6H": 6 * HOUR_MS, "12H": 12 * HOUR_MS,
    "1D": DAY_MS, "2D": 2 * DAY_MS, "3D": 3 * DAY_MS, "1W": WEEK_MS,
}
_MONTHS = {"1M": 1, "3M": 3}
_HK_ALIGNED = {"6H", "12H", "1D", "2D", "3D", "1W", "1M", "3M"}

#: Every bar name OKX's candle endpoints accept (ascending length, HK-aligned names then their utc twins).
OKX_BAR_NAMES: tuple[str, ...] = (
    *_FIXED, *_MONTHS, *(f"{name}utc" for name in (*_FIXED, *_MONTHS) if name in _HK_ALIGNED),
)

# ccxt timeframe -> OKX bar (ccxt adds "utc" itself for >= 6h when its timezone option is UTC).
_CCXT_TIMEFRAMES = {
    "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H", "4h": "4H",
    "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "1w": "1Wutc", "1M": "1Mutc", "3M": "3Mutc",
}


class BarError(ValueError):
    """An unknown bar name."""


@dataclass(frozen=True)
class Bar:
    """One OKX bar size. `ms` is the length for fixed bars, 0 for calendar months."""

    name: str
    ms: int
    months: int = 0
    offset_ms: int = 0  # added to UTC before aligning (8h for HK-aligned bars)

    @property
    def is_calendar(self) -> bool:
        return self.months > 0

    @property
    def nominal_ms(self) -> int:
        """Length used for ordering and rough arithmetic (a month counts as 30 days)."""
        return self.ms or self.months * 30 * DAY_MS

    def start(self, ts: int) -> int:
        """Open time of the bar containing `ts` (ms)."""
        return int(self.starts(np.asarray([ts], dtype=np.int64))[0])

    def end(self, start: int) -> int:
        """Close time (exclusive) of the bar opening at `start`."""
        return int(self.ends(np.asarray([start], dtype=np.int64))[0])

    def starts(self, ts: np.ndarray) -> np.ndarray:
        """Vectorised `start` over an int64 array of timestamps."""
        shifted = ts.astype(np.int64) + self.offset_ms
        if self.months:
            months = shifted.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
            months -= months % self.months
            return months.astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64) - self.offset_ms
        anchor = _MONDAY_ANCHOR_MS if self.ms == WEEK_MS else 0
        return (shifted - anchor) // self.ms * self.ms + anchor - self.offset_ms

    def ends(self, starts: np.ndarray) -> np.ndarray:
        if self.months:
            shifted = (starts.astype(np.int64) + self.offset_ms).astype("datetime64[ms]").astype("datetime64[M]")
            nxt = (shifted + np.timedelta64(self.months, "M")).astype("datetime64[ms]").astype(np.int64)
            return nxt - self.offset_ms
        return starts.astype(np.int64) + self.ms


@cache
def parse_bar(name: str) -> Bar:
    """The Bar for an OKX bar name ("15m", "4H", "1Dutc", ...). Raises BarError for anything else."""
    if not isinstance(name, str):
        raise BarError(f"bar must be a string, not {type(name).__name__}")
    base, utc = (name[:-3], True) if name.endswith("utc") else (name, False)
    if utc and base not in _HK_ALIGNED:
        raise BarError(f"unknown OKX bar {name!r}")
    offset = 0 if utc or base not in _HK_ALIGNED else HK_OFFSET_MS
    if base in _FIXED:
        return Bar(name, _FIXED[base], 0, offset)
    if base in _MONTHS:
        return Bar(name, 0, _MONTHS[base], offset)
    raise BarError(f"unknown OKX bar {name!r}; OKX bars are {', '.join(OKX_BAR_NAMES)}")


def bar_ms(name: str) -> int:
    """Length of a fixed OKX bar in milliseconds ("4H" -> 14_400_000). Calendar months raise BarError."""
    bar = parse_bar(name)
    if bar.is_calendar:
        raise BarError(f"bar {name!r} is a calendar month and has no fixed length")
    return bar.ms


def bar_for_ms(ms: int) -> str:
    """The OKX bar name of a fixed length (14_400_000 -> "4H")."""
    for name, length in _FIXED.items():
        if length == ms:
            return name
    raise BarError(f"no OKX bar is {ms} ms long")


def bar_from_timeframe(timeframe: str) -> str:
    """OKX bar name for a ccxt timeframe ("4h" -> "4H", "1d" -> "1Dutc"), as ccxt sends it."""
    try:
        return _CCXT_TIMEFRAMES[timeframe]
    except KeyError:
        raise BarError(f"no OKX bar for ccxt timeframe {timeframe!r}") from None


def resample(ts: np.ndarray, dur: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
             v: np.ndarray, bar: str | Bar) -> Ohlcv:
    """Aggregate base bars (open times `ts`, lengths `dur`, possibly mixed) into complete `bar` buckets.

    A bucket is kept only when its base bars tile it exactly: the first opens at the bucket's open, none
    crosses its close, and their lengths add up to the bucket's length (so no gap and no coarser bar).
    """
    target = bar if isinstance(bar, Bar) else parse_bar(bar)
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) == 0:
        empty_f = np.zeros(0, dtype=np.float64)
        return Ohlcv(np.zeros(0, dtype=np.int64), empty_f, empty_f, empty_f, empty_f, empty_f)
    dur = np.asarray(dur, dtype=np.int64)
    starts = target.starts(ts)
    first = np.flatnonzero(np.concatenate(([True], starts[1:] != starts[:-1])))
    last = np.concatenate((first[1:], [len(ts)])) - 1
    b_start = starts[first]
    b_end = target.ends(b_start)
    covered = np.add.reduceat(dur, first)
    reach = np.maximum.reduceat(ts + dur, first)
    ok = (ts[first] == b_start) & (covered == b_end - b_start) & (reach <= b_end)
    sel_first, sel_last = first[ok], last[ok]
    return Ohlcv(
        ts=b_start[ok],
        open=np.asarray(o, dtype=np.float64)[sel_first],
        high=np.maximum.reduceat(np.asarray(h, dtype=np.float64), first)[ok],
        low=np.minimum.reduceat(np.asarray(lo, dtype=np.float64), first)[ok],
        close=np.asarray(c, dtype=np.float64)[sel_last],
        volume=np.add.reduceat(np.asarray(v, dtype=np.float64), first)[ok],
    )
