"""API tokens: created with a scope, shown once, kept only as a SHA-256, revocable.

A token is 32 random bytes, so a plain SHA-256 is enough to store it (no dictionary to attack); lookups are
by hash, so no stored value is ever compared with a secret."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from okxlab.db.models import ApiToken, utcnow
from okxlab.db.ops import audit
from okxlab.errors import NotFound, UserError
from okxlab.service.risk import Conflict

SCOPES = ("read", "operate", "admin")  # each includes the ones before it
PREFIX = "okxlab_"
LAST_USED_STEP = timedelta(minutes=1)
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def allows(scope: str, needed: str) -> bool:
    return SCOPES.index(scope) >= SCOPES.index(needed)


def _row(t: ApiToken) -> dict[str, Any]:
    return {"name": t.name, "scope": t.scope, "created_at": t.created_at, "created_by": t.created_by,
            "last_used_at": t.last_used_at, "revoked_at": t.revoked_at}


def create(sessions: sessionmaker[Session], name: str, scope: str, *, actor: str) -> str:
    """A new token; returns it (the only time it is seen)."""
    if not _NAME.match(name):
        raise UserError(f"token name {name!r} must be 1-32 letters, digits, '.', '-' or '_'")
    if scope not in SCOPES:
        raise UserError(f"scope {scope!r} must be one of {', '.join(SCOPES)}")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        with sessions.begin() as s:
            if s.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
                raise Conflict(f"a token named {name!r} already exists; revoke it or pick another name")
            s.add(ApiToken(name=name, scope=scope, token_sha256=digest(token), created_by=actor))
            audit(s, "api.token_created", f"API token {name} ({scope}) created", actor=actor,
                  data={"token": name, "scope": scope})
    except IntegrityError:  # created by someone else at the same moment
        raise Conflict(f"a token named {name!r} already exists; revoke it or pick another name") from None
    return token


def list_tokens(s: Session) -> list[dict[str, Any]]:
    return [_row(t) for t in s.scalars(select(ApiToken).order_by(ApiToken.name))]


def revoke(sessions: sessionmaker[Session], name: str, *, actor: str) -> None:
    with sessions.begin() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise NotFound(f"no token named {name!r}")
        if row.revoked_at is not None:
            raise Conflict(f"token {name!r} was already revoked at {row.revoked_at:%Y-%m-%d %H:%M} UTC")
        row.revoked_at = utcnow()
        audit(s, "api.token_revoked", f"API token {name} revoked", actor=actor, data={"token": name})


def authenticate(sessions: sessionmaker[Session], token: str) -> dict[str, Any] | None:
    """The live (not revoked) token with this value, as {"name", "scope"}; None for any other value."""
    with sessions.begin() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest(token)))
        if row is None or row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_STEP:  # not one write per request
            row.last_used_at = now
        return {"name": row.name, "scope": row.scope}
