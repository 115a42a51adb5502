"""Metrics on known series, checked against hand-worked values and against empyrical (a reference library)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from okxlab.review.metrics import (
    Trade,
    equity_curve,
    max_drawdown,
    median_spacing,
    performance,
    period_returns,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def daily(values: list[float]):  # noqa: ANN201
    return equity_curve((T0 + i * DAY, v) for i, v in enumerate(values))


def test_hand_worked_daily_series() -> None:
    # 100 → 110 → 99 → 108.9: returns +10 %, −10 %, +10 %, one point a day.
    p = performance(daily([100.0, 110.0, 99.0, 108.9]))
    assert p.total_return == pytest.approx(0.089)
    assert p.periods == 3
    assert p.period_seconds == 86_400
    assert p.periods_per_year == pytest.approx(365.25)
    # mean = 1/30, sample std = 0.2/√3 → daily Sharpe 1/(2√3); × √365.25
    assert p.sharpe == pytest.approx(math.sqrt(365.25 / 12))
    # downside deviation √(0.01/3) = 0.1/√3 → daily Sortino 1/√3; × √365.25
    assert p.sortino == pytest.approx(math.sqrt(365.25 / 3))
    assert p.volatility == pytest.approx(0.2 / math.sqrt(3) * math.sqrt(365.25))
    dd = p.max_drawdown
    assert dd.depth == pytest.approx(0.10)
    assert (dd.peak_at, dd.trough_at, dd.recovered_at) == (T0 + DAY, T0 + 2 * DAY, None)


def test_drawdown_recovery_date_and_no_drawdown() -> None:
    dd = max_drawdown(daily([100.0, 120.0, 90.0, 110.0, 120.0, 130.0]))
    assert dd.depth == pytest.approx(0.25)
    assert (dd.peak_at, dd.trough_at, dd.recovered_at) == (T0 + DAY, T0 + 2 * DAY, T0 + 4 * DAY)
    rising = max_drawdown(daily([100.0, 101.0, 102.0]))
    assert rising.depth == 0.0 and rising.peak_at is None


def test_opening_value_counts_as_the_first_point() -> None:
    with_opening = performance(daily([110.0, 99.0, 108.9]), opening=100.0)
    whole = performance(daily([100.0, 110.0, 99.0, 108.9]))
    assert with_opening.total_return == pytest.approx(whole.total_return)
    assert with_opening.sharpe == pytest.approx(whole.sharpe)
    assert with_opening.max_drawdown.depth == pytest.approx(0.10)
    np.testing.assert_allclose(period_returns(daily([110.0, 99.0]), 100.0), [0.1, -0.1])


def test_undefined_ratios_are_none() -> None:
    flat = performance(daily([100.0, 100.0, 100.0]))
    assert flat.total_return == 0.0 and flat.sharpe is None and flat.sortino is None
    up = performance(daily([100.0, 101.0, 103.0]))
    assert up.sharpe is not None and up.sortino is None  # no downside at all
    one = performance(daily([100.0]))
    assert one.periods == 0 and one.sharpe is None and one.periods_per_year is None
    empty = performance(equity_curve([]))
    assert empty.total_return is None and empty.trades == 0


def test_bar_frequency_from_the_median_spacing() -> None:
    hours = [0, 4, 8, 12, 36, 40, 44]  # one long stop in the middle does not change the bar
    curve = equity_curve((T0 + timedelta(hours=h), 100.0 + h) for h in hours)
    assert median_spacing(curve.index) == 4 * 3600
    assert performance(curve).periods_per_year == pytest.approx(365.25 * 6)


def test_trade_statistics() -> None:
    trades = [
        Trade("BTC-USDT-SWAP", "long", T0, T0 + timedelta(hours=2), 100.0, 104.0, 1.0, 40.0, 10.0, "take_profit"),
        Trade("BTC-USDT-SWAP", "short", T0, T0 + timedelta(hours=4), 100.0, 101.5, 1.0, -15.0, 5.0, "stop_loss"),
        Trade("ETH-USDT-SWAP", "long", T0, T0 + timedelta(hours=6), 10.0, 10.6, 1.0, 6.0, 1.0, "signal"),
        Trade("ETH-USDT-SWAP", "long", T0, None, 10.0, None, 1.0, 0.0, 0.5, None),
    ]
    p = performance(daily([100.0, 101.0]), trades)
    # net: +30, −20, +5 → 2 wins of 3, profit factor 35 / 20, holding 2 h, 4 h, 6 h
    assert (p.trades, p.open_trades, p.wins, p.losses) == (3, 1, 2, 1)
    assert p.win_rate == pytest.approx(2 / 3)
    assert p.profit_factor == pytest.approx(1.75)
    assert (p.gross_profit, p.gross_loss) == (35.0, 20.0)
    assert p.avg_holding_seconds == 4 * 3600
    assert p.exit_reasons == {"signal": 1, "stop_loss": 1, "take_profit": 1}
    only_wins = performance(daily([100.0, 101.0]), trades[:1])
    assert only_wins.profit_factor is None and only_wins.win_rate == 1.0


def test_against_empyrical_on_a_4h_series() -> None:
    empyrical = pytest.importorskip("empyrical")
    rng = np.random.default_rng(11)
    returns = rng.normal(0.0004, 0.01, size=300)
    equity = 10_000 * np.cumprod(1 + returns)
    curve = equity_curve((T0 + timedelta(hours=4 * i), v) for i, v in enumerate(equity))
    p = performance(curve, opening=10_000.0)
    per_year = 6 * 365.25
    assert p.periods_per_year == pytest.approx(per_year)
    assert p.sharpe == pytest.approx(empyrical.sharpe_ratio(returns, annualization=per_year), rel=1e-9)
    assert p.sortino == pytest.approx(empyrical.sortino_ratio(returns, annualization=per_year), rel=1e-9)
    assert p.volatility == pytest.approx(empyrical.annual_volatility(returns, annualization=per_year), rel=1e-9)
    assert p.max_drawdown.depth == pytest.approx(-empyrical.max_drawdown(returns), rel=1e-9)
    assert p.total_return == pytest.approx(empyrical.cum_returns_final(returns), rel=1e-9)
