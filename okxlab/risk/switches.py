"""The kill switches as they stand in the database, and the one rule that applies them to an order.

Two switches stop new exposure: the global pause (the operator's switch for every trading book) and an
agent's trading state in a book (ACTIVE / REDUCE_ONLY / HALTED). The risk stage reads them for its verdict;
the order stage reads them again, locked, in the same transaction as each order's claim, so a switch pulled
after the verdict still binds the order (`order_block`). Closing and flattening are always allowed: a kill
switch must never keep a position open.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.db.models import Control, RiskStateRecord, utcnow
from okxlab.db.ops import audit, get_control, insert_ignore, set_control
from okxlab.domain import TradingState

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
