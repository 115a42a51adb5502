"""okxlab reconcile — the ledger against the exchange."""

from __future__ import annotations

import sys

import click

from okxlab.cli.common import config, echo_json, exchange_calls, open_db


@click.command()
@click.option("--agent", "agent_name", help="Only this agent (default: every configured agent).")
@click.option("--book", help="Whose account: sim | demo | live | replay:<id> (default: the agent's exchange mode).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def reconcile(agent_name: str | None, book: str | None, as_json: bool) -> None:
    """Compare each agent's ledger (cash, positions, fills) with the exchange; exit 1 on any difference."""
    from okxlab.execution.reconcile import reconcile as run_reconcile
    from okxlab.pipeline.env import build_env

    cfg = config()
    open_db()
    env = build_env(cfg)
    agents = [cfg.agent(agent_name)] if agent_name else list(cfg.agents)
    with exchange_calls("reconcile"):
        results = [run_reconcile(env, a, book or cfg.exchange_mode(a)) for a in agents]
    if as_json:
        echo_json([r.__dict__ for r in results])
    else:
        for r in results:
            head = f"{r.agent} [{r.book}]: "
            if r.ok:
                funding = r.ledger.get("funding") or 0.0
                plus = f" (+ funding {funding:+,.2f} the exchange settled)" if funding else ""
                click.echo(head + f"ok — cash {r.ledger['cash']:,.2f} USDT{plus}, {len(r.ledger['positions'])} "
                           f"position(s), {r.ledger['fills']} fill(s) match the exchange")
            else:
                click.echo(head + "DIFFERENCES")
                for d in r.differences:
                    click.echo(f"  - {d}")
    if not all(r.ok for r in results):
        sys.exit(1)
