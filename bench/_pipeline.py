"""The real pipeline for the latency and throughput benchmarks: Postgres, Redis, `celery worker` processes
per queue group, and the simulator over HTTP in its own process (bench/_sim_server.py).

Queue groups (each served by N worker processes, solo pool, one task at a time per process):
    market: snapshot, quality, features   decide: plan, validate, risk   order: order
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import CELERY, REDIS_URL, ROOT, say, scratch_database

PREFIX = f"okxlab-bench-{uuid.uuid4().hex[:8]}:"
GROUPS = {"market": ("snapshot", "quality", "features"), "decide": ("plan", "validate", "risk"), "order": ("order",)}

# Every run of this strategy trades: flat, it opens a long (always); long, its exit fires (always).
FLIP_STRATEGY = {
    "schema_version": "okxlab.strategy.v1",
    "name": "flip",
    "description": "Benchmark only: open a long when flat, close it on the next run.",
    "entries": {"long": {"logic": "and", "conditions": [{"signal": "always", "label": "always"}]}},
    "exits": {"long": {"logic": "and", "conditions": [{"signal": "always", "label": "always"}]}},
    "stops": {"stop_loss": {"percent": 10}},
    "leverage": 1,
    "confidence": 0.5,
}


@dataclass
class RunningPipeline:
    url: str
    sim_url: str
    acks_path: Path
    env: Any
    app: Any
    workers: list[subprocess.Popen] = field(default_factory=list)
    sim: subprocess.Popen | None = None

    def acks(self) -> dict[str, float]:
        """Stop the simulator (it writes its acknowledgements) and read them."""
        if self.sim is not None and self.sim.poll() is None:
            self.sim.send_signal(signal.SIGTERM)
            self.sim.wait(30)
        return json.loads(self.acks_path.read_text()) if self.acks_path.exists() else {}


@contextlib.contextmanager
def running(config_text: str, *, procs_per_group: int = 1, extra_files: dict[str, str] | None = None,
            data: tuple[str, ...] = ()) -> Iterator[RunningPipeline]:
    with tempfile.TemporaryDirectory(prefix="okxlab-bench-") as tmp_, scratch_database() as url:
        tmp = Path(tmp_)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
        (tmp / "okxlab.toml").write_text(config_text)
        prefix = PREFIX  # one per bench process: Celery's producer pools keep the first prefix they saw
        env_vars = {"OKXLAB_CONFIG": str(tmp / "okxlab.toml"), "OKXLAB_DATABASE_URL": url,
                    "OKXLAB_BROKER_URL": REDIS_URL, "OKXLAB_BROKER_PREFIX": prefix, "OKXLAB_HOME": str(tmp / "home"),
                    # the simulator process and this one's AdminClient share the admin token
                    "OKXLAB_SIM_ADMIN_TOKEN": uuid.uuid4().hex}
        os.environ.update(env_vars)
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("OKXLAB_")} | env_vars
        child_env["PYTHONPATH"] = str(ROOT)
        acks = tmp / "acks.json"
        sim = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_sim_server.py"), "--acks", str(acks),
                                *[a for d in data for a in ("--data", d)]],
                               env=child_env, stdout=subprocess.PIPE, text=True)
        sim_url = sim.stdout.readline().strip() if sim.stdout else ""
        if not sim_url.startswith("http"):
            sim.kill()
            raise RuntimeError("the simulator did not start")
        child_env["OKXLAB_SIM_URL"] = os.environ["OKXLAB_SIM_URL"] = sim_url
        from okxlab.bootstrap import prepare
        from okxlab.config import load_config
        from okxlab.pipeline.env import build_env, reset_default_env

        reset_default_env()
        config = load_config()
        prepare(config, url, seed=False)
        workers = []
        for group, queues in GROUPS.items():
            for i in range(procs_per_group):
                workers.append(subprocess.Popen(
                    [CELERY, "-A", "workers", "worker", "-Q", ",".join(queues), "-P", "solo", "-n",
                     f"{group}{i}-{uuid.uuid4().hex[:4]}@bench", "--without-heartbeat", "--without-mingle",
                     "--without-gossip", "-l", "WARNING"],
                    env=child_env, cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        from workers.app import app

        app.conf.broker_url = REDIS_URL
        app.conf.broker_transport_options = {**app.conf.broker_transport_options, "global_keyprefix": prefix}
        running_ = RunningPipeline(url=url, sim_url=sim_url, acks_path=acks, env=build_env(config, url), app=app,
                                   workers=workers, sim=sim)
        try:
            time.sleep(2.0)  # let the workers connect; warm-up runs make sure they take tasks
            for w in workers:
                if w.poll() is not None:
                    raise RuntimeError(f"a worker exited at start: {w.stderr.read() if w.stderr else ''}")
            yield running_
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            for w in workers:
                try:
                    w.wait(20)
                except subprocess.TimeoutExpired:
                    w.kill()
            if sim.poll() is None:
                sim.send_signal(signal.SIGTERM)
                sim.wait(30)
            with contextlib.suppress(Exception):
                app.control.purge()
            say("pipeline stopped")


def stage_shares(env: Any, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """Per stage: median queue wait and work (ms), from the stage records the pipeline wrote."""
    from sqlalchemy import select

    from bench._common import median
    from okxlab.db.models import StageRecord
    from okxlab.pipeline.stages import STAGES

    out: dict[str, dict[str, float]] = {}
    with env.sessions() as s:
        rows = s.execute(select(StageRecord.stage, StageRecord.queue_wait_ms, StageRecord.duration_ms)
                         .where(StageRecord.run_id.in_(run_ids))).all()
    for stage in STAGES:
        waits = [w for st, w, _ in rows if st == stage and w is not None]
        works = [d for st, _, d in rows if st == stage and d is not None]
        out[stage] = {"queue_wait_ms": median(waits), "work_ms": median(works), "n": len(works)}
    return out
