"""Shared fixtures: real Postgres and Redis on this machine, a fresh database per test, a clean environment.

Postgres: one migrated template database per test session (a unique name), and each test that asks for
`pg_url` gets its own database cloned from it (CREATE DATABASE ... TEMPLATE: fast, and fully isolated). All
are dropped when the session ends. Redis: a unique key prefix per session, so concurrent sessions never
share queues.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from okxlab.db.session import dispose_engines
from okxlab.settings import VARIABLES

PG_SERVER = os.environ.get("OKXLAB_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("OKXLAB_TEST_REDIS", "redis://127.0.0.1:6379/0")
SESSION_ID = uuid.uuid4().hex[:8]

# Variables a developer's shell may carry that would change what the tests see: every setting, and the LLM keys.
_ISOLATE = (*VARIABLES, "DEEPSEEK_API_KEY", "DASHSCOPE_API_KEY")


def _admin() -> psycopg2.extensions.connection:
    conn = psycopg2.connect(f"{PG_SERVER}/postgres")
    conn.autocommit = True
    return conn


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in _ISOLATE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OKXLAB_HOME", str(tmp_path / "okxlab-home"))
    from okxlab.pipeline.env import reset_default_env

    reset_default_env()
    yield
    reset_default_env()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated database that per-test databases are cloned from."""
    from okxlab.db.migrate import upgrade

    name = f"okxlab_t_{SESSION_ID}_template"
    with closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    upgrade(f"{PG_SERVER}/{name}")
    dispose_engines()  # a template must have no open connections
    yield name
    created = []
    with closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (f"okxlab_t_{SESSION_ID}_%",))
        created = [r[0] for r in cur.fetchall()]
    dispose_engines()
    with closing(_admin()) as conn, conn.cursor() as cur:
        for db in sorted(created, key=lambda d: d.endswith("_template")):  # clones before their template
            cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """A fresh, migrated Postgres database for this test."""
    name = f"okxlab_t_{SESSION_ID}_{uuid.uuid4().hex[:8]}"
    with closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    url = f"{PG_SERVER}/{name}"
    yield url
    dispose_engines()
    with closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated SQLite database for this test."""
    from okxlab.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'okxlab.sqlite'}"
    upgrade(url)
    yield url
    dispose_engines()


@pytest.fixture(params=["postgres", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on both databases."""
    return request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url")


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    return f"okxlab-test-{SESSION_ID}:"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Where the dashboard's browser tests left their screenshots (tests/support/browser.py)."""
    from tests.support.browser import SCREENSHOTS

    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")
