"""Bring a database to the current schema and in line with the config (agents, default schedules)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from okxlab.agents import sync_agents
from okxlab.config import Config
from okxlab.db.migrate import upgrade
from okxlab.db.models import Schedule
from okxlab.db.ops import audit, get_control, set_control
from okxlab.db.session import session_scope
from schedules.defaults import DEFAULT_SCHEDULES

SEEDED_KEY = "default_schedules_seeded"


def seed_default_schedules(session: Session) -> int:
    """Insert the default schedules once per database (a user's later removals stick)."""
    if get_control(session, SEEDED_KEY):
        return 0
    for name, agent, kind, expr in DEFAULT_SCHEDULES:
        session.add(Schedule(name=name, agent=agent, kind=kind, expr=expr, enabled=True))
        audit(session, "schedule.added", f"default schedule {name} ({kind} {expr}) added")
    set_control(session, SEEDED_KEY, {"seeded": True})
    return len(DEFAULT_SCHEDULES)


@dataclass(frozen=True)
class Prepared:
    agents_added: list[str]
    agents_updated: list[str]
    schedules_seeded: int

    def describe(self) -> str:
        """What changed besides the schema, for the operator (empty when nothing did)."""
        parts = []
        if self.agents_added:
            parts.append(f"registered {len(self.agents_added)} agent(s): {', '.join(self.agents_added)}")
        if self.agents_updated:
            parts.append(f"updated {len(self.agents_updated)} agent(s) from the config: "
                         f"{', '.join(self.agents_updated)}")
        if self.schedules_seeded:
            parts.append(f"seeded {self.schedules_seeded} default schedule(s) (`okxlab schedules list`)")
        return "; ".join(parts)


def prepare(config: Config, url: str | None = None, *, seed: bool = True) -> Prepared:
    upgrade(url)
    with session_scope(url) as s:
        added, updated = sync_agents(s, config)
        seeded = seed_default_schedules(s) if seed else 0
    return Prepared(added, updated, seeded)
