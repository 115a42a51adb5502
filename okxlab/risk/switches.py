"""The kill switches as they stand in the database, and the one rule that applies them to an order.

Two switches stop new exposure: the global pause (the operator's switch for every trading book) and an
agent's trading state in a book (ACTIVE / REDUCE_ONLY / HALTED). The risk stage reads them for its verdict;
the order stage reads them again, locked, in the same transaction as each order's claim, so a switch pulled
after the verdict still binds the order (`order_block`). Closing and flattening are always allowed: a kill
switch must never keep a position open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.db.models import AuditEvent, Control, EquitySnapshot, RiskStateRecord, utcnow
from okxlab.db.ops import audit, get_control, insert_ignore, set_control
from okxlab.domain import TradingState
from okxlab.outcome import Row, audit_row
from okxlab.risk import state as risk_state

PAUSE_KEY = "global_pause"

# Why an order was not sent: the value of Order.last_error for state `not_sent`, and the run's reason.
BLOCKED_PAUSED = "paused"
BLOCKED_HALTED = "halted"
BLOCKED_REDUCE_ONLY = "reduce_only"


def pause_applies(book: str) -> bool:
    """The global pause is the operator's switch for trading accounts; replays of history are not trading."""
    return not book.startswith("replay:")


def global_pause(session: Session) -> dict[str, Any] | None:
    """The global pause, if one is in force: {"paused": True, "reason": ..., "by": ..., "at": ...}."""
    value = get_control(session, PAUSE_KEY)
    return value if value and value.get("paused") else None


def set_pause(session: Session, paused: bool, *, by: str, reason: str | None = None) -> None:
    """Pull or lift the global pause, audited. The write waits for any order claim holding the switch (see
    `switches_block`), so an order is decided wholly before or wholly after it."""
    value: dict[str, Any] = {"paused": paused, "by": by, "at": utcnow().isoformat()}
    if paused:
        value["reason"] = reason or "paused"
    set_control(session, PAUSE_KEY, value)
    if paused:
        audit(session, "risk.global_pause", f"trading paused for every agent: {value['reason']}", actor=by)
    else:
        audit(session, "risk.global_resume", "global pause lifted", actor=by)


def state_row(session: Session, agent: str, book: str, *, lock: str | None = None) -> RiskStateRecord:
    """The agent's trading state in `book`, created ACTIVE the first time the book is traded.

    `lock`: "share" or "update", held until the transaction ends, so an operator's change waits for it (and
    is seen by it if it came first)."""
    if session.get(RiskStateRecord, (agent, book)) is None:
        insert_ignore(session, RiskStateRecord, [{"agent": agent, "book": book, "trading_state": "ACTIVE",
                                                   "consecutive_invalid_plans": 0, "consecutive_rejections": 0,
                                                   "trading_epoch": 0, "updated_at": utcnow()}], ["agent", "book"])
    if lock is None:
        return session.get(RiskStateRecord, (agent, book))
    return session.scalars(select(RiskStateRecord)
                           .where(RiskStateRecord.agent == agent, RiskStateRecord.book == book)
                           .with_for_update(read=lock == "share")
                           .execution_options(populate_existing=True)).one()


def peek_state_row(session: Session, agent: str, book: str) -> RiskStateRecord:
    """The agent's trading state in `book` as stored, read only: a book it never traded is ACTIVE, and that
    row is not created (a dry run looks at a book without touching it)."""
    row = session.get(RiskStateRecord, (agent, book))
    if row is not None:
        return row
    return RiskStateRecord(agent=agent, book=book, trading_state="ACTIVE", consecutive_invalid_plans=0,
                           consecutive_rejections=0, trading_epoch=0, updated_at=utcnow())


def order_block(trading_state: str, paused: bool, *, purpose: str, reduce_only: bool) -> str | None:
    """Why an order may not go out now (BLOCKED_*), or None. The same rule for the pipeline's order stage and
    the in-process replays."""
    if purpose == "flatten" or reduce_only:
        return None  # closing is always allowed
    if paused:
        return BLOCKED_PAUSED
    if trading_state == TradingState.HALTED:
        return BLOCKED_HALTED
    if trading_state == TradingState.REDUCE_ONLY:
        return BLOCKED_REDUCE_ONLY
    return None


def switches_block(session: Session, agent: str, book: str, *, purpose: str, reduce_only: bool,
                   lock: bool = True) -> str | None:
    """`order_block` on the switches as they stand now.

    With `lock`, the pause's control row and the agent's state row are read under share locks that hold
    until the caller commits: an operator's pause or halt that comes a moment later waits for the caller
    (an order claim) to commit, and one that came a moment earlier is seen here. So every order is decided
    on one side of the switch, never across it. Without `lock`: a plain read, for a quick look ahead."""
    if purpose == "flatten" or reduce_only:
        return None
    paused = False
    if pause_applies(book):
        query = select(Control).where(Control.key == PAUSE_KEY).execution_options(populate_existing=True)
        row = session.scalars(query.with_for_update(read=True) if lock else query).first()
        paused = bool(row and row.value and row.value.get("paused"))
    if lock:
        state = state_row(session, agent, book, lock="share").trading_state
    else:
        row = session.get(RiskStateRecord, (agent, book))
        state = row.trading_state if row is not None else TradingState.ACTIVE.value
    return order_block(state, paused, purpose=purpose, reduce_only=reduce_only)


# ---- an agent's trading state in a book, as stored ------------------------------------------------------

def load_risk_state(session: Session, row: RiskStateRecord) -> risk_state.RiskState:
    return risk_state.RiskState(
        trading_state=TradingState(row.trading_state),
        reason=row.state_reason,
        since=row.state_changed_at,
        global_pause=pause_applies(row.book) and global_pause(session) is not None,
        consecutive_invalid_plans=row.consecutive_invalid_plans,
        consecutive_rejections=row.consecutive_rejections,
        daily_loss_day=row.daily_loss_day,
    )


def store_state(row: RiskStateRecord, state: risk_state.RiskState) -> None:
    """Write a risk state onto the agent's state row in its book (the pipeline after each stage; an
    in-process replay once, at its end)."""
    row.trading_state = state.trading_state.value
    row.state_reason = state.reason
    row.state_changed_at = state.since
    row.consecutive_invalid_plans = state.consecutive_invalid_plans
    row.consecutive_rejections = state.consecutive_rejections
    row.daily_loss_day = state.daily_loss_day
    row.updated_at = utcnow()


def transition_audits(agent: str, book: str, transition: risk_state.Transition, run_id: str | None, *,
                      actor: str = "system") -> list[Row]:
    """One audit event per state change of a transition."""
    return [(AuditEvent, audit_row(f"risk.{change.code.lower()}", change.message, agent=agent, run_id=run_id,
                                   actor=actor, data={"code": change.code, "book": book,
                                                      "from": change.before.trading_state.value,
                                                      "to": change.after.trading_state.value}))
            for change in transition.changes]


def persist(session: Session, row: RiskStateRecord, transition: risk_state.Transition, *, run_id: str | None = None,
            actor: str = "system") -> None:
    """Store a transition's state, with one audit event per change, in the caller's transaction."""
    store_state(row, transition.state)
    for model, values in transition_audits(row.agent, row.book, transition, run_id, actor=actor):
        session.add(model(**values))


def change_trading_state(session: Session, agent: str, book: str, target: TradingState, *, by: str, now: datetime,
                         reason: str | None = None) -> risk_state.Transition:
    """An operator's halt / reduce-only / resume of `agent` in `book`, audited."""
    row = state_row(session, agent, book)
    transition = risk_state.set_trading_state(load_risk_state(session, row), target, now, by, reason)
    persist(session, row, transition, actor=by)
    if target == TradingState.ACTIVE:
        # A human has looked and decided to go on: drawdown is measured afresh from here, or the drawdown
        # halt would fire again at the next run.
        row.drawdown_reset_snapshot_id = session.scalar(
            select(func.max(EquitySnapshot.id)).where(EquitySnapshot.agent == agent, EquitySnapshot.book == book))
    if reason and transition.changes:
        audit(session, "agent.state_note", reason, agent=agent, actor=by, data={"book": book})
    return transition
