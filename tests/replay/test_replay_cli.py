"""`celery -A workers replay run|range` as real subprocesses, against a real worker, Redis and Postgres."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from okxlab.db import models as m
from tests.conftest import REDIS_URL
from tests.support.llm_server import LlmServer
from tests.support.models import CANARY_KEY, KEY_ENV, llm_agent_config, trader
from tests.support.pipeline import running_pipeline

START = datetime(2022, 11, 1, tzinfo=UTC)
CELERY = str(Path(sys.executable).with_name("celery"))


def _celery(args: list[str], p, prefix: str, **override: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKXLAB_")}
    env.update({"OKXLAB_CONFIG": os.environ["OKXLAB_CONFIG"], "OKXLAB_DATABASE_URL": p.db_url,
                "OKXLAB_BROKER_URL": REDIS_URL, "OKXLAB_BROKER_PREFIX": prefix, "OKXLAB_SIM_URL": p.sim.url,
                "OKXLAB_SIM_ADMIN_TOKEN": p.sim.admin_token, KEY_ENV: CANARY_KEY, **override})
    return subprocess.run([CELERY, "-A", "workers", "replay", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def recorded(pg_url: str, redis_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A pipeline whose LLM agent already ran 8 ticks (its answers recorded), and the model server."""
    monkeypatch.setenv(KEY_ENV, CANARY_KEY)
    with LlmServer(responder=trader) as llm, \
            running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, llm_agent_config(llm.base_url)) as p:
        first = p.replay(["scripted"], START, START + timedelta(hours=28), offline_planners=False)
        assert first.statuses == {"completed": 8}
        yield p, llm, first


def test_replay_run_reexecutes_a_past_run_on_its_inputs_with_the_recorded_answer(recorded, redis_prefix: str) -> None:
    p, llm, _ = recorded
    with p.env.sessions() as s:
        original = s.scalars(select(m.Run).order_by(m.Run.scheduled_for)).first()
    asked_before = len(llm.chat_requests)
    proc = _celery(["run", original.id, "--from-stage", "plan"], p, redis_prefix)
    assert proc.returncode == 0, proc.stderr
    assert original.id in proc.stdout and "(recorded answer)" in proc.stdout  # side by side
    with p.env.sessions() as s:
        rerun = s.scalars(select(m.Run).where(m.Run.replay_of == original.id)).one()
        snaps = s.scalars(select(m.MarketSnapshot).where(m.MarketSnapshot.run_id.in_([original.id, rerun.id]))).all()
        calls = s.scalars(select(m.LlmCallRecord).where(m.LlmCallRecord.run_id == rerun.id)).all()
        orders = s.scalars(select(m.Order).where(m.Order.run_id == rerun.id)).all()
        orig_orders = s.scalars(select(m.Order).where(m.Order.run_id == original.id)).all()
    assert rerun.status == "completed"
    assert len(llm.chat_requests) == asked_before  # no call to the model
    assert calls and all(c.cached for c in calls)
    # the same stored inputs: the copied snapshot is the original's, candle for candle
    by_run = {sn.run_id: sn for sn in snaps}
    assert by_run[rerun.id].candles == by_run[original.id].candles
    # the same decision, recorded but never sent
    assert [(o.symbol, o.side, o.contracts) for o in orders] == [(o.symbol, o.side, o.contracts) for o in orig_orders]
    assert {o.state for o in orders} == {"not_sent"}


def test_replay_range_reruns_history_through_the_workers_with_recorded_answers(recorded, redis_prefix: str) -> None:
    p, llm, first = recorded
    asked_before = len(llm.chat_requests)
    proc = _celery(["range", "--agent", "scripted", "--start", "2022-11-01T00:00Z", "--end", "2022-11-02T04:00Z"],
                   p, redis_prefix)
    assert proc.returncode == 0, proc.stderr
    assert "8 runs over 8 ticks" in proc.stdout and "RETURN" in proc.stdout
    with p.env.sessions() as s:
        replay = s.scalars(select(m.Replay).order_by(m.Replay.id.desc())).first()
        runs = s.scalars(select(m.Run).where(m.Run.replay_id == replay.id)).all()
        calls = s.scalars(select(m.LlmCallRecord).where(m.LlmCallRecord.run_id.in_([r.id for r in runs]))).all()
        fills_new = s.scalars(select(m.Fill).where(m.Fill.book == f"replay:{replay.id}").order_by(m.Fill.ts)).all()
        fills_old = s.scalars(select(m.Fill).where(m.Fill.book == f"replay:{first.replay_id}").order_by(m.Fill.ts)).all()
    assert replay.id != first.replay_id and len(runs) == 8 and {r.status for r in runs} == {"completed"}
    assert len(llm.chat_requests) == asked_before and len(calls) == 8 and all(c.cached for c in calls)
    # the same history, the same answers: the same trades
    assert [(f.side, f.contracts, f.price) for f in fills_new] == [(f.side, f.contracts, f.price) for f in fills_old]


def test_replay_commands_refuse_bad_input_in_one_line(recorded, redis_prefix: str) -> None:
    p, _, _ = recorded
    with p.env.sessions() as s:
        run_id = s.scalars(select(m.Run.id).order_by(m.Run.scheduled_for)).first()
        replays = s.scalar(select(func.count()).select_from(m.Replay))
    unreachable = {"OKXLAB_BROKER_URL": "redis://127.0.0.1:1/0"}
    for args, expected, env in (
            (["run", "no-such-run"], "no run 'no-such-run'", {}),
            (["range", "--agent", "ghost", "--start", "2022-11-01", "--end", "2022-11-02"], "unknown agent 'ghost'", {}),
            (["range", "--agent", "scripted", "--start", "yesterday", "--end", "2022-11-02"],
             "is not an ISO-8601 time", {}),
            # a snapshot taken again now is other data than the run saw: only when asked for
            (["run", run_id, "--from-stage", "snapshot"], "add --fresh-market", {}),
            (["run", run_id], "cannot reach the broker at redis://127.0.0.1:1/0", unreachable),
            (["range", "--agent", "scripted", "--start", "2022-11-01", "--end", "2022-11-02"],
             "cannot reach the broker", unreachable)):
        proc = _celery(args, p, redis_prefix, **env)
        assert proc.returncode != 0
        assert proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[0]], proc.stderr
        assert proc.stderr.startswith("okxlab: error: ") and expected in proc.stderr
    with p.env.sessions() as s:  # nothing half-started
        assert s.scalar(select(func.count()).select_from(m.Replay)) == replays
