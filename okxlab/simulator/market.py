"""Market data the simulator serves: instruments, their price paths, synthesised books and trades.

Books are synthesised around the path price at the clock: the best ask/bid sit a half spread away
(`half_spread_bps`, at least one tick), further levels every `level_step_bps` (at least one tick). Depth
follows the traded volume of the base bar covering the clock: the first level holds what that bar trades in
`level_seconds` seconds (its quote volume / its duration x `level_seconds`, at least `min_level_usd`), and
level i holds that x (1 + i/2), so the cost of a market order grows with its size and shrinks in busy
bars. What market orders take in a bar is missing from the top of that side's book until the next bar (the
World keeps the account, `World.book_side`); resting limit orders get `maker_share` of the volume the bar
trades at or through their price (`World._fill_resting`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from okxlab.errors import UserError
from okxlab.marketdata.candles import CandleSeries, load_path, load_shipped, stitch
from okxlab.simulator.instruments import DEFAULT_SPECS, InstrumentSpec, load_specs
from okxlab.simulator.pricepath import PricePath

MAX_BOOK_DEPTH = 400  # OKX serves at most 400 levels per side on market/books
INDEX_WINDOW_MS = 60_000  # without spot data, the index is the perpetual's average price over the last minute
BASIS_WINDOW_MS = 300_000  # the basis (perpetual - spot) in the mark price is averaged over five minutes


@dataclass(frozen=True)
class BookModel:
    half_spread_bps: float = 0.5
    level_step_bps: float = 1.0
    level_seconds: float = 1.0  # the first level holds this many seconds of the bar's quote volume
    min_level_usd: float = 1_000.0  # ... and never less than this (quiet or zero-volume bars)
    maker_share: float = 0.1  # share of the volume traded at or through a resting order's price it fills


@dataclass(frozen=True)
class Level:
    px: float
    lots: int  # size in lots (contracts * 1/lotSz for swaps, base * 1/lotSz for spot)


class MarketData:
    """Instrument specs plus one PricePath per instrument that has data."""

    def __init__(self, series: list[CandleSeries], specs: dict[str, InstrumentSpec] | None = None,
                 book: BookModel | None = None):
        known = dict(specs or DEFAULT_SPECS)
        self.book_model = book or BookModel()
        by_inst: dict[str, list[CandleSeries]] = {}
        for s in series:
            if s.inst_id not in known:
                raise UserError(f"candle data for {s.inst_id} ({s.source or 'given data'}): no instrument spec for it "
                                f"(known: {', '.join(known)}); give its public/instruments row with --instruments FILE")
            by_inst.setdefault(s.inst_id, []).append(s)
        # Listed are the instruments with data: a spec alone would be an instrument nothing can trade.
        self.specs = {k: v for k, v in known.items() if k in by_inst}
        self.paths: dict[str, PricePath] = {k: PricePath(self.specs[k], stitch(v)) for k, v in by_inst.items()}
        self._mark_memo: dict[str, tuple[int, float | None]] = {}  # inst -> (t, mark at t): asked often per tick
        # instId -> {fundingTime: (fundingRate, realizedRate)} given with --data: replaces the funding model
        self.funding_history: dict[str, dict[int, tuple[float, float]]] = {}

    @classmethod
    def load(cls, data_paths: tuple[str | Path, ...] = (), shipped: bool = True,
             book: BookModel | None = None, instrument_paths: tuple[str | Path, ...] = ()) -> MarketData:
        """The shipped candles plus any `--data` files or directories (those come first: given data
        replaces shipped bars of the same instrument where they overlap at the same or finer bar), for the
        shipped instruments plus those of any `--instruments` files (a public/instruments answer each), and any
        funding-rate history files among `data_paths`."""
        specs = dict(DEFAULT_SPECS)
        for path in instrument_paths:
            first = {kind: 1 + max([s.code for s in specs.values() if s.inst_type == kind] or [0])
                     for kind in ("SPOT", "SWAP")}
            specs.update(load_specs(path, first))
        candle_paths, funding_files = split_funding_files(data_paths)
        given = [s for p in candle_paths for s in load_path(p)]
        series = given + (load_shipped() if shipped else [])
        market = cls(_prefer_given(given, series), specs, book=book)
        for f in funding_files:
            market.add_funding_history(f)
        return market

    def add_funding_history(self, path: str | Path) -> None:
        """Read a funding-rate history CSV (columns instId, fundingTime (ms), fundingRate, realizedRate, as OKX's
        public/funding-rate-history gives them); its rates replace the funding model at those times."""
        import pandas as pd

        try:
            frame = pd.read_csv(path, dtype={"instId": str})
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise UserError(f"cannot read funding-rate file {path}: {exc}") from None
        missing = [c for c in ("instId", "fundingTime", "fundingRate") if c not in frame.columns]
        if missing:
            raise UserError(f"funding-rate file {path} lacks column(s) {', '.join(missing)} (needs instId, "
                            "fundingTime, fundingRate, realizedRate)")
        period = 8 * 3_600_000
        for row in frame.itertuples(index=False):
            inst_id = str(row.instId)
            spec = self.specs.get(inst_id)
            if spec is None or not spec.is_swap:
                raise UserError(f"funding-rate file {path}: {inst_id} is not a perpetual swap the simulator lists")
            try:
                ts, rate = int(row.fundingTime), float(row.fundingRate)
                realized = getattr(row, "realizedRate", None)
                realized = rate if realized is None or pd.isna(realized) else float(realized)
            except (TypeError, ValueError):
                raise UserError(f"funding-rate file {path}: a row of {inst_id} is not numbers") from None
            if ts % period or not (abs(rate) < 1 and abs(realized) < 1):
                raise UserError(f"funding-rate file {path}: {inst_id} at {ts}: funding times are 00:00, 08:00 and "
                                "16:00 UTC (ms multiples of 8 h) and rates are fractions (0.0001 = 0.01 %)")
            self.funding_history.setdefault(inst_id, {})[ts] = (rate, realized)

    def spec(self, inst_id: str) -> InstrumentSpec | None:
        return self.specs.get(inst_id)

    def path(self, inst_id: str) -> PricePath | None:
        return self.paths.get(inst_id)

    def state(self, inst_id: str, t: int) -> str:
        path = self.paths.get(inst_id)
        return path.state(t) if path else "suspend"

    def last(self, inst_id: str, t: int) -> float | None:
        path = self.paths.get(inst_id)
        return path.last_at(t) if path else None

    # ---- index and mark prices ----------------------------------------------------------------------
    def _spot_of(self, spec: InstrumentSpec) -> PricePath | None:
        return self.paths.get(f"{spec.base_ccy}-{spec.quote_ccy}") if spec.is_swap else None

    def index_price(self, inst_id: str, t: int) -> float | None:
        """The index at t (raw, off the tick grid): the spot price where the world has spot data at t, else
        the instrument's own average price over the last `INDEX_WINDOW_MS` (a smoothed stand-in for the spot
        index, lagging the last price a little). Spot instruments: their own price. None without a price."""
        spec = self.specs.get(inst_id)
        path = self.paths.get(inst_id)
        if spec is None or path is None or path.price_at(t) is None:
            return None
        if not spec.is_swap:
            return path.price_at(t)
        spot = self._spot_of(spec)
        px = spot.price_at(t) if spot is not None else None
        return px if px is not None else path.average(t - INDEX_WINDOW_MS, t)

    def mark_price(self, inst_id: str, t: int) -> float | None:
        """The mark price at t (raw): index + basis, the basis being the perpetual's average minus the spot's
        average over the last `BASIS_WINDOW_MS` where spot data covers t, else 0 (the index is then already
        the perpetual's smoothed price). Spot instruments: their own price. None without a price."""
        memo = self._mark_memo.get(inst_id)
        if memo is not None and memo[0] == t:
            return memo[1]
        idx = self.index_price(inst_id, t)
        spec = self.specs.get(inst_id)
        if idx is not None and spec is not None and spec.is_swap:
            spot = self._spot_of(spec)
            if spot is not None and spot.price_at(t) is not None:
                swap_avg = self.paths[inst_id].average(t - BASIS_WINDOW_MS, t)
                spot_avg = spot.average(t - BASIS_WINDOW_MS, t)
                if swap_avg is not None and spot_avg is not None:
                    idx += swap_avg - spot_avg
        self._mark_memo[inst_id] = (t, idx)
        return idx

    def ranges(self) -> dict[str, dict[str, int]]:
        return {k: {"start": p.start_ms, "end": p.end_ms} for k, p in sorted(self.paths.items())}

    # ---- books --------------------------------------------------------------------------------------
    def touch(self, spec: InstrumentSpec, mid: float) -> tuple[float, float]:
        """(best ask, best bid) around `mid`."""
        tick = spec.tick_sz
        half = max(mid * self.book_model.half_spread_bps / 1e4, tick)
        ask1 = spec.round_px(math.ceil(round((mid + half) / tick, 6)) * tick)
        bid1 = spec.round_px(math.floor(round((mid - half) / tick, 6)) * tick)
        return ask1, bid1

    def level_usd(self, inst_id: str, t: int, mid: float) -> float:
        """Notional of the first book level at t: `level_seconds` of the quote volume of the base bar covering t
        (base volume x `mid` / bar seconds), at least `min_level_usd`."""
        m = self.book_model
        path = self.paths.get(inst_id)
        per_ms = path.base_volume_rate(t) if path is not None else 0.0
        return max(m.min_level_usd, per_ms * 1000.0 * m.level_seconds * mid)

    def levels(self, spec: InstrumentSpec, mid: float, ask: bool, depth: int = MAX_BOOK_DEPTH,
               level_usd: float | None = None, taken: int = 0) -> Iterator[Level]:
        """Book levels on one side, best first, generated lazily (a market order reads only what it takes).
        `level_usd`: the first level's notional (default: the fixed `min_level_usd`); `taken`: lots already
        taken from the top of this side (depletion), missing from the best levels."""
        m = self.book_model
        first_usd = m.min_level_usd if level_usd is None else level_usd
        step = max(spec.tick_sz, spec.round_px(mid * m.level_step_bps / 1e4))
        first = self.touch(spec, mid)[0 if ask else 1]
        unit = spec.lot_sz * spec.ct_val  # base units per lot
        shown = 0
        i = 0
        while shown < depth:
            px = spec.round_px(first + i * step if ask else first - i * step)
            if px <= 0:
                return
            lots = max(1, int(first_usd * (1.0 + 0.5 * i) / (px * unit)))
            i += 1
            if taken >= lots:
                taken -= lots
                continue
            lots, taken = lots - taken, 0
            shown += 1
            yield Level(px, lots)

    def book(self, spec: InstrumentSpec, mid: float, depth: int, level_usd: float | None = None,
             taken: tuple[int, int] = (0, 0)) -> tuple[list[Level], list[Level]]:
        """(asks ascending, bids descending) around `mid`, `depth` levels each; `taken`: (ask, bid) lots
        depleted from the top."""
        return (list(self.levels(spec, mid, True, depth, level_usd, taken[0])),
                list(self.levels(spec, mid, False, depth, level_usd, taken[1])))


def _is_funding_file(path: Path) -> bool:
    name = path.name
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        return False
    import pandas as pd

    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, pd.errors.ParserError):
        return False
    return "fundingTime" in header and "fundingRate" in header


def split_funding_files(paths: Iterable[str | Path]) -> tuple[list[str | Path], list[Path]]:
    """--data paths into (candle paths, funding-rate files): a CSV whose header has fundingTime and fundingRate is
    a funding-rate history, given alone or inside a directory of candle files."""
    candles: list[str | Path] = []
    funding: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and _is_funding_file(f))
            funding += found
            if not found or any(f.is_file() and f not in found and ".csv" in f.name for f in path.iterdir()):
                candles.append(p)
        elif path.is_file() and _is_funding_file(path):
            funding.append(path)
        else:
            candles.append(p)
    return candles, funding


def _prefer_given(given: list[CandleSeries], series: list[CandleSeries]) -> list[CandleSeries]:
    """Drop shipped series of an instrument when given data for it is at least as fine (stitching then
    fills only the times the given data does not cover, from coarser shipped series)."""
    finest_given: dict[str, int] = {}
    for s in given:
        finest_given[s.inst_id] = min(finest_given.get(s.inst_id, 1 << 62), s.bar_ms)
    out = list(given)
    for s in series[len(given):]:
        if s.inst_id in finest_given and s.bar_ms <= finest_given[s.inst_id]:
            continue
        out.append(s)
    return out


def walk(levels: Iterable[Level], lots: int, limit_px: float | None, buy: bool) -> list[tuple[float, int]]:
    """Take up to `lots` from `levels` (best first), not past `limit_px`: [(price, lots), ...]."""
    out: list[tuple[float, int]] = []
    left = lots
    for lvl in levels:
        if left <= 0:
            break
        if limit_px is not None and (lvl.px > limit_px + 1e-12 if buy else lvl.px < limit_px - 1e-12):
            break
        take = min(left, lvl.lots)
        out.append((lvl.px, take))
        left -= take
    return out
