"""okxlab risk pause | resume | exposure"""

from __future__ import annotations

import click

from okxlab.cli.agents import actor
from okxlab.cli.common import echo_json, kill_switch, open_db, table
from okxlab.service import risk as service


@click.group()
def risk() -> None:
    """Kill switches and exposure across agents."""


@risk.command()
@click.option("--reason", default="paused by operator", show_default=True, help="Why (kept in the audit log).")
@kill_switch
def pause(reason: str) -> None:
    """Block new entries for every agent (closing stays allowed)."""
    service.pause(open_db(), reason, actor=actor())
    click.echo(f"trading paused for every agent: {reason}")


@risk.command()
@kill_switch
def resume() -> None:
    """Lift the global pause."""
    service.resume(open_db(), actor=actor())
    click.echo("global pause lifted")


@risk.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def exposure(as_json: bool) -> None:
    """Long and short notional per symbol, by agent, and net."""
    with open_db()() as s:
        data = service.exposure(s)
    rows, pause_state = data["exposure"], data["paused"]
    if as_json:
        echo_json({"paused": bool(pause_state), "exposure": rows})
        return
    if pause_state:
        click.echo(f"GLOBAL PAUSE in force since {pause_state['at']}: {pause_state['reason']}\n")
    if not rows:
        click.echo("no open positions")
        return
    click.echo(table(["BOOK", "SYMBOL", "LONG", "SHORT", "NET", "BY AGENT (signed notional)"],
                     [[r["book"], r["symbol"], r["long"], r["short"], r["net"],
                       ", ".join(f"{a} {v:+,.0f}" for a, v in sorted(r["by_agent"].items()))] for r in rows]))
