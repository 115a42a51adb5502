"""`X-API-Token` authentication and scopes: read (every GET) ⊂ operate (switches, plans, replays, reports)
⊂ admin (schedules, tokens). 401 for a missing, unknown or revoked token; 403 for a scope too small."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from okxlab.api.context import ApiContext, ctx
from okxlab.api.errors import ApiError
from okxlab.service import tokens

HEADER = "X-API-Token"
_scheme = APIKeyHeader(name=HEADER, auto_error=False, description="A token from `okxlab tokens create`.")


@dataclass(frozen=True)
class Caller:
    name: str
    scope: str

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"api:{self.name}"


PUBLIC = Caller("public", "read")


def require(scope: str) -> Callable[..., Caller]:
    def dependency(request: Request, token: str | None = Depends(_scheme), c: ApiContext = Depends(ctx)) -> Caller:
        if not token:
            if c.public and scope == "read" and request.method in ("GET", "HEAD"):
                return PUBLIC
            raise ApiError(401, "unauthorized", f"this call needs an {HEADER} header with a token of scope "
                           f"{scope} or above (`okxlab tokens create NAME --scope {scope}`)")
        caller = tokens.authenticate(c.sessions, token)
        if caller is None:
            raise ApiError(401, "unauthorized", f"the {HEADER} is not a valid token (unknown or revoked)")
        if not tokens.allows(caller["scope"], scope):
            raise ApiError(403, "forbidden", f"token {caller['name']} has scope {caller['scope']}; "
                           f"this call needs {scope}")
        return Caller(caller["name"], caller["scope"])

    return dependency


READ, OPERATE, ADMIN = require("read"), require("operate"), require("admin")
