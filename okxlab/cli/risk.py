"""okxlab risk pause | resume | exposure"""

from __future__ import annotations

from collections import defaultdict

import click
from sqlalchemy import func, select

from okxlab.cli.agents import actor
from okxlab.cli.common import echo_json, open_db, table
from okxlab.db.models import MarketSnapshot, PositionRecord
from okxlab.errors import UserError
from okxlab.risk.switches import global_pause, set_pause


@click.group()
def risk() -> None:
    """Kill switches and exposure across agents."""


@risk.command()
@click.option("--reason", default="paused by operator", show_default=True, help="Why (kept in the audit log).")
def pause(reason: str) -> None:
    """Block new entries for every agent (closing stays allowed)."""
    with open_db().begin() as s:
        if global_pause(s):
            raise UserError("trading is already paused; `okxlab risk resume` lifts the pause")
        set_pause(s, True, by=actor(), reason=reason)
    click.echo(f"trading paused for every agent: {reason}")


@risk.command()
def resume() -> None:
    """Lift the global pause."""
    with open_db().begin() as s:
        if not global_pause(s):
            raise UserError("trading is not paused")
        set_pause(s, False, by=actor())
    click.echo("global pause lifted")


def exposure_rows(s) -> list[dict]:  # noqa: ANN001
    """Per book and symbol: long and short notional by agent, and the net, at the latest snapshot price."""
    latest = select(func.max(MarketSnapshot.id)).group_by(MarketSnapshot.symbol)
    marks = dict(s.execute(select(MarketSnapshot.symbol, MarketSnapshot.last).where(MarketSnapshot.id.in_(latest))).all())
    grouped: dict[tuple[str, str], dict] = defaultdict(lambda: {"long": 0.0, "short": 0.0, "by_agent": {}})
    for p in s.scalars(select(PositionRecord).where(PositionRecord.status == "open")):
        notional = p.contracts * p.ct_val * marks.get(p.symbol, p.entry_price)
        entry = grouped[(p.book, p.symbol)]
        entry[p.side] += notional
        entry["by_agent"][p.agent] = entry["by_agent"].get(p.agent, 0.0) + (notional if p.side == "long" else -notional)
    return [{"book": book, "symbol": symbol, "long": e["long"], "short": e["short"], "net": e["long"] - e["short"],
             "by_agent": e["by_agent"]} for (book, symbol), e in sorted(grouped.items())]


@risk.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def exposure(as_json: bool) -> None:
    """Long and short notional per symbol, by agent, and net."""
    with open_db()() as s:
        rows = exposure_rows(s)
        pause_state = global_pause(s)
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
