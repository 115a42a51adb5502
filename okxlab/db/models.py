"""The database: every record an auditor would ask for, on Postgres in production and SQLite embedded.

Stage records are keyed by (run_id, stage) and each stage's own table by run (and symbol or decision
index), so a redelivered or replayed stage can never write twice. Times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Names for constraints, so Alembic migrations are stable across databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: Json, list[Any]: Json, date: Date}


class Agent(Base):
    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    planner: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)  # non-secret config snapshot
    initial_equity: Mapped[float] = mapped_column(Float, default=10_000.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RiskStateRecord(Base):
    """An agent's trading state in one book. Each book is its own account, so a replay that halts an agent
    leaves the agent's live trading alone, and a fresh replay starts ACTIVE."""

    __tablename__ = "risk_states"

    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"), primary_key=True)
    book: Mapped[str] = mapped_column(String(24), primary_key=True)
    trading_state: Mapped[str] = mapped_column(String(12), default="ACTIVE")
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime | None]
    consecutive_invalid_plans: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_rejections: Mapped[int] = mapped_column(Integer, default=0)
    daily_loss_day: Mapped[date | None] = mapped_column(Date)  # UTC day the daily loss breaker tripped
    # A human's resume starts a new drawdown epoch: the peak counts only equity snapshots after this one.
    drawdown_reset_snapshot_id: Mapped[int | None] = mapped_column(Integer)
    # One trading run per (agent, book) between its risk verdict and the end of its order stage
    # (okxlab/pipeline/turns.py): the run holding the turn, and how many turns were ever taken here.
    trading_run_id: Mapped[str | None] = mapped_column(String(40))
    trading_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Schedule(Base):
    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    agent: Mapped[str | None] = mapped_column(String(40))  # None: every configured agent
    kind: Mapped[str] = mapped_column(String(10))  # "interval" | "crontab"
    expr: Mapped[str] = mapped_column(String(100))  # "4h", "15m" | "5 */4 * * *"
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_dispatched_for: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Replay(Base):
    __tablename__ = "replays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(10))  # "range" | "run" | "demo"
    agents: Mapped[list[Any]] = mapped_column(Json, default=list)
    start: Mapped[datetime | None]
    end: Mapped[datetime | None]
    bar: Mapped[str | None] = mapped_column(String(8))
    exchange_url: Mapped[str | None] = mapped_column(String(200))  # simulator world base URL
    offline_planners: Mapped[bool] = mapped_column(Boolean, default=False)
    fresh_llm: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(12), default="running")
    summary: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("source", "agent", "scheduled_for"),
        Index("ix_runs_status_updated", "status", "updated_at"),
        Index("ix_runs_agent_scheduled", "agent", "scheduled_for"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(24))  # "schedule:<id>" | "replay:<id>"
    book: Mapped[str] = mapped_column(String(24))  # the account it trades: sim | demo | live | replay:<id>
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id", ondelete="SET NULL"))
    replay_id: Mapped[int | None] = mapped_column(ForeignKey("replays.id"))
    replay_of: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))  # `replay run`: the original
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"))
    scheduled_for: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    stage: Mapped[str | None] = mapped_column(String(12))  # the stage reached last
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class StageRecord(Base):
    __tablename__ = "stage_records"
    __table_args__ = (UniqueConstraint("run_id", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10))  # running | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str | None] = mapped_column(String(40))  # the queue the task was delivered from
    worker: Mapped[str | None] = mapped_column(String(160))
    task_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    queue_wait_ms: Mapped[float | None] = mapped_column(Float)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    output: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class MarketSnapshot(Base):
    __tablename__ = "market_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[datetime]  # the point in time this snapshot stands for
    exchange_time: Mapped[datetime]  # the exchange's clock when it was taken
    bar: Mapped[str] = mapped_column(String(8))
    last: Mapped[float] = mapped_column(Float)
    bid: Mapped[float] = mapped_column(Float)
    ask: Mapped[float] = mapped_column(Float)
    funding_rate: Mapped[float | None] = mapped_column(Float)
    instrument: Mapped[dict[str, Any]] = mapped_column(Json)
    order_book: Mapped[dict[str, Any]] = mapped_column(Json)  # top levels: {"bids": [[px, sz]...], "asks": ...}
    candles: Mapped[list[Any]] = mapped_column(Json)  # closed bars, oldest first: [ts, o, h, l, c, v]


class AccountSnapshot(Base):
    __tablename__ = "account_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"))
    equity: Mapped[float] = mapped_column(Float)
    cash: Mapped[float] = mapped_column(Float)
    available: Mapped[float] = mapped_column(Float)
    positions: Mapped[list[Any]] = mapped_column(Json, default=list)
    open_orders: Mapped[list[Any]] = mapped_column(Json, default=list)
    # The book's trading epoch when the account was read; None if another run was trading then.
    trading_epoch: Mapped[int | None] = mapped_column(Integer)


class QualityCheck(Base):
    __tablename__ = "quality_checks"
    __table_args__ = (UniqueConstraint("run_id", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(10))  # pass | degraded | fail
    reasons: Mapped[list[Any]] = mapped_column(Json, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class FeatureSet(Base):
    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("run_id", "symbol"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    symbol: Mapped[str] = mapped_column(String(32))
    values: Mapped[dict[str, Any]] = mapped_column(Json)


class PlanRecord(Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    planner: Mapped[str] = mapped_column(String(120))
    prompt: Mapped[str | None] = mapped_column(Text)
    prompt_sha256: Mapped[str | None] = mapped_column(String(64))
    raw: Mapped[str] = mapped_column(Text)
    document: Mapped[Any] = mapped_column(Json, nullable=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlanValidation(Base):
    __tablename__ = "plan_validations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    valid: Mapped[bool] = mapped_column(Boolean)
    schema_version: Mapped[str] = mapped_column(String(40))
    problems: Mapped[list[Any]] = mapped_column(Json, default=list)
    plan: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)  # normalised plan when valid


class LlmCallRecord(Base):
    __tablename__ = "llm_calls"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(12))
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(120))
    prompt: Mapped[str] = mapped_column(Text)
    prompt_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[str | None] = mapped_column(Text)
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LlmCacheEntry(Base):
    __tablename__ = "llm_cache"
    __table_args__ = (UniqueConstraint("provider", "model", "prompt_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(120))
    prompt_sha256: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskVerdictRecord(Base):
    __tablename__ = "risk_verdicts"
    __table_args__ = (UniqueConstraint("run_id", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str] = mapped_column(String(8))  # accept | amend | reject
    reasons: Mapped[list[Any]] = mapped_column(Json, default=list)
    proposal: Mapped[dict[str, Any]] = mapped_column(Json)
    decision: Mapped[dict[str, Any]] = mapped_column(Json)
    order: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)  # ids and limits the verdict used


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_agent_state", "agent", "book", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cl_ord_id: Mapped[str] = mapped_column(String(32), unique=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    idx: Mapped[int | None] = mapped_column(Integer)  # the decision's index in the plan
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"))
    book: Mapped[str] = mapped_column(String(24), )  # whose account: sim | demo | live | replay:<id>
    purpose: Mapped[str] = mapped_column(String(12))  # open | close | flatten
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    order_type: Mapped[str] = mapped_column(String(8))
    contracts: Mapped[float] = mapped_column(Float)
    price: Mapped[float | None] = mapped_column(Float)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    leverage: Mapped[float | None] = mapped_column(Float)
    stop_loss: Mapped[float | None] = mapped_column(Float)
    take_profit: Mapped[float | None] = mapped_column(Float)
    tag: Mapped[str] = mapped_column(String(16))
    exchange_url: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default="new")
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    ord_id: Mapped[str | None] = mapped_column(String(40))
    filled: Mapped[float] = mapped_column(Float, default=0.0)
    avg_price: Mapped[float | None] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    reference_price: Mapped[float | None] = mapped_column(Float)  # the snapshot's mid, for slippage
    last_error: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]


class Fill(Base):
    __tablename__ = "fills"
    __table_args__ = (UniqueConstraint("book", "agent", "trade_id", "symbol"), Index("ix_fills_agent_ts", "agent", "book", "ts"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"))
    book: Mapped[str] = mapped_column(String(24), )  # whose account: sim | demo | live | replay:<id>
    trade_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    ord_id: Mapped[str | None] = mapped_column(String(40))
    cl_ord_id: Mapped[str | None] = mapped_column(String(40))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    price: Mapped[float] = mapped_column(Float)
    contracts: Mapped[float] = mapped_column(Float)
    ct_val: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)  # positive = paid
    fee_ccy: Mapped[str] = mapped_column(String(12))
    ts: Mapped[datetime]
    liquidity: Mapped[str | None] = mapped_column(String(6))  # maker | taker
    slippage_bps: Mapped[float | None] = mapped_column(Float)
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    exit_reason: Mapped[str | None] = mapped_column(String(16))


class PositionRecord(Base):
    """One round trip: opened by a fill, closed (with a reason) when the position returns to zero."""

    __tablename__ = "positions"
    __table_args__ = (Index("ix_positions_agent_status", "agent", "book", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"))
    book: Mapped[str] = mapped_column(String(24), )  # whose account: sim | demo | live | replay:<id>
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(6), default="open")
    contracts: Mapped[float] = mapped_column(Float)  # currently open
    max_contracts: Mapped[float] = mapped_column(Float)
    ct_val: Mapped[float] = mapped_column(Float)
    entry_price: Mapped[float] = mapped_column(Float)  # average
    exit_price: Mapped[float | None] = mapped_column(Float)  # average
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    fees: Mapped[float] = mapped_column(Float, default=0.0)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(16))
    open_run_id: Mapped[str | None] = mapped_column(String(40))
    close_run_id: Mapped[str | None] = mapped_column(String(40))


class EquitySnapshot(Base):
    __tablename__ = "equity_snapshots"
    __table_args__ = (Index("ix_equity_agent_ts", "agent", "book", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"))
    book: Mapped[str] = mapped_column(String(24), )  # whose account: sim | demo | live | replay:<id>
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), unique=True)
    ts: Mapped[datetime]  # market time the equity stands for
    cash: Mapped[float] = mapped_column(Float)
    equity: Mapped[float] = mapped_column(Float)
    unrealized_pnl: Mapped[float] = mapped_column(Float)
    realized_pnl: Mapped[float] = mapped_column(Float)
    fees: Mapped[float] = mapped_column(Float)
    positions: Mapped[list[Any]] = mapped_column(Json, default=list)


class AuditEvent(Base):
    """Append-only (enforced by database triggers created in the first migration)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_agent_ts", "agent", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    agent: Mapped[str | None] = mapped_column(String(40))
    run_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(40), default="system")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Control(Base):
    """Global switches (the trading pause) and markers, as key → JSON value."""

    __tablename__ = "controls"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reconciliation(Base):
    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent: Mapped[str] = mapped_column(ForeignKey("agents.name"))
    book: Mapped[str] = mapped_column(String(24), )  # whose account: sim | demo | live | replay:<id>
    ts: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(10))  # cli | beat
    ok: Mapped[bool] = mapped_column(Boolean)
    differences: Mapped[list[Any]] = mapped_column(Json, default=list)
    ledger: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    exchange: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class Report(Base):
    __tablename__ = "reports"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    path: Mapped[str] = mapped_column(String(400))
    built_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    recipients: Mapped[list[Any]] = mapped_column(Json, default=list)
    send_count: Mapped[int] = mapped_column(Integer, default=0)


class ApiToken(Base):
    """A token of the HTTP API. Only the SHA-256 of the token is kept: the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    scope: Mapped[str] = mapped_column(String(8))  # read | operate | admin
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(40))
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """An `Idempotency-Key` of a request that creates something: the same key returns what the first made."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
