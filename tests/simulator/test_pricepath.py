"""The intra-bar price path, crossings, and candles at a clock: nothing after the clock is ever served."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okxlab.marketdata.bars import parse_bar
from okxlab.marketdata.candles import StitchedBars
from okxlab.simulator.instruments import DEFAULT_SPECS
from okxlab.simulator.pricepath import PricePath

H = 3_600_000
SPEC = DEFAULT_SPECS["ETH-USDT-SWAP"]

def path_of(bars: list[tuple[float, float, float, float]], start: int = 0, d: int = 3 * H) -> PricePath:
    n = len(bars)
    o, h, lo, c = (np.array(col, dtype=float) for col in zip(*bars, strict=True))
    ts = np.arange(n, dtype=np.int64) * d + start
    return PricePath(SPEC, StitchedBars("ETH-USDT-SWAP", ts, np.full(n, d, dtype=np.int64), o, h, lo, c, np.ones(n)))

def test_up_bar_visits_low_then_high_and_down_bar_high_then_low() -> None:
    p = path_of([(100, 110, 90, 105), (104, 108, 95, 96)])  # 3h bars: extremes at +1h and +2h
    assert [p.price_at(t) for t in (0, H, 2 * H)] == [100, 90, 110]
    assert p.price_at(3 * H) == 104  # at a boundary: the next bar's open, not the close
    assert [p.price_at(t) for t in (4 * H, 5 * H)] == [108, 95]
    assert p.price_at(H // 2) == 95 and p.price_at(6 * H) is None
    assert p.state(-1) == "preopen" and p.state(0) == "live" and p.state(6 * H) == "suspend"

def test_first_cross_times_prices_and_gaps() -> None:
    p = path_of([(100, 110, 90, 105), (104, 108, 95, 96), (80, 85, 79, 84)])
    down = p.first_cross(0, 9 * H, 95, down=True)
    assert (down.ts, down.px) == (H // 2, 95)
    assert p.first_cross(0, H // 2 - 1, 95, down=True) is None  # not yet by then
    up = p.first_cross(H, 9 * H, 108, down=False)
    assert up.px == 108 and H < up.ts < 2 * H
    gap = p.first_cross(4 * H, 9 * H, 90, down=True)  # 96 close, then a gap to an 80 open
    assert (gap.ts, gap.px) == (6 * H, 80)
    assert p.first_cross(0, 9 * H, 200, down=False) is None

def test_candles_at_a_clock_are_built_from_the_path_so_far() -> None:
    p = path_of([(100, 104, 90, 103), (103, 108, 95, 96)], d=H)
    t = int(1.25 * H)  # the 2H bar in progress: the first 1h bar, then the second bar rising towards 108
    rows = p.candles("2H", t)
    assert len(rows) == 1
    ts, o, h, lo, c, _vol, confirmed = rows[0]
    assert (ts, o, lo, confirmed) == (0, 100, 90, False)
    assert c == h == p.price_at(t) == 106.75  # the 108 high comes later, so it is not shown yet
    closed = p.candles("1H", 2 * H)
    assert [(r[0], r[6]) for r in closed] == [(H, True), (0, True)]


@pytest.fixture(scope="module")
def eth(market) -> PricePath:
    return market.path("ETH-USDT-SWAP")

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offset=st.integers(min_value=0, max_value=100 * 86_400_000),
       bar=st.sampled_from(["5m", "15m", "1H", "4H", "1D", "1Dutc"]))
def test_no_candle_or_value_after_the_clock_is_served(eth: PricePath, offset: int, bar: str) -> None:
    t = eth.start_ms + offset
    spec = parse_bar(bar)
    rows = eth.candles(bar, t, limit=300)
    if spec.start(t) >= eth.start_ms:
        assert rows, "inside the data, the bar in progress is always visible"
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    live = [r for r in rows if not r[6]]
    assert len(live) <= 1
    for ts, _o, _h, _lo, _c, _v, confirmed in rows:
        assert ts <= t
        if confirmed:
            assert spec.end(ts) <= t
    if live:
        ts, o, h, lo, c, _v, _ = live[0]
        assert spec.start(t) == ts <= t < spec.end(ts)
        assert abs(c - eth.price_at(t)) < 1e-9 and lo - 1e-9 <= c <= h + 1e-9
        # The bar in progress never shows the part of its range that lies after the clock.
        seen_hi = max(eth.price_at(x) for x in np.linspace(ts, t, 400).astype(np.int64))
        assert h >= seen_hi - 1e-6
        full = eth.resampled(spec)[0]
        k = np.searchsorted(full.ts, ts)
        if k < len(full) and full.ts[k] == ts:
            assert h <= full.high[k] + 1e-9 and lo >= full.low[k] - 1e-9


def test_volume_through_a_price_is_the_bars_volume_times_the_time_spent_there() -> None:
    p = path_of([(100, 110, 90, 105)])  # volume 1; 100 -> 90 (1h) -> 110 (1h) -> 105 (1h)
    assert p.volume_through(0, 111, down=True) == pytest.approx(1.0)  # always at or below 111
    assert p.volume_through(0, 90, down=True) == pytest.approx(0.0)  # the low is only touched
    # at or below 95: the second half of the first leg and the first quarter of the second
    assert p.volume_through(0, 95, down=True) == pytest.approx((0.5 + 0.25) / 3)
    assert p.volume_through(H, 95, down=True) == pytest.approx(0.25 / 3)  # only from t0 on
    assert p.volume_through(0, 107.5, down=False) == pytest.approx((0.125 + 0.5) / 3)  # at or above (sells)
    assert p.volume_through(3 * H, 95, down=True) == 0.0  # no bar there


def test_the_average_price_integrates_the_path() -> None:
    p = path_of([(100, 110, 90, 105)])
    assert p.average(0, H) == pytest.approx(95.0)
    assert p.average(0, 3 * H) == pytest.approx((95 + 100 + 107.5) / 3)
    assert p.average(-H, H) == pytest.approx(95.0)  # only the part with data counts
    assert p.average(3 * H, 4 * H) is None
