"""okxlab's own numbers for Prometheus, read from the database at each scrape (prometheus_client exposes them).

Celery's task metrics come from Flower's /metrics; these are the trading system's: runs by status, stage
latency, each agent's equity and trading state, open orders, reconciliation results, the global pause.
Per-book series cover the trading books (sim, demo, live) and the replays still running: a finished replay's
book leaves the metrics, so alerts and panels see only what is trading now.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.db.models import (
    EquitySnapshot,
    Order,
    Reconciliation,
    Replay,
    RiskStateRecord,
    Run,
    StageRecord,
    utcnow,
)
from okxlab.domain import DRY_PREFIX
from okxlab.risk.switches import global_pause

RECENT = timedelta(hours=24)
TRADING_STATES = ("ACTIVE", "REDUCE_ONLY", "HALTED")


def _latest_per_book(s: Session, model: Any, column: Any) -> Any:
    """(agent, book, column) of the newest row of `model` per agent and book."""
    newest = select(model.agent, model.book, func.max(model.id).label("id")).group_by(model.agent, model.book).subquery()
    return s.execute(select(model.agent, model.book, column).join(newest, model.id == newest.c.id))


def _ended_replay_books(s: Session) -> set[str]:
    """The books of replays that have ended: left out of the per-book series."""
    return {f"replay:{rid}" for rid in s.scalars(select(Replay.id).where(Replay.status != "running"))}


class OkxlabCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        since = utcnow() - RECENT
        with self.sessions() as s:
            runs = GaugeMetricFamily("okxlab_runs_recent", "Runs created in the last 24 h, by agent and status",
                                     labels=["agent", "status"])
            trading = Run.book.not_like(f"{DRY_PREFIX}%")  # dry runs (plans generate) are no trading runs
            for agent, status, n in s.execute(select(Run.agent, Run.status, func.count())
                                              .where(Run.created_at >= since, trading)
                                              .group_by(Run.agent, Run.status)):
                runs.add_metric([agent, status], n)
            yield runs

            stuck = GaugeMetricFamily("okxlab_runs_unfinished_older_than_10m",
                                      "Runs still pending or running 10 minutes after they were created")
            stuck.add_metric([], s.scalar(select(func.count()).select_from(Run).where(
                Run.status.in_(("pending", "running")), Run.created_at < utcnow() - timedelta(minutes=10), trading)) or 0)
            yield stuck

            latency = GaugeMetricFamily("okxlab_stage_duration_ms_avg", "Mean stage duration over the last 24 h",
                                        labels=["stage"])
            wait = GaugeMetricFamily("okxlab_stage_queue_wait_ms_avg", "Mean queue wait before a stage over the last 24 h",
                                     labels=["stage"])
            for stage, d, w in s.execute(select(StageRecord.stage, func.avg(StageRecord.duration_ms),
                                                func.avg(StageRecord.queue_wait_ms))
                                         .where(StageRecord.finished_at >= since,
                                                ~StageRecord.run_id.in_(select(Run.id).where(~trading)))
                                         .group_by(StageRecord.stage)):
                latency.add_metric([stage], float(d or 0))
                wait.add_metric([stage], float(w or 0))
            yield latency
            yield wait

            equity = GaugeMetricFamily("okxlab_agent_equity_usdt", "Each agent's latest equity, by book",
                                       labels=["agent", "book"])
            ended = _ended_replay_books(s)
            for agent, book, value in _latest_per_book(s, EquitySnapshot, EquitySnapshot.equity):
                if book not in ended:
                    equity.add_metric([agent, book], value)
            yield equity

            state = GaugeMetricFamily("okxlab_agent_trading_state", "1 for the agent's current trading state, by book",
                                      labels=["agent", "book", "state"])
            for row in s.scalars(select(RiskStateRecord)):
                if row.book in ended:
                    continue
                for name in TRADING_STATES:
                    state.add_metric([row.agent, row.book, name], 1.0 if row.trading_state == name else 0.0)
            yield state

            open_orders = GaugeMetricFamily("okxlab_orders_open", "Orders sent and not yet finished, by agent",
                                            labels=["agent", "state"])
            for agent, st, n in s.execute(select(Order.agent, Order.state, func.count())
                                          .where(Order.state.in_(("submitting", "unknown", "submitted", "partially_filled")))
                                          .group_by(Order.agent, Order.state)):
                open_orders.add_metric([agent, st], n)
            yield open_orders

            recon = GaugeMetricFamily("okxlab_ledger_reconciled", "1 if the agent's latest reconciliation matched",
                                      labels=["agent", "book"])
            for agent, book, ok in _latest_per_book(s, Reconciliation, Reconciliation.ok):
                if book not in ended:
                    recon.add_metric([agent, book], 1.0 if ok else 0.0)
            yield recon

            paused = GaugeMetricFamily("okxlab_global_pause", "1 while the global trading pause is in force")
            paused.add_metric([], 1.0 if global_pause(s) else 0.0)
            yield paused
