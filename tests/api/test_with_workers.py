"""With a real worker (embedded, consuming the stage queues) and the simulator over HTTP: /health is 200 and
names the worker, and a run dispatched by POST /plans/execute goes through the workers to its end."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from okxlab.db.session import session_factory
from okxlab.replay.range import wait_for
from okxlab.service import tokens
from tests.api.conftest import CONFIG
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline


def test_health_and_an_executed_plan_through_real_workers(api_env: str, broker: object, redis_prefix: str,
                                                          tmp_path: Path) -> None:
    from okxlab.api.app import create_app

    with running_pipeline(api_env, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        client = TestClient(create_app(public=False))  # the default dispatch and worker ping: real Celery
        headers = {"X-API-Token": tokens.create(session_factory(api_env), "ops", "operate", actor="test")}
        health = client.get("/health", headers=headers)
        assert health.status_code == 200, health.text
        parts = health.json()["parts"]
        assert parts["workers"]["workers"] == [p.worker.hostname] and parts["exchange"]["simulator"] == p.sim.url

        r = client.post("/plans/execute", json={"agent": "alpha"}, headers={**headers, "Idempotency-Key": "e2e"})
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
        status = wait_for(p.env, [run_id], timeout=60)[run_id]
        trail = client.get(f"/runs/{run_id}", headers=headers).json()
        assert trail["run"]["status"] == status != "pending"
        snapshot = trail["stages"][0]
        assert snapshot["stage"] == "snapshot" and snapshot["status"] == "done"
        assert snapshot["queue"] == "snapshot"  # delivered through the broker to the worker, not run by the API
        assert [t for t in p.tasks.done if t[0] == "okxlab.snapshot" and t[2]["run_id"] == run_id]
