"""The leaderboard of one book over a window: every agent ranked by return, beside two baselines on the same
window (cash, and buy-and-hold of the benchmark), each lead tested against noise (noise.py).

The JSON shape (`to_json`, version 1) is stable and documented in docs/review.md: keys may be added, the
existing ones keep their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from okxlab.db.models import EquitySnapshot, MarketSnapshot, Run
from okxlab.domain import DRY_PREFIX
from okxlab.review.metrics import AgentMetrics, Window, load_book_metrics, period_returns
from okxlab.review.noise import NoiseTest, noise_test, paired_curves, paired_with_prices, values_on
from okxlab.review.settings import ReviewSettings

LEADERBOARD_VERSION = 1
CASH = "cash"
BUY_AND_HOLD = "buy_and_hold"


@dataclass(frozen=True)
class Baseline:
    name: str  # "cash" | "buy_and_hold"
    total_return: float | None
    symbol: str | None = None
    price_start: float | None = None
    price_end: float | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "return": self.total_return, "symbol": self.symbol, "price_start": self.price_start,
                "price_end": self.price_end, "start": self.start_at, "end": self.end_at, "note": self.note}


@dataclass
class Entry:
    rank: int
    metrics: AgentMetrics
    vs_cash: NoiseTest | None = None
    vs_buy_and_hold: NoiseTest | None = None
    vs_next: NoiseTest | None = None  # against the agent ranked just below

    def to_json(self) -> dict[str, Any]:
        p, a = self.metrics.performance, self.metrics.activity
        return {"rank": self.rank, "agent": self.metrics.agent, "return": p.total_return,
                "equity_start": p.equity_start, "equity_end": p.equity_end, "first": p.first_at, "last": p.last_at,
                "periods": p.periods, "periods_per_year": p.periods_per_year, "sharpe": p.sharpe, "sortino": p.sortino,
                "max_drawdown": p.max_drawdown.depth, "trades": p.trades, "win_rate": p.win_rate,
                "profit_factor": p.profit_factor, "fees": a.fees if a else None,
                "llm_cost_usd": a.llm.cost_usd if a else None,
                "vs_cash": _json(self.vs_cash), "vs_buy_and_hold": _json(self.vs_buy_and_hold),
                "vs_next": _json(self.vs_next), "performance": p.to_json(), "activity": a.to_json() if a else None}


def _json(test: NoiseTest | None) -> dict[str, Any] | None:
    return test.to_json() if test else None


@dataclass
class Leaderboard:
    book: str
    window: Window
    entries: list[Entry]
    cash: Baseline
    buy_and_hold: Baseline
    prices: pd.Series  # the benchmark's price path (the last price before the window, then those in it)
    settings: ReviewSettings

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {"version": LEADERBOARD_VERSION, "book": self.book, "window": self.window.to_json(),
                "agents": [e.to_json() for e in self.entries],
                "baselines": [self.cash.to_json(), self.buy_and_hold.to_json()],
                "noise": {"method": "paired circular block bootstrap", "statistic": "sum of per-period return differences",
                          "samples": s.bootstrap_samples, "confidence": s.confidence, "seed": s.seed,
                          "min_periods": s.min_periods}}


# ---- which book, which agents --------------------------------------------------------------------------------

def books(s: Session) -> list[str]:
    """Every book with runs, most recently active first (dry-run books are not accounts: left out)."""
    rows = s.execute(select(Run.book, func.max(Run.created_at).label("last"))
                     .where(Run.book.not_like(f"{DRY_PREFIX}%")).group_by(Run.book)
                     .order_by(func.max(Run.created_at).desc(), Run.book)).all()
    return [r.book for r in rows]


def default_book(s: Session) -> str | None:
    """The book whose latest run was created last (wall-clock time, so a replay just run counts as recent)."""
    found = books(s)
    return found[0] if found else None


def book_agents(s: Session, book: str, window: Window) -> list[str]:
    """Agents with runs in the window, or equity in the book by its end."""
    runs = select(Run.agent.label("agent")).where(Run.book == book)
    if window.start is not None:
        runs = runs.where(Run.scheduled_for >= window.start)
    equity = select(EquitySnapshot.agent.label("agent")).where(EquitySnapshot.book == book)
    if window.end is not None:
        runs = runs.where(Run.scheduled_for < window.end)
        equity = equity.where(EquitySnapshot.ts < window.end)
    return sorted(set(s.scalars(select(union(runs, equity).subquery().c.agent))))


def benchmark_prices(s: Session, book: str, symbol: str, window: Window) -> pd.Series:
    """The benchmark's last price seen by the book's runs: the last one before the window, then each in it."""
    base = (select(MarketSnapshot.as_of, MarketSnapshot.last).join(Run, Run.id == MarketSnapshot.run_id)
            .where(Run.book == book, MarketSnapshot.symbol == symbol))
    inside = base
    if window.start is not None:
        inside = inside.where(MarketSnapshot.as_of >= window.start)
    if window.end is not None:
        inside = inside.where(MarketSnapshot.as_of < window.end)
    # Every agent's run sees the same bar: one row per time (its last snapshot) rather than one per agent.
    last = func.row_number().over(partition_by=MarketSnapshot.as_of, order_by=MarketSnapshot.id.desc()).label("last_seen")
    per_time = inside.add_columns(last).subquery()
    rows = list(s.execute(select(per_time.c.as_of, per_time.c.last).where(per_time.c.last_seen == 1)
                          .order_by(per_time.c.as_of)).all())
    if window.start is not None:
        prior = s.execute(base.where(MarketSnapshot.as_of < window.start)
                          .order_by(MarketSnapshot.as_of.desc(), MarketSnapshot.id.desc()).limit(1)).first()
        rows = ([prior] if prior else []) + rows
    series = pd.Series([float(r.last) for r in rows], index=pd.DatetimeIndex([r.as_of for r in rows]), dtype=float)
    return series


def buy_and_hold(prices: pd.Series, symbol: str) -> Baseline:
    if prices.empty:
        return Baseline(BUY_AND_HOLD, None, symbol, note=f"no {symbol} prices in this book's snapshots for the window")
    first, last = float(prices.iloc[0]), float(prices.iloc[-1])
    return Baseline(BUY_AND_HOLD, last / first - 1.0, symbol, first, last, prices.index[0].to_pydatetime(),
                    prices.index[-1].to_pydatetime(), note="1x, no fees or funding")


# ---- the board -------------------------------------------------------------------------------------------------

def _has_curve(m: AgentMetrics) -> bool:
    return m.opening is not None and m.opened_at is not None


def build_leaderboard(s: Session, book: str, window: Window | None = None,
                      settings: ReviewSettings | None = None, *, activity: bool = True) -> Leaderboard:
    settings = settings or ReviewSettings()
    window = window or Window()
    metrics = load_book_metrics(s, book_agents(s, book, window), book, window, activity=activity)
    metrics.sort(key=lambda m: (m.performance.total_return is None, -(m.performance.total_return or 0.0), m.agent))
    prices = benchmark_prices(s, book, settings.benchmark, window)
    kw = {"samples": settings.bootstrap_samples, "confidence": settings.confidence, "seed": settings.seed,
          "min_periods": settings.min_periods}
    entries = []
    for rank, m in enumerate(metrics, start=1):
        entry = Entry(rank, m)
        if _has_curve(m):
            own = period_returns(m.curve, m.opening)
            entry.vs_cash = noise_test(CASH, own, np.zeros_like(own), **kw)
            if not prices.empty:
                bench = paired_with_prices(m.curve, m.opened_at, prices)  # type: ignore[arg-type]
                entry.vs_buy_and_hold = noise_test(BUY_AND_HOLD, own, bench, **kw)
        entries.append(entry)
    for above, below in zip(entries, entries[1:], strict=False):
        a, b = above.metrics, below.metrics
        if _has_curve(a) and _has_curve(b):
            ra, rb = paired_curves(a.curve, a.opening, b.curve, b.opening)  # type: ignore[arg-type]
            above.vs_next = noise_test(b.agent, ra, rb, **kw)
    return Leaderboard(book, window, entries, Baseline(CASH, 0.0), buy_and_hold(prices, settings.benchmark), prices,
                       settings)


def benchmark_curve(lb: Leaderboard, times: pd.DatetimeIndex) -> np.ndarray:
    """The buy-and-hold return at each time (for charts)."""
    if lb.prices.empty:
        return np.full(len(times), np.nan)
    return values_on(lb.prices, times) / float(lb.prices.iloc[0]) - 1.0


# ---- text ------------------------------------------------------------------------------------------------------

def pct(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.2f}%" if signed else f"{value * 100:.2f}%"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def verdict(test: NoiseTest | None) -> str:
    """A lead and its interval in one cell: '+1.20% [-0.40%, +2.80%] noise'."""
    if test is None:
        return "-"
    if test.low is None or test.high is None:
        return f"{pct(test.diff)} (too few periods)"
    word = "few periods" if test.too_few_periods else "noise" if test.within_noise else "real"
    return f"{pct(test.diff)} [{pct(test.low)}, {pct(test.high)}] {word}"


def rows(lb: Leaderboard) -> list[list[str]]:
    """Agents and baselines in one ranking by return (baselines unnumbered), for the text and HTML tables."""
    items: list[tuple[float, int, list[str]]] = []
    for e in lb.entries:
        p = e.metrics.performance
        items.append((p.total_return if p.total_return is not None else -np.inf, 0,
                      [str(e.rank), e.metrics.agent, pct(p.total_return), ratio(p.sharpe), ratio(p.sortino),
                       pct(p.max_drawdown.depth, signed=False), str(p.trades), pct(p.win_rate, signed=False),
                       verdict(e.vs_buy_and_hold), verdict(e.vs_next) if e.vs_next else "-"]))
    bh = lb.buy_and_hold
    for base, label in ((lb.cash, "(cash)"), (bh, f"(buy & hold {bh.symbol})")):
        value = base.total_return
        items.append((value if value is not None else -np.inf, 1,
                      ["-", label, pct(value), "-", "-", "-", "-", "-", "-", "-"]))
    items.sort(key=lambda item: (-item[0], item[1]))
    return [cells for _, _, cells in items]


def table(headers: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A plain text table, columns padded to their widest cell."""
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


HEADERS = ["RANK", "AGENT", "RETURN", "SHARPE", "SORTINO", "MAX DD", "TRADES", "WIN", "VS BUY&HOLD [CI]", "VS NEXT [CI]"]


def render_table(lb: Leaderboard) -> str:
    window = f"{_when(lb.window.start)} → {_when(lb.window.end)}"
    head = f"book {lb.book}, window {window}"
    note = (f"intervals: {lb.settings.confidence:.0%} paired block bootstrap of the summed period-return difference "
            f"({lb.settings.bootstrap_samples} samples); 'noise' = the interval contains 0; 'few periods' = fewer than "
            f"{lb.settings.min_periods} periods, never called more than noise")
    if not lb.entries:
        return f"{head}\nno agent has runs or equity in this book and window\n{table(HEADERS, rows(lb))}"
    return f"{head}\n{table(HEADERS, rows(lb))}\n{note}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "…"
