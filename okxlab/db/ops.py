"""Small database operations shared by every part: insert-if-absent and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from okxlab.db.models import AuditEvent, Base, Control, utcnow


def insert_ignore(session: Session, model: type[Base], rows: list[dict[str, Any]], conflict: list[str]) -> int:
    """Insert rows, silently skipping those that clash on `conflict` (a unique key). Returns rows inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model).values(rows).on_conflict_do_nothing(index_elements=conflict)
    return session.execute(stmt).rowcount or 0


def insert_new(session: Session, model: type[Base], rows: list[dict[str, Any]], conflict: list[str] | None,
               key: str) -> list[Any]:
    """Like insert_ignore, but returns the `key` of each row this statement actually inserted (so of two
    racing callers, exactly one learns that it created a given row).

    `conflict=None` skips a row that clashes on any unique key of the table. Name one key only when it is the
    table's only one: Postgres applies DO NOTHING to the named key alone, and a concurrent insert of the same row
    can clash on another unique key first, which raises IntegrityError instead of skipping."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model).values(rows).on_conflict_do_nothing(index_elements=conflict).returning(getattr(model, key))
    return list(session.scalars(stmt))


def db_now(session: Session) -> datetime:
    """The database's clock. Claims and their expiry are measured on it, so that workers whose clocks
    disagree still agree on whose claim has expired. (SQLite is a file on this machine: its clock is ours.)"""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.clock_timestamp())).astimezone(UTC)
    return utcnow()


def serialize(session: Session, key: str) -> None:
    """Hold a lock named `key` until the caller's transaction ends, so that what follows runs for one
    transaction at a time (a Postgres advisory lock; SQLite runs one writing transaction at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def audit(session: Session, kind: str, message: str, *, agent: str | None = None, run_id: str | None = None,
          actor: str = "system", data: dict[str, Any] | None = None) -> None:
    """Append an event to the audit log (in the caller's transaction)."""
    session.add(AuditEvent(ts=utcnow(), kind=kind, message=message, agent=agent, run_id=run_id, actor=actor,
                           data=data or {}))


def get_control(session: Session, key: str) -> dict[str, Any] | None:
    row = session.get(Control, key)
    return row.value if row else None


def set_control(session: Session, key: str, value: dict[str, Any]) -> None:
    """Set a control in one statement (an upsert): it takes the row's lock, so it waits for an order claim
    that holds the switch locked, and two operators setting it at once cannot collide on the insert."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    stmt = insert(Control).values(key=key, value=value, updated_at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value, "updated_at": now}))
    loaded = session.identity_map.get(identity_key(Control, key))
    if loaded is not None:  # a Control loaded before must not hide the new value
        session.expire(loaded)
