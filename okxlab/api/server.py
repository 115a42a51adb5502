"""uvicorn for the API app. Open dashboard pages hold event streams; on a stop they are ended first, so the
server closes them cleanly instead of waiting on browsers (or cancelling them with a traceback)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI


class Server(uvicorn.Server):
    ready: Callable[[], None] | None = None  # called once the socket listens

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started and self.ready is not None:
            self.ready()

    async def shutdown(self, sockets: Any = None) -> None:
        self.app.state.hub.close_streams()
        await super().shutdown(sockets)

    @property
    def app(self) -> FastAPI:
        return self.config.app


def server(app: FastAPI, host: str, port: int, **options: Any) -> Server:
    return Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3,
                                 **options))


def serve_until_stopped(app: FastAPI, host: str, port: int, ready: Callable[[], None] | None = None) -> None:
    """Serve until Ctrl-C or SIGTERM; a stop asked for is a normal end (uvicorn re-raises the signal after its
    own clean shutdown). `ready` is called once the port listens (say where to look only then)."""
    serving = server(app, host, port)
    serving.ready = ready
    try:
        serving.run()
    except KeyboardInterrupt:
        pass
