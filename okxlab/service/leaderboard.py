"""The leaderboard of one book over a window, with baselines and the bootstrap noise check."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.db.models import EquitySnapshot, Fill, Run
from okxlab.errors import NotFound, UserError
from okxlab.review.clock import book_now
from okxlab.review.leaderboard import Leaderboard, books, build_leaderboard
from okxlab.review.metrics import Window
from okxlab.review.settings import ReviewSettings

_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


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


def window(since: str | None, until: str | None, names: tuple[str, str] = ("--since", "--until"),
           now: datetime | None = None, *, ordered: bool = True) -> Window:
    now = now or datetime.now(UTC)
    w = Window(parse_when(since, names[0], now) if since else None, parse_when(until, names[1], now) if until else None)
    if ordered and w.start and w.end and w.start >= w.end:
        raise UserError(f"{names[0]} ({w.start:%Y-%m-%d %H:%M}) must be before {names[1]} ({w.end:%Y-%m-%d %H:%M})")
    return w


def book_window(s: Session, book: str, since: str | None, until: str | None,
                names: tuple[str, str] = ("--since", "--until")) -> Window:
    """The window on `book`'s own clock: a span such as 1d counts back from the book's market time."""
    return window(since, until, names, book_now(s, book, datetime.now(UTC)))


def on_the_hour(s: Session, book: str | None, since: str | None) -> str | None:
    """A span back from now (7d) as a fixed start: the book's clock minus the span, down to the hour. Pages
    refreshed every few seconds then ask for the same window within an hour, which the board cache can keep."""
    if not since or not _SPAN.match(since.strip()) or book is None:
        return since
    start = book_window(s, book, since, None).start
    return start.replace(minute=0, second=0, microsecond=0).isoformat() if start else since


def leaderboard(s: Session, settings: ReviewSettings, book: str | None, since: str | None, until: str | None,
                names: tuple[str, str] = ("--since", "--until")) -> tuple[Window, Leaderboard | None]:
    """The window and the board of `book` (default: the most recently active one); no board when nothing has run."""
    w = window(since, until, names, ordered=False)  # bad input fails before anything is read
    chosen = _chosen(s, book)
    if chosen is None:
        return w, None
    w = book_window(s, chosen, since, until, names)
    return w, build_leaderboard(s, chosen, w, settings)


def _chosen(s: Session, book: str | None) -> str | None:
    known = books(s)
    if book is not None and book not in known:
        raise NotFound(f"no runs in book {book!r}; books with runs: {', '.join(known) or 'none yet'}")
    return book or (known[0] if known else None)  # default_book, without reading the books twice


def _book_version(s: Session, book: str) -> tuple[Any, ...]:
    """Changes whenever anything the board reads changes: every stage moves its run's updated_at, and equity and
    fills only ever gain rows."""
    runs = s.execute(select(func.count(), func.max(Run.updated_at)).where(Run.book == book)).one()
    equity = s.scalar(select(func.max(EquitySnapshot.id)).where(EquitySnapshot.book == book))
    fills = s.scalar(select(func.max(Fill.id)).where(Fill.book == book))
    return (*runs, equity, fills)


class BoardCache:
    """The last few boards as JSON, keyed by book, window, settings and the book's version: a board takes
    seconds to compute (metrics, bootstrap intervals) and is asked for far more often than a book changes.
    Only fixed windows are kept; a window relative to now (`7d`) is computed each time."""

    def __init__(self, size: int = 32) -> None:
        self.size, self._boards, self._lock = size, OrderedDict(), threading.Lock()
        self._computing: dict[Any, threading.Lock] = {}  # one computation per key at a time
        self.computed = 0  # boards built (not answered from the cache)

    def board(self, s: Session, settings: ReviewSettings, book: str | None, since: str | None,
              until: str | None, names: tuple[str, str] = ("since", "until"), *,
              activity: bool = True) -> dict[str, Any]:
        w = window(since, until, names, ordered=False)
        chosen = _chosen(s, book)
        if chosen is None:
            return empty(w)
        fixed = not any(v and _SPAN.match(v.strip()) for v in (since, until))
        # Only a span counts back from the book's clock; a fixed window is the same whatever the clock says.
        w = window(since, until, names) if fixed else book_window(s, chosen, since, until, names)
        key = (chosen, w.start, w.end, repr(settings), activity, _book_version(s, chosen)) if fixed else None
        if key is None:
            self.computed += 1
            return build_leaderboard(s, chosen, w, settings, activity=activity).to_json()
        # A change to a book makes every open dashboard page ask for its board at once: the first request
        # builds it, the others wait for that one and take it from the cache.
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._boards:
                    self._boards.move_to_end(key)
                    return self._boards[key]
            board = build_leaderboard(s, chosen, w, settings, activity=activity).to_json()
            with self._lock:
                self.computed += 1
                self._boards[key] = board
                while len(self._boards) > self.size:
                    self._boards.popitem(last=False)
                self._computing.pop(key, None)
        return board


def empty(w: Window) -> dict[str, Any]:
    return {"version": 1, "book": None, "window": w.to_json(), "agents": [], "baselines": []}
