"""Runs: filtered, newest-first lists with cursor pagination, and one run's whole trail."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from okxlab.db.models import Run
from okxlab.errors import UserError
from okxlab.review.trail import run_summary, run_trail


@dataclass(frozen=True)
class RunFilter:
    agent: str | None = None
    book: str | None = None
    status: str | None = None
    since: datetime | None = None


def encode_cursor(run: Run) -> str:
    raw = json.dumps([run.scheduled_for.isoformat(), run.agent, run.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    try:
        at, agent, run_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:  # this API writes UTC times with their offset; anything else was not ours
            raise ValueError("naive time")
        return when, str(agent), str(run_id)
    except Exception:  # any malformed cursor is the same user mistake
        raise UserError(f"cursor {cursor[:40]!r} is not one this API returned; start again without it") from None


def list_runs(s: Session, where: RunFilter, limit: int, cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """The runs matching `where`, newest first (ties by agent, then id), and the cursor of the next page."""
    q = select(Run).order_by(Run.scheduled_for.desc(), Run.agent, Run.id).limit(limit + 1)
    if where.agent:
        q = q.where(Run.agent == where.agent)
    if where.book:
        q = q.where(Run.book == where.book)
    if where.status:
        q = q.where(Run.status == where.status)
    if where.since:
        q = q.where(Run.scheduled_for >= where.since)
    if cursor:
        at, agent, run_id = _decode_cursor(cursor)
        # Keyset pagination: everything strictly after the last row shown, in the same order.
        q = q.where(or_(Run.scheduled_for < at,
                        and_(Run.scheduled_for == at, or_(Run.agent > agent, and_(Run.agent == agent, Run.id > run_id)))))
    rows = list(s.scalars(q))
    more = len(rows) > limit
    rows = rows[:limit]
    return [run_summary(r) for r in rows], (encode_cursor(rows[-1]) if more else None)


def any_runs(s: Session) -> bool:
    return s.scalar(select(Run.id).limit(1)) is not None


def show(s: Session, run_id: str, *, full: bool = False) -> dict[str, Any]:
    return run_trail(s, run_id, full=full)
