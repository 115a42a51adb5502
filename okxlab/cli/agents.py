"""okxlab agents list | halt | resume"""

from __future__ import annotations

import getpass

import click
from sqlalchemy import func, select

from okxlab.agents import sync_agents
from okxlab.cli.common import config, echo_json, exchange_calls, open_db, table
from okxlab.db.models import EquitySnapshot, RiskStateRecord, Run, utcnow
from okxlab.domain import TradingState
from okxlab.errors import UserError
from okxlab.risk.switches import change_trading_state, state_row


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user database entry (containers)
        return "cli"


@click.group()
def agents() -> None:
    """Agents: their planners, trading states and equity."""


def _latest_book(s, agent: str) -> str | None:  # noqa: ANN001
    """The book of the agent's most recent run (what `agents list` shows by default)."""
    return s.scalars(select(Run.book).where(Run.agent == agent).order_by(Run.created_at.desc()).limit(1)).first()


@agents.command("list")
@click.option("--book", help="Whose account: sim | demo | live | replay:<id> (default: each agent's latest).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(book: str | None, as_json: bool) -> None:
    """Every configured agent with its trading state and equity in one book."""
    cfg = config()
    with open_db()() as s:
        rows = []
        for a in cfg.agents:
            shown = book or _latest_book(s, a.name) or cfg.exchange_mode(a)
            state = s.get(RiskStateRecord, (a.name, shown))
            eq = s.scalars(select(EquitySnapshot).where(EquitySnapshot.agent == a.name, EquitySnapshot.book == shown)
                           .order_by(EquitySnapshot.ts.desc(), EquitySnapshot.id.desc()).limit(1)).first()
            n_runs = s.scalar(select(func.count()).select_from(Run).where(Run.agent == a.name, Run.book == shown))
            planner = a.strategy if a.planner == "strategy" else f"{a.llm.get('provider')}/{a.llm.get('model')}"
            rows.append({"name": a.name, "planner": a.planner, "uses": planner, "symbols": list(a.symbols),
                         "book": shown, "trading_state": state.trading_state if state else "ACTIVE",
                         "state_reason": state.state_reason if state else None,
                         "state_changed_at": state.state_changed_at if state else None,
                         "equity": eq.equity if eq else a.initial_equity, "equity_book": shown,
                         "equity_at": eq.ts if eq else None,
                         "return_pct": ((eq.equity / a.initial_equity - 1) * 100) if eq else 0.0, "runs": n_runs})
    if as_json:
        echo_json(rows)
        return
    click.echo(table(["AGENT", "PLANNER", "SYMBOLS", "BOOK", "STATE", "EQUITY", "RETURN", "RUNS"],
                     [[r["name"], r["uses"], ",".join(r["symbols"]), r["book"],
                       r["trading_state"] + (f" ({r['state_reason']})" if r["state_reason"] else ""),
                       r["equity"], f"{r['return_pct']:+.2f}%", r["runs"]] for r in rows]))


def _change(name: str, book: str | None, target: TradingState, reason: str | None) -> None:
    cfg = config()
    agent_cfg = cfg.agent(name)  # unknown agents are refused with the list of known ones
    book = book or cfg.exchange_mode(agent_cfg)
    with open_db().begin() as s:
        sync_agents(s, cfg)
        current = state_row(s, name, book).trading_state
        if current == target.value:
            raise UserError(f"agent {name} is already {target.value} in book {book}")
        change_trading_state(s, name, book, target, by=actor(), now=utcnow(), reason=reason)
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
def flatten(name: str, book: str | None, yes: bool) -> None:
    """Cancel all of an agent's orders and close all its positions at market (audited)."""
    from okxlab.execution.manual import flatten as run_flatten
    from okxlab.pipeline.env import build_env

    cfg = config()
    agent = cfg.agent(name)
    book = book or cfg.exchange_mode(agent)
    open_db()
    if not yes:
        click.confirm(f"close every position and cancel every order of {name} [{book}]?", abort=True)
    with exchange_calls(f"flatten {name} [{book}]"):
        result = run_flatten(build_env(cfg), agent, book, request_id=utcnow().isoformat(), actor=actor())
    click.echo(f"{name} [{book}]: {len(result.cancelled)} order(s) cancelled, {len(result.closed)} position(s) closed"
               + "".join(f"\n  {c['symbol']} {c['contracts']:g} contracts → {c['state']}" for c in result.closed))
