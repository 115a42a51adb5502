"""okxlab db upgrade | current"""

from __future__ import annotations

import click

from okxlab.bootstrap import prepare
from okxlab.cli.common import config
from okxlab.config import database_url
from okxlab.db.migrate import current_revision, head_revision
from okxlab.db.session import check_connection, redact


@click.group()
def db() -> None:
    """The database: schema migrations."""


@db.command()
def upgrade() -> None:
    """Apply migrations, register the configured agents, seed the default schedules (once)."""
    url = database_url()
    done = prepare(config(), url)
    click.echo(f"database {redact(url)} is at schema {head_revision()}")
    if done.describe():
        click.echo(done.describe())


@db.command()
def current() -> None:
    """Show the database's schema revision."""
    url = database_url()
    check_connection(url)
    rev, head = current_revision(url), head_revision()
    click.echo(f"{redact(url)}: schema {rev or 'none'} (latest {head})" + ("" if rev == head else " — run `okxlab db upgrade`"))
