"""Flower, started with the documented command: on loopback, behind auth (refused at start without usable auth),
showing the pipeline's tasks by name and queue."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

from tests.conftest import REDIS_URL
from tests.support.flower import FlowerProcess, listening, refused
from tests.support.pipeline import running_pipeline

CONFIG = """
[[agents]]
name = "buyhold"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
"""
PAGES = ["/", "/tasks", "/workers", "/broker", "/api/workers", "/api/tasks", "/metrics"]
GITHUB = "flower.views.auth.GithubLoginHandler"


# (what, arguments, environment, flowerconfig.py, what the one line says). More cases, and what an unauthenticated
# client can reach of a running Flower: tests/reliability/test_flower_exposure.py.
REFUSED = [
    ("nothing", [], {}, None, "Flower needs authentication: set FLOWER_BASIC_AUTH=user:password"),
    ("empty --auth", ["--auth="], {}, None, "Flower needs authentication: set FLOWER_BASIC_AUTH"),
    ("bare --auth_provider", ["--auth_provider="], {}, None, "Flower needs authentication: set FLOWER_BASIC_AUTH"),
    ("--auth_provider alone", [f"--auth_provider={GITHUB}"], {}, None, "signs nobody in without --auth=EMAIL_REGEX"),
]


def test_flower_refuses_settings_that_would_not_authenticate(redis_prefix: str, tmp_path: Path) -> None:
    def attempt(case: tuple) -> str | None:
        label, args, env, config, message = case
        cwd = tmp_path / label.replace(" ", "-")
        cwd.mkdir()
        if config is not None:
            (cwd / "flowerconfig.py").write_text(config)
        code, lines = refused(redis_prefix, args, env, cwd=cwd)
        ok = code == 2 and len(lines) == 1 and lines[0].startswith("okxlab: error: ") and message in lines[0]
        return None if ok else f"{label}: exit {code}, {lines}"

    with ThreadPoolExecutor(2) as pool:
        problems = [p for p in pool.map(attempt, REFUSED) if p]
    assert problems == []


def test_flower_takes_its_password_from_flowerconfig_py(redis_prefix: str, tmp_path: Path) -> None:
    (tmp_path / "flowerconfig.py").write_text('basic_auth = ["okxlab:from-the-file"]\n')
    with FlowerProcess(redis_prefix, cwd=tmp_path) as flower:
        flower.wait_up()
        assert requests.get(f"{flower.url()}/api/workers", timeout=5).status_code == 401
        assert requests.get(f"{flower.url()}/api/workers", auth=("okxlab", "from-the-file"), timeout=5).status_code == 200


def test_flower_shows_the_pipeline_tasks_after_a_run(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    auth = ("okxlab", "flower-test-pw")
    # the README's command: FLOWER_BASIC_AUTH=user:password celery -A workers flower (the port from FLOWER_PORT)
    with FlowerProcess(redis_prefix, FLOWER_BASIC_AUTH=":".join(auth)) as flower:
        flower.wait_up()
        base = flower.url()
        assert listening(flower.port) == {"127.0.0.1"}  # not 0.0.0.0 or [::], Flower's own default
        for path in PAGES:
            assert requests.get(f"{base}{path}", timeout=5).status_code == 401, path
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
        assert requests.get(f"{base}/api/tasks", auth=("okxlab", "wrong"), timeout=5).status_code == 401
        assert requests.get(f"{base}/metrics", auth=auth, timeout=5).status_code == 200  # Prometheus' scrape
