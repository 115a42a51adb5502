"""Loading OKX candles: the files shipped with okxlab and any CSV in the same format.

Format (CSV, optionally gzip-compressed): a header row with `ts` (bar open time, ms since the epoch,
UTC), `open`, `high`, `low`, `close`, `volume` (base currency); other columns (such as `datetime_utc`)
are ignored. The file is named `<instId>_<bar>.csv` or `<instId>_<bar>.csv.gz`, with OKX's names, e.g.
`BTC-USDT-SWAP_15m.csv.gz`. Rows must be strictly increasing, on bar boundaries, with low <= open,
close <= high. Gaps are allowed (nothing is served for them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from okxlab.domain import Ohlcv
from okxlab.errors import UserError
from okxlab.marketdata.bars import BarError, parse_bar, resample

COLUMNS = ("ts", "open", "high", "low", "close", "volume")
_NAME = re.compile(r"^(?P<inst>[A-Z0-9]+-[A-Z0-9]+(?:-SWAP)?)_(?P<bar>[0-9]+[A-Za-z]+)\.csv(?:\.gz)?$")


class CandleDataError(UserError):
    """A candle file that cannot be used (missing, misnamed, malformed)."""


@dataclass(frozen=True)
class CandleSeries:
    """One instrument's candles at one bar size, oldest first, as numpy arrays."""

    inst_id: str
    bar: str
    ts: np.ndarray  # int64, bar open time in ms
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # base currency
    source: str = ""

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def bar_ms(self) -> int:
        return parse_bar(self.bar).ms

    @property
    def start_ms(self) -> int:
        return int(self.ts[0])

    @property
    def end_ms(self) -> int:
        """Close time (exclusive) of the last bar."""
        return parse_bar(self.bar).end(int(self.ts[-1]))

    def until(self, ts_ms: int) -> CandleSeries:
        """Only the bars closed at `ts_ms` (point in time: nothing that ends after it)."""
        bar = parse_bar(self.bar)
        n = int(np.searchsorted(bar.ends(self.ts), ts_ms, side="right"))
        return self._slice(slice(0, n))

    def _slice(self, sl: slice) -> CandleSeries:
        return CandleSeries(self.inst_id, self.bar, self.ts[sl], self.open[sl], self.high[sl], self.low[sl],
                            self.close[sl], self.volume[sl], self.source)

    def resample(self, bar: str) -> CandleSeries:
        """Complete `bar` candles built from these (only where these are at least that fine)."""
        base = parse_bar(self.bar)
        durations = base.ends(self.ts) - self.ts
        out: Ohlcv = resample(self.ts, durations, self.open, self.high, self.low, self.close, self.volume, bar)
        return CandleSeries(self.inst_id, bar, out.ts, out.open, out.high, out.low, out.close, out.volume,
                            self.source)

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame indexed by UTC bar-open time with open/high/low/close/volume columns."""
        index = pd.to_datetime(self.ts, unit="ms", utc=True)
        return pd.DataFrame({"open": self.open, "high": self.high, "low": self.low, "close": self.close,
                             "volume": self.volume}, index=index)

    def candles(self) -> list[tuple[int, float, float, float, float, float]]:
        """As okxlab.domain.Candle tuples."""
        return list(zip(self.ts.tolist(), self.open.tolist(), self.high.tolist(), self.low.tolist(),
                        self.close.tolist(), self.volume.tolist(), strict=True))


def parse_candle_filename(path: str | Path) -> tuple[str, str]:
    """(instId, bar) from a name like `BTC-USDT-SWAP_15m.csv.gz`."""
    name = Path(path).name
    match = _NAME.match(name)
    if not match:
        raise CandleDataError(f"candle file {name!r} must be named <instId>_<bar>.csv[.gz], e.g. BTC-USDT-SWAP_15m.csv.gz")
    try:
        parse_bar(match["bar"])
    except BarError:
        raise CandleDataError(f"candle file {name!r}: {match['bar']!r} is not an OKX bar (1m, 5m, 15m, 1H, 4H, 1D, ...)") from None
    return match["inst"], match["bar"]


def load_candle_file(path: str | Path, inst_id: str | None = None, bar: str | None = None) -> CandleSeries:
    """Read and check one candle CSV; instId and bar come from the file name unless given."""
    path = Path(path)
    if inst_id is None or bar is None:
        name_inst, name_bar = parse_candle_filename(path)
        inst_id, bar = inst_id or name_inst, bar or name_bar
    try:
        frame = pd.read_csv(path, usecols=lambda c: c in COLUMNS)
    except FileNotFoundError:
        raise CandleDataError(f"candle file {path} does not exist") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CandleDataError(f"cannot read candle file {path}: {exc}") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise CandleDataError(f"candle file {path} lacks column(s) {', '.join(missing)} (needs {', '.join(COLUMNS)})")
    return series_from_frame(frame, inst_id, bar, source=str(path))


def series_from_frame(frame: pd.DataFrame, inst_id: str, bar: str, source: str = "") -> CandleSeries:
    """Check a frame with ts/open/high/low/close/volume columns and turn it into a CandleSeries."""
    where = source or f"{inst_id} {bar}"
    try:
        ts = pd.to_numeric(frame["ts"], errors="raise").to_numpy(dtype=np.int64)
        cols = [pd.to_numeric(frame[c], errors="raise").to_numpy(dtype=np.float64) for c in COLUMNS[1:]]
    except (ValueError, TypeError) as exc:
        raise CandleDataError(f"{where}: non-numeric value ({exc})") from None
    o, h, lo, c, v = cols
    if len(ts) == 0:
        raise CandleDataError(f"{where}: no rows")
    spec = parse_bar(bar)
    if np.any(np.diff(ts) <= 0):
        raise CandleDataError(f"{where}: timestamps must be strictly increasing")
    if np.any(spec.starts(ts) != ts):
        raise CandleDataError(f"{where}: timestamps must be on {bar} bar boundaries")
    if not (np.all(np.isfinite(np.stack(cols))) and np.all(lo <= np.minimum(o, c)) and np.all(h >= np.maximum(o, c))
            and np.all(lo > 0) and np.all(v >= 0)):
        raise CandleDataError(f"{where}: prices must be positive with low <= open, close <= high, volume >= 0")
    return CandleSeries(inst_id, bar, ts, o, h, lo, c, v, source)


def shipped_candle_paths() -> list[Path]:
    """The candle files shipped in okxlab/data/candles."""
    folder = resources.files("okxlab.data").joinpath("candles")
    return sorted(Path(str(p)) for p in folder.iterdir() if _NAME.match(p.name))


@cache
def _load_cached(path: str) -> CandleSeries:
    return load_candle_file(path)


def load_shipped() -> list[CandleSeries]:
    """All shipped candle series (cached for the life of the process)."""
    return [_load_cached(str(p)) for p in shipped_candle_paths()]


def load_path(path: str | Path) -> list[CandleSeries]:
    """Candle series from one CSV file or from every `<instId>_<bar>.csv[.gz]` in a directory."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _NAME.match(p.name))
        if not files:
            raise CandleDataError(f"no <instId>_<bar>.csv[.gz] candle files in {path}")
        return [load_candle_file(p) for p in files]
    if not path.exists():
        raise CandleDataError(f"candle data {path} does not exist")
    return [load_candle_file(path)]


@dataclass(frozen=True)
class StitchedBars:
    """Bars of mixed lengths for one instrument, oldest first: the finest data wherever it exists."""

    inst_id: str
    ts: np.ndarray  # int64 bar open
    dur: np.ndarray  # int64 bar length
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def resample(self, bar: str) -> CandleSeries:
        out = resample(self.ts, self.dur, self.open, self.high, self.low, self.close, self.volume, bar)
        return CandleSeries(self.inst_id, bar, out.ts, out.open, out.high, out.low, out.close, out.volume)


def stitch(series: list[CandleSeries]) -> StitchedBars:
    """Merge one instrument's series: finer data wins; a coarser bar is kept only outside the time
    ranges the finer series cover (so each moment is described once, at the best resolution)."""
    if not series:
        raise CandleDataError("nothing to stitch")
    inst_ids = {s.inst_id for s in series}
    if len(inst_ids) != 1:
        raise CandleDataError(f"cannot stitch different instruments: {', '.join(sorted(inst_ids))}")
    covered: list[tuple[int, int]] = []
    parts = []
    for s in sorted(series, key=lambda x: (parse_bar(x.bar).nominal_ms, x.start_ms)):
        ends = parse_bar(s.bar).ends(s.ts)
        keep = np.ones(len(s), dtype=bool)
        for a, b in covered:
            keep &= (ends <= a) | (s.ts >= b)
        if keep.any():
            parts.append((s.ts[keep], (ends - s.ts)[keep], s.open[keep], s.high[keep], s.low[keep],
                          s.close[keep], s.volume[keep]))
        covered.append((s.start_ms, s.end_ms))
    cols = [np.concatenate([p[i] for p in parts]) for i in range(7)]
    order = np.argsort(cols[0], kind="stable")
    ts, dur, o, h, lo, c, v = (col[order] for col in cols)
    return StitchedBars(inst_ids.pop(), ts.astype(np.int64), dur.astype(np.int64), o, h, lo, c, v)


def load_series(inst_id: str, bar: str, paths: tuple[str, ...] = ()) -> CandleSeries:
    """One instrument at one bar size from the shipped data (plus `paths`), as complete candles.

    Each stretch of time uses the finest data covering it, resampled up to `bar`; stretches where the data
    is coarser than `bar` are simply absent. Raises CandleDataError when nothing is fine enough.
    """
    wanted = parse_bar(bar)
    pool = [s for p in paths for s in load_path(p)] + load_shipped()
    fits = [s for s in pool if s.inst_id == inst_id and parse_bar(s.bar).nominal_ms <= wanted.nominal_ms]
    if not fits:
        raise CandleDataError(f"no candle data for {inst_id} at {bar} or finer")
    out = stitch(fits).resample(bar)
    if len(out) == 0:
        raise CandleDataError(f"no complete {bar} candles for {inst_id} in the data")
    return out
