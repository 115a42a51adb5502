"""okxlab schedules list | add | enable | disable | remove — runtime-editable, read at the next dispatch."""

from __future__ import annotations

import click

from okxlab.cli.common import config, echo_json, open_db, table
from okxlab.service import schedules as service

ACTOR = "cli"


@click.group()
def schedules() -> None:
    """When agents run: intervals or crontabs (UTC), changed without restarting anything."""


@schedules.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """Show every schedule."""
    with open_db()() as s:
        data = service.list_schedules(s)
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
    parsed = service.parse(every, cron)
    cfg = config()  # the agents it will run come from the config file: a malformed one is refused here
    overlaps = service.add(open_db(), cfg, name, parsed, agent, actor=ACTOR)
    click.echo(f"added schedule {name}: {parsed.kind} {parsed.expr} for {agent or 'every agent'}")
    _warn(service.overlap_warning(name, agent, overlaps))


def _warn(message: str | None) -> None:
    if message:
        click.echo(f"okxlab: warning: {message}", err=True)


def _set_enabled(name: str, enabled: bool) -> None:
    row, overlaps = service.update(open_db(), name, enabled=enabled, actor=ACTOR)
    click.echo(f"schedule {name} {'enabled' if enabled else 'disabled'}")
    _warn(service.overlap_warning(name, row["agent"], overlaps))


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
    service.remove(open_db(), name, actor=ACTOR)
    click.echo(f"removed schedule {name}")
