"""Flower, started with the documented command, shows the pipeline's tasks by name and queue, behind auth."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CELERY = str(Path(sys.executable).with_name("celery"))
CONFIG = """
[[agents]]
name = "buyhold"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKXLAB_", "FLOWER_"))}
    env.update({"OKXLAB_BROKER_URL": REDIS_URL, "OKXLAB_BROKER_PREFIX": prefix, **extra})
    return env


def test_flower_refuses_to_start_without_authentication(redis_prefix: str) -> None:
    proc = subprocess.run([CELERY, "-A", "workers", "flower", f"--port={_free_port()}"], env=_env(redis_prefix),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("okxlab: error: Flower needs authentication")


def test_flower_shows_the_pipeline_tasks_after_a_run(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    port = _free_port()
    auth = ("okxlab", "flower-test-pw")
    flower = subprocess.Popen([CELERY, "-A", "workers", "flower", f"--port={port}", "--address=127.0.0.1"],
                              env=_env(redis_prefix, FLOWER_BASIC_AUTH=":".join(auth)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # up when it answers (with 401: auth is on)
            try:
                if requests.get(f"{base}/api/tasks", timeout=2).status_code == 401:
                    break
            except requests.ConnectionError:
                pass
            assert flower.poll() is None, flower.stderr.read()
            assert time.monotonic() < deadline, "Flower did not start"
            time.sleep(0.3)
        time.sleep(2)  # its event consumer is connected a moment after the HTTP server
        with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
            result = p.replay(["buyhold"], datetime(2022, 11, 1, tzinfo=UTC), datetime(2022, 11, 1, 4, tzinfo=UTC))
            assert result.statuses == {"completed": 2}
            deadline = time.monotonic() + 30
            while True:
                tasks = requests.get(f"{base}/api/tasks", auth=auth, timeout=5).json()
                seen = {(t["name"], t.get("routing_key")) for t in tasks.values()}
                if len(tasks) >= 14:
                    break
                assert time.monotonic() < deadline, f"Flower saw only {sorted(seen)}"
                time.sleep(0.5)
        stages = ["snapshot", "quality", "features", "plan", "validate", "risk", "order"]
        assert {(f"okxlab.{s}", s) for s in stages} <= seen  # stable names, each from its own queue
        assert {t["state"] for t in tasks.values() if t["name"].startswith("okxlab.")} == {"SUCCESS"}
        assert requests.get(f"{base}/api/tasks", timeout=5).status_code == 401
        assert requests.get(f"{base}/api/tasks", auth=("okxlab", "wrong"), timeout=5).status_code == 401
    finally:
        flower.terminate()
        flower.wait(10)
