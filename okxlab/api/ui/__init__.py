"""The web dashboard, served by the API app: the arena, agent, market, run, pipeline, replay and report pages,
operator controls and live pushes (docs/dashboard.md)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from okxlab.api.ui import actions, pages
from okxlab.api.ui.render import HERE, page


def is_page(request: Request) -> bool:
    """A request for an HTML page or part (errors there are pages too); chart data and the API answer JSON."""
    path = request.url.path
    return path == "/" or (path.startswith("/ui/") and not path.startswith(("/ui/data/", "/ui/static/")))


def error_page(request: Request, status: int, message: str) -> Response:
    if request.headers.get("HX-Request"):  # a part: the message replaces it
        return PlainTextResponse(message, status_code=status)
    return page(request, "error.html", status=status, who=None, q={}, status_code=status, message=message,
                title="Error", pause=None)


def install(app: FastAPI) -> None:
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)

    @app.exception_handler(pages.SignIn)
    async def _sign_in(request: Request, _: pages.SignIn) -> Response:
        whole_page = is_page(request) and not request.url.path.startswith(("/ui/part/", "/ui/events"))
        if whole_page and request.method == "GET" and not request.headers.get("HX-Request"):
            return pages.sign_in_redirect(request)
        return PlainTextResponse("sign in first: this dashboard needs a token (okxlab tokens create NAME --scope read)",
                                 status_code=401)

    @app.exception_handler(actions.Refused)
    async def _refused(_: Request, exc: actions.Refused) -> Response:
        return PlainTextResponse(exc.message, status_code=exc.status)

