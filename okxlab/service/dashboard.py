"""What the web dashboard shows beyond the API's own answers: chart series, the trade log, the decision feed, an
instrument's candles with every agent's entries and exits, and the pipeline's last hour. Plain data, no HTML."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.db.models import (
    Fill,
    LlmCallRecord,
    MarketSnapshot,
    Order,
    PlanRecord,
    PlanValidation,
    PositionRecord,
    Replay,
    RiskVerdictRecord,
    Run,
    StageRecord,
    utcnow,
)
from okxlab.domain import STAGES
from okxlab.review.leaderboard import benchmark_prices, book_agents
from okxlab.review.metrics import Window, load_curves
from okxlab.service.runs import RunFilter, list_runs

MAX_POINTS = 1500  # per chart series: more than a screen's width of pixels buys nothing but transfer time


def _seconds(index: pd.DatetimeIndex) -> np.ndarray:
    """Unix seconds (the charts' time axis), whatever the index's unit (curves are in µs, prices in ns)."""
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return index.as_unit("s").asi8.astype(np.int64)


def _thin(times: np.ndarray, values: np.ndarray) -> list[list[float]]:
    """At most MAX_POINTS (time, value) pairs, evenly spaced, always keeping the last (the current value)."""
    if len(times) > MAX_POINTS:
        keep = np.unique(np.append(np.linspace(0, len(times) - 1, MAX_POINTS).astype(int), len(times) - 1))
        times, values = times[keep], values[keep]
    return [[int(t), round(float(v), 4)] for t, v in zip(times, values, strict=True) if np.isfinite(v)]


def arena_curves(s: Session, book: str, window: Window, benchmark: str) -> dict[str, Any]:
    """Every agent's return (%) over the window against cash (0 %) and buy-and-hold of the benchmark."""
    agents = book_agents(s, book, window)
    series = []
    for agent, (curve, opening, _) in load_curves(s, agents, book, window).items():
        if curve.empty or not opening:
            continue
        series.append({"name": agent, "points": _thin(_seconds(curve.index), (curve.to_numpy() / opening - 1) * 100)})
    prices = benchmark_prices(s, book, benchmark, window)
    hold = []
    if not prices.empty:
        hold = _thin(_seconds(pd.DatetimeIndex(prices.index)), (prices.to_numpy() / float(prices.iloc[0]) - 1) * 100)
    span = [p[0] for line in series for p in (line["points"][0], line["points"][-1]) if line["points"]]
    cash = [[min(span), 0.0], [max(span), 0.0]] if span else []
    return {"book": book, "agents": series, "cash": cash, "buy_and_hold": {"symbol": benchmark, "points": hold}}


def agent_curves(s: Session, agent: str, book: str, window: Window) -> dict[str, Any]:
    """One agent's equity and drawdown (% below its running peak, the opening equity counted as a peak)."""
    curve, opening, _ = load_curves(s, [agent], book, window)[agent]
    if curve.empty:
        return {"agent": agent, "book": book, "equity": [], "drawdown": []}
    values = curve.to_numpy()
    peak = np.maximum.accumulate(np.concatenate([[opening or values[0]], values]))[1:]
    times = _seconds(curve.index)
    return {"agent": agent, "book": book, "equity": _thin(times, values),
            "drawdown": _thin(times, (values / peak - 1) * 100)}


def _slippage(fills: Sequence[Fill]) -> float | None:
    """Contract-weighted slippage of some fills, in bps (None when none recorded one)."""
    known = [(f.slippage_bps, f.contracts) for f in fills if f.slippage_bps is not None]
    weight = sum(c for _, c in known)
    return sum(b * c for b, c in known) / weight if weight else None


def trade_log(s: Session, agent: str, book: str, limit: int = 50) -> list[dict[str, Any]]:
    """The agent's round trips in the book, newest first: entry, exit, reason, PnL, fees and the slippage of the
    fills that opened and closed it."""
    trips = list(s.scalars(select(PositionRecord).where(PositionRecord.agent == agent, PositionRecord.book == book)
                           .order_by(PositionRecord.opened_at.desc(), PositionRecord.id.desc()).limit(limit)))
    if not trips:
        return []
    first = min(p.opened_at for p in trips)
    fills_by_symbol: dict[str, list[Fill]] = defaultdict(list)
    for f in s.scalars(select(Fill).where(Fill.agent == agent, Fill.book == book, Fill.ts >= first).order_by(Fill.ts)):
        fills_by_symbol[f.symbol].append(f)
    out = []
    for p in trips:
        opening = "buy" if p.side == "long" else "sell"
        mine = [f for f in fills_by_symbol[p.symbol] if f.ts >= p.opened_at and (p.closed_at is None or f.ts <= p.closed_at)]
        out.append({"symbol": p.symbol, "side": p.side, "status": p.status, "contracts": p.max_contracts,
                    "entry_price": p.entry_price, "exit_price": p.exit_price, "opened_at": p.opened_at,
                    "closed_at": p.closed_at, "exit_reason": p.exit_reason, "realized_pnl": p.realized_pnl,
                    "fees": p.fees, "entry_slippage_bps": _slippage([f for f in mine if f.side == opening]),
                    "exit_slippage_bps": _slippage([f for f in mine if f.side != opening]),
                    "open_run_id": p.open_run_id, "close_run_id": p.close_run_id})
    return out


def recent_fills(s: Session, agent: str, book: str, limit: int = 20) -> list[dict[str, Any]]:
    """The agent's newest fills in the book, with the run whose order they filled."""
    rows = s.execute(select(Fill, Order.run_id, Order.purpose).outerjoin(Order, Order.id == Fill.order_id)
                     .where(Fill.agent == agent, Fill.book == book).order_by(Fill.ts.desc(), Fill.id.desc())
                     .limit(limit)).all()
    return [{"id": f.id, "trade_id": f.trade_id, "symbol": f.symbol, "side": f.side, "price": f.price,
             "contracts": f.contracts, "fee": f.fee, "fee_ccy": f.fee_ccy, "ts": f.ts, "slippage_bps": f.slippage_bps,
             "realized_pnl": f.realized_pnl, "exit_reason": f.exit_reason, "purpose": purpose, "run_id": run_id}
            for f, run_id, purpose in rows]


def decision_feed(s: Session, agent: str, book: str, limit: int = 10, cursor: str | None = None) -> dict[str, Any]:
    """The agent's runs newest first, each with its plan, the model's own words, the risk verdicts and their
    reasons, and the LLM's tokens, cost and latency. Pages with the runs list's cursor."""
    runs, next_cursor = list_runs(s, RunFilter(agent=agent, book=book), limit, cursor)
    ids = [r["id"] for r in runs]
    plans = {p.run_id: p for p in s.scalars(select(PlanRecord).where(PlanRecord.run_id.in_(ids)))}
    valid = {v.run_id: v for v in s.scalars(select(PlanValidation).where(PlanValidation.run_id.in_(ids)))}
    verdicts: dict[str, list[RiskVerdictRecord]] = defaultdict(list)
    for v in s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id.in_(ids)).order_by(RiskVerdictRecord.idx)):
        verdicts[v.run_id].append(v)
    calls: dict[str, list[LlmCallRecord]] = defaultdict(list)
    for c in s.scalars(select(LlmCallRecord).where(LlmCallRecord.run_id.in_(ids)).order_by(LlmCallRecord.seq)):
        calls[c.run_id].append(c)
    items = []
    for run in runs:
        plan, validation, made = plans.get(run["id"]), valid.get(run["id"]), calls[run["id"]]
        document = plan.document if plan else None
        decisions = (document or {}).get("decisions") if isinstance(document, dict) else None
        items.append({
            **run,
            "planner": plan.planner if plan else None,
            "plan": document, "plan_error": plan.error if plan else None,
            "raw": plan.raw if plan and document is None else None,  # the model's text when it was no plan
            "rationale": [d.get("rationale") for d in decisions or [] if isinstance(d, dict) and d.get("rationale")],
            "problems": validation.problems if validation and not validation.valid else [],
            "verdicts": [{"symbol": v.symbol, "action": v.action, "outcome": v.outcome, "reasons": v.reasons}
                         for v in verdicts[run["id"]]],
            "llm": ({"calls": len(made), "model": made[-1].model, "tokens_in": sum(c.tokens_in or 0 for c in made),
                     "tokens_out": sum(c.tokens_out or 0 for c in made),
                     "cost_usd": sum(c.cost_usd or 0.0 for c in made),
                     "latency_ms": sum(c.latency_ms or 0.0 for c in made), "cached": all(c.cached for c in made)}
                    if made else None),
        })
    return {"items": items, "next_cursor": next_cursor}


def market_symbols(s: Session, book: str) -> list[str]:
    """Instruments the book's runs took snapshots of, in name order."""
    return sorted(s.scalars(select(MarketSnapshot.symbol).join(Run, Run.id == MarketSnapshot.run_id)
                            .where(Run.book == book).distinct()))


def market(s: Session, book: str, symbol: str, max_snapshots: int = 12) -> dict[str, Any]:
    """Candles of `symbol` as the book's runs saw them (the closed bars stored with the latest snapshots, merged),
    and every agent's fills in that span marked as entries (opening orders) or exits (closing ones, stops and
    targets included)."""
    rows = s.execute(select(MarketSnapshot.as_of, MarketSnapshot.bar, MarketSnapshot.candles)
                     .join(Run, Run.id == MarketSnapshot.run_id)
                     .where(Run.book == book, MarketSnapshot.symbol == symbol)
                     .order_by(MarketSnapshot.as_of.desc()).limit(200)).all()
    bars: dict[int, list[float]] = {}
    used = 0
    for row in rows:  # newest first; a snapshot whose bars are all known already adds nothing
        fresh = [c for c in row.candles if int(c[0]) // 1000 not in bars]
        if not fresh and bars:
            continue
        for c in fresh:
            bars[int(c[0]) // 1000] = [float(x) for x in c[1:5]]
        used += 1
        if used >= max_snapshots:
            break
    candles = [{"time": t, "open": o, "high": h, "low": lo, "close": c} for t, (o, h, lo, c) in sorted(bars.items())]
    markers: list[dict[str, Any]] = []
    if candles:
        start = datetime.fromtimestamp(candles[0]["time"], tz=rows[0].as_of.tzinfo)
        fills = s.execute(select(Fill.agent, Fill.side, Fill.price, Fill.contracts, Fill.ts, Fill.exit_reason,
                                 Order.purpose)
                          .outerjoin(Order, Order.id == Fill.order_id)
                          .where(Fill.book == book, Fill.symbol == symbol, Fill.ts >= start).order_by(Fill.ts)).all()
        for f in fills:
            entry = f.purpose == "open"
            markers.append({"time": int(f.ts.timestamp()), "agent": f.agent, "side": f.side, "price": f.price,
                            "contracts": f.contracts, "entry": entry,
                            "text": f"{f.agent} {'entry' if entry else 'exit'} {f.side}"
                                    + (f" ({f.exit_reason})" if f.exit_reason and not entry else "")})
    return {"book": book, "symbol": symbol, "bar": rows[0].bar if rows else None, "candles": candles,
            "markers": markers}


def pipeline(s: Session, hours: float = 1.0, now: datetime | None = None) -> dict[str, Any]:
    """The pipeline's last hour: each stage's latency and queue wait p50/p99, runs by status, failed runs and
    stages that took more than one attempt."""
    now = now or utcnow()
    since = now - timedelta(hours=hours)
    rows = s.execute(select(StageRecord.stage, StageRecord.duration_ms, StageRecord.queue_wait_ms)
                     .where(StageRecord.finished_at >= since)).all()
    by_stage: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in STAGES}
    for r in rows:
        durations, waits = by_stage.setdefault(r.stage, ([], []))
        if r.duration_ms is not None:
            durations.append(r.duration_ms)
        if r.queue_wait_ms is not None:
            waits.append(r.queue_wait_ms)

    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    stages = [{"stage": name, "count": len(d), "p50_ms": pct(d, 50), "p99_ms": pct(d, 99),
               "wait_p50_ms": pct(w, 50), "wait_p99_ms": pct(w, 99)} for name, (d, w) in by_stage.items()]
    recent = (Run.created_at >= since, Run.book.not_like("dry:%"))
    statuses = dict(s.execute(select(Run.status, func.count()).where(*recent).group_by(Run.status)).all())
    failed = [{"id": r.id, "agent": r.agent, "book": r.book, "stage": r.stage, "reason": r.reason,
               "scheduled_for": r.scheduled_for}
              for r in s.scalars(select(Run).where(*recent, Run.status == "failed")
                                 .order_by(Run.created_at.desc()).limit(20))]
    retried = [{"run_id": r.run_id, "stage": r.stage, "attempts": r.attempts, "error": r.error}
               for r in s.scalars(select(StageRecord).where(StageRecord.finished_at >= since, StageRecord.attempts > 1)
                                  .order_by(StageRecord.finished_at.desc()).limit(20))]
    return {"since": since, "hours": hours, "stages": stages, "runs": statuses, "failed": failed, "retried": retried}


def replays(s: Session, limit: int = 30) -> list[dict[str, Any]]:
    """The newest replays with their progress (runs recorded)."""
    rows = list(s.scalars(select(Replay).order_by(Replay.id.desc()).limit(limit)))
    counts = dict(s.execute(select(Run.replay_id, func.count()).where(Run.replay_id.in_([r.id for r in rows]))
                            .group_by(Run.replay_id)).all())
    return [{"id": r.id, "kind": r.kind, "status": r.status, "agents": list(r.agents), "start": r.start, "end": r.end,
             "bar": r.bar, "book": f"replay:{r.id}", "runs": counts.get(r.id, 0), "created_at": r.created_at,
             "finished_at": r.finished_at} for r in rows]
