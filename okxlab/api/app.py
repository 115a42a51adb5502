"""The FastAPI application: `create_app()` opens the configured database and config once, as the CLI does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from okxlab import __version__
from okxlab.api import errors, ui
from okxlab.api.context import ApiContext
from okxlab.api.responses import SafeJSONResponse
from okxlab.api.routes import admin, agents, replays, review, runs, system
from okxlab.api.ui.live import EventHub
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


def _queue_depths() -> dict[str, int | None]:
    """Messages waiting in each of the pipeline's queues, asked of the broker (Redis or RabbitMQ) passively."""
    from celeryconfig import task_queues
    from workers.app import app

    depths: dict[str, int | None] = {}
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            for queue in task_queues:
                try:
                    depths[queue.name] = channel.queue_declare(queue.name, passive=True).message_count
                except Exception:  # not declared yet: no worker has consumed it; RabbitMQ closes the channel
                    depths[queue.name] = None
                    channel = conn.channel()
    except Exception:  # the broker is down: the page says so instead of failing
        return {queue.name: None for queue in task_queues}
    return depths


def create_app(*, public: bool | None = None, start_run: Callable[..., None] | None = None,
               ping_workers: Callable[[float], dict[str, Any]] | None = None,
               queue_depths: Callable[[], dict[str, int | None]] | None = None) -> FastAPI:
    ctx = ApiContext(sessions=open_db(), config=config(), database_url=database_url(),
                     public=public_mode() if public is None else public, start_run=start_run or _start_run,
                     ping_workers=ping_workers or _ping_workers, queue_replay=_queue_replay,
                     queue_depths=queue_depths or _queue_depths)
    hub = EventHub(ctx.database_url)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub.start()  # one LISTEN connection for every open page (okxlab/api/ui/live.py)
        try:
            yield
        finally:
            hub.stop()

    app = FastAPI(title="okxlab control API", version=__version__, default_response_class=SafeJSONResponse,
                  description="okxlab's operations over HTTP. Authenticate with the `X-API-Token` header "
                              "(`okxlab tokens create NAME --scope read|operate|admin`). The web dashboard is "
                              "at `/`.", lifespan=lifespan)
    app.state.ctx, app.state.hub = ctx, hub
    errors.install(app)
    for module in (system, agents, runs, review, replays, admin):
        app.include_router(module.router)
    ui.install(app)
    return app
