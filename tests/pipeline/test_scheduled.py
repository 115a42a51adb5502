"""The production path: beat's dispatch creates runs from the schedules table, the reconciler drives stuck runs."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from okxlab.db import models as m
from okxlab.pipeline.runner import dispatch_and_start, resume_stuck
from okxlab.replay.range import wait_for
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CONFIG = """
[pipeline]
candles = 100

[[agents]]
name = "buyhold"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]

[[agents]]
name = "deepseek"
planner = "llm"
symbols = ["BTC-USDT-SWAP"]
[agents.llm]
provider = "deepseek"
model = "deepseek-chat"
api_key_env = "OKXLAB_TEST_ABSENT_KEY"
"""


def test_dispatch_runs_due_schedules_through_the_workers(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    from workers.tasks import dispatch, start_run

    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        with p.env.sessions.begin() as s:
            # every 10 s: its latest tick is always fresh (a tick older than its expiry is not traded)
            s.add(m.Schedule(name="every-10s", kind="interval", expr="10s", enabled=True,
                             last_dispatched_for=p.env.now() - timedelta(seconds=10)))
        dispatch.delay()  # what beat sends every 10 s
        deadline = time.monotonic() + 30
        while True:
            with p.env.sessions() as s:
                runs = s.scalars(select(m.Run)).all()
            if len(runs) == 2:
                break
            assert time.monotonic() < deadline, "dispatch created no runs"
            time.sleep(0.1)
        statuses = wait_for(p.env, [r.id for r in runs], 60)
        # a second dispatch of the same tick starts nothing new
        same_tick = replace(p.env, now=lambda: runs[0].scheduled_for + timedelta(seconds=1))
        assert dispatch_and_start(start_run, same_tick) == 0
        with p.env.sessions() as s:
            runs = {r.agent: r for r in s.scalars(select(m.Run))}
            orders = s.scalars(select(m.Order)).all()
    assert len(runs) == 2 and {r.source for r in runs.values()} == {"schedule:1"}
    # the realtime simulator world traded buy-and-hold at market time, on the scheduled run
    assert statuses[runs["buyhold"].id] == "completed" and len(orders) == 1 and orders[0].state == "filled"
    # an LLM agent without its key is not a crash mid-run: its run is skipped with the reason
    assert runs["deepseek"].status == "skipped"
    assert "OKXLAB_TEST_ABSENT_KEY is not set" in runs["deepseek"].reason


def test_the_reconciler_drives_a_stuck_run_on(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    from workers.tasks import start_run

    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        from okxlab.pipeline.dispatch import create_runs

        tick = p.env.now().replace(second=0, microsecond=0)
        with p.env.sessions.begin() as s:
            (run_id,) = create_runs(s, "schedule:0", [("buyhold", "sim")], tick, now=p.env.now() - timedelta(minutes=5))
            run = s.get(m.Run, run_id)
            run.updated_at = p.env.now() - timedelta(minutes=5)  # its chain was lost with a broker, minutes ago
        assert resume_stuck(start_run, p.env) == 1
        assert wait_for(p.env, [run_id], 60) == {run_id: "completed"}
        assert resume_stuck(start_run, p.env) == 0  # nothing left to drive
        with p.env.sessions() as s:
            events = [e.kind for e in s.scalars(select(m.AuditEvent).where(m.AuditEvent.run_id == run_id))]
        assert "run.resumed" in events
