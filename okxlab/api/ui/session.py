"""Who is looking at the dashboard: the API token a user signed in with, kept in an HttpOnly cookie, and the CSRF
token every change must carry.

The cookie is accepted by the dashboard's own routes only; the JSON API still takes nothing but the
X-API-Token header, so a page on another site cannot ride a signed-in browser into it. The CSRF token is an HMAC
of the API token: a page that cannot read the cookie (HttpOnly, SameSite=Strict) cannot compute it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Depends, Request

from okxlab.api.context import ApiContext, ctx
from okxlab.service import tokens

COOKIE = "okxlab_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True)
class Viewer:
    name: str  # the token's name; "public" for an anonymous reader of a public arena
    scope: str
    token: str | None

    @property
    def actor(self) -> str:
        return f"web:{self.name}"

    @property
    def can_operate(self) -> bool:
        return self.token is not None and tokens.allows(self.scope, "operate")

    @property
    def csrf(self) -> str:
        return csrf_for(self.token) if self.token else ""


ANONYMOUS = Viewer("public", "read", None)


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"okxlab-dashboard-csrf", hashlib.sha256).hexdigest()


def viewer(request: Request, c: ApiContext = Depends(ctx)) -> Viewer | None:
    """The signed-in user, the anonymous reader of a public arena, or None (sign in first)."""
    token = request.cookies.get(COOKIE)
    if token:
        found = tokens.authenticate(c.sessions, token)
        if found is not None:
            return Viewer(found["name"], found["scope"], token)
    return ANONYMOUS if c.public else None


def csrf_ok(request: Request, who: Viewer, form_value: str | None = None) -> bool:
    sent = request.headers.get(CSRF_HEADER) or form_value or ""
    return bool(who.token) and hmac.compare_digest(sent, csrf_for(who.token or ""))
