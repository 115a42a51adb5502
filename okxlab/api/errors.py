"""Every error is JSON {"error": {"code", "message"}} with a stable code; no traceback ever leaves the server."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from okxlab.config import database_url
from okxlab.db.session import scrub
from okxlab.errors import ConfigError, NotFound, UserError
from okxlab.service.plans import ExchangeUnavailable
from okxlab.service.risk import Conflict

log = logging.getLogger("okxlab.api")

_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               406: "not_acceptable", 415: "unsupported_media_type"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _one_line(text: object) -> str:
    return str(text).replace("\r", " ").replace("\n", " ")[:1000]


def body(status: int, code: str, message: str, field: str | None = None,
         headers: dict[str, str] | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": _one_line(message)}
    if field is not None:
        error["field"] = field
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _user_error(exc: UserError) -> JSONResponse:
    if isinstance(exc, NotFound):
        return body(404, "not_found", str(exc))
    if isinstance(exc, Conflict):
        return body(409, "conflict", str(exc))
    if isinstance(exc, ConfigError):
        return body(400, "config_error", str(exc))
    return body(400, "bad_request", str(exc))


def _validation(exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or None
    where = f"{field}: " if field else ""
    return body(422, "validation_error", f"{where}{first.get('msg', 'invalid')}", field=field)


def _as_page(request: Request, status: int, message: str) -> Response | None:
    """The dashboard's pages answer errors as pages (one line, no traceback); everything else as JSON."""
    from okxlab.api import ui

    return ui.error_page(request, status, _one_line(message)) if ui.is_page(request) else None


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "X-API-Token"} if exc.status == 401 else None
        return body(exc.status, exc.code, exc.message, headers=headers)

    @app.exception_handler(UserError)
    async def _user(request: Request, exc: UserError) -> Response:
        answer = _user_error(exc)
        return _as_page(request, answer.status_code, str(exc)) or answer

    @app.exception_handler(ExchangeUnavailable)
    async def _exchange(_: Request, exc: ExchangeUnavailable) -> JSONResponse:
        return body(503, "exchange_unavailable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        answer = _validation(exc)
        return _as_page(request, 422, json.loads(answer.body)["error"]["message"]) or answer

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        return _as_page(request, exc.status_code, str(exc.detail)) or \
            body(exc.status_code, _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"), str(exc.detail))

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig and str(exc.orig).strip() else "database error"
        return body(503, "database_unavailable", f"the database failed: {scrub(reason, database_url())}")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        import ccxt

        if isinstance(exc, ccxt.NetworkError):  # a step already taken is audited and safe to repeat
            return body(502, "exchange_unavailable", "the exchange did not answer "
                        f"({type(exc).__name__}); check that it is up and try again")
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return body(500, "internal", "unexpected server error; it is logged on the server")
