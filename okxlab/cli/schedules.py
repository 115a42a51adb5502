"""okxlab schedules list | add | enable | disable | remove — runtime-editable, read at the next dispatch."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from sqlalchemy import select

from okxlab.cli.common import config, echo_json, open_db, table
from okxlab.db.models import Schedule
from okxlab.db.ops import audit
from okxlab.errors import NotFound, UserError
from okxlab.pipeline.dispatch import parse_schedule


@click.group()
def schedules() -> None:
    """When agents run: intervals or crontabs (UTC), changed without restarting anything."""


def _get(s, name: str) -> Schedule:  # noqa: ANN001
    row = s.scalar(select(Schedule).where(Schedule.name == name))
    if row is None:
        names = ", ".join(s.scalars(select(Schedule.name).order_by(Schedule.name))) or "none"
        raise NotFound(f"no schedule named {name!r} (schedules: {names})")
    return row


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """Show every schedule."""
    with open_db()() as s:
        rows = s.scalars(select(Schedule).order_by(Schedule.name)).all()
        data = [{"name": r.name, "agent": r.agent, "kind": r.kind, "expr": r.expr, "enabled": r.enabled,
                 "last_dispatched_for": r.last_dispatched_for} for r in rows]
    if as_json:
        echo_json(data)
        return
    if not data:
        click.echo("no schedules; add one with `okxlab schedules add NAME --every 4h`")
        return
    click.echo(table(["NAME", "AGENT", "KIND", "EXPR", "ENABLED", "LAST TICK"],
                     [[d["name"], d["agent"] or "(all)", d["kind"], d["expr"], "yes" if d["enabled"] else "no",
                       d["last_dispatched_for"]] for d in data]))


@schedules.command()
@click.argument("name")
@click.option("--every", help="An interval: 30s, 15m, 4h, 1d (aligned to UTC midnight).")
@click.option("--cron", help='A five-field crontab in UTC, e.g. "5 */4 * * *".')
@click.option("--agent", help="Only this agent (default: every configured agent).")
def add(name: str, every: str | None, cron: str | None, agent: str | None) -> None:
    """Add a schedule. Nothing is written if anything is invalid."""
    if bool(every) == bool(cron):
        raise UserError("give exactly one of --every INTERVAL or --cron 'CRONTAB'")
    try:
        parsed = parse_schedule("interval" if every else "crontab", every or cron or "")
    except OverflowError:  # a number of units no timedelta can hold
        raise UserError(f"interval {every!r} is too long; give a span up to a few years, e.g. 30d") from None
    cfg = config()  # the agents it will run come from the config file: a malformed one is refused here
    if agent:
        cfg.agent(agent)  # unknown agents are refused here
    if not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
        raise UserError("a schedule name is 1-64 letters, digits, '-' or '_'")
    with open_db().begin() as s:
        if s.scalar(select(Schedule).where(Schedule.name == name)):
            raise UserError(f"a schedule named {name!r} already exists; remove it first or pick another name")
        now = datetime.now(UTC)
        # Only ticks after now are dispatched: adding a schedule never fires for the past.
        s.add(Schedule(name=name, agent=agent, kind=parsed.kind, expr=parsed.expr, enabled=True,
                       last_dispatched_for=now))
        audit(s, "schedule.added", f"schedule {name} ({parsed.kind} {parsed.expr}) added", actor="cli",
              data={"schedule": name, "agent": agent})
        overlaps = _overlapping(s, name, agent, cfg.agent_names)
    click.echo(f"added schedule {name}: {parsed.kind} {parsed.expr} for {agent or 'every agent'}")
    _warn_overlap(name, agent, overlaps)


def _overlapping(s, name: str, agent: str | None, configured: tuple[str, ...] | None = None) -> list[Schedule]:  # noqa: ANN001
    """Other enabled schedules that also run `agent` (None: every configured agent), so both create runs for it.
    `configured` (the config's agents, when known) leaves out schedules of agents no longer configured."""
    q = select(Schedule).where(Schedule.enabled.is_(True), Schedule.name != name).order_by(Schedule.name)
    if agent is not None:
        q = q.where((Schedule.agent == agent) | Schedule.agent.is_(None))
    elif configured is not None:
        q = q.where(Schedule.agent.is_(None) | Schedule.agent.in_(configured))
    return list(s.scalars(q))


def _warn_overlap(name: str, agent: str | None, others: list[Schedule]) -> None:
    """One line on stderr, and the change stands: two schedules on one agent may be meant (a fast one for a while),
    but each creates its own runs, so the agent can be run twice at the same tick."""
    if not others:
        return
    shown = ", ".join(f"{o.name} ({o.kind} {o.expr}, {o.agent or 'every agent'})" for o in others)
    click.echo(f"okxlab: warning: schedule {name} ({agent or 'every agent'}) overlaps enabled schedule(s) {shown}: "
               "an agent on both gets runs from each, possibly at the same time; `okxlab schedules disable NAME` "
               "turns one off", err=True)


def _set_enabled(name: str, enabled: bool) -> None:
    overlaps: list[Schedule] = []
    with open_db().begin() as s:
        row = _get(s, name)
        if row.enabled != enabled:
            row.enabled = enabled
            if enabled:
                row.last_dispatched_for = datetime.now(UTC)  # no catch-up for the time it was off
                overlaps = _overlapping(s, name, row.agent)
            audit(s, "schedule." + ("enabled" if enabled else "disabled"), f"schedule {name} "
                  + ("enabled" if enabled else "disabled"), actor="cli", data={"schedule": name})
        agent = row.agent
    click.echo(f"schedule {name} {'enabled' if enabled else 'disabled'}")
    _warn_overlap(name, agent, overlaps)


@schedules.command()
@click.argument("name")
def enable(name: str) -> None:
    """Enable a schedule (from its next tick)."""
    _set_enabled(name, True)


@schedules.command()
@click.argument("name")
def disable(name: str) -> None:
    """Disable a schedule; its runs stop at the next dispatch."""
    _set_enabled(name, False)


@schedules.command()
@click.argument("name")
def remove(name: str) -> None:
    """Remove a schedule (its past runs stay in the audit trail)."""
    with open_db().begin() as s:
        row = _get(s, name)
        s.delete(row)
        audit(s, "schedule.removed", f"schedule {name} removed", actor="cli", data={"schedule": name})
    click.echo(f"removed schedule {name}")
