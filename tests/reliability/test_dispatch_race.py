"""Two (or more) beats dispatching the same ticks at the same moment, against real Postgres.

Each tick, every dispatcher runs what the `okxlab.dispatch` task runs (`dispatch_and_start`) for the same
scheduled time, in its own thread and database connection. Every due run must be created exactly once, no
dispatch may fail (a dispatcher that loses the insert race treats the run as already dispatched), each run
must be started by exactly one dispatcher, and each schedule's `last_dispatched_for` must end on the latest
tick.

Making them collide: the window is between one INSERT's conflict check on a row and that row's index entries,
a few microseconds, so a barrier in Python (threads leave it tens of microseconds apart) rarely hits it. The
test's own database gets a BEFORE INSERT trigger on `runs` that takes a shared advisory lock the test holds
exclusively: every dispatcher's INSERT stops right before its conflict check, and when all of them are
waiting there the test lets them go at once. The trigger changes when rows are inserted, not what is inserted.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import func, select

from okxlab.bootstrap import prepare
from okxlab.config import load_config
from okxlab.db.models import AuditEvent, Run, Schedule
from okxlab.pipeline.env import build_env
from okxlab.pipeline.runner import dispatch_and_start
from tests.reliability.harness import Results, buy_and_hold_config, wait_until

DISPATCHERS = 3
TICKS = 60
AGENTS = ("a1", "a2", "a3", "a4")
T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
GATE = 73_512  # the advisory lock key the trigger waits on

GATE_SQL = f"""
CREATE FUNCTION test_dispatch_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({GATE});
    RETURN NEW;
END $$;
CREATE TRIGGER test_dispatch_gate BEFORE INSERT ON runs FOR EACH ROW EXECUTE FUNCTION test_dispatch_gate();
"""
WAITING_AT_GATE = f"""
SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = {GATE} AND NOT granted
"""


def test_racing_dispatchers_create_and_start_each_run_once(pg_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch, results: Results) -> None:
    config_path = tmp_path / "okxlab.toml"
    config_path.write_text(buy_and_hold_config(*AGENTS))
    monkeypatch.setenv("OKXLAB_CONFIG", str(config_path))
    config = load_config()
    prepare(config, pg_url, seed=False)
    base = build_env(config, pg_url)
    with base.sessions.begin() as s:
        # every agent each minute, and one agent on a schedule of its own: two schedules due at every tick
        s.add(Schedule(name="all-1m", agent=None, kind="interval", expr="1m", enabled=True,
                       last_dispatched_for=T0 - timedelta(minutes=1)))
        s.add(Schedule(name="a1-1m", agent="a1", kind="interval", expr="1m", enabled=True,
                       last_dispatched_for=T0 - timedelta(minutes=1)))
    gate = psycopg2.connect(pg_url)
    gate.autocommit = True
    cur = gate.cursor()
    cur.execute(GATE_SQL)

    started: list[tuple[int, str]] = []
    failures: list[str] = []
    lock = threading.Lock()
    go = threading.Barrier(DISPATCHERS + 1)
    done = threading.Barrier(DISPATCHERS + 1)

    def dispatcher(n: int) -> None:
        def start(run_id: str, *_args: object) -> None:
            with lock:
                started.append((n, run_id))

        for i in range(TICKS):
            env = replace(base, now=lambda i=i: T0 + timedelta(minutes=i, seconds=1))
            go.wait(timeout=60)
            try:
                dispatch_and_start(start, env)
            except Exception as exc:  # noqa: BLE001 (what would fail the dispatch task)
                with lock:
                    failures.append(f"dispatcher {n}, tick {i}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            done.wait(timeout=60)

    threads = [threading.Thread(target=dispatcher, args=(n,), daemon=True) for n in range(DISPATCHERS)]
    for t in threads:
        t.start()
    held_together = 0
    try:
        for _ in range(TICKS):
            cur.execute("SELECT pg_advisory_lock(%s)", (GATE,))
            go.wait(timeout=60)
            # All of them read the schedule before any commits (none can get past the gate), so every one of
            # them inserts the tick's runs: wait until all are held at the gate, then open it.
            wait_until(lambda: cur.execute(WAITING_AT_GATE) or cur.fetchone()[0] == DISPATCHERS, 30,
                       "every dispatcher at the gate", poll=0.005)
            held_together += 1
            cur.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
            done.wait(timeout=120)
    except BaseException:
        go.abort()  # let the dispatchers go rather than wait out their barriers
        done.abort()
        raise
    finally:
        for t in threads:
            t.join(30)
        gate.close()

    with base.sessions() as s:
        runs = s.scalars(select(Run)).all()
        per_key = Counter((r.source, r.agent, r.scheduled_for) for r in runs)
        last = {sc.name: sc.last_dispatched_for for sc in s.scalars(select(Schedule))}
        missed_notes = s.scalar(select(func.count()).select_from(AuditEvent)
                                .where(AuditEvent.kind == "schedule.missed_ticks"))
    expected = TICKS * (len(AGENTS) + 1)
    starts = Counter(run_id for _n, run_id in started)
    results.record("dispatch_race", dispatchers=DISPATCHERS, ticks=TICKS, schedules=len(last),
                   held_together=held_together, runs_expected=expected, runs_created=len(runs),
                   duplicates=sum(c - 1 for c in per_key.values()), runs_started=len(starts),
                   started_twice=sum(1 for c in starts.values() if c > 1),
                   not_started=len({r.id for r in runs} - set(starts)), failed_dispatches=len(failures),
                   failures=failures[:5], missed_tick_notes=missed_notes,
                   starts_by_dispatcher=dict(sorted(Counter(n for n, _r in started).items())))
    assert failures == []
    assert len(runs) == expected and max(per_key.values()) == 1
    assert {r.scheduled_for for r in runs} == {T0 + timedelta(minutes=i) for i in range(TICKS)}
    assert set(starts) == {r.id for r in runs}  # every run started...
    assert max(starts.values()) == 1  # ...by exactly one dispatcher
    assert last == {"all-1m": T0 + timedelta(minutes=TICKS - 1), "a1-1m": T0 + timedelta(minutes=TICKS - 1)}
    assert missed_notes == 0  # no dispatcher saw a gap: each tick followed the last one
