"""Fixtures of the fault suite: where results go, and a `lab` (database, simulator, workers, sender) per test."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from okxlab.bootstrap import prepare
from okxlab.config import Config, load_config
from okxlab.pipeline.env import StageEnv, build_env, reset_default_env
from okxlab.simulator.server import SimServer
from okxlab.simulator.simulator import Simulator
from tests.conftest import REDIS_URL
from tests.reliability.harness import RESULTS_ENV, Results, Sender, Worker, worker_env


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """Measured figures: into $OKXLAB_RELIABILITY_RESULTS when set (what report.py reads), else a temp dir."""
    where = os.environ.get(RESULTS_ENV)
    return Results(Path(where) if where else tmp_path_factory.mktemp("reliability-results"))


@dataclass
class Lab:
    """One test's okxlab: a config, a database, the simulator over HTTP, a broker prefix, workers it starts."""

    config_path: Path
    config: Config
    db_url: str
    env: StageEnv
    sim: SimServer
    broker_url: str
    prefix: str
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    senders: list[Sender] = field(default_factory=list)

    @property
    def admin(self) -> Any:
        return self.sim.admin

    def worker_env(self, **extra: str) -> dict[str, str]:
        return worker_env(config=self.config_path, db_url=self.db_url, broker_url=self.broker_url, prefix=self.prefix,
                          sim_url=self.sim.url, home=self.tmp / "home", extra={**self.extra_env, **extra})

    def worker(self, name: str, *, pool: str = "threads", concurrency: int = 8, start: bool = True,
               loglevel: str = "INFO", **extra: str) -> Worker:
        w = Worker(f"{name}-{uuid.uuid4().hex[:6]}", self.worker_env(**extra), self.tmp / "logs", pool=pool,
                   concurrency=concurrency, loglevel=loglevel)
        self.workers.append(w)
        return w.start() if start else w

    def sender(self) -> Sender:
        s = Sender(self.broker_url, self.prefix)
        self.senders.append(s)
        return s

    def logs(self) -> str:
        return "\n".join(w.log.read_text(errors="replace") for w in self.workers if w.log.exists())


def stop_sim(sim: SimServer) -> None:
    """Stop the simulator without waiting for requests still sleeping in injected latency (a dead worker's)."""
    loop = sim._loop
    if loop is not None and loop.is_running():
        def cancel_handlers() -> None:
            for task in asyncio.all_tasks(loop):
                task.cancel()

        loop.call_soon_threadsafe(cancel_handlers)
    sim.stop()


@contextmanager
def open_lab(db_url: str, tmp: Path, config_text: str, *, broker_url: str = REDIS_URL,
             extra_env: dict[str, str] | None = None) -> Iterator[Lab]:
    """Set up a lab; on exit every worker it started is stopped (SIGKILL if it does not stop)."""
    config_path = tmp / "okxlab.toml"
    config_path.write_text(config_text)
    saved = {k: os.environ.get(k) for k in ("OKXLAB_CONFIG", "OKXLAB_DATABASE_URL")}
    os.environ["OKXLAB_CONFIG"] = str(config_path)
    os.environ["OKXLAB_DATABASE_URL"] = db_url
    reset_default_env()
    config = load_config()
    prepare(config, db_url, seed=False)
    lab = None
    with ExitStack() as stack:
        sim = SimServer(Simulator(agents=config)).start()
        stack.callback(stop_sim, sim)
        lab = Lab(config_path=config_path, config=config, db_url=db_url, env=build_env(config, db_url), sim=sim,
                  broker_url=broker_url, prefix=f"okxlab-rel-{uuid.uuid4().hex[:10]}:", tmp=tmp,
                  extra_env=dict(extra_env or {}))
        try:
            yield lab
        finally:
            for w in lab.workers:
                w.kill()
            for s in lab.senders:
                s.close()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            reset_default_env()
