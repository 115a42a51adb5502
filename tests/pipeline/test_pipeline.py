"""The pipeline end to end on real Postgres and Redis, a real worker, the simulator over HTTP through ccxt."""

from __future__ import annotations

import gzip
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from okxlab.db.models import Order, PlanRecord, QualityCheck, Run, StageRecord
from okxlab.pipeline.stages import STAGES
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CONFIG = """
[pipeline]
candles = 120

[[agents]]
name = "buyhold"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
[agents.risk]
risk_budget_pct = 5.0
max_leverage = 1

[[agents]]
name = "trend"
planner = "strategy"
strategy = "builtin:ema_trend"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
"""

START = datetime(2022, 11, 20, 0, 0, tzinfo=UTC)


def test_runs_pass_through_seven_queues_and_trade_once(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        result = p.replay(["buyhold", "trend"], START, START + timedelta(hours=8))
        assert result.statuses == {"completed": 6}
        with p.env.sessions() as s:
            records = s.scalars(select(StageRecord)).all()
            orders = s.scalars(select(Order).where(Order.agent == "buyhold")).all()
        # each stage ran from its own queue, as delivered (recorded from the message, not assumed)
        assert len(records) == 6 * len(STAGES)
        assert {(r.stage, r.queue) for r in records} == {(st, st) for st in STAGES}
            # the worker that ran it (Celery gives the node name under prefork, the host name under threads)
        assert {r.worker for r in records} <= {p.worker.hostname, socket.gethostname()}
        assert {r.status for r in records} == {"done"}
        # buy-and-hold bought once, at the first tick, and the simulator saw exactly that order
        assert len(orders) == 1 and orders[0].state == "filled"
        at_sim = [o for o in p.sim_orders(f"replay-{result.replay_id}") if o["clOrdId"] == orders[0].cl_ord_id]
        assert len(at_sim) == 1
        assert at_sim[0]["raw"]["tag"] == "c314b0aecb5bBCDE"


def test_every_stage_delivered_again_writes_nothing_and_sends_no_order(pg_url: str, redis_prefix: str,
                                                                      tmp_path: Path) -> None:
    from workers.tasks import STAGE_TASKS

    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        result = p.replay(["buyhold"], START, START)
        world = f"replay-{result.replay_id}"
        with p.env.sessions() as s:
            run = s.scalars(select(Run)).one()
        before, orders_before = p.counts(), p.sim_orders(world)
        assert len(orders_before) == 1
        sent = [STAGE_TASKS[stage].apply_async((run.id,)).id for stage in STAGES]
        deadline = time.monotonic() + 60
        while not set(sent) <= p.tasks.ids():
            assert time.monotonic() < deadline, "redelivered stage tasks were not all consumed"
            time.sleep(0.02)
        assert p.counts() == before
        assert len(p.sim_orders(world)) == 1
        with p.env.sessions() as s:
            assert {r.attempts for r in s.scalars(select(StageRecord))} == {1}


def _with_gap(tmp_path: Path, start: datetime, bars: int) -> str:
    """The shipped BTC swap 4H candles with `bars` bars removed, ending 40 bars before `start`."""
    src = Path(__file__).resolve().parents[2] / "okxlab" / "data" / "candles" / "BTC-USDT-SWAP_4H.csv.gz"
    lines = gzip.open(src, "rt").read().splitlines()
    header, rows = lines[0], lines[1:]
    cut_to = int((start - timedelta(hours=4 * 40)).timestamp() * 1000)
    cut_from = cut_to - bars * 4 * 3600 * 1000
    kept = [r for r in rows if not cut_from <= int(r.split(",")[0]) < cut_to]
    out = tmp_path / "BTC-USDT-SWAP_4H.csv"
    out.write_text("\n".join([header, *kept]) + "\n")
    return str(out)


def test_a_run_whose_data_fails_quality_is_skipped_and_trades_nothing(pg_url: str, redis_prefix: str,
                                                                     tmp_path: Path) -> None:
    data = _with_gap(tmp_path, START, bars=30)  # 30 bars missing inside the window: beyond the 10% limit
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG, data_paths=(data,)) as p:
        result = p.replay(["buyhold"], START, START)
        assert result.statuses == {"skipped": 1}
        with p.env.sessions() as s:
            run = s.scalars(select(Run)).one()
            quality = s.scalars(select(QualityCheck)).one()
            plans = s.scalars(select(PlanRecord)).all()
            stages = {r.stage: r.status for r in s.scalars(select(StageRecord))}
        assert run.status == "skipped" and "missing bars" in run.reason
        assert quality.outcome == "fail"
        assert plans == [] and stages == {"snapshot": "done", "quality": "done"}
        assert p.sim_orders(f"replay-{result.replay_id}") == []


@pytest.mark.parametrize("mode", ["sqlite"])
def test_the_same_pipeline_runs_on_sqlite(sqlite_url: str, redis_prefix: str, tmp_path: Path, mode: str) -> None:
    with running_pipeline(sqlite_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        result = p.replay(["buyhold", "trend"], START, START + timedelta(hours=4))
        assert result.statuses == {"completed": 4}
        assert len(p.sim_orders(f"replay-{result.replay_id}")) == 1
