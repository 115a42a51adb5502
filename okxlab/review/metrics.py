"""Performance metrics per agent over a window: a pure function over an equity curve and its trades, and a
loader that reads both (and the run's activity records) from the database for one (agent, book, window).

Formulas (docs/review.md has the long form). With equity values E_0 (the opening) … E_n:

- period returns r_i = E_i / E_{i-1} − 1, one per equity snapshot (one per run that reached the order stage);
- periods per year P = 365.25 days / median spacing of the snapshots (crypto trades around the clock, so
  calendar time; the median ignores gaps where the pipeline was stopped);
- Sharpe = mean(r) / std(r, ddof=1) × √P, risk-free rate 0;
- Sortino = mean(r) / √(mean(min(r, 0)²)) × √P, target 0 (downside deviation over all periods);
- maximum drawdown = max over t of (1 − E_t / max_{s≤t} E_s), with the peak, trough and recovery times.

These are the conventions of empyrical (Quantopian's), which the tests use as a reference; the code is
numpy/pandas so the pipeline does not carry scipy and friends for three formulas. The ratios are None when
they are undefined (fewer than two returns, zero variance, no downside).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, LargeBinary, cast, func, literal, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from okxlab.db.models import (
    Agent,
    EquitySnapshot,
    Fill,
    LlmCallRecord,
    PlanValidation,
    PositionRecord,
    RiskVerdictRecord,
    Run,
    StageRecord,
)
from okxlab.domain import STAGES

YEAR = timedelta(days=365.25)
Values = Sequence[float] | np.ndarray  # a sample of durations (ms)


@dataclass(frozen=True)
class Window:
    """A half-open interval of market time [start, end); None is unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}


@dataclass(frozen=True)
class Trade:
    """One round trip (a PositionRecord) in plain types."""

    symbol: str
    side: str
    opened_at: datetime
    closed_at: datetime | None
    entry_price: float
    exit_price: float | None
    contracts: float
    realized_pnl: float
    fees: float
    exit_reason: str | None

    @property
    def net_pnl(self) -> float:
        return self.realized_pnl - self.fees

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "net_pnl": self.net_pnl}


@dataclass(frozen=True)
class Drawdown:
    depth: float  # a fraction of the peak: 0.12 is 12 % below it
    peak_at: datetime | None
    trough_at: datetime | None
    recovered_at: datetime | None  # None: not back at the peak by the end of the window


@dataclass(frozen=True)
class Performance:
    first_at: datetime | None
    last_at: datetime | None
    equity_start: float | None  # the opening value
    equity_end: float | None
    total_return: float | None
    periods: int  # number of period returns
    period_seconds: float | None  # median spacing of the snapshots
    periods_per_year: float | None
    sharpe: float | None
    sortino: float | None
    volatility: float | None  # annualised standard deviation of period returns
    max_drawdown: Drawdown
    trades: int  # round trips closed in the window
    open_trades: int
    wins: int
    losses: int
    win_rate: float | None
    profit_factor: float | None  # None when there is no losing trade
    gross_profit: float
    gross_loss: float
    avg_holding_seconds: float | None
    exit_reasons: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def equity_curve(points: Iterable[tuple[datetime, float]]) -> pd.Series:
    """A curve from (time, equity) pairs: sorted, one value per time (the last given wins)."""
    pairs = list(points)
    index = pd.DatetimeIndex([p[0] for p in pairs])
    return _one_per_time(pd.Series([float(p[1]) for p in pairs], index=index, dtype=float))


def _one_per_time(curve: pd.Series) -> pd.Series:
    curve = curve[~curve.index.duplicated(keep="last")]
    return curve.sort_index(kind="stable")



def _values(curve: pd.Series, opening: float | None) -> np.ndarray:
    values = curve.to_numpy(dtype=float)
    return np.concatenate([[opening], values]) if opening is not None else values


def period_returns(curve: pd.Series, opening: float | None = None) -> np.ndarray:
    """Simple returns between consecutive values; `opening` stands just before the first point."""
    values = _values(curve, opening)
    if len(values) < 2:
        return np.array([], dtype=float)
    return values[1:] / values[:-1] - 1.0


def median_spacing(index: pd.DatetimeIndex) -> float | None:
    """Median time between consecutive points, in seconds (None with fewer than two points)."""
    if len(index) < 2:
        return None
    gaps = np.asarray((index[1:] - index[:-1]).total_seconds(), dtype=float)
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if len(gaps) else None


def periods_per_year(period_seconds: float | None) -> float | None:
    return YEAR.total_seconds() / period_seconds if period_seconds else None


def sharpe_ratio(returns: np.ndarray, per_year: float | None) -> float | None:
    if per_year is None or len(returns) < 2:
        return None
    sd = float(np.std(returns, ddof=1))
    if sd <= 1e-15:
        return None
    return float(np.mean(returns) / sd * math.sqrt(per_year))


def sortino_ratio(returns: np.ndarray, per_year: float | None) -> float | None:
    if per_year is None or len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside <= 1e-15:
        return None
    return float(np.mean(returns) / downside * math.sqrt(per_year))


def max_drawdown(curve: pd.Series, opening: float | None = None) -> Drawdown:
    """The deepest fall from a running peak, with when the peak and the trough were and when it recovered.

    The opening value is taken to stand at the first point's time."""
    if curve.empty:
        return Drawdown(0.0, None, None, None)
    values = _values(curve, opening)
    times = list(curve.index.to_pydatetime())
    if opening is not None:
        times = [times[0], *times]
    peaks = np.maximum.accumulate(values)
    dd = 1.0 - values / peaks
    trough = int(np.argmax(dd))
    depth = float(dd[trough])
    if depth <= 0.0:
        return Drawdown(0.0, None, None, None)
    peak = int(np.argmax(values[: trough + 1]))
    after = np.nonzero(values[trough:] >= values[peak])[0]
    recovered = times[trough + int(after[0])] if len(after) else None
    return Drawdown(depth, times[peak], times[trough], recovered)


def performance(curve: pd.Series, trades: Sequence[Trade] = (), *, opening: float | None = None) -> Performance:
    """Every equity and trade metric for one curve (see the module docstring for the formulas).

    `curve`: equity by time (`equity_curve`); `opening`: the equity just before the first point (the last
    snapshot before the window, or the initial equity), None to measure from the first point. `trades`:
    round trips; those with `closed_at` count as trades, the others as open.
    """
    values = _values(curve, opening)
    returns = period_returns(curve, opening)
    spacing = median_spacing(curve.index)
    per_year = periods_per_year(spacing)
    vol = float(np.std(returns, ddof=1) * math.sqrt(per_year)) if per_year and len(returns) >= 2 else None
    closed = [t for t in trades if t.closed_at is not None]
    pnl = [t.net_pnl for t in closed]
    gross_profit = float(sum(p for p in pnl if p > 0))
    gross_loss = float(-sum(p for p in pnl if p < 0))
    wins, losses = sum(p > 0 for p in pnl), sum(p < 0 for p in pnl)
    holds = [(t.closed_at - t.opened_at).total_seconds() for t in closed if t.closed_at is not None]
    return Performance(
        first_at=curve.index[0].to_pydatetime() if len(curve) else None,
        last_at=curve.index[-1].to_pydatetime() if len(curve) else None,
        equity_start=float(values[0]) if len(values) else None,
        equity_end=float(values[-1]) if len(values) else None,
        total_return=float(values[-1] / values[0] - 1.0) if len(values) else None,
        periods=len(returns),
        period_seconds=spacing,
        periods_per_year=per_year,
        sharpe=sharpe_ratio(returns, per_year),
        sortino=sortino_ratio(returns, per_year),
        volatility=vol,
        max_drawdown=max_drawdown(curve, opening),
        trades=len(closed),
        open_trades=len(trades) - len(closed),
        wins=wins,
        losses=losses,
        win_rate=wins / len(closed) if closed else None,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        avg_holding_seconds=float(np.mean(holds)) if holds else None,
        exit_reasons=dict(sorted(Counter(t.exit_reason or "unknown" for t in closed).items())),
    )


# ---- the database side --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LlmUsage:
    calls: int = 0
    cached: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float | None
    p95_ms: float | None
    queue_wait_p50_ms: float | None
    queue_wait_p95_ms: float | None


@dataclass(frozen=True)
class Activity:
    """What the pipeline did for the agent in the window (by the runs' scheduled time, fills' time)."""

    runs: dict[str, int]  # by final status
    fills: int
    fees: float  # every fill's fee, opening and closing
    avg_slippage_bps: float | None  # plain mean over fills that have a reference price
    decisions: dict[str, int]  # accept / amend / reject
    rejected_by_reason: dict[str, int]
    amended_by_reason: dict[str, int]
    invalid_plans: int
    llm: LlmUsage
    latency: dict[str, Latency]  # by stage, pipeline order

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AgentMetrics:
    agent: str
    book: str
    window: Window
    curve: pd.Series  # equity snapshots in the window
    opening: float | None  # equity just before the first point
    opened_at: datetime | None  # the time `opening` stands for (the prior snapshot's, else the first point's)
    trades: list[Trade]
    performance: Performance
    activity: Activity | None  # None when not asked for (the dashboard's arena shows none of it)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"agent": self.agent, "book": self.book, "window": self.window.to_json(),
                "opened_at": self.opened_at, "performance": self.performance.to_json(),
                "activity": self.activity.to_json() if self.activity else None}


def _within(column: Any, window: Window) -> list[Any]:
    conditions = []
    if window.start is not None:
        conditions.append(column >= window.start)
    if window.end is not None:
        conditions.append(column < window.end)
    return conditions


def _percentile(values: Values, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None  # linear interpolation (numpy's default)


def load_curve(s: Session, agent: str, book: str, window: Window) -> tuple[pd.Series, float | None, datetime | None]:
    """The equity snapshots in the window, and the opening: the last snapshot before the window, else the
    agent's initial equity if its first snapshot in this book falls inside the window."""
    rows = s.execute(select(EquitySnapshot.ts, EquitySnapshot.equity)
                     .where(EquitySnapshot.agent == agent, EquitySnapshot.book == book,
                            *_within(EquitySnapshot.ts, window))
                     .order_by(EquitySnapshot.ts, EquitySnapshot.id)).all()
    curve = equity_curve((r.ts, r.equity) for r in rows)
    prior = None
    if window.start is not None:
        prior = s.execute(select(EquitySnapshot.ts, EquitySnapshot.equity)
                          .where(EquitySnapshot.agent == agent, EquitySnapshot.book == book,
                                 EquitySnapshot.ts < window.start)
                          .order_by(EquitySnapshot.ts.desc(), EquitySnapshot.id.desc()).limit(1)).first()
    if prior is not None:
        return curve, float(prior.equity), prior.ts
    if curve.empty:
        return curve, None, None
    initial = s.scalar(select(Agent.initial_equity).where(Agent.name == agent))
    return curve, float(initial) if initial else None, curve.index[0].to_pydatetime()


def load_trades(s: Session, agent: str, book: str, window: Window) -> list[Trade]:
    """Round trips closed in the window, and those still open at its end that were opened before it ended."""
    closed = select(PositionRecord).where(PositionRecord.agent == agent, PositionRecord.book == book,
                                          PositionRecord.closed_at.is_not(None), *_within(PositionRecord.closed_at, window))
    # Open at the window's end: opened before it, and not closed by then.
    not_closed = PositionRecord.closed_at.is_(None)
    if window.end is not None:
        not_closed = not_closed | (PositionRecord.closed_at >= window.end)
    still_open = select(PositionRecord).where(PositionRecord.agent == agent, PositionRecord.book == book, not_closed,
                                              *([PositionRecord.opened_at < window.end] if window.end else []))
    out = []
    for query, is_open in ((closed, False), (still_open, True)):
        for p in s.scalars(query.order_by(PositionRecord.opened_at, PositionRecord.id)):
            out.append(Trade(symbol=p.symbol, side=p.side, opened_at=p.opened_at,
                             closed_at=None if is_open else p.closed_at, entry_price=p.entry_price,
                             exit_price=None if is_open else p.exit_price, contracts=p.max_contracts,
                             realized_pnl=p.realized_pnl, fees=p.fees, exit_reason=None if is_open else p.exit_reason))
    return out


def load_activity(s: Session, agent: str, book: str, window: Window) -> Activity:
    runs = select(Run.id).where(Run.agent == agent, Run.book == book, *_within(Run.scheduled_for, window))
    statuses = dict(s.execute(select(Run.status, func.count()).where(Run.id.in_(runs)).group_by(Run.status)).all())
    fill_rows = s.execute(select(Fill.fee, Fill.slippage_bps).where(Fill.agent == agent, Fill.book == book,
                                                                    *_within(Fill.ts, window))).all()
    slippage = [r.slippage_bps for r in fill_rows if r.slippage_bps is not None]
    decisions: Counter[str] = Counter()
    rejected: Counter[str] = Counter()
    amended: Counter[str] = Counter()
    for outcome, reasons in s.execute(select(RiskVerdictRecord.outcome, RiskVerdictRecord.reasons)
                                      .where(RiskVerdictRecord.run_id.in_(runs))):
        decisions[outcome] += 1
        target = rejected if outcome == "reject" else amended if outcome == "amend" else None
        if target is not None:
            target.update(reasons or ["unspecified"])
    invalid = s.scalar(select(func.count()).select_from(PlanValidation)
                       .where(PlanValidation.run_id.in_(runs), PlanValidation.valid.is_(False))) or 0
    return Activity(
        runs=dict(sorted(statuses.items())),
        fills=len(fill_rows),
        fees=float(sum(r.fee for r in fill_rows)),
        avg_slippage_bps=float(np.mean(slippage)) if slippage else None,
        decisions={k: decisions.get(k, 0) for k in ("accept", "amend", "reject")},
        rejected_by_reason=dict(sorted(rejected.items())),
        amended_by_reason=dict(sorted(amended.items())),
        invalid_plans=int(invalid),
        llm=llm_usage(s, runs),
        latency=stage_latency(s, runs),
    )


def llm_usage(s: Session, runs: Any) -> LlmUsage:
    """LLM calls of the given runs (a select of run ids)."""
    llm = s.execute(select(func.count(), func.coalesce(func.sum(LlmCallRecord.tokens_in), 0),
                           func.coalesce(func.sum(LlmCallRecord.tokens_out), 0),
                           func.coalesce(func.sum(LlmCallRecord.cost_usd), 0.0))
                    .where(LlmCallRecord.run_id.in_(runs))).one()
    cached = s.scalar(select(func.count()).select_from(LlmCallRecord)
                      .where(LlmCallRecord.run_id.in_(runs), LlmCallRecord.cached.is_(True))) or 0
    return LlmUsage(calls=int(llm[0]), cached=int(cached), tokens_in=int(llm[1]), tokens_out=int(llm[2]),
                    cost_usd=float(llm[3]))


def stage_latency(s: Session, runs: Any) -> dict[str, Latency]:
    """p50/p95 of each stage's duration and queue wait over the given runs (a select of run ids)."""
    durations: dict[str, list[float]] = {name: [] for name in STAGES}
    waits: dict[str, list[float]] = {name: [] for name in STAGES}
    for stage, duration, wait in s.execute(select(StageRecord.stage, StageRecord.duration_ms, StageRecord.queue_wait_ms)
                                           .where(StageRecord.run_id.in_(runs))):
        if duration is not None:
            durations.setdefault(stage, []).append(duration)
        if wait is not None:
            waits.setdefault(stage, []).append(wait)
    return _latencies(durations, waits)


def load_metrics(s: Session, agent: str, book: str, window: Window | None = None) -> AgentMetrics:
    """Every metric for one agent's account `book` over `window` (all time when None)."""
    window = window or Window()
    curve, opening, opened_at = load_curve(s, agent, book, window)
    trades = load_trades(s, agent, book, window)
    return AgentMetrics(agent=agent, book=book, window=window, curve=curve, opening=opening, opened_at=opened_at,
                        trades=trades, performance=performance(curve, trades, opening=opening),
                        activity=load_activity(s, agent, book, window))


# ---- every agent of a book at once (the leaderboard) -----------------------------------------------------------
# The same figures as load_metrics, but one query per table for all agents instead of one per agent, and counts
# and stage latencies grouped in SQL: a board of 10 agents × 30 days of 15-minute runs read 200k stage records
# and 29k verdicts row by row. Rows that feed a float sum are read in the order the per-agent queries see them,
# so every figure is the same to the last digit (tests/review/test_book_metrics.py).

def load_book_metrics(s: Session, agents: Sequence[str], book: str, window: Window | None = None, *,
                      activity: bool = True) -> list[AgentMetrics]:
    """load_metrics for each of `agents`, in that order. `activity=False` leaves out what the pipeline did (run
    counts, verdicts, stage latencies, LLM usage): three quarters of the time of a board of 200k stage records."""
    window = window or Window()
    curves = load_curves(s, agents, book, window)
    trades = load_book_trades(s, agents, book, window)
    done = load_book_activity(s, agents, book, window) if activity else {}
    out = []
    for agent in agents:
        curve, opening, opened_at = curves[agent]
        out.append(AgentMetrics(agent=agent, book=book, window=window, curve=curve, opening=opening,
                                opened_at=opened_at, trades=trades[agent],
                                performance=performance(curve, trades[agent], opening=opening),
                                activity=done.get(agent)))
    return out


def _by_agent(rows: Iterable[Any], agents: Sequence[str]) -> dict[str, list[Any]]:
    """Rows whose first column is the agent, grouped by it (in row order); every agent has a list."""
    out: dict[str, list[Any]] = {agent: [] for agent in agents}
    for row in rows:
        out[row[0]].append(row)
    return out


def load_curves(s: Session, agents: Sequence[str], book: str,
                window: Window) -> dict[str, tuple[pd.Series, float | None, datetime | None]]:
    """load_curve for every agent: the window's snapshots, the last one before it, and initial equities."""
    e = EquitySnapshot
    curves = _window_curves(s, agents, book, window)
    priors: dict[str, Any] = {}
    if window.start is not None:
        latest = func.row_number().over(partition_by=e.agent, order_by=(e.ts.desc(), e.id.desc())).label("latest")
        before = (select(e.agent, e.ts, e.equity, latest)
                  .where(e.agent.in_(agents), e.book == book, e.ts < window.start).subquery())
        priors = {r.agent: r for r in s.execute(select(before).where(before.c.latest == 1))}
    initial = dict(s.execute(select(Agent.name, Agent.initial_equity).where(Agent.name.in_(agents))).all())
    out = {}
    for agent in agents:
        curve = curves[agent] if agent in curves else equity_curve([])
        prior = priors.get(agent)
        if prior is not None:
            out[agent] = (curve, float(prior.equity), prior.ts)
        elif curve.empty:
            out[agent] = (curve, None, None)
        else:
            start = initial.get(agent)
            out[agent] = (curve, float(start) if start else None, curve.index[0].to_pydatetime())
    return out


def _window_curves(s: Session, agents: Sequence[str], book: str, window: Window) -> dict[str, pd.Series]:
    """equity_curve of each agent's snapshots in the window (agents without any left out)."""
    e = EquitySnapshot
    where = (e.agent.in_(agents), e.book == book, *_within(e.ts, window))
    if s.get_bind().dialect.name != "postgresql":
        rows = _by_agent(s.execute(select(e.agent, e.ts, e.equity).where(*where).order_by(e.agent, e.ts, e.id)), agents)
        return {agent: equity_curve((r.ts, r.equity) for r in rows[agent]) for agent in agents if rows[agent]}
    # Postgres: per agent, the times (µs since the epoch, int8) and equities (float8) as two byte strings in the
    # same (ts, id) order, rather than 2,880 rows of Python datetimes each.
    micros = func.int8send(cast(func.extract("epoch", e.ts) * 1_000_000, BigInteger))
    packed = [func.string_agg(value, aggregate_order_by(literal(b"", LargeBinary), e.ts, e.id))
              for value in (micros, func.float8send(e.equity))]
    return {agent: _unpacked_curve(times, values)
            for agent, times, values in s.execute(select(e.agent, *packed).where(*where).group_by(e.agent))}


def _unpacked_curve(micros: bytes, values: bytes) -> pd.Series:
    """equity_curve of packed times and values (the same index: microseconds, UTC)."""
    index = pd.DatetimeIndex(np.frombuffer(micros, dtype=">i8").astype("datetime64[us]")).tz_localize(UTC)
    return _one_per_time(pd.Series(np.frombuffer(values, dtype=">f8").astype(float), index=index, dtype=float))


def load_book_trades(s: Session, agents: Sequence[str], book: str, window: Window) -> dict[str, list[Trade]]:
    """load_trades for every agent: closed round trips first, then those still open, each by opening time."""
    p = PositionRecord
    closed = select(p).where(p.agent.in_(agents), p.book == book, p.closed_at.is_not(None), *_within(p.closed_at, window))
    not_closed = p.closed_at.is_(None)
    if window.end is not None:
        not_closed = not_closed | (p.closed_at >= window.end)
    still_open = select(p).where(p.agent.in_(agents), p.book == book, not_closed,
                                 *([p.opened_at < window.end] if window.end else []))
    out: dict[str, list[Trade]] = {agent: [] for agent in agents}
    for query, is_open in ((closed, False), (still_open, True)):
        for r in s.scalars(query.order_by(p.agent, p.opened_at, p.id)):
            out[r.agent].append(Trade(symbol=r.symbol, side=r.side, opened_at=r.opened_at,
                                      closed_at=None if is_open else r.closed_at, entry_price=r.entry_price,
                                      exit_price=None if is_open else r.exit_price, contracts=r.max_contracts,
                                      realized_pnl=r.realized_pnl, fees=r.fees,
                                      exit_reason=None if is_open else r.exit_reason))
    return out


def load_book_activity(s: Session, agents: Sequence[str], book: str, window: Window) -> dict[str, Activity]:
    """load_activity for every agent."""
    in_window = (Run.agent.in_(agents), Run.book == book, *_within(Run.scheduled_for, window))
    statuses = _by_agent(s.execute(select(Run.agent, Run.status, func.count()).where(*in_window)
                                   .group_by(Run.agent, Run.status)), agents)
    # By time, as the per-agent query reads them (its index, or the table, where fills are written as they
    # happen), so the float sums below add up in the same order.
    fills = _by_agent(s.execute(select(Fill.agent, Fill.fee, Fill.slippage_bps)
                                .where(Fill.agent.in_(agents), Fill.book == book, *_within(Fill.ts, window))
                                .order_by(Fill.agent, Fill.ts, Fill.id)), agents)
    decisions, rejected, amended = _verdicts(s, agents, in_window)
    invalid = dict(s.execute(select(Run.agent, func.count()).join(PlanValidation, PlanValidation.run_id == Run.id)
                             .where(*in_window, PlanValidation.valid.is_(False)).group_by(Run.agent)).all())
    latency = book_stage_latency(s, agents, in_window)
    # LLM costs are summed per agent as load_metrics does (a sum over a join could add them in another order);
    # agents with no calls at all (rule-based ones) are found in one query and skip that.
    with_calls = set(s.scalars(select(Run.agent).join(LlmCallRecord, LlmCallRecord.run_id == Run.id)
                               .where(*in_window).distinct()))
    out = {}
    for agent in agents:
        slippage = [r.slippage_bps for r in fills[agent] if r.slippage_bps is not None]
        out[agent] = Activity(
            runs=dict(sorted((r[1], r[2]) for r in statuses[agent])),
            fills=len(fills[agent]),
            fees=float(sum(r.fee for r in fills[agent])),
            avg_slippage_bps=float(np.mean(slippage)) if slippage else None,
            decisions={k: decisions[agent].get(k, 0) for k in ("accept", "amend", "reject")},
            rejected_by_reason=dict(sorted(rejected[agent].items())),
            amended_by_reason=dict(sorted(amended[agent].items())),
            invalid_plans=int(invalid.get(agent, 0)),
            llm=llm_usage(s, select(Run.id).where(*in_window, Run.agent == agent)) if agent in with_calls else LlmUsage(),
            latency=latency[agent],
        )
    return out


def _verdicts(s: Session, agents: Sequence[str], in_window: tuple[Any, ...]) -> tuple[dict[str, Counter[str]], ...]:
    """Risk decisions counted by outcome, and the reasons of rejects and amends, per agent. Accepts are counted
    in SQL; only the few rejects and amends bring their reasons over."""
    v = RiskVerdictRecord
    decisions: dict[str, Counter[str]] = {agent: Counter() for agent in agents}
    rejected: dict[str, Counter[str]] = {agent: Counter() for agent in agents}
    amended: dict[str, Counter[str]] = {agent: Counter() for agent in agents}
    joined = select(Run.agent).join(v, v.run_id == Run.id).where(*in_window)
    for agent, outcome, count in s.execute(joined.add_columns(v.outcome, func.count()).group_by(Run.agent, v.outcome)):
        decisions[agent][outcome] += count
    for agent, outcome, reasons in s.execute(joined.add_columns(v.outcome, v.reasons)
                                             .where(v.outcome.in_(("reject", "amend")))):
        (rejected if outcome == "reject" else amended)[agent].update(reasons or ["unspecified"])
    return decisions, rejected, amended


def book_stage_latency(s: Session, agents: Sequence[str], in_window: tuple[Any, ...]) -> dict[str, dict[str, Latency]]:
    """stage_latency per agent. Each (agent, stage) comes over as two arrays, not thousands of rows; the
    percentiles are numpy's on the same values (order does not change a percentile)."""
    durations: dict[str, dict[str, Values]] = {agent: {name: [] for name in STAGES} for agent in agents}
    waits: dict[str, dict[str, Values]] = {agent: {name: [] for name in STAGES} for agent in agents}
    for agent, stage, stage_durations, stage_waits in _stage_values(s, in_window):  # other stages: when valued
        if len(stage_durations):
            durations[agent][stage] = stage_durations
        if len(stage_waits):
            waits[agent][stage] = stage_waits
    return {agent: _latencies(durations[agent], waits[agent]) for agent in agents}


def _packed(column: Any) -> Any:
    """Postgres: a group's non-null float8 values as one bytea of big-endian doubles (float8send; string_agg
    skips nulls). Exact, and much quicker to bring over and read than an array of text numbers."""
    return func.string_agg(func.float8send(column), literal(b"", LargeBinary))


def _stage_values(s: Session, in_window: tuple[Any, ...]) -> Iterable[tuple[str, str, Values, Values]]:
    """(agent, stage, durations, queue waits) for each agent and stage, the values in no particular order."""
    sr = StageRecord
    if s.get_bind().dialect.name == "postgresql":  # two packed arrays per group rather than a row per record
        for agent, stage, durations, waits in s.execute(
                select(Run.agent, sr.stage, _packed(sr.duration_ms), _packed(sr.queue_wait_ms))
                .join(sr, sr.run_id == Run.id).where(*in_window).group_by(Run.agent, sr.stage)
                .order_by(Run.agent, sr.stage)):
            yield agent, stage, _doubles(durations), _doubles(waits)
        return
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    for agent, stage, duration, wait in s.execute(select(Run.agent, sr.stage, sr.duration_ms, sr.queue_wait_ms)
                                                  .join(sr, sr.run_id == Run.id).where(*in_window)
                                                  .order_by(Run.agent, sr.stage)):
        values = groups.setdefault((agent, stage), ([], []))
        if duration is not None:
            values[0].append(duration)
        if wait is not None:
            values[1].append(wait)
    for (agent, stage), (durations, waits) in groups.items():
        yield agent, stage, durations, waits


def _doubles(packed: bytes | None) -> np.ndarray:
    return np.frombuffer(packed or b"", dtype=">f8").astype(float)


def _latencies(durations: dict[str, Values], waits: dict[str, Values]) -> dict[str, Latency]:
    return {name: Latency(count=len(durations[name]), p50_ms=_percentile(durations[name], 50),
                          p95_ms=_percentile(durations[name], 95), queue_wait_p50_ms=_percentile(waits[name], 50),
                          queue_wait_p95_ms=_percentile(waits[name], 95)) for name in durations}
