"""Small database operations shared by every part: insert-if-absent and the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from okxlab.db.models import AuditEvent, Base, Control, utcnow


def insert_ignore(session: Session, model: type[Base], rows: list[dict[str, Any]], conflict: list[str]) -> int:
    """Insert rows, silently skipping those that clash on `conflict` (a unique key). Returns rows inserted."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model).values(rows).on_conflict_do_nothing(index_elements=conflict)
    return session.execute(stmt).rowcount or 0


def insert_new(session: Session, model: type[Base], rows: list[dict[str, Any]], conflict: list[str],
               key: str) -> list[Any]:
    """Like insert_ignore, but returns the `key` of each row this statement actually inserted (so of two
    racing callers, exactly one learns that it created a given row)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(model).values(rows).on_conflict_do_nothing(index_elements=conflict).returning(getattr(model, key))
    return list(session.scalars(stmt))


def audit(session: Session, kind: str, message: str, *, agent: str | None = None, run_id: str | None = None,
          actor: str = "system", data: dict[str, Any] | None = None) -> None:
    """Append an event to the audit log (in the caller's transaction)."""
    session.add(AuditEvent(ts=utcnow(), kind=kind, message=message, agent=agent, run_id=run_id, actor=actor,
                           data=data or {}))


def get_control(session: Session, key: str) -> dict[str, Any] | None:
    row = session.get(Control, key)
    return row.value if row else None


def set_control(session: Session, key: str, value: dict[str, Any]) -> None:
    row = session.get(Control, key)
    if row is None:
        session.add(Control(key=key, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()
