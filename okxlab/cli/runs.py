"""okxlab runs list | show — the audit view."""

from __future__ import annotations

import json
from typing import Any

import click

from okxlab.cli.common import echo_json, fmt, open_db
from okxlab.domain import RunStatus
from okxlab.service import runs as service
from okxlab.service.runs import RunFilter


@click.group()
def runs() -> None:
    """Pipeline runs and their whole audit trail."""


STATUSES = tuple(status.value for status in RunStatus)  # what --status accepts


@runs.command("list")
@click.option("--agent", help="Only this agent's runs.")
@click.option("--book", help="Only runs in this book: sim, demo, live, replay:<id>.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (see docs/cli.md).")
def list_(agent: str | None, book: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The most recent runs, newest first."""
    from okxlab.cli.view import show_table

    with open_db()() as s:
        rows, _ = service.list_runs(s, RunFilter(agent=agent, book=book, status=status), limit)
        anything = bool(rows) or service.any_runs(s)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        asked = ", ".join(f"{k} {v}" for k, v in (("agent", agent), ("book", book), ("status", status)) if v)
        click.echo(f"no runs match {asked}" if anything else "no runs yet; `okxlab demo` makes some")
        return
    show_table(["RUN", "AGENT", "BOOK", "SCHEDULED FOR", "STATUS", "STAGE", "REASON"],
               [[r["id"], r["agent"], r["book"], r["scheduled_for"], r["status"], r["stage"],
                 reason_text(r["status"], r["reason"])] for r in rows], wrap=["REASON"], coloured=["STATUS"])


def reason_text(status: str, reason: str | None) -> str:
    """A run's reason without the status it repeats ("skipped: stale data" under status skipped)."""
    text = reason or ""
    return text[len(status) + 1:].strip() if text.startswith(f"{status}:") else text


def _summary(output: Any) -> str:
    """A stage's output as `key: value` pairs (whole, wrapped by the table), not one cut line of JSON."""
    if not isinstance(output, dict):
        return fmt(output)
    return "; ".join(f"{k}: {json.dumps(v, default=str) if isinstance(v, dict | list) else fmt(v)}"
                     for k, v in output.items())


def _pretty(raw: str) -> str:
    """A plan's text, indented if it is JSON (a model's answer may not be)."""
    try:
        return json.dumps(json.loads(raw), indent=2, default=str)
    except (ValueError, TypeError):
        return raw


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


@runs.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (see docs/cli.md).")
@click.option("--full", is_flag=True, help="Include prompt texts and candles.")
def show(run_id: str, as_json: bool, full: bool) -> None:
    """One run's whole trail, stage by stage."""
    from okxlab.cli.view import echo_block, show_table

    with open_db()() as s:
        trail = service.show(s, run_id, full=full)
    if as_json:
        echo_json(trail)
        return
    r = trail["run"]
    click.echo(f"run {r['id']}  agent {r['agent']}  book {r['book']}  scheduled for {fmt(r['scheduled_for'])}")
    click.echo(f"status {r['status']}" + (f": {reason_text(r['status'], r['reason'])}" if r["reason"] else ""))
    if r["replay_of"]:
        click.echo(f"replay of {r['replay_of']}")
    click.echo("")
    show_table(["STAGE", "STATUS", "ATTEMPTS", "QUEUE", "WAIT", "TOOK", "SUMMARY"],
               [[st["stage"], st["status"], st["attempts"], st["queue"], _ms(st["queue_wait_ms"]),
                 _ms(st["duration_ms"]), st["error"] or _summary(st["output"])] for st in trail["stages"]],
               wrap=["SUMMARY"], coloured=["STATUS"])
    for q in trail["quality"]:
        if q["reasons"]:
            click.echo(f"\nquality {q['symbol']}: {q['outcome']} — " + "; ".join(q["reasons"]))
    if trail["plan"]:
        p = trail["plan"]
        click.echo(f"\nplan by {p['planner']}" + (f" (prompt sha256 {p['prompt_sha256'][:16]}…)" if p["prompt_sha256"] else ""))
        if p["error"]:
            click.echo(f"  error: {p['error']}")
        echo_block("  the plan as given:", _pretty(p["raw"]))
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
