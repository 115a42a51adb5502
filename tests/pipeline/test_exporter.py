"""okxlab's Prometheus metrics reflect what the pipeline recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from okxlab.db.models import Replay
from okxlab.db.ops import set_control
from okxlab.review.exporter import OkxlabCollector
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CONFIG = """
[[agents]]
name = "buyhold"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
"""


def _scrape(sessions) -> dict[str, float]:  # noqa: ANN001
    registry = CollectorRegistry()
    registry.register(OkxlabCollector(sessions))
    out = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_show_runs_stages_equity_and_the_pause(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        start = datetime(2022, 11, 1, tzinfo=UTC)
        result = p.replay(["buyhold"], start, start + timedelta(hours=8))
        with p.env.sessions.begin() as s:
            set_control(s, "global_pause", {"paused": True, "reason": "test"})
            s.get(Replay, result.replay_id).status = "running"  # as while it runs
        metrics = _scrape(p.env.sessions)
        with p.env.sessions.begin() as s:
            s.get(Replay, result.replay_id).status = "done"
        after = _scrape(p.env.sessions)
    assert metrics['okxlab_runs_recent{agent="buyhold",status="completed"}'] == 3
    book = f"replay:{result.replay_id}"
    assert metrics[f'okxlab_agent_trading_state{{agent="buyhold",book="{book}",state="ACTIVE"}}'] == 1
    assert metrics[f'okxlab_agent_trading_state{{agent="buyhold",book="{book}",state="HALTED"}}'] == 0
    equity = metrics[f'okxlab_agent_equity_usdt{{agent="buyhold",book="replay:{result.replay_id}"}}']
    assert 9_000 < equity < 11_000 and equity != 10_000  # it holds BTC: its equity moved
    assert {f'okxlab_stage_duration_ms_avg{{stage="{s}"}}' for s in ("snapshot", "order")} <= set(metrics)
    assert metrics["okxlab_global_pause"] == 1
    assert metrics["okxlab_runs_unfinished_older_than_10m"] == 0
    # a replay that has ended leaves the per-book series (alerts and panels watch what trades now)
    assert not [k for k in after if book in k] and after["okxlab_global_pause"] == 1
