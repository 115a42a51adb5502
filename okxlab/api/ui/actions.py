"""What the dashboard changes: signing in and out, and the operator's switches and replays. Each action calls the
same service function as the API and the CLI, names its actor as `web:<token name>` in the audit log, and needs
a token of operate scope plus the page's CSRF token; anything less is refused before anything is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse

from okxlab.api.context import ApiContext, ctx
from okxlab.api.ui.live import stream
from okxlab.api.ui.pages import reader
from okxlab.api.ui.render import templates
from okxlab.api.ui.session import COOKIE, Viewer, csrf_ok, viewer
from okxlab.domain import TradingState
from okxlab.errors import UserError
from okxlab.service import agents, replays, risk, tokens
from okxlab.service.plans import stage_env

router = APIRouter(include_in_schema=False)
ONE_LINE = 300
SESSION_DAYS = 7


def _safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would hand the signed-in browser to anyone."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/ui/signin", response_class=HTMLResponse)
def signin_form(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return templates.TemplateResponse(request, "signin.html", {"next": _safe_next(next), "error": None,
                                                               "who": None, "title": "Sign in"})


@router.post("/ui/signin", response_class=HTMLResponse)
def signin(request: Request, token: str = Form(..., max_length=200), next: str = Form("/", max_length=400),  # noqa: A002
           c: ApiContext = Depends(ctx)) -> Response:
    found = tokens.authenticate(c.sessions, token.strip())
    if found is None:
        return templates.TemplateResponse(
            request, "signin.html", {"next": _safe_next(next), "who": None, "title": "Sign in",
                                     "error": "that token is unknown or revoked; create one with "
                                              "`okxlab tokens create NAME --scope read`"}, status_code=401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, token.strip(), max_age=SESSION_DAYS * 86400, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.post("/ui/signout")
def signout(request: Request, csrf: str = Form("", max_length=100), who: Viewer | None = Depends(viewer)) -> Response:
    if who is not None and who.token and not csrf_ok(request, who, csrf):
        return PlainTextResponse("refused: this form did not come from an okxlab page", status_code=403)
    response = RedirectResponse("/ui/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/ui/events")
async def events(request: Request, _: Viewer = Depends(reader)) -> StreamingResponse:
    hub = request.app.state.hub
    return StreamingResponse(stream(hub, request.is_disconnected), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def operator(request: Request, who: Viewer | None = Depends(viewer)) -> Viewer:
    """A signed-in token of operate scope, on a request carrying this page's CSRF token."""
    if who is None or who.token is None:
        raise Refused(401, "refused: sign in with a token of operate scope first")
    if not who.can_operate:
        raise Refused(403, f"refused: token {who.name} has scope {who.scope}; this needs operate")
    if not csrf_ok(request, who):
        raise Refused(403, "refused: the request lacks this page's CSRF token (reload the page)")
    return who


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _notice(request: Request, ok: bool, message: str, changed: str) -> HTMLResponse:
    """The outcome in one line, shown where the button was; HX-Trigger makes the page re-read what changed even
    where no database notification arrives (SQLite)."""
    response = templates.TemplateResponse(request, "part_notice.html", {"ok": ok, "message": message[:ONE_LINE]})
    response.headers["HX-Trigger"] = json.dumps({f"live-{changed}": {"resync": True}})
    return response


def _act(request: Request, changed: str, action: Callable[[], str]) -> HTMLResponse:
    try:
        return _notice(request, True, action(), changed)
    except UserError as exc:  # an operator's mistake (already halted, unknown book): said in one line
        return _notice(request, False, str(exc).splitlines()[0], changed)


@router.post("/ui/agents/{name}/halt", response_class=HTMLResponse)
def halt(name: str, request: Request, book: str = Form(..., max_length=24), reason: str = Form("", max_length=500),
         reduce_only: bool = Form(False), who: Viewer = Depends(operator), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    target = TradingState.REDUCE_ONLY if reduce_only else TradingState.HALTED
    why = reason.strip() or f"{target.value.lower().replace('_', '-')} from the dashboard"

    def run() -> str:
        agents.change_state(c.sessions, c.config, name, book, target, why, actor=who.actor)
        return f"{name} is {target.value} in book {book}: {why}"

    return _act(request, "state", run)


@router.post("/ui/agents/{name}/resume", response_class=HTMLResponse)
def resume(name: str, request: Request, book: str = Form(..., max_length=24), who: Viewer = Depends(operator),
           c: ApiContext = Depends(ctx)) -> HTMLResponse:
    def run() -> str:
        agents.change_state(c.sessions, c.config, name, book, TradingState.ACTIVE, None, actor=who.actor)
        return f"{name} is ACTIVE again in book {book}"

    return _act(request, "state", run)


@router.post("/ui/agents/{name}/flatten", response_class=HTMLResponse)
def flatten(name: str, request: Request, book: str = Form(..., max_length=24), who: Viewer = Depends(operator),
            c: ApiContext = Depends(ctx)) -> HTMLResponse:
    def run() -> str:
        _, result = agents.flatten(c.config, name, book, actor=who.actor)
        return (f"{name} flattened in book {book}: {len(result.cancelled)} order(s) cancelled, "
                f"{len(result.closed)} position(s) closed")

    return _act(request, "fill", run)


@router.post("/ui/risk/pause", response_class=HTMLResponse)
def pause(request: Request, reason: str = Form("", max_length=500), who: Viewer = Depends(operator),
          c: ApiContext = Depends(ctx)) -> HTMLResponse:
    why = reason.strip() or "paused from the dashboard"

    def run() -> str:
        risk.pause(c.sessions, why, actor=who.actor)
        return f"trading paused for every agent: {why}"

    return _act(request, "control", run)


@router.post("/ui/risk/resume", response_class=HTMLResponse)
def unpause(request: Request, who: Viewer = Depends(operator), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    def run() -> str:
        risk.resume(c.sessions, actor=who.actor)
        return "the global pause is lifted"

    return _act(request, "control", run)


def _when(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"{field} {text!r} is not a time; give YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@router.post("/ui/replays", response_class=HTMLResponse)
def start_replay(request: Request, agents_: list[str] = Form(..., alias="agents", max_length=20),
                 start: str = Form(..., max_length=40), end: str = Form(..., max_length=40),
                 bar: str = Form("", max_length=8), mode: str = Form("fast", pattern="^(fast|inline)$"),
                 offline_planners: bool = Form(False), who: Viewer = Depends(operator),
                 c: ApiContext = Depends(ctx)) -> HTMLResponse:
    def run() -> str:
        queued: dict[str, Any] = replays.request(
            stage_env(c.config, c.sessions), agents=agents_, start=_when(start, "start"), end=_when(end, "end"),
            bar=bar or None, mode=mode, offline_planners=offline_planners, actor=who.actor, enqueue=c.queue_replay)
        return f"replay {queued['replay_id']} queued ({queued['ticks']} ticks, {mode} mode)"

    return _act(request, "replay", run)
