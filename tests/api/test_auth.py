"""Tokens and scopes on every endpoint: none, unknown and revoked tokens are 401, a scope too small is 403,
public mode opens GETs only; tokens are stored as hashes and never appear in the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from okxlab.db.models import ApiToken, AuditEvent
from okxlab.db.session import session_scope
from tests.api.conftest import Api

# (method, path, body, the smallest scope allowed)
ROUTES = [
    ("GET", "/health", None, "read"),
    ("GET", "/agents", None, "read"),
    ("GET", "/agents/alpha", None, "read"),
    ("POST", "/agents/alpha/halt", {"reason": "scope test"}, "operate"),
    ("POST", "/agents/alpha/resume", {}, "operate"),
    ("POST", "/agents/alpha/flatten", {}, "operate"),
    ("POST", "/risk/pause", {}, "operate"),
    ("POST", "/risk/resume", None, "operate"),
    ("GET", "/risk/exposure", None, "read"),
    ("GET", "/runs", None, "read"),
    ("GET", "/runs/none", None, "read"),
    ("POST", "/plans/execute", {"agent": "nobody"}, "operate"),
    ("POST", "/replays", {"agents": ["nobody"], "start": "2022-12-01T00:00Z", "end": "2022-12-02T00:00Z"},
     "operate"),
    ("GET", "/replays/1", None, "read"),
    ("GET", "/leaderboard", None, "read"),
    ("GET", "/reports", None, "read"),
    ("GET", "/reports/2025-03-10", None, "read"),
    ("POST", "/reports/2025-03-10/send", {}, "operate"),
    ("GET", "/schedules", None, "read"),
    ("POST", "/schedules", {"name": "s1", "every": "7m"}, "admin"),
    ("PATCH", "/schedules/none", {"enabled": False}, "admin"),
    ("DELETE", "/schedules/none", None, "admin"),
    ("GET", "/tokens", None, "admin"),
    ("POST", "/tokens", {"name": "x", "scope": "bogus"}, "admin"),
    ("DELETE", "/tokens/none", None, "admin"),
    ("POST", "/strategies/validate", {}, "read"),
]
SCOPES = ("read", "operate", "admin")


def call(api: Api, method: str, path: str, body: dict | None, headers: dict[str, str]):  # noqa: ANN201
    return api.client.request(method, path, json=body, headers=headers)


def test_every_route_checks_the_token_and_its_scope(api: Api) -> None:
    for method, path, body, needed in ROUTES:
        for headers, why in (({}, "no token"), ({"X-API-Token": "okxlab_not-a-token"}, "unknown token"),
                             (api.as_("revoked"), "revoked token")):
            r = call(api, method, path, body, headers)
            assert r.status_code == 401, (method, path, why, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
        for scope in SCOPES:
            r = call(api, method, path, body, api.as_(scope))
            if SCOPES.index(scope) < SCOPES.index(needed):
                assert r.status_code == 403, (method, path, scope, r.text)
                assert r.json()["error"]["code"] == "forbidden" and needed in r.json()["error"]["message"]
            else:
                assert r.status_code not in (401, 403), (method, path, scope, r.text)


def test_public_mode_opens_gets_only(api_env: str, broker: object) -> None:
    from fastapi.testclient import TestClient

    from okxlab.api.app import create_app

    client = TestClient(create_app(public=True, ping_workers=lambda _t: {}))
    assert client.get("/agents").status_code == 200
    assert client.get("/leaderboard?book=sim").json()["book"] == "sim"
    assert client.post("/risk/pause", json={}).status_code == 401
    assert client.post("/strategies/validate", json={"builtin": "ema_trend"}).status_code == 401
    assert client.get("/tokens").status_code == 401  # an admin GET is not a public read
    from datetime import date

    from okxlab.db.models import Report
    from okxlab.db.session import session_scope

    with session_scope(api_env) as s:
        s.add(Report(day=date(2025, 3, 10), path="/nowhere/report.html", recipients=["ops@example.com"]))
    listed = client.get("/reports").json()
    assert [r["day"] for r in listed] == ["2025-03-10"] and "recipients" not in listed[0]  # no addresses for all
    assert client.get("/agents", headers={"X-API-Token": "okxlab_wrong"}).status_code == 401


def test_public_mode_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from okxlab.api.app import public_mode
    from okxlab.errors import ConfigError

    monkeypatch.setenv("OKXLAB_API_PUBLIC", "1")
    assert public_mode() is True
    monkeypatch.setenv("OKXLAB_API_PUBLIC", "maybe")
    with pytest.raises(ConfigError, match="OKXLAB_API_PUBLIC"):
        public_mode()


def test_tokens_are_kept_as_hashes_only(api: Api) -> None:
    r = api.client.post("/tokens", json={"name": "robot", "scope": "read"}, headers=api.as_("admin"))
    assert r.status_code == 201
    token = r.json()["token"]
    assert api.get("/agents", headers={"X-API-Token": token}, who=None).status_code == 200
    with session_scope(api.url) as s:
        stored = [(t.name, t.token_sha256) for t in s.scalars(select(ApiToken))]
        events = [(e.message, str(e.data)) for e in s.scalars(select(AuditEvent))]
    assert all(token not in h for _, h in stored) and all(token not in m + d for m, d in events)
    listed = api.client.get("/tokens", headers=api.as_("admin")).json()
    assert {t["name"] for t in listed} >= {"robot", "t-read"} and all("token" not in t for t in listed)
    assert api.audit("api.token_created")[-1][0] == "api:t-admin"
    assert api.client.delete("/tokens/robot", headers=api.as_("admin")).status_code == 204
    assert api.get("/agents", headers={"X-API-Token": token}, who=None).status_code == 401
    assert api.client.delete("/tokens/robot", headers=api.as_("admin")).json()["error"]["code"] == "conflict"


def test_errors_are_json_with_stable_codes(api: Api) -> None:
    r = api.post("/agents/alpha/halt", json={})
    assert r.status_code == 422
    assert r.json()["error"] == {"code": "validation_error", "message": "reason: Field required", "field": "reason"}
    r = api.get("/runs?limit=0")
    assert r.json()["error"]["code"] == "validation_error" and r.json()["error"]["field"] == "limit"
    assert api.get("/runs/missing").json()["error"]["code"] == "not_found"
    assert api.get("/no/such/path").json()["error"]["code"] == "not_found"
    r = api.get("/runs?since=yesterday-ish")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert r.json()["error"]["message"].startswith("since 'yesterday-ish' is not a time")
    assert api.get("/runs?cursor=garbage").json()["error"]["code"] == "bad_request"
