"""Shared candle loaders: OKX bar names and alignment, CSV checks, stitching, resampling that never invents."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from okxlab.marketdata.bars import BarError, bar_from_timeframe, bar_ms, parse_bar, resample
from okxlab.marketdata.candles import CandleDataError, load_candle_file, load_path, load_series, load_shipped
from okxlab.simulator.clock import parse_time


def test_bar_names_lengths_and_alignment() -> None:
    assert bar_ms("4H") == 4 * 3_600_000 and bar_ms("15m") == 900_000
    t = parse_time("2022-09-13T05:00:00Z")
    assert parse_bar("4H").start(t) == parse_time("2022-09-13T04:00:00Z")
    assert parse_bar("1D").start(t) == parse_time("2022-09-12T16:00:00Z")  # Hong Kong midnight
    assert parse_bar("1Dutc").start(t) == parse_time("2022-09-13T00:00:00Z")
    assert parse_bar("6H").start(t) == parse_time("2022-09-13T04:00:00Z")  # 12:00 HK
    assert parse_bar("1Wutc").start(t) == parse_time("2022-09-12T00:00:00Z")  # a Monday
    assert parse_bar("1Mutc").start(t) == parse_time("2022-09-01T00:00:00Z")
    assert parse_bar("1Mutc").end(parse_time("2022-02-01T00:00:00Z")) == parse_time("2022-03-01T00:00:00Z")
    assert bar_from_timeframe("4h") == "4H" and bar_from_timeframe("1d") == "1Dutc"
    for bad in ("1h", "7m", "4Hutc", "", "1d"):
        with pytest.raises(BarError):
            parse_bar(bad)


def test_coarse_bars_built_from_fine_ones_match_okx_own() -> None:
    shipped = {(s.inst_id, s.bar): s for s in load_shipped()}
    fine = shipped[("BTC-USDT-SWAP", "15m")].resample("4H")
    okx_4h = shipped[("BTC-USDT-SWAP", "4H")]
    idx = np.searchsorted(okx_4h.ts, fine.ts)
    assert len(fine) > 600 and np.array_equal(okx_4h.ts[idx], fine.ts)
    for col in ("open", "high", "low", "close"):
        assert np.array_equal(getattr(okx_4h, col)[idx], getattr(fine, col))
    assert np.allclose(okx_4h.volume[idx], fine.volume)


def test_resampling_keeps_only_complete_buckets() -> None:
    m = 60_000
    ts = np.array([0, 5, 10, 15, 25, 30, 35, 40, 45, 50, 55]) * m  # 20-25 missing
    n = len(ts)
    out = resample(ts, np.full(n, 5 * m), np.arange(n) + 1.0, np.arange(n) + 2.0, np.arange(n) + 0.5,
                   np.arange(n) + 1.5, np.ones(n), "15m")
    assert out.ts.tolist() == [0, 30 * m, 45 * m]  # 15-30 has a gap; nothing is invented for it
    assert out.open.tolist()[0] == 1.0 and out.close.tolist()[0] == 3.5 and out.volume.tolist() == [3, 3, 3]


def test_finer_bars_than_the_data_are_absent_and_stitching_prefers_fine_data() -> None:
    one_hour = load_series("BTC-USDT-SWAP", "1H")  # only where the 15m file exists
    assert one_hour.ts[0] == parse_time("2026-01-01T00:00:00Z")
    four_hour = load_series("BTC-USDT-SWAP", "4H")  # 4H file before 2026, 15m-built after
    assert four_hour.ts[0] == parse_time("2022-01-01T00:00:00Z") and four_hour.ts[-1] >= parse_time("2026-04-01T00:00:00Z")
    assert np.all(np.diff(four_hour.ts) == 4 * 3_600_000)
    with pytest.raises(CandleDataError, match="at 1m or finer"):
        load_series("ETH-USDT-SWAP", "1m")


def _write(path: Path, rows: list[str], gz: bool = False) -> Path:
    text = "ts,datetime_utc,open,high,low,close,volume\n" + "\n".join(rows) + "\n"
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_csv_in_the_documented_format_loads_and_bad_files_are_refused(tmp_path: Path) -> None:
    good = _write(tmp_path / "ETH-USDT-SWAP_1m.csv.gz", ["1662940800000,x,1,2,0.5,1.5,10",
                                                         "1662940860000,x,1.5,2,1,1.2,3"], gz=True)
    series = load_candle_file(good)
    assert (series.inst_id, series.bar, len(series)) == ("ETH-USDT-SWAP", "1m", 2)
    assert series.to_frame()["close"].tolist() == [1.5, 1.2]
    assert [s.bar for s in load_path(tmp_path)] == ["1m"]
    cases = {
        "ETH-USDT-SWAP_1m.csv": ["1662940860000,x,1,2,0.5,1.5,10", "1662940800000,x,1,2,0.5,1.5,10"],
        "BTC-USDT_5m.csv": ["1662940860000,x,1,2,0.5,1.5,10"],  # not on a 5m boundary
        "BTC-USDT_1m.csv": ["1662940800000,x,1,2,1.2,1.5,10"],  # low above open
        "ETH-USDT_1m.csv": ["1662940800000,x,abc,2,0.5,1.5,10"],
    }
    for name, rows in cases.items():
        sub = tmp_path / name.replace(".csv", "")
        sub.mkdir()
        with pytest.raises(CandleDataError):
            load_candle_file(_write(sub / name, rows))
    with pytest.raises(CandleDataError, match="must be named"):
        load_candle_file(_write(tmp_path / "prices.csv", ["1662940800000,x,1,2,0.5,1.5,10"]))
    with pytest.raises(CandleDataError, match="does not exist"):
        load_path(tmp_path / "missing")
