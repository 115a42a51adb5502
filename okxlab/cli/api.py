"""okxlab api | tokens create | list | revoke — the HTTP control API and its tokens."""

from __future__ import annotations

import click

from okxlab.cli.agents import actor
from okxlab.cli.common import echo_json, open_db, table
from okxlab.service import tokens as service


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: every one).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
def api(host: str, port: int) -> None:
    """Serve the HTTP control API (OpenAPI at /docs). Same database and config as these commands."""
    from okxlab.api.app import create_app
    from okxlab.api.server import serve_until_stopped

    app = create_app()  # a missing database or bad config is one line here, before the port is bound
    serve_until_stopped(app, host, port, ready=lambda: click.echo(
        f"okxlab: API on http://{host}:{port} (dashboard at /, docs at /docs)", err=True))


@click.group()
def tokens() -> None:
    """API tokens: create (shown once), list, revoke. Scopes: read (every GET) < operate (switches, plans,
    replays, reports) < admin (schedules, tokens)."""


@tokens.command()
@click.argument("name")
@click.option("--scope", required=True, type=click.Choice(service.SCOPES))
def create(name: str, scope: str) -> None:
    """Create a token and print it once (only its hash is kept)."""
    token = service.create(open_db(), name, scope, actor=actor())
    click.echo(token)
    click.echo(f"okxlab: token {name} ({scope}) created; it is shown only now: send it as the X-API-Token header",
               err=True)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(as_json: bool) -> None:
    """Every token (never the token itself): scope, when made and last used, whether revoked."""
    with open_db()() as s:
        rows = service.list_tokens(s)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no tokens; create one with `okxlab tokens create NAME --scope read`")
        return
    click.echo(table(["NAME", "SCOPE", "CREATED", "BY", "LAST USED", "REVOKED"],
                     [[r["name"], r["scope"], r["created_at"], r["created_by"], r["last_used_at"], r["revoked_at"]]
                      for r in rows]))


@tokens.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke a token: it is refused from the next request on."""
    service.revoke(open_db(), name, actor=actor())
    click.echo(f"token {name} revoked")
