"""The FastAPI application: `create_app()` opens the configured database and config once, as the CLI does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from okxlab import __version__
from okxlab.api import errors
from okxlab.api.context import ApiContext
from okxlab.api.responses import SafeJSONResponse
from okxlab.api.routes import admin, agents, replays, review, runs, system
from okxlab.config import database_url
from okxlab.service.db import config, open_db


def public_mode() -> bool:
    """OKXLAB_API_PUBLIC (okxlab/settings.py): GETs of read scope without a token."""
    from okxlab import settings

    return settings.current().api_public


def _start_run(run_id: str, from_stage: str = "snapshot") -> None:
    from workers.tasks import start_run  # the Celery app (and its broker) load with the first dispatch

    start_run(run_id, from_stage)


def _queue_replay(replay_id: int, mode: str) -> None:
    from workers.tasks import queue_replay

    queue_replay(replay_id, mode)


def _ping_workers(timeout: float) -> dict[str, Any]:
    from workers.app import app

    return app.control.inspect(timeout=timeout).ping() or {}


def create_app(*, public: bool | None = None, start_run: Callable[..., None] | None = None,
               ping_workers: Callable[[float], dict[str, Any]] | None = None) -> FastAPI:
    ctx = ApiContext(sessions=open_db(), config=config(), database_url=database_url(),
                     public=public_mode() if public is None else public, start_run=start_run or _start_run,
                     ping_workers=ping_workers or _ping_workers, queue_replay=_queue_replay)
    app = FastAPI(title="okxlab control API", version=__version__, default_response_class=SafeJSONResponse,
                  description="okxlab's operations over HTTP. Authenticate with the `X-API-Token` header "
                              "(`okxlab tokens create NAME --scope read|operate|admin`).")
    app.state.ctx = ctx
    errors.install(app)
    for module in (system, agents, runs, review, replays, admin):
        app.include_router(module.router)
    return app
