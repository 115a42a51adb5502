"""okxlab leaderboard | report — the review side: who is ahead, and the daily report by email."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from okxlab.cli.common import config, echo_json, fail, open_db
from okxlab.config import database_url
from okxlab.errors import UserError
from okxlab.review.leaderboard import render_table
from okxlab.review.report import parse_day, previous_day
from okxlab.review.settings import ReviewSettings
from okxlab.service import leaderboard as service
from okxlab.service.leaderboard import parse_when  # noqa: F401  (the CLI's time forms, importable from here)
from okxlab.service.reports import build_and_send

F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(fn: F) -> F:
    """User errors as one line and a non-zero exit, also when the command runs outside the main group."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(str(exc), exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.command()
@click.option("--since", help="Window start: YYYY-MM-DD, an ISO time (UTC), or a span back from now (12h, 7d) "
                              "on the book's own clock (the simulator's market time for sim). "
                              "Default: the book's beginning.")
@click.option("--until", help="Window end (exclusive), same forms. Default: now.")
@click.option("--book", help="The account to rank: sim, demo, live or replay:<id>. Default: the most recently active.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (shape in docs/review.md).")
@one_line_errors
def leaderboard(since: str | None, until: str | None, book: str | None, as_json: bool) -> None:
    """Every agent ranked by return, beside cash and buy-and-hold BTC on the same window, with a bootstrap
    interval telling whether each lead is more than noise."""
    service.window(since, until, ordered=False)  # bad input fails here, before the database is opened
    settings = ReviewSettings.from_config(config())
    with open_db()() as s:
        window, board = service.leaderboard(s, settings, book, since, until)
    if board is None:
        if as_json:
            echo_json(service.empty(window))
        else:
            click.echo("no runs yet; `okxlab demo` makes some")
        return
    if as_json:
        echo_json(board.to_json())
    else:
        click.echo(render_table(board))


@click.command()
@click.option("--date", "day", help="The UTC day, YYYY-MM-DD. Default: yesterday.")
@click.option("--send", is_flag=True, help="Email it (once per day; settings from OKXLAB_SMTP_* and OKXLAB_REPORT_TO).")
@click.option("--resend", is_flag=True, help="Email it even if that day's report was already sent.")
@one_line_errors
def report(day: str | None, send: bool, resend: bool) -> None:
    """Build the review report of one UTC day (leaderboards, charts, trades, risk events, LLM cost, pipeline
    health), write it under the reports directory, and optionally email it."""
    when = parse_day(day) if day else previous_day(datetime.now(UTC))
    cfg = config()
    ReviewSettings.from_config(cfg)  # a bad [review] table fails here, before any work
    open_db()
    outcome = build_and_send(when, cfg, database_url(), send=send, resend=resend,
                             progress=lambda m: click.echo(f"okxlab: {m}", err=True))
    click.echo(outcome.message)
