"""Metrics loaded from ledger rows, and the leaderboard with its baselines, on SQLite and Postgres."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from okxlab.db.session import session_scope
from okxlab.review.leaderboard import build_leaderboard, default_book, render_table
from okxlab.review.metrics import Window, load_metrics
from okxlab.review.report import day_window
from tests.review.builders import BTC_PATH, DAY, EQUITY, Ledger, at, build_day


def _returns(path: list[float]) -> np.ndarray:
    values = np.asarray(path, dtype=float)
    return values[1:] / values[:-1] - 1.0


def test_agent_metrics_from_the_ledger(any_db: str) -> None:
    with session_scope(any_db) as s:
        build_day(s)
    with session_scope(any_db) as s:
        m = load_metrics(s, "alpha", "sim", day_window(DAY))
    p, a = m.performance, m.activity
    # the window opens at the last snapshot before it (20:00 the day before)
    assert (m.opening, m.opened_at) == (10_000.0, at(-4))
    assert p.total_return == pytest.approx(0.07)
    assert p.periods == 6 and p.periods_per_year == pytest.approx(6 * 365.25)
    r = _returns(EQUITY["alpha"])
    assert p.sharpe == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(6 * 365.25))
    assert p.max_drawdown.depth == pytest.approx(1 - 10_200 / 10_250)
    assert (p.max_drawdown.peak_at, p.max_drawdown.trough_at, p.max_drawdown.recovered_at) == (at(4), at(8), at(12))
    # two round trips closed that day (+290 net, −110 net), one still open
    assert (p.trades, p.open_trades, p.wins, p.losses) == (2, 1, 1, 1)
    assert p.win_rate == 0.5 and p.profit_factor == pytest.approx(290 / 110)
    assert p.avg_holding_seconds == 7 * 3600
    assert p.exit_reasons == {"stop_loss": 1, "take_profit": 1}
    assert a.fills == 4 and a.fees == 20.0 and a.avg_slippage_bps == pytest.approx(4.0)
    assert a.decisions == {"accept": 1, "amend": 1, "reject": 1}
    assert a.rejected_by_reason == {"MAX_LEVERAGE": 1} and a.amended_by_reason == {"SIZE_CAPPED": 1}
    assert a.invalid_plans == 1
    assert (a.llm.calls, a.llm.cached, a.llm.tokens_in, a.llm.tokens_out) == (3, 1, 3200, 450)
    assert a.llm.cost_usd == pytest.approx(0.0011)
    assert a.runs == {"completed": 6}
    plan = a.latency["plan"]  # 110, 120, … 160 ms that day; numpy's linear percentiles
    assert (plan.count, plan.p50_ms, plan.p95_ms) == (6, 135.0, 157.5)
    assert list(a.latency) == ["snapshot", "quality", "features", "plan", "validate", "risk", "order"]


def test_a_new_agent_opens_at_its_initial_equity(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as s:
        ledger = Ledger(s)
        ledger.agent("fresh", initial_equity=5_000.0)
        ledger.run("fresh", at(4), equity=4_990.0)
        ledger.run("fresh", at(8), equity=5_100.0)
    with session_scope(sqlite_db) as s:
        m = load_metrics(s, "fresh", "sim", Window())
    assert (m.opening, m.opened_at) == (5_000.0, at(4))
    assert m.performance.total_return == pytest.approx(0.02)
    assert m.performance.max_drawdown.depth == pytest.approx(0.002)


def test_leaderboard_ranks_agents_beside_the_baselines(any_db: str) -> None:
    with session_scope(any_db) as s:
        build_day(s)
    with session_scope(any_db) as s:
        board = build_leaderboard(s, "sim", day_window(DAY))
    data = board.to_json()
    assert data["version"] == 1 and data["book"] == "sim"
    assert [(e["rank"], e["agent"]) for e in data["agents"]] == [(1, "alpha"), (2, "beta"), (3, "flat")]
    assert [e["return"] for e in data["agents"]] == pytest.approx([0.07, 0.003, 0.0])
    cash, bh = data["baselines"]
    assert cash == {"name": "cash", "return": 0.0, "symbol": None, "price_start": None, "price_end": None,
                    "start": None, "end": None, "note": None}
    # buy-and-hold from the last price before the window (100,000) to the last in it (103,000)
    assert (bh["name"], bh["symbol"], bh["price_start"], bh["price_end"]) == ("buy_and_hold", "BTC-USDT-SWAP",
                                                                              100_000.0, 103_000.0)
    assert bh["return"] == pytest.approx(0.03)
    alpha, beta, flat = data["agents"]
    expected = (_returns(EQUITY["alpha"]) - _returns(BTC_PATH)).sum()
    assert alpha["vs_buy_and_hold"]["diff"] == pytest.approx(expected)
    assert alpha["vs_buy_and_hold"]["periods"] == 6
    assert alpha["vs_next"]["versus"] == "beta"
    assert alpha["vs_next"]["diff"] == pytest.approx((_returns(EQUITY["alpha"]) - _returns(EQUITY["beta"])).sum())
    assert beta["vs_next"]["versus"] == "flat" and flat["vs_next"] is None
    assert flat["vs_cash"] == {"versus": "cash", "diff": 0.0, "low": 0.0, "high": 0.0, "periods": 6,
                               "within_noise": True, "too_few_periods": True}
    for entry in data["agents"]:  # six periods are too few to call any lead real, whatever the interval says
        test = entry["vs_buy_and_hold"]
        assert test["low"] <= test["high"] and test["within_noise"] and test["too_few_periods"]
    assert data["noise"] == {"method": "paired circular block bootstrap", "statistic": "sum of per-period return differences",
                             "samples": 2000, "confidence": 0.95, "seed": 7, "min_periods": 20}
    text = render_table(board)
    lines = text.splitlines()
    order = [line.split()[1] for line in lines[2:7]]
    # one ranking by return, the baselines in their place: alpha 7 %, buy & hold 3 %, beta 0.3 %, cash, flat
    assert order[:3] == ["alpha", "(buy", "beta"]
    assert {"(cash)", "flat"} == set(order[3:])
    assert "+7.00%" in text and "+3.00%" in text


def test_a_steady_lead_over_many_periods_is_real(sqlite_db: str) -> None:
    rng = np.random.default_rng(4)
    with session_scope(sqlite_db) as s:
        ledger = Ledger(s)
        for name in ("steady", "coin"):
            ledger.agent(name)
        steady, coin, btc = 10_000.0, 10_000.0, 100_000.0
        for i in range(60):
            ledger.run("steady", at(4 * i), equity=steady, btc=btc)
            ledger.run("coin", at(4 * i), equity=coin)
            steady *= 1.004 + rng.normal(0, 0.001)
            coin *= 1 + rng.choice([-0.01, 0.01])
            btc *= 1 + rng.normal(0, 0.002)
    with session_scope(sqlite_db) as s:
        board = build_leaderboard(s, "sim")
    top = {e.metrics.agent: e for e in board.entries}
    assert top["steady"].vs_cash.periods == 60 and not top["steady"].vs_cash.within_noise
    assert top["steady"].vs_cash.low > 0
    assert top["coin"].vs_cash.within_noise and not top["coin"].vs_cash.too_few_periods


def test_an_agent_that_stopped_before_the_window_is_ranked_flat(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
        ledger = Ledger(s)
        ledger.agent("retired")
        ledger.run("retired", at(-30), equity=9_000.0, btc=99_000.0)
    with session_scope(sqlite_db) as s:
        board = build_leaderboard(s, "sim", day_window(DAY))
    retired = next(e for e in board.entries if e.metrics.agent == "retired")
    p = retired.metrics.performance
    assert (p.total_return, p.equity_start, p.periods, retired.metrics.opening) == (0.0, 9_000.0, 0, 9_000.0)
    assert retired.vs_cash is not None and retired.vs_cash.periods == 0 and retired.vs_cash.within_noise
    assert [e.metrics.agent for e in board.entries][0] == "alpha"
    beta_or_flat = [e for e in board.entries if e.vs_next is not None and e.vs_next.versus == "retired"]
    assert beta_or_flat and all(e.vs_next.periods == 6 for e in beta_or_flat)


def test_leaderboard_without_benchmark_prices(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as s:
        ledger = Ledger(s)
        ledger.agent("solo")
        ledger.run("solo", at(0), equity=10_000.0)
        ledger.run("solo", at(4), equity=10_100.0)
    with session_scope(sqlite_db) as s:
        data = build_leaderboard(s, "sim").to_json()
    bh = data["baselines"][1]
    assert bh["return"] is None and "no BTC-USDT-SWAP prices" in bh["note"]
    assert data["agents"][0]["vs_buy_and_hold"] is None


def test_default_book_is_the_most_recently_active(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as s:
        assert default_book(s) is None
        build_day(s)
        replay = Ledger(s, "replay:4")
        replay.run("alpha", at(-240), equity=10_000.0, created_at=at(30))
    with session_scope(sqlite_db) as s:
        assert default_book(s) == "replay:4"
        board = build_leaderboard(s, "replay:4", Window(at(-300), at(-200)))
    assert [e.metrics.agent for e in board.entries] == ["alpha"]
    assert board.entries[0].metrics.performance.total_return == 0.0  # opened at its initial equity


def test_window_edges_are_half_open(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    with session_scope(sqlite_db) as s:
        m = load_metrics(s, "alpha", "sim", Window(at(4), at(12)))
    assert list(m.curve.index.to_pydatetime()) == [at(4), at(8)]
    assert m.opening == 10_100.0 and m.opened_at == at(0)
    assert m.performance.total_return == pytest.approx(10_200 / 10_100 - 1)
    assert at(12) - at(8) == timedelta(hours=4)
