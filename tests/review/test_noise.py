"""The bootstrap noise test: deterministic, honest at both ends, and the right width for independent data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from okxlab.review.metrics import equity_curve
from okxlab.review.noise import bootstrap_interval, noise_test, paired_curves, paired_with_prices

KW = {"samples": 2000, "confidence": 0.95, "seed": 7}
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def test_same_data_same_interval() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(0, 0.01, 50)
    assert bootstrap_interval(d, **KW) == bootstrap_interval(d, **KW)
    assert bootstrap_interval(d, **KW) != bootstrap_interval(d, **{**KW, "seed": 8})


def test_a_steady_lead_is_real_and_a_coin_flip_is_noise() -> None:
    steady = noise_test("cash", np.full(60, 0.005) + np.tile([0.001, -0.001], 30), np.zeros(60), **KW)
    assert steady.diff == pytest.approx(0.3)
    assert steady.low > 0 and not steady.within_noise
    signs = np.random.default_rng(2).choice([-1.0, 1.0], size=60)
    flips = noise_test("cash", 0.01 * signs, np.zeros(60), **KW)
    assert flips.diff == pytest.approx(0.01 * signs.sum())
    assert flips.low < 0 < flips.high and flips.within_noise


def test_identical_curves_are_within_noise() -> None:
    r = np.array([0.01, -0.02, 0.005])
    test = noise_test("twin", r, r, **KW)
    assert (test.diff, test.low, test.high, test.within_noise) == (0.0, 0.0, 0.0, True)


def test_too_few_periods_never_make_a_lead_real() -> None:
    one = noise_test("cash", np.array([0.05]), np.array([0.0]), **KW)
    assert one.low is None and one.high is None and one.within_noise and one.periods == 1
    six = noise_test("cash", np.full(6, 0.01) + np.arange(6) * 1e-4, np.zeros(6), **KW)
    assert six.low > 0 and six.within_noise and six.too_few_periods  # the interval alone would say "real"
    loose = noise_test("cash", np.full(6, 0.01) + np.arange(6) * 1e-4, np.zeros(6), **KW, min_periods=2)
    assert not loose.within_noise and not loose.too_few_periods


def test_width_matches_the_normal_approximation_for_independent_returns() -> None:
    # For i.i.d. differences the sum has standard deviation σ√n; the 95 % interval is about ±1.96 σ√n.
    rng = np.random.default_rng(5)
    d = rng.normal(0.0, 0.01, 400)
    low, high = bootstrap_interval(d, samples=4000, confidence=0.95, seed=1)
    expected = 2 * 1.96 * d.std(ddof=1) * np.sqrt(len(d))
    assert (high - low) == pytest.approx(expected, rel=0.2)
    assert low < d.sum() < high


def test_pairing_two_curves_on_different_grids() -> None:
    a = equity_curve([(T0, 101.0), (T0 + timedelta(hours=4), 102.0), (T0 + timedelta(hours=8), 103.0)])
    b = equity_curve([(T0, 100.0), (T0 + timedelta(hours=8), 110.0)])
    ra, rb = paired_curves(a, 100.0, b, 100.0)
    np.testing.assert_allclose(ra, [0.01, 102 / 101 - 1, 103 / 102 - 1])
    np.testing.assert_allclose(rb, [0.0, 0.0, 0.1])  # b is flat until its next snapshot


def test_pairing_a_curve_with_a_price_path() -> None:
    prices = pd.Series([50.0, 55.0, 44.0], index=pd.DatetimeIndex([T0 - timedelta(hours=4), T0, T0 + timedelta(hours=4)]))
    curve = equity_curve([(T0, 1.0), (T0 + timedelta(hours=4), 1.0)])
    np.testing.assert_allclose(paired_with_prices(curve, T0 - timedelta(hours=4), prices), [0.1, -0.2])
    # opened at the first point itself (initial equity): the first period is empty, so the price did not move
    np.testing.assert_allclose(paired_with_prices(curve, T0, prices), [0.0, -0.2])
