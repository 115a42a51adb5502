"""Schedules → runs: parsing, tick alignment, and one run per (schedule, agent, tick) however often dispatched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from okxlab.agents import sync_agents
from okxlab.config import load_config
from okxlab.db.models import AuditEvent, Run, Schedule
from okxlab.db.session import session_scope
from okxlab.pipeline.dispatch import ScheduleError, dispatch_due, parse_schedule, run_id_for

T0 = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "expr", "message"), [
    ("interval", "4x", "is not a number and a unit"),
    ("interval", "5s", "shorter than the minimum"),
    ("interval", "7h", "does not divide a day evenly"),
    ("crontab", "* * *", "must have 5 fields"),
    ("crontab", "61 * * * *", "is not valid"),
    ("crontab", "0 25 * * *", "is not valid"),
    ("weekly", "1", "must be 'interval' or 'crontab'"),
])
def test_malformed_schedules_are_refused_with_the_reason(kind: str, expr: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(kind, expr)


def test_interval_ticks_are_aligned_to_utc_and_never_repeat() -> None:
    s = parse_schedule("interval", "4h")
    tick, missed = s.latest_tick(T0 + timedelta(hours=1, minutes=7), None)
    assert tick == T0 and missed == 0
    assert s.latest_tick(T0 + timedelta(hours=3), after=T0) == (None, 0)  # already dispatched
    tick, missed = s.latest_tick(T0 + timedelta(hours=12, seconds=1), after=T0)
    assert tick == T0 + timedelta(hours=12) and missed == 2  # 20:00 runs; 12:00 and 16:00 were missed


def test_crontab_gives_the_latest_fire_time_and_counts_missed_ones() -> None:
    s = parse_schedule("crontab", "5 */4 * * *")
    tick, missed = s.latest_tick(datetime(2026, 11, 21, 13, 0, tzinfo=UTC), after=datetime(2026, 11, 21, 0, 5, tzinfo=UTC))
    assert tick == datetime(2026, 11, 21, 12, 5, tzinfo=UTC)
    assert missed == 2  # 04:05 and 08:05 were not dispatched
    assert s.latest_tick(datetime(2026, 11, 21, 12, 6, tzinfo=UTC), after=tick) == (None, 0)


def test_run_ids_are_deterministic_and_distinct() -> None:
    a = run_id_for("schedule:1", "trend", T0)
    assert a == run_id_for("schedule:1", "trend", T0)
    assert len({a, run_id_for("schedule:2", "trend", T0), run_id_for("schedule:1", "cash", T0),
                run_id_for("schedule:1", "trend", T0 + timedelta(minutes=1))}) == 4
    assert len(a) <= 40


def test_dispatching_the_same_tick_twice_makes_one_run_per_agent(db_url: str) -> None:
    config = load_config()
    with session_scope(db_url) as s:
        sync_agents(s, config)
        s.add(Schedule(name="every-4h", agent=None, kind="interval", expr="4h", enabled=True,
                       last_dispatched_for=T0 - timedelta(hours=4)))
    now = T0 + timedelta(minutes=3)
    with session_scope(db_url) as s:
        first = dispatch_due(s, config, now)
    with session_scope(db_url) as s:
        again = dispatch_due(s, config, now)
        # even with the schedule's bookkeeping reset, the unique run key holds
        s.scalar(select(Schedule)).last_dispatched_for = T0 - timedelta(hours=4)
    with session_scope(db_url) as s:
        forced = dispatch_due(s, config, now)
        runs = s.scalars(select(Run)).all()
    assert len(first) == len(config.agents) and again == [] and forced == []
    assert len(runs) == len(config.agents)
    assert {r.scheduled_for for r in runs} == {T0}
    assert {r.book for r in runs} == {"sim"}


def test_disabled_schedules_and_single_agent_schedules(db_url: str) -> None:
    config = load_config()
    with session_scope(db_url) as s:
        sync_agents(s, config)
        s.add(Schedule(name="off", agent=None, kind="interval", expr="15m", enabled=False))
        s.add(Schedule(name="trend-only", agent="trend", kind="crontab", expr="*/15 * * * *", enabled=True,
                       last_dispatched_for=T0 - timedelta(minutes=15)))
    with session_scope(db_url) as s:
        new = dispatch_due(s, config, T0 + timedelta(seconds=20))
        agents = s.scalars(select(Run.agent)).all()
        missed = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "schedule.missed_ticks"))
    assert len(new) == 1 and agents == ["trend"] and missed == 0


def test_a_tick_found_after_its_expiry_is_recorded_as_missed_not_traded(db_url: str) -> None:
    """Beat down from before 04:00 to 07:44: the 04:00 tick of a 4h schedule is not traded at 07:44."""
    config = load_config()
    with session_scope(db_url) as s:
        sync_agents(s, config)
        s.add(Schedule(name="every-4h", agent="trend", kind="interval", expr="4h", enabled=True,
                       last_dispatched_for=T0 - timedelta(hours=4)))
        s.add(Schedule(name="quarterly", agent="trend", kind="crontab", expr="*/15 * * * *", enabled=True,
                       last_dispatched_for=T0 - timedelta(minutes=15)))
    late = T0 + timedelta(hours=3, minutes=44)
    with session_scope(db_url) as s:
        new = dispatch_due(s, config, late)
        stale = s.scalars(select(AuditEvent).where(AuditEvent.kind == "schedule.stale_tick")).all()
        marks = {sch.name: sch.last_dispatched_for for sch in s.scalars(select(Schedule))}
    # the 4h tick (08:00 + 0) is 3 h 44 min old: missed; the quarter-hour one (11:30) is 14 min old: missed too
    assert new == [] and len(stale) == 2
    assert marks["every-4h"] == T0 and marks["quarterly"] == T0 + timedelta(hours=3, minutes=30)
    assert "recorded as missed, not traded" in stale[0].message
    # within the expiry (half the period: 7.5 min for the quarter-hour schedule) the next tick trades
    with session_scope(db_url) as s:
        fresh = dispatch_due(s, config, T0 + timedelta(hours=3, minutes=45, seconds=20))
    assert len(fresh) == 1


@pytest.mark.parametrize(("kind", "expr", "expiry_s"), [
    ("interval", "10s", 30), ("interval", "15m", 450), ("interval", "4h", 600), ("crontab", "5 */4 * * *", 600),
])
def test_tick_expiry_is_half_the_period_between_30_s_and_10_min(kind: str, expr: str, expiry_s: int) -> None:
    from okxlab.pipeline.dispatch import tick_expiry

    tick = T0 + timedelta(minutes=5) if kind == "crontab" else T0  # a tick of the schedule: 08:05 fires
    assert tick_expiry(parse_schedule(kind, expr), tick).total_seconds() == expiry_s
