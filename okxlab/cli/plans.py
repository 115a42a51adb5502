"""okxlab plans generate"""

from __future__ import annotations

import click

from okxlab.cli.agents import actor
from okxlab.cli.common import config, echo_json, open_db, table
from okxlab.service import plans as service


@click.group()
def plans() -> None:
    """Plans on demand: a dry run up to the risk verdict, nothing sent."""


@plans.command()
@click.argument("agent")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (as POST /plans/generate).")
def generate(agent: str, as_json: bool) -> None:
    """Plan and judge AGENT now on its trading book (dry run in book dry:<book>; no order is sent)."""
    result = service.generate(service.stage_env(config(), open_db()), agent, actor=actor())
    if as_json:
        echo_json(result)
        return
    click.echo(f"dry run {result['run_id']} of {agent} on book {result['trading_book']}: {result['status']}"
               f" — {result['reason']}")
    plan = result["plan"]
    if plan:
        click.echo(f"planner: {plan['planner']}" + (f"; error: {plan['error']}" if plan["error"] else ""))
    if result["validation"] and not result["validation"]["valid"]:
        click.echo("invalid plan: " + "; ".join(result["validation"]["problems"][:5]))
    if result["verdicts"]:
        click.echo(table(["SYMBOL", "ACTION", "VERDICT", "REASONS", "ORDER", "WOULD SEND"],
                         [[v["symbol"], v["action"], v["outcome"], ", ".join(v["reasons"]) or "-",
                           f"{v['order']['side']} {v['order']['contracts']:g}" if v["order"] else "-",
                           "yes" if v["would_send"] else f"no ({v['reason']})"] for v in result["verdicts"]]))
    click.echo("nothing was sent; `okxlab runs show " + result["run_id"] + "` has the whole trail")
