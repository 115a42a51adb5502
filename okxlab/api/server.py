"""uvicorn for the API app. Open dashboard pages hold event streams; on a stop they are ended first, so the
server closes them cleanly instead of waiting on browsers (or cancelling them with a traceback)."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI


class Server(uvicorn.Server):
    async def shutdown(self, sockets: Any = None) -> None:
        self.app.state.hub.close_streams()
        await super().shutdown(sockets)

    @property
    def app(self) -> FastAPI:
        return self.config.app


def server(app: FastAPI, host: str, port: int, **options: Any) -> Server:
    return Server(uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3,
                                 **options))


def serve_until_stopped(app: FastAPI, host: str, port: int) -> None:
    """Serve until Ctrl-C or SIGTERM; a stop asked for is a normal end (uvicorn re-raises the signal after its
    own clean shutdown)."""
    try:
        server(app, host, port).run()
    except KeyboardInterrupt:
        pass
