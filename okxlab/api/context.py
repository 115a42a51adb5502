"""What every request handler needs, built once when the app starts: the database, the config, the mode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from okxlab.config import Config


@dataclass
class ApiContext:
    sessions: sessionmaker[Session]
    config: Config
    database_url: str
    public: bool  # GETs without a token (a public arena); everything else still needs one
    start_run: Callable[..., None]  # sends a run's stage chain to the broker
    ping_workers: Callable[[float], dict[str, Any]]  # Celery worker name → reply, within a timeout
    queue_replay: Callable[[int, str], None]  # sends a requested replay to the replay queue
    queue_depths: Callable[[], dict[str, int | None]]  # messages waiting per Celery queue (None: unknown)


def ctx(request: Request) -> ApiContext:
    return request.app.state.ctx
