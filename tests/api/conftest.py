"""The API against a real Postgres database holding a day of the review builders' runs (agents alpha, beta,
flat), with one token per scope and a revoked one. Runs are dispatched through the real Celery app to the test
Redis (its own key prefix); no worker consumes them here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from okxlab.db.session import session_factory, session_scope
from okxlab.service import tokens
from tests.conftest import REDIS_URL
from tests.review.builders import build_day

CONFIG = """
[exchange]
mode = "sim"
sim_url = "http://127.0.0.1:9"   # nothing answers there: health names the exchange as failing

[[agents]]
name = "alpha"
planner = "strategy"
strategy = "builtin:ema_trend"
symbols = ["BTC-USDT-SWAP"]

[[agents]]
name = "beta"
planner = "strategy"
strategy = "builtin:rsi_bollinger"
symbols = ["BTC-USDT-SWAP"]

[[agents]]
name = "flat"
planner = "strategy"
strategy = "builtin:ema_trend"
symbols = ["BTC-USDT-SWAP"]
"""


@dataclass
class Api:
    client: TestClient
    app: Any
    url: str
    tokens: dict[str, str]  # scope (or "revoked") → token
    queue: Any  # length of a queue (default: snapshot) on the test broker

    def as_(self, who: str | None) -> dict[str, str]:
        return {"X-API-Token": self.tokens[who]} if who else {}

    def get(self, path: str, who: str | None = "read", **kw: Any) -> Any:
        return self.client.get(path, headers={**self.as_(who), **kw.pop("headers", {})}, **kw)

    def post(self, path: str, who: str | None = "operate", **kw: Any) -> Any:
        return self.client.post(path, headers={**self.as_(who), **kw.pop("headers", {})}, **kw)

    def audit(self, kind: str) -> list[tuple[str, str]]:
        from sqlalchemy import select

        from okxlab.db.models import AuditEvent

        with session_scope(self.url) as s:
            return [(e.actor, e.message) for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == kind))]


@pytest.fixture
def api_env(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_prefix: str) -> str:
    config = tmp_path / "okxlab.toml"
    config.write_text(CONFIG)
    monkeypatch.setenv("OKXLAB_CONFIG", str(config))
    monkeypatch.setenv("OKXLAB_DATABASE_URL", pg_url)
    monkeypatch.setenv("OKXLAB_BROKER_URL", REDIS_URL)
    monkeypatch.setenv("OKXLAB_REPORTS_DIR", str(tmp_path / "reports"))
    with session_scope(pg_url) as s:
        build_day(s)
    return pg_url


def make_tokens(url: str) -> dict[str, str]:
    sessions = session_factory(url)
    made = {scope: tokens.create(sessions, f"t-{scope}", scope, actor="test") for scope in tokens.SCOPES}
    made["revoked"] = tokens.create(sessions, "t-revoked", "admin", actor="test")
    tokens.revoke(sessions, "t-revoked", actor="test")
    return made


@pytest.fixture
def broker(redis_prefix: str) -> Iterator[Any]:
    """The Celery app pointed at the test Redis; yields a function counting a queue's messages. The queues are
    emptied afterwards, so no later test's worker picks up a run of this test's database."""
    from workers.app import app

    # Set here, not through the environment: celeryconfig reads it once, when the app is first imported.
    app.conf.broker_url = REDIS_URL
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "global_keyprefix": redis_prefix}
    r = redis.Redis.from_url(REDIS_URL)
    keys = [f"{redis_prefix}{queue}" for queue in ("snapshot", "replay")]
    r.delete(*keys)
    yield lambda queue="snapshot": r.llen(f"{redis_prefix}{queue}")
    r.delete(*keys)


@pytest.fixture
def api(api_env: str, broker: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    from okxlab.api.app import create_app

    def ping(timeout: float) -> dict[str, Any]:
        from workers.app import app

        return app.control.inspect(timeout=timeout).ping() or {}

    app = create_app(public=False, ping_workers=ping)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, app, api_env, make_tokens(api_env), broker)
