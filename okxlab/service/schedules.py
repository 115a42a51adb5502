"""Schedules: runtime-editable, read at the next dispatch. Every change is audited with its actor."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from okxlab.config import Config
from okxlab.db.models import Schedule
from okxlab.db.ops import audit
from okxlab.errors import NotFound, UserError
from okxlab.pipeline.dispatch import ParsedSchedule, parse_schedule
from okxlab.service.risk import Conflict


def as_dict(r: Schedule) -> dict[str, Any]:
    return {"name": r.name, "agent": r.agent, "kind": r.kind, "expr": r.expr, "enabled": r.enabled,
            "last_dispatched_for": r.last_dispatched_for}


def _get(s: Session, name: str) -> Schedule:
    row = s.scalar(select(Schedule).where(Schedule.name == name))
    if row is None:
        names = ", ".join(s.scalars(select(Schedule.name).order_by(Schedule.name))) or "none"
        raise NotFound(f"no schedule named {name!r} (schedules: {names})")
    return row


def list_schedules(s: Session) -> list[dict[str, Any]]:
    return [as_dict(r) for r in s.scalars(select(Schedule).order_by(Schedule.name))]


def get(s: Session, name: str) -> dict[str, Any]:
    return as_dict(_get(s, name))


def parse(every: str | None, cron: str | None) -> ParsedSchedule:
    if bool(every) == bool(cron):
        raise UserError("give exactly one of --every INTERVAL or --cron 'CRONTAB'")
    try:
        return parse_schedule("interval" if every else "crontab", every or cron or "")
    except OverflowError:  # a number of units no timedelta can hold
        raise UserError(f"interval {every!r} is too long; give a span up to a few years, e.g. 30d") from None


def overlapping(s: Session, name: str, agent: str | None, configured: tuple[str, ...] | None = None) -> list[Schedule]:
    """Other enabled schedules that also run `agent` (None: every configured agent), so both create runs for it.
    `configured` (the config's agents, when known) leaves out schedules of agents no longer configured."""
    q = select(Schedule).where(Schedule.enabled.is_(True), Schedule.name != name).order_by(Schedule.name)
    if agent is not None:
        q = q.where((Schedule.agent == agent) | Schedule.agent.is_(None))
    elif configured is not None:
        q = q.where(Schedule.agent.is_(None) | Schedule.agent.in_(configured))
    return list(s.scalars(q))


def overlap_warning(name: str, agent: str | None, others: list[dict[str, Any]]) -> str | None:
    """Two schedules on one agent may be meant (a fast one for a while), but each creates its own runs, so the
    agent can be run twice at the same tick: a warning, and the change stands."""
    if not others:
        return None
    shown = ", ".join(f"{o['name']} ({o['kind']} {o['expr']}, {o['agent'] or 'every agent'})" for o in others)
    return (f"schedule {name} ({agent or 'every agent'}) overlaps enabled schedule(s) {shown}: an agent on both gets "
            "runs from each, possibly at the same time; `okxlab schedules disable NAME` turns one off")


def add(sessions: sessionmaker[Session], cfg: Config, name: str, parsed: ParsedSchedule, agent: str | None, *,
        actor: str) -> list[dict[str, Any]]:
    """Add a schedule (nothing is written if anything is invalid); returns the enabled schedules it overlaps."""
    if agent:
        cfg.agent(agent)  # unknown agents are refused here
    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
        raise UserError("a schedule name is 1-64 letters, digits, '-' or '_'")
    try:
        return _add(sessions, cfg, name, parsed, agent, actor=actor)
    except IntegrityError:  # another request added the same name between our check and our insert
        raise Conflict(f"a schedule named {name!r} already exists; remove it first or pick another name") from None


def _add(sessions: sessionmaker[Session], cfg: Config, name: str, parsed: ParsedSchedule, agent: str | None, *,
         actor: str) -> list[dict[str, Any]]:
    with sessions.begin() as s:
        if s.scalar(select(Schedule).where(Schedule.name == name)):
            raise Conflict(f"a schedule named {name!r} already exists; remove it first or pick another name")
        # Only ticks after now are dispatched: adding a schedule never fires for the past.
        s.add(Schedule(name=name, agent=agent, kind=parsed.kind, expr=parsed.expr, enabled=True,
                       last_dispatched_for=datetime.now(UTC)))
        audit(s, "schedule.added", f"schedule {name} ({parsed.kind} {parsed.expr}) added", actor=actor,
              data={"schedule": name, "agent": agent})
        return [as_dict(o) for o in overlapping(s, name, agent, cfg.agent_names)]


def update(sessions: sessionmaker[Session], name: str, *, actor: str, enabled: bool | None = None,
           parsed: ParsedSchedule | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Enable/disable a schedule and/or change its timing; returns it and the schedules it now overlaps."""
    overlaps: list[dict[str, Any]] = []
    with sessions.begin() as s:
        row = _get(s, name)
        if parsed is not None and (parsed.kind, parsed.expr) != (row.kind, row.expr):
            row.kind, row.expr = parsed.kind, parsed.expr
            row.last_dispatched_for = datetime.now(UTC)  # the new timing starts from now, never the past
            audit(s, "schedule.changed", f"schedule {name} now {parsed.kind} {parsed.expr}", actor=actor,
                  data={"schedule": name})
        if enabled is not None and row.enabled != enabled:
            row.enabled = enabled
            if enabled:
                row.last_dispatched_for = datetime.now(UTC)  # no catch-up for the time it was off
                overlaps = [as_dict(o) for o in overlapping(s, name, row.agent)]
            audit(s, "schedule." + ("enabled" if enabled else "disabled"), f"schedule {name} "
                  + ("enabled" if enabled else "disabled"), actor=actor, data={"schedule": name})
        return as_dict(row), overlaps


def remove(sessions: sessionmaker[Session], name: str, *, actor: str) -> None:
    """Remove a schedule (its past runs stay in the audit trail)."""
    with sessions.begin() as s:
        s.delete(_get(s, name))
        audit(s, "schedule.removed", f"schedule {name} removed", actor=actor, data={"schedule": name})
