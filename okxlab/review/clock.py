"""Each book on its own clock.

Equity, fills and positions are stamped with market time: the time of the exchange the book trades on. For
demo and live that is the wall clock; the simulator's clock may stand years back (a world started at
2022-09-26 trades 2022 prices today), and a replay's clock stopped at its last tick. Runs, though, are
scheduled on the wall clock. The report of a day and a span such as `--since 1d` are therefore translated
into the book's market time here, once, from what its runs recorded: each market snapshot's exchange time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.db.models import MarketSnapshot, Run
from okxlab.review.metrics import Window

# A run's snapshot stands at most this far before its scheduled time on a book that follows the wall clock
# (the snapshot is cut at the scheduled tick; an exchange clock a little behind ours stays within it).
SLACK = timedelta(hours=1)


def _first_as_of(s: Session, book: str, start: datetime | None, end: datetime | None) -> datetime | None:
    q = select(func.min(MarketSnapshot.as_of)).join(Run, Run.id == MarketSnapshot.run_id).where(Run.book == book)
    if start is not None:
        q = q.where(Run.scheduled_for >= start)
    if end is not None:
        q = q.where(Run.scheduled_for < end)
    return s.scalar(q)


def market_window(s: Session, book: str, scheduled: Window) -> Window:
    """Where `book`'s runs scheduled in `scheduled` (wall clock) stood in market time.

    A book on the wall clock gets `scheduled` itself. A book on its own clock gets the span from the market
    time of its first run in `scheduled` to that of its first run after it (open if none), so consecutive days
    tile its market timeline: a stop filled between two ticks belongs to exactly one day."""
    first = _first_as_of(s, book, scheduled.start, scheduled.end)
    if first is None or scheduled.start is None:
        return scheduled
    if scheduled.start - SLACK <= first and (scheduled.end is None or first < scheduled.end):
        return scheduled  # on the wall clock
    return Window(first, _first_as_of(s, book, scheduled.end, None))


def book_now(s: Session, book: str, now: datetime) -> datetime:
    """`book`'s market time at wall time `now`: a span back from now (`--since 1d`) counts back from here.

    The newest run's snapshot (newest by when the run was made: a world reset to an earlier date must not leave
    a stale timeline in charge) tells the book's offset from the wall clock (the wall time its run was taken against
    the exchange time it read). A replay's clock stopped at its last tick."""
    row = s.execute(select(MarketSnapshot.exchange_time, Run.started_at, Run.created_at)
                    .join(Run, Run.id == MarketSnapshot.run_id).where(Run.book == book)
                    .order_by(Run.created_at.desc(), MarketSnapshot.id.desc()).limit(1)).first()
    if row is None:
        return now
    exchange, started, created = row
    if book.startswith("replay:"):
        return exchange
    offset = (started or created) - exchange
    return now if abs(offset) < SLACK else now - offset
