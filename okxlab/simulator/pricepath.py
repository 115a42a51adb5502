"""The deterministic price path through an instrument's candles, and everything derived from it.

Inside each base bar [T, T+d) the path is piecewise linear through four points: the open at T, then the
two extremes at T+d/3 and T+2d/3, approaching the close at T+d. An up bar (close >= open) visits the low
first (open -> low -> high -> close), a down bar the high first. At a bar boundary the price is the open of
the bar starting there, so a jump between a close and the next open is a gap that orders see at once.
Times not covered by any bar (before the data, after it, in gaps) have no price.

Candles at clock t are the complete bars that closed by t plus the bar in progress, built only from the
path up to t. Nothing after t is ever read by a query made "at t".
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from okxlab.marketdata.bars import DAY_MS, HK_OFFSET_MS, Bar, parse_bar
from okxlab.marketdata.candles import CandleSeries, StitchedBars
from okxlab.simulator.instruments import InstrumentSpec

CandleRow = tuple[int, float, float, float, float, float, bool]  # ts, o, h, l, c, base volume, confirmed


@dataclass(frozen=True)
class Cross:
    """Where the path first reaches a level: the time (ms) and the price there (the level itself, or a
    better price when the path gaps through the level at a bar open)."""

    ts: int
    px: float


class PricePath:
    def __init__(self, spec: InstrumentSpec, bars: StitchedBars):
        self.spec = spec
        self.ts = bars.ts
        self.dur = bars.dur
        self.o, self.h, self.l, self.c, self.v = bars.open, bars.high, bars.low, bars.close, bars.volume
        up = self.c >= self.o
        self.x1 = np.where(up, self.l, self.h)
        self.x2 = np.where(up, self.h, self.l)
        # Python lists: scalar lookups on them are several times faster than on numpy arrays.
        self._ts = self.ts.tolist()
        self._end = (self.ts + self.dur).tolist()
        self._dur = self.dur.tolist()
        self._o, self._c = self.o.tolist(), self.c.tolist()
        self._x1, self._x2 = self.x1.tolist(), self.x2.tolist()
        self._h, self._l, self._v = self.h.tolist(), self.l.tolist(), self.v.tolist()
        # The path inside a bar never leaves [min, max] of its four points: a level outside that range cannot be
        # crossed there, which answers most per-tick stop checks without walking the legs.
        pts = np.vstack([self.o, self.x1, self.x2, self.c])
        self._pmin, self._pmax = pts.min(axis=0).tolist(), pts.max(axis=0).tolist()
        self._last_memo: tuple[int, float | None] = (-1, None)  # (t, last_at(t)): asked several times per tick
        self.start_ms = self._ts[0]
        self.end_ms = self._end[-1]
        self._resampled: dict[str, tuple[CandleSeries, np.ndarray]] = {}
        self._base_ms = sorted(set(self._dur))

    # ---- the path ----------------------------------------------------------------------------------
    def index(self, t: int) -> int:
        """Index of the base bar covering t, or -1 when t has no price."""
        i = bisect_right(self._ts, t) - 1
        return i if i >= 0 and t < self._end[i] else -1

    def state(self, t: int) -> str:
        """OKX instrument state at t: live with a price, preopen before the data, suspend otherwise."""
        if self.index(t) >= 0:
            return "live"
        return "preopen" if t < self.start_ms else "suspend"

    def _at(self, i: int, t: float) -> float:
        f = (t - self._ts[i]) * 3.0 / self._dur[i]
        o, x1, x2 = self._o[i], self._x1[i], self._x2[i]
        if f < 1.0:
            return o + (x1 - o) * f
        if f < 2.0:
            return x1 + (x2 - x1) * (f - 1.0)
        return x2 + (self._c[i] - x2) * (f - 2.0)

    def price_at(self, t: int) -> float | None:
        """The raw path price at t (not rounded to the tick), or None without data."""
        i = self.index(t)
        return None if i < 0 else self._at(i, t)

    def last_at(self, t: int) -> float | None:
        """The traded price at t, on the tick grid."""
        memo = self._last_memo
        if memo[0] == t:
            return memo[1]
        p = self.price_at(t)
        px = None if p is None else self.spec.round_px(p)
        self._last_memo = (t, px)
        return px

    def last_known(self, t: int) -> float | None:
        """The price at t, or the last close before t when t has no data (used only to value positions)."""
        px = self.last_at(t)
        if px is not None:
            return px
        i = bisect_right(self._end, t) - 1
        return self._c[i] if i >= 0 else None

    def _legs(self, i: int) -> list[tuple[float, float, float, float]]:
        t0, d = self._ts[i], self._dur[i]
        a, b = t0 + d / 3.0, t0 + 2.0 * d / 3.0
        return [(t0, self._o[i], a, self._x1[i]), (a, self._x1[i], b, self._x2[i]),
                (b, self._x2[i], t0 + d, self._c[i])]

    def _cross_in_bar(self, i: int, after: int | None, level: float, down: bool) -> Cross | None:
        """First point of bar i (after `after`, exclusive, or from its open) at or beyond `level`."""
        if (self._pmin[i] > level) if down else (self._pmax[i] < level):
            return None

        def hit(p: float) -> bool:
            return p <= level if down else p >= level

        end = self._end[i]
        if after is None and hit(self._o[i]):
            return Cross(self._ts[i], self._o[i])
        for ta, pa, tb, pb in self._legs(i):
            if after is not None:
                if tb <= after:
                    continue
                if ta <= after:
                    ta, pa = float(after), self._at(i, after)
                    if hit(pa):  # already beyond at `after`: the next millisecond
                        t = after + 1
                        return Cross(t, self._at(i, t)) if t < end else None
            if hit(pa):
                return Cross(min(math.ceil(ta), end - 1), pa)
            if hit(pb) and pa != pb:
                tau = ta + (pa - level) / (pa - pb) * (tb - ta)
                return Cross(min(max(math.ceil(tau), int(ta)), end - 1), level)
        return None

    def first_cross(self, t0: int, t1: int, level: float, down: bool) -> Cross | None:
        """First moment in (t0, t1] when the path is at or below (`down`) / above `level`."""
        if t1 <= t0:
            return None
        i = bisect_right(self._ts, t0) - 1
        if i >= 0 and t0 < self._end[i]:
            found = self._cross_in_bar(i, t0, level, down)
            if found is not None:
                return found if found.ts <= t1 else None
        j, k = i + 1, bisect_right(self._ts, t1)
        if j >= k:
            return None
        if k - j <= 16:  # a tick's worth of bars: a list scan beats numpy's per-call overhead
            ext = self._l if down else self._h
            hit_at = next((x for x in range(j, k) if (ext[x] <= level if down else ext[x] >= level)), None)
            if hit_at is None:
                return None
        else:
            seg = self.l[j:k] <= level if down else self.h[j:k] >= level
            if not seg.any():
                return None
            hit_at = j + int(seg.argmax())
        found = self._cross_in_bar(hit_at, None, level, down)
        return found if found is not None and found.ts <= t1 else None

    def _partial(self, i: int, t: int) -> tuple[float, float, float]:
        """(high, low, price) of bar i's path from its open up to t."""
        p = self._at(i, t)
        seen = [self._o[i], p]
        t0, d = self._ts[i], self._dur[i]
        if t >= t0 + d / 3.0:
            seen.append(self._x1[i])
        if t >= t0 + 2.0 * d / 3.0:
            seen.append(self._x2[i])
        return max(seen), min(seen), p

    # ---- candles -----------------------------------------------------------------------------------
    def resampled(self, bar: Bar) -> tuple[CandleSeries, np.ndarray]:
        """Complete `bar` candles over the whole data (cached) and their close times."""
        cached = self._resampled.get(bar.name)
        if cached is None:
            series = StitchedBars(self.spec.inst_id, self.ts, self.dur, self.o, self.h, self.l, self.c,
                                  self.v).resample(bar.name)
            cached = (series, bar.ends(series.ts))
            self._resampled[bar.name] = cached
        return cached

    def serves(self, bar: Bar) -> bool:
        """Whether any base data is fine enough for `bar`."""
        return self._base_ms[0] <= bar.nominal_ms

    def in_progress(self, bar: Bar, t: int) -> CandleRow | None:
        """The `bar` candle containing t, built from the path up to t (None without complete data)."""
        k = self.index(t)
        if k < 0:
            return None
        start = bar.start(t)
        k0 = bisect_left(self._ts, start)
        if k0 > k or self._ts[k0] != start or self._end[k] > bar.end(start):
            return None
        if self._end[k] - start != sum(self._dur[k0:k + 1]):
            return None  # a gap inside the bucket
        hi, lo, p = self._partial(k, t)
        if k > k0:
            hi = max(hi, max(self._h[k0:k]))
            lo = min(lo, min(self._l[k0:k]))
        vol = sum(self._v[k0:k]) + self._v[k] * (t - self._ts[k]) / self._dur[k]
        return (start, self._o[k0], hi, lo, p, vol, False)

    def segments(self) -> list[tuple[int, int, int]]:
        """(start, end, base bar ms) of each stretch of the data at one bar size, in time order."""
        out: list[tuple[int, int, int]] = []
        for t0, end, d in zip(self._ts, self._end, self._dur, strict=True):
            if out and out[-1][1] == t0 and out[-1][2] == d:
                out[-1] = (out[-1][0], end, d)
            else:
                out.append((t0, end, d))
        return out

    def _path_ohlcv(self, s: int, e: int) -> tuple[float, float, float, float, float] | None:
        """Open, high, low, close and base volume of the path over [s, e] (None when s has no price): the
        extremes of a piecewise-linear path are at its vertices or the ends; volume pro rata of time."""
        k = self.index(s)
        if k < 0:
            return None
        o = self._at(k, s)
        hi = lo = o
        vol = 0.0
        close = o
        while k < len(self._ts) and self._ts[k] < e:
            t0, d = self._ts[k], self._dur[k]
            a, b = max(s, t0), min(e, self._end[k])
            for tv, pv in ((t0 + d / 3.0, self._x1[k]), (t0 + 2.0 * d / 3.0, self._x2[k])):
                if a <= tv <= b:
                    hi, lo = max(hi, pv), min(lo, pv)
            pa, pb = self._at(k, a), self._at(k, b)
            hi, lo = max(hi, pa, pb), min(lo, pa, pb)
            vol += self._v[k] * (b - a) / d
            close = pb
            if self._end[k] < e and (k + 1 >= len(self._ts) or self._ts[k + 1] != self._end[k]):
                break  # a gap: the bucket ends with the data
            k += 1
        return o, hi, lo, close, vol

    def _derived_candles(self, bar: Bar, t: int, after: int | None, before: int | None,
                         limit: int) -> list[CandleRow]:
        """Candles of a fixed-size `bar` where some data is coarser than it: a bucket inside coarser data is
        derived from the price path (the path fills follow), a bucket inside data at least as fine is the
        resampled data; newest first, as `candles`."""
        step = bar.nominal_ms
        series, ends = self.resampled(bar)
        real_ts = series.ts.tolist()
        s = bar.start(t)
        if after is not None:
            s = min(s, bar.start(after - 1))
        rows: list[CandleRow] = []
        first = bar.start(self.start_ms)
        while len(rows) < limit and s >= first and (before is None or s > before):
            e = s + step
            k = self.index(s)
            if k < 0:  # no data at s: jump to the bucket holding the last data before it
                j = bisect_right(self._ts, s) - 1
                if j < 0:
                    break
                s = bar.start(self._end[j] - 1)
                continue
            if self._dur[k] <= step:  # data at least as fine: the resampled candle, if the bucket is whole
                i = bisect_left(real_ts, s)
                if i < len(real_ts) and real_ts[i] == s:
                    if ends[i] <= t:
                        rows.append((s, float(series.open[i]), float(series.high[i]), float(series.low[i]),
                                     float(series.close[i]), float(series.volume[i]), True))
                    else:
                        live = self.in_progress(bar, t)
                        if live is not None:
                            rows.append(live)
            else:
                got = self._path_ohlcv(s, min(e, t))
                if got is not None:
                    rows.append((s, *got, e <= t))
            s -= step
        return rows

    def candles(self, bar_name: str, t: int, after: int | None = None, before: int | None = None,
                limit: int = 100) -> list[CandleRow]:
        """Candles visible at t, newest first: ts < after, ts > before, at most `limit` of the newest. A
        fixed-size bar finer than some of the data is derived from the path there (`_derived_candles`)."""
        bar = parse_bar(bar_name)
        if limit <= 0:
            return []
        if not bar.is_calendar and bar.nominal_ms < self._base_ms[-1]:
            return self._derived_candles(bar, t, after, before, limit)
        series, ends = self.resampled(bar)
        n_closed = int(np.searchsorted(ends, t, side="right"))
        hi = n_closed if after is None else min(n_closed, int(np.searchsorted(series.ts, after, side="left")))
        lo = 0 if before is None else int(np.searchsorted(series.ts, before, side="right"))
        rows: list[CandleRow] = []
        live = self.in_progress(bar, t)
        if live is not None and (after is None or live[0] < after) and (before is None or live[0] > before):
            rows.append(live)
        lo = max(lo, hi - (limit - len(rows)))
        for j in range(hi - 1, lo - 1, -1):
            rows.append((int(series.ts[j]), float(series.open[j]), float(series.high[j]), float(series.low[j]),
                         float(series.close[j]), float(series.volume[j]), True))
        return rows

    # ---- 24h statistics for tickers ----------------------------------------------------------------
    def stats_24h(self, t: int) -> dict[str, float]:
        """open24h/high24h/low24h/vol24h (base) over the path in [t-24h, t], and start-of-day opens."""
        i = self.index(t)
        hi, lo, p = self._partial(i, t)
        k0 = bisect_left(self._ts, t - DAY_MS)
        if k0 < i:
            hi = max(hi, max(self._h[k0:i]))
            lo = min(lo, min(self._l[k0:i]))
        open24 = self.price_at(t - DAY_MS)
        if open24 is None:
            open24 = self._o[min(k0, i)]
        else:  # the bar holding t-24h began before it: its path from t-24h on belongs to the window too
            j = self.index(t - DAY_MS)
            if 0 <= j < k0:
                part = self._path_ohlcv(t - DAY_MS, min(self._end[j], t))
                if part is not None:
                    hi, lo = max(hi, part[1]), min(lo, part[2])
        vol = sum(self._v[k0:i]) + self._v[i] * (t - self._ts[i]) / self._dur[i]
        day0 = t // DAY_MS * DAY_MS
        day8 = (t + HK_OFFSET_MS) // DAY_MS * DAY_MS - HK_OFFSET_MS
        sod0, sod8 = self.price_at(day0), self.price_at(day8)
        return {"open24h": open24, "high24h": hi, "low24h": lo, "vol24h": vol,
                "sodUtc0": sod0 if sod0 is not None else open24, "sodUtc8": sod8 if sod8 is not None else open24}

    def base_volume_rate(self, t: int) -> float:
        """Base-currency volume per millisecond of the bar covering t."""
        i = self.index(t)
        return 0.0 if i < 0 else self._v[i] / self._dur[i]

    # ---- volume and averages (partial maker fills, mark and index prices) --------------------------
    def bar_bounds(self, t: int) -> tuple[int, int] | None:
        """(start, end) of the base bar covering t, or None without data."""
        i = self.index(t)
        return None if i < 0 else (self._ts[i], self._end[i])

    def volume_through(self, t0: int, level: float, down: bool) -> float:
        """Base volume the base bar covering t0 trades from t0 to its end at or beyond `level` (at or below it
        when `down`). The bar's volume is spread evenly over its time, so this is the bar's volume x the share
        of [t0, end) the path spends at or beyond the level."""
        i = self.index(t0)
        if i < 0 or self._dur[i] <= 0:
            return 0.0
        inside = 0.0
        for ta, pa, tb, pb in self._legs(i):
            u = max(float(t0), ta)
            if tb <= u:
                continue
            if u > ta:
                pa = pa + (pb - pa) * (u - ta) / (tb - ta)
                ta = u
            a_in = pa <= level if down else pa >= level
            b_in = pb <= level if down else pb >= level
            if a_in and b_in:
                inside += tb - ta
            elif a_in or b_in:
                cut = (level - pa) / (pb - pa)  # share of the leg before it crosses the level
                inside += (tb - ta) * (cut if a_in else 1.0 - cut)
        return self._v[i] * inside / self._dur[i]

    def average(self, t0: int, t1: int) -> float | None:
        """Time-weighted average of the path over [t0, t1] (the parts with data), None without any."""
        if t1 <= t0:
            return self.price_at(t1)
        area = covered = 0.0
        i = max(0, bisect_right(self._ts, t0) - 1)
        n = len(self._ts)
        while i < n and self._ts[i] < t1:
            if self._end[i] > t0:
                for ta, pa, tb, pb in self._legs(i):
                    u, v = max(float(t0), ta), min(float(t1), tb)
                    if v <= u:
                        continue
                    pu = pa + (pb - pa) * (u - ta) / (tb - ta)
                    pv = pa + (pb - pa) * (v - ta) / (tb - ta)
                    area += (v - u) * (pu + pv) / 2.0
                    covered += v - u
            i += 1
        return area / covered if covered > 0 else None
