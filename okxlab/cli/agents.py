"""okxlab agents list | halt | resume | flatten"""

from __future__ import annotations

import getpass

import click

from okxlab.cli.common import config, echo_json, exchange_calls, kill_switch, open_db
from okxlab.domain import TradingState
from okxlab.service import agents as service


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user database entry (containers)
        return "cli"


@click.group()
def agents() -> None:
    """Agents: their planners, trading states and equity."""


@agents.command("list")
@click.option("--book", help="Whose account: sim | demo | live | replay:<id> (default: each agent's latest).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(book: str | None, as_json: bool) -> None:
    """Every configured agent with its trading state and equity in one book."""
    cfg = config()
    with open_db()() as s:
        rows = service.list_agents(s, cfg, book)
    if as_json:
        echo_json(rows)
        return
    from okxlab.cli.view import show_table

    show_table(["AGENT", "PLANNER", "SYMBOLS", "BOOK", "STATE", "EQUITY", "RETURN", "RUNS"],
               [[r["name"], r["uses"], ",".join(r["symbols"]), r["book"], _state(r), r["equity"],
                 f"{r['return_pct']:+.2f}%", r["runs"]] for r in rows], wrap=["STATE"], coloured=["STATE"])


def _state(row: dict) -> str:
    own = row["trading_state"] + (f" ({row['state_reason']})" if row["state_reason"] else "")
    if row["effective_state"] == "PAUSED":  # the global pause binds every agent, whatever its own state
        return f"PAUSED (global: {row['global_pause'].get('reason') or 'paused'}; own state {own})"
    return own


@kill_switch
def _change(name: str, book: str | None, target: TradingState, reason: str | None) -> None:
    cfg = config()
    cfg.agent(name)  # unknown agents are refused (with the known ones) before the database is opened
    book = service.change_state(open_db(), cfg, name, book, target, reason, actor=actor())
    click.echo(f"agent {name} is now {target.value} in book {book}" + (f" ({reason})" if reason else ""))


@agents.command()
@click.argument("name")
@click.option("--reason", required=True, help="Why (kept in the audit log).")
@click.option("--reduce-only", is_flag=True, help="Allow closing and reducing only, instead of a full halt.")
@click.option("--book", help="Whose account (default: the agent's exchange mode: sim, demo or live).")
def halt(name: str, reason: str, reduce_only: bool, book: str | None) -> None:
    """Stop an agent opening positions (closing is always allowed)."""
    _change(name, book, TradingState.REDUCE_ONLY if reduce_only else TradingState.HALTED, reason)


@agents.command()
@click.argument("name")
@click.option("--book", help="Whose account (default: the agent's exchange mode: sim, demo or live).")
def resume(name: str, book: str | None) -> None:
    """Return a halted or reduce-only agent to ACTIVE (counters reset, a new drawdown epoch)."""
    _change(name, book, TradingState.ACTIVE, None)


@agents.command()
@click.argument("name")
@click.option("--book", help="Whose account: sim | demo | live | replay:<id> (default: the agent's exchange mode).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@kill_switch
def flatten(name: str, book: str | None, yes: bool) -> None:
    """Cancel all of an agent's orders and close all its positions at market (audited)."""
    cfg = config()
    book = book or cfg.exchange_mode(cfg.agent(name))
    open_db()
    if not yes:
        click.confirm(f"close every position and cancel every order of {name} [{book}]?", abort=True)
    with exchange_calls(f"flatten {name} [{book}]"):
        book, result = service.flatten(cfg, name, book, actor=actor())
    click.echo(f"{name} [{book}]: {len(result.cancelled)} order(s) cancelled, {len(result.closed)} position(s) closed"
               + "".join(f"\n  {c['symbol']} {c['contracts']:g} contracts → {c['state']}" for c in result.closed))
