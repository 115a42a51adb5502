"""Schedules → runs.

A schedule is an interval ("15m", "4h") or a five-field crontab ("5 */4 * * *", UTC), evaluated with
celery.schedules. Intervals are aligned to the epoch, so "4h" fires at 00:00, 04:00, ... UTC. Each dispatch
creates, for each due schedule, one run per agent for the most recent due tick; a run's id is derived from
(schedule, agent, scheduled_for) and the table is unique on that triple, so dispatching the same tick twice
creates nothing new. Ticks missed while nothing was dispatching are not backfilled (trading on an old tick
is worse than not trading); they are noted in the audit log. So is a tick found too late to trade on: older
than its expiry (half its period, between 30 s and 10 min) when a dispatch first sees it, as after beat or the
dispatch workers were down.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from celery.schedules import crontab
from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.config import Config
from okxlab.db.models import Run, Schedule
from okxlab.db.ops import audit, insert_new
from okxlab.errors import UserError

_INTERVAL = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL = timedelta(seconds=10)
MAX_CATCH_UP = timedelta(days=2)  # how far back a crontab walk starts, after long downtime
MIN_EXPIRY, MAX_EXPIRY = timedelta(seconds=30), timedelta(minutes=10)


class ScheduleError(UserError):
    """A malformed interval or crontab."""


@dataclass(frozen=True)
class ParsedSchedule:
    kind: str
    expr: str
    interval: timedelta | None = None
    cron: crontab | None = None

    def latest_tick(self, now: datetime, after: datetime | None) -> tuple[datetime | None, int]:
        """The most recent tick at or before `now` and after `after`, and how many earlier ones were missed."""
        if self.interval is not None:
            step = self.interval.total_seconds()
            tick = datetime.fromtimestamp((now.timestamp() // step) * step, UTC)
            if after is not None and tick <= after:
                return None, 0
            missed = int((tick - after).total_seconds() // step) - 1 if after else 0
            return tick, max(missed, 0)
        start = max(after, now - MAX_CATCH_UP) if after else now - timedelta(hours=1)
        ticks = []
        cursor = start
        while True:
            nxt = next_fire(self.cron, cursor)
            if nxt > now:
                break
            ticks.append(nxt)
            cursor = nxt
        return (ticks[-1], len(ticks) - 1) if ticks else (None, 0)


def tick_expiry(parsed: ParsedSchedule, tick: datetime) -> timedelta:
    """How late a tick may still be dispatched: half the schedule's period there, at least 30 s (a dispatch
    runs every 10 s) and at most 10 min (a decision taken later than that is not the one scheduled)."""
    period = parsed.interval if parsed.interval is not None else next_fire(parsed.cron, tick) - tick
    return min(max(period / 2, MIN_EXPIRY), MAX_EXPIRY)


def is_stale(parsed: ParsedSchedule, tick: datetime, now: datetime) -> bool:
    """A tick found later than its expiry: recorded as missed, not traded (and what /health calls overdue)."""
    return now - tick > tick_expiry(parsed, tick)


def next_fire(cron: crontab, after: datetime) -> datetime:
    begin, delta, _ = cron.remaining_delta(after.astimezone(UTC), tz=UTC)
    fire = (begin + delta).astimezone(UTC)
    return fire if fire > after else fire + timedelta(minutes=1)


def parse_schedule(kind: str, expr: str) -> ParsedSchedule:
    expr = expr.strip()
    if kind == "interval":
        m = _INTERVAL.match(expr)
        if not m:
            raise ScheduleError(f"interval {expr!r} is not a number and a unit (s, m, h, d), e.g. 15m or 4h")
        interval = timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        if interval < MIN_INTERVAL:
            raise ScheduleError(f"interval {expr!r} is shorter than the minimum of {MIN_INTERVAL.seconds} s")
        if timedelta(days=1) % interval and interval < timedelta(days=1):
            raise ScheduleError(f"interval {expr!r} does not divide a day evenly; use a crontab for irregular times")
        return ParsedSchedule(kind, expr, interval=interval)
    if kind == "crontab":
        fields = expr.split()
        if len(fields) != 5:
            raise ScheduleError(f"crontab {expr!r} must have 5 fields: minute hour day-of-month month day-of-week")
        try:
            cron = crontab(minute=fields[0], hour=fields[1], day_of_month=fields[2], month_of_year=fields[3],
                           day_of_week=fields[4])
            next_fire(cron, datetime(2024, 1, 1, tzinfo=UTC))
        except Exception as exc:  # celery's parser raises several types for bad fields
            raise ScheduleError(f"crontab {expr!r} is not valid: {exc}") from None
        return ParsedSchedule(kind, expr, cron=cron)
    raise ScheduleError(f"schedule kind {kind!r} must be 'interval' or 'crontab'")


def run_id_for(source: str, agent: str, scheduled_for: datetime) -> str:
    """Readable and deterministic: the same (source, agent, time) always names the same run."""
    stamp = scheduled_for.astimezone(UTC).strftime("%Y%m%dT%H%M%S")
    digest = hashlib.sha256(f"{source}|{agent}|{scheduled_for.astimezone(UTC).isoformat()}".encode()).hexdigest()
    return f"{agent[:14]}-{stamp}-{digest[:8]}"


def create_runs(session: Session, source: str, agents: list[tuple[str, str]], scheduled_for: datetime, *,
                schedule_id: int | None = None, replay_id: int | None = None, replay_of: str | None = None,
                now: datetime | None = None) -> list[str]:
    """Create one run per (agent, book); returns the ids of the runs this call created (not pre-existing)."""
    now = now or datetime.now(UTC)
    rows = [{"id": run_id_for(source, agent, scheduled_for), "source": source, "book": book, "agent": agent,
             "schedule_id": schedule_id, "replay_id": replay_id, "replay_of": replay_of,
             "scheduled_for": scheduled_for, "status": "pending", "created_at": now, "updated_at": now}
            for agent, book in agents]
    # Any unique key, not just the id: a run is also unique on (source, agent, scheduled_for), and when two
    # dispatchers insert the same run at once, the loser can clash on that key first. It must skip the row
    # (already dispatched by the other), not fail its whole dispatch.
    created = set(insert_new(session, Run, rows, None, "id"))
    return [r["id"] for r in rows if r["id"] in created]


def dispatch_due(session: Session, config: Config, now: datetime) -> list[str]:
    """Create the runs due at `now` for every enabled schedule. Returns the new run ids."""
    new: list[str] = []
    for sched in session.scalars(select(Schedule).where(Schedule.enabled.is_(True)).order_by(Schedule.id)):
        parsed = parse_schedule(sched.kind, sched.expr)
        tick, missed = parsed.latest_tick(now, sched.last_dispatched_for)
        if tick is None:
            continue
        if is_stale(parsed, tick, now):
            audit(session, "schedule.stale_tick", f"schedule {sched.name}: tick {tick.isoformat()} found "
                  f"{(now - tick).total_seconds():.0f} s late (expiry {tick_expiry(parsed, tick).total_seconds():.0f} s); "
                  "recorded as missed, not traded", data={"schedule": sched.name, "tick": tick.isoformat(),
                                                          "late_s": (now - tick).total_seconds()})
            sched.last_dispatched_for = tick
            continue
        names = [sched.agent] if sched.agent else list(config.agent_names)
        agents = [(a.name, config.exchange_mode(a)) for a in config.agents if a.name in names]
        new += create_runs(session, f"schedule:{sched.id}", agents, tick, schedule_id=sched.id, now=now)
        if missed:
            audit(session, "schedule.missed_ticks", f"schedule {sched.name}: {missed} earlier tick(s) not dispatched "
                  f"(only the latest, {tick.isoformat()}, is run)", data={"schedule": sched.name, "missed": missed})
        sched.last_dispatched_for = tick
    return new
