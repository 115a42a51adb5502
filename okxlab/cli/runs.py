"""okxlab runs list | show — the audit view."""

from __future__ import annotations

import json
from typing import Any

import click

from okxlab.cli.common import echo_json, fmt, open_db, table
from okxlab.service import runs as service
from okxlab.service.runs import RunFilter


@click.group()
def runs() -> None:
    """Pipeline runs and their whole audit trail."""


@runs.command("list")
@click.option("--agent", help="Only this agent's runs.")
@click.option("--status", help="Only runs with this status (completed, skipped, invalid_plan, rejected, failed, ...).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (see docs/cli.md).")
def list_(agent: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The most recent runs, newest first."""
    with open_db()() as s:
        rows, _ = service.list_runs(s, RunFilter(agent=agent, status=status), limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no runs yet" + (f" for agent {agent}" if agent else "") + "; `okxlab demo` makes some")
        return
    click.echo(table(["RUN", "AGENT", "SCHEDULED FOR", "STATUS", "STAGE", "REASON"],
                     [[r["id"], r["agent"], r["scheduled_for"], r["status"], r["stage"], _short(r["reason"], 60)]
                      for r in rows]))


def _short(text: Any, n: int) -> str:
    text = fmt(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


@runs.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (see docs/cli.md).")
@click.option("--full", is_flag=True, help="Include prompt texts and candles.")
def show(run_id: str, as_json: bool, full: bool) -> None:
    """One run's whole trail, stage by stage."""
    with open_db()() as s:
        trail = service.show(s, run_id, full=full)
    if as_json:
        echo_json(trail)
        return
    r = trail["run"]
    click.echo(f"run {r['id']}  agent {r['agent']}  book {r['book']}  scheduled for {fmt(r['scheduled_for'])}")
    click.echo(f"status {r['status']}" + (f": {r['reason']}" if r["reason"] else ""))
    if r["replay_of"]:
        click.echo(f"replay of {r['replay_of']}")
    click.echo("")
    click.echo(table(["STAGE", "STATUS", "ATTEMPTS", "QUEUE", "WAIT", "TOOK", "SUMMARY"],
                     [[st["stage"], st["status"], st["attempts"], st["queue"], _ms(st["queue_wait_ms"]),
                       _ms(st["duration_ms"]), _short(st["error"] or json.dumps(st["output"], default=str), 70)]
                      for st in trail["stages"]]))
    for q in trail["quality"]:
        if q["reasons"]:
            click.echo(f"\nquality {q['symbol']}: {q['outcome']} — " + "; ".join(q["reasons"]))
    if trail["plan"]:
        p = trail["plan"]
        click.echo(f"\nplan by {p['planner']}" + (f" (prompt sha256 {p['prompt_sha256'][:16]}…)" if p["prompt_sha256"] else ""))
        if p["error"]:
            click.echo(f"  error: {p['error']}")
        click.echo("  " + _short(p["raw"].replace("\n", " "), 300))
    for c in trail["llm_calls"]:
        click.echo(f"  llm {c['purpose']}: {c['provider']}/{c['model']} tokens {c['tokens_in']}→{c['tokens_out']} "
                   f"cost ${c['cost_usd'] or 0:.5f} latency {_ms(c['latency_ms'])}" + (" (cached)" if c["cached"] else "")
                   + (f" error: {c['error']}" if c["error"] else ""))
    if trail["validation"] and not trail["validation"]["valid"]:
        click.echo("\ninvalid plan:\n  " + "\n  ".join(trail["validation"]["problems"]))
    if trail["verdicts"]:
        click.echo("\nrisk verdicts:")
        for v in trail["verdicts"]:
            click.echo(f"  [{v['index']}] {v['symbol']} {v['action']}: {v['outcome']}"
                       + (f" ({', '.join(v['reasons'])})" if v["reasons"] else ""))
    if trail["orders"]:
        click.echo("\norders:")
        for o in trail["orders"]:
            click.echo(f"  {o['cl_ord_id']} {o['symbol']} {o['side']} {o['contracts']:g} {o['order_type']} → {o['state']}"
                       f" filled {o['filled']:g} @ {fmt(o['avg_price'])} fee {fmt(o['fee'])} tag {o['tag']}")
    if trail["fills"]:
        click.echo("\nfills:")
        for f in trail["fills"]:
            click.echo(f"  {f['trade_id']} {f['symbol']} {f['side']} {f['contracts']:g} @ {f['price']} fee {f['fee']:.4f} "
                       f"slippage {fmt(f['slippage_bps'])} bps")
    if trail["events"]:
        click.echo("\nevents:")
        for e in trail["events"]:
            click.echo(f"  {fmt(e['ts'])} {e['kind']}: {e['message']}")
