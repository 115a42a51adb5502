"""A running pipeline for tests: real Postgres (or SQLite), real Redis, a real Celery worker, the simulator.

The worker is a WorkController in a thread of the test process (the object `celery worker` runs), consuming
the stage queues from Redis under this test session's key prefix; the simulator serves over HTTP on an
ephemeral port and ccxt talks to it unmodified.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from celery.signals import task_postrun
from sqlalchemy import func, select

from okxlab.bootstrap import prepare
from okxlab.config import Config, load_config
from okxlab.db import models
from okxlab.pipeline.embedded import EmbeddedWorker
from okxlab.pipeline.env import StageEnv, build_env, reset_default_env
from okxlab.pipeline.stages import STAGES
from okxlab.replay.range import RangeResult, create_replay, run_range
from okxlab.simulator.server import SimServer
from okxlab.simulator.simulator import Simulator

COUNTED = (models.Run, models.StageRecord, models.MarketSnapshot, models.AccountSnapshot, models.QualityCheck,
           models.FeatureSet, models.PlanRecord, models.PlanValidation, models.LlmCallRecord, models.RiskVerdictRecord,
           models.Order, models.Fill, models.PositionRecord, models.EquitySnapshot, models.AuditEvent)

_configured = threading.Lock()


def configure_app(broker_url: str, prefix: str) -> Any:
    """Point the Celery app of this process at the test broker (once per session: the app caches pools)."""
    from workers.app import app

    with _configured:
        if app.conf.broker_url != broker_url:
            app.conf.broker_url = broker_url
            app.conf.broker_transport_options = {**app.conf.broker_transport_options, "global_keyprefix": prefix}
    return app


class TaskLog:
    """Every task the in-process worker finished, observed through Celery's own signal."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str, Any]] = []  # (task name, task id, return value)
        self._lock = threading.Lock()

    def __call__(self, sender=None, task_id=None, retval=None, **_kw) -> None:  # noqa: ANN001, ANN003
        with self._lock:
            self.done.append((sender.name if sender else "?", task_id, retval))

    def ids(self) -> set[str]:
        with self._lock:
            return {t for _, t, _ in self.done}


@dataclass
class Pipeline:
    db_url: str
    config: Config
    env: StageEnv
    sim: SimServer
    worker: EmbeddedWorker
    app: Any
    tasks: TaskLog = field(default_factory=TaskLog)

    def replay(self, agents: list[str], start: datetime, end: datetime, bar: str = "4H", **kw: Any) -> RangeResult:
        from workers.tasks import start_run

        replay = create_replay(self.env, kind="range", agents=agents, start=start, end=end, bar=bar,
                               offline_planners=kw.pop("offline_planners", True), fresh_llm=kw.pop("fresh_llm", False))
        return run_range(self.env, replay, self.sim.admin, self.sim.world_url, start_run, **kw)

    def sim_orders(self, world: str) -> list[dict[str, Any]]:
        """Every order the simulator received in `world`, with the raw request fields (tag, clOrdId, ...)."""
        return list(self.sim.admin.orders(world)["orders"])

    def counts(self) -> dict[str, int]:
        with self.env.sessions() as s:
            return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in COUNTED}


@contextmanager
def running_pipeline(db_url: str, broker_url: str, prefix: str, tmp_path: Path, config_text: str, *,
                     data_paths: tuple[str, ...] = (), concurrency: int = 4) -> Iterator[Pipeline]:
    config_file = tmp_path / "okxlab.toml"
    config_file.write_text(config_text)
    saved = {k: os.environ.get(k) for k in ("OKXLAB_CONFIG", "OKXLAB_DATABASE_URL", "OKXLAB_SIM_URL")}
    os.environ["OKXLAB_CONFIG"] = str(config_file)
    os.environ["OKXLAB_DATABASE_URL"] = db_url
    reset_default_env()
    config = load_config()
    prepare(config, db_url, seed=False)
    app = configure_app(broker_url, prefix)
    app.control.purge()  # nothing left over from an earlier test
    sim = SimServer(Simulator(agents=config, data_paths=data_paths)).start()
    os.environ["OKXLAB_SIM_URL"] = sim.url
    reset_default_env()
    log = TaskLog()
    task_postrun.connect(log, weak=False)
    worker = EmbeddedWorker(app, [*STAGES, "dispatch"], concurrency=concurrency,
                            hostname=f"test-{os.getpid()}@{tmp_path.name}").start()
    try:
        yield Pipeline(db_url=db_url, config=config, env=build_env(config, db_url), sim=sim, worker=worker, app=app,
                       tasks=log)
    finally:
        worker.stop()
        task_postrun.disconnect(log)
        sim.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_default_env()
