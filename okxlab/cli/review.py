"""okxlab leaderboard | report — the review side: who is ahead, and the daily report by email."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import click

from okxlab.cli.common import config, echo_json, fail, open_db
from okxlab.config import database_url
from okxlab.errors import UserError
from okxlab.review.clock import book_now
from okxlab.review.leaderboard import books, build_leaderboard, default_book, render_table
from okxlab.review.metrics import Window
from okxlab.review.report import deliver, parse_day, previous_day
from okxlab.review.settings import ReviewSettings

F = TypeVar("F", bound=Callable[..., Any])
_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def one_line_errors(fn: F) -> F:
    """User errors as one line and a non-zero exit, also when the command runs outside the main group."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(str(exc), exc.exit_code)

    return wrapper  # type: ignore[return-value]


def parse_when(text: str, option: str, now: datetime | None = None) -> datetime:
    """A point in time: YYYY-MM-DD (midnight UTC), an ISO time (UTC unless it says otherwise), or a span back
    from now such as 30m, 12h, 7d, 2w."""
    raw = text.strip()
    span = _SPAN.match(raw)
    if span:
        try:
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
        except OverflowError:  # more days than a date can count back
            raise UserError(f"{option} {text!r} reaches back before the year 1; give a shorter span or a date") from None
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise UserError(f"{option} {text!r} is not a time; use YYYY-MM-DD, an ISO time like 2025-01-31T08:00, "
                        "or a span back from now like 12h or 7d") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    def window_at(now: datetime) -> Window:
        return Window(parse_when(since, "--since", now) if since else None,
                      parse_when(until, "--until", now) if until else None)

    window = window_at(datetime.now(UTC))  # bad input fails here, before the database is opened
    settings = ReviewSettings.from_config(config())
    with open_db()() as s:
        known = books(s)
        if book is not None and book not in known:
            raise UserError(f"no runs in book {book!r}; books with runs: {', '.join(known) or 'none yet'}")
        chosen = book or default_book(s)
        if chosen is None:
            if as_json:
                echo_json({"version": 1, "book": None, "window": window.to_json(), "agents": [], "baselines": []})
            else:
                click.echo("no runs yet; `okxlab demo` makes some")
            return
        window = window_at(book_now(s, chosen, datetime.now(UTC)))  # spans count back on the book's own clock
        if window.start and window.end and window.start >= window.end:
            raise UserError(f"--since ({window.start:%Y-%m-%d %H:%M}) must be before --until "
                            f"({window.end:%Y-%m-%d %H:%M})")
        board = build_leaderboard(s, chosen, window, settings)
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
    outcome = deliver(when, send=send, resend=resend, url=database_url(), config=cfg,
                      progress=lambda m: click.echo(f"okxlab: {m}", err=True))
    click.echo(outcome.message)
