"""Every endpoint against the review builders' day in real Postgres: what it returns, what it changes, and that
each change is audited with the token's name."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import func, select

from okxlab.cli.main import main
from okxlab.db.models import AuditEvent, MarketSnapshot, PositionRecord, RiskStateRecord, Run, utcnow
from okxlab.db.session import session_scope
from tests.api.conftest import Api


def test_agents_list_and_detail(api: Api) -> None:
    agents = api.get("/agents").json()
    assert [a["name"] for a in agents] == ["alpha", "beta", "flat"] and {a["book"] for a in agents} == {"sim"}
    alpha = api.get("/agents/alpha").json()
    assert [b["book"] for b in alpha["books"]] == ["sim"] and alpha["limits"]["max_leverage"] > 0
    with session_scope(api.url) as s:
        pos = s.scalar(select(PositionRecord).where(PositionRecord.agent == "alpha", PositionRecord.status == "open"))
        mark = s.scalar(select(MarketSnapshot.last).order_by(MarketSnapshot.id.desc()).limit(1))
        expected = (1 if pos.side == "long" else -1) * (mark - pos.entry_price) * pos.contracts * pos.ct_val
    [shown] = alpha["positions"]
    assert shown["mark"] == mark and abs(shown["unrealized_pnl"] - expected) < 1e-9
    assert api.get("/agents/nobody").json()["error"]["message"].startswith("unknown agent 'nobody'")


def test_halt_and_resume_are_audited_with_the_token(api: Api) -> None:
    started = utcnow()
    r = api.post("/agents/beta/halt", json={"reason": "looks broken", "reduce_only": True})
    assert r.json() == {"agent": "beta", "book": "sim", "trading_state": "REDUCE_ONLY", "reason": "looks broken"}
    with session_scope(api.url) as s:
        assert s.get(RiskStateRecord, ("beta", "sim")).trading_state == "REDUCE_ONLY"
    assert api.get("/agents/beta").json()["books"][0]["trading_state"] == "REDUCE_ONLY"
    again = api.post("/agents/beta/halt", json={"reason": "x", "reduce_only": True})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert api.post("/agents/beta/resume").json()["trading_state"] == "ACTIVE"
    with session_scope(api.url) as s:
        changes = list(s.scalars(select(AuditEvent).where(AuditEvent.agent == "beta", AuditEvent.ts > started)))
    assert len(changes) >= 2 and {e.actor for e in changes} == {"api:t-operate"}


def test_flatten_with_the_exchange_down_is_a_clear_502(api: Api) -> None:
    r = api.post("/agents/alpha/flatten", json={})
    assert r.status_code == 502 and r.json()["error"]["code"] == "exchange_unavailable"


def test_global_pause_and_exposure(api: Api) -> None:
    assert api.get("/risk/exposure").json()["paused"] is None
    assert api.post("/risk/pause", json={"reason": "incident 7"}).json() == {"paused": True, "reason": "incident 7"}
    exposure = api.get("/risk/exposure").json()
    assert exposure["paused"]["reason"] == "incident 7" and exposure["paused"]["by"] == "api:t-operate"
    assert [(e["book"], e["symbol"]) for e in exposure["exposure"]] == [("sim", "BTC-USDT-SWAP")]
    assert api.post("/risk/pause", json={}).status_code == 409
    assert api.post("/risk/resume").json() == {"paused": False}
    assert api.post("/risk/resume").status_code == 409


def test_runs_pages_through_everything_once(api: Api) -> None:
    with session_scope(api.url) as s:
        expected = list(s.scalars(select(Run.id).where(Run.agent == "alpha")
                                  .order_by(Run.scheduled_for.desc(), Run.agent, Run.id)))
    seen, cursor = [], None
    while True:
        page = api.get("/runs", params={"agent": "alpha", "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(expected) > 2
    since = api.get("/runs", params={"since": "2025-03-10T12:00", "book": "sim", "status": "completed"}).json()
    assert since["items"] and all(r["scheduled_for"] >= "2025-03-10T12:00" and r["status"] == "completed"
                                  for r in since["items"])


def test_run_trail_is_the_cli_json(api: Api) -> None:
    run_id = api.get("/runs?limit=1").json()["items"][0]["id"]
    cli = CliRunner().invoke(main, ["runs", "show", run_id, "--json"])
    assert cli.exit_code == 0, cli.output
    # The same trail; the API writes UTC times the RFC 3339 way ("Z"), the CLI as Python does ("+00:00").
    assert api.get(f"/runs/{run_id}").text.count("Z\"") > 0
    assert api.get(f"/runs/{run_id}").json() == json.loads(cli.stdout.replace('+00:00"', 'Z"'))


def test_leaderboard_is_the_cli_json(api: Api) -> None:
    params = {"book": "sim", "since": "2025-03-10", "until": "2025-03-11"}
    board = api.get("/leaderboard", params=params).json()
    cli = CliRunner().invoke(main, ["leaderboard", "--book", "sim", "--since", "2025-03-10", "--until", "2025-03-11",
                                    "--json"])
    assert [a["agent"] for a in board["agents"]] == ["alpha", "beta", "flat"]
    assert board["agents"][0]["return"] == json.loads(cli.stdout)["agents"][0]["return"]
    assert [b["name"] for b in board["baselines"]] == ["cash", "buy_and_hold"]
    r = api.get("/leaderboard", params={"book": "live"})
    assert r.status_code == 404 and "books with runs: sim" in r.json()["error"]["message"]
    r = api.get("/leaderboard", params={"since": "2025-03-11", "until": "2025-03-10"})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("since (2025-03-11 00:00) must be before")


def test_reports_build_send_and_read(api: Api) -> None:
    assert api.get("/reports").json() == []
    assert api.get("/reports/2025-03-10").status_code == 404
    sent = api.post("/reports/2025-03-10/send", json={}).json()
    assert sent["sent"] is False and "SMTP is not configured" in sent["message"]
    assert [r["day"] for r in api.get("/reports").json()] == ["2025-03-10"]
    assert api.get("/reports/2025-03-10").json()["day"] == "2025-03-10"
    html = api.get("/reports/2025-03-10", params={"format": "html"})
    assert html.headers["content-type"].startswith("text/html") and "alpha" in html.text
    assert "alpha" in api.get("/reports/2025-03-10", params={"format": "text"}).text
    assert api.audit("report.send_requested")[0][0] == "api:t-operate"


def test_schedules_crud(api: Api) -> None:
    admin = api.as_("admin")
    r = api.client.post("/schedules", json={"name": "fast", "every": "15m", "agent": "alpha"}, headers=admin)
    assert r.status_code == 201 and r.json()["kind"] == "interval" and r.json()["warnings"] == []
    r = api.client.post("/schedules", json={"name": "all", "cron": "5 */4 * * *"}, headers=admin)
    assert "overlaps enabled schedule(s) fast" in r.json()["warnings"][0]
    assert api.client.post("/schedules", json={"name": "fast", "every": "1h"}, headers=admin).status_code == 409
    bad = api.client.post("/schedules", json={"name": "odd", "every": "7m"}, headers=admin)
    assert bad.status_code == 400 and "does not divide a day" in bad.json()["error"]["message"]
    r = api.client.patch("/schedules/fast", json={"enabled": False, "every": "1h"}, headers=admin)
    assert (r.json()["enabled"], r.json()["expr"]) == (False, "1h")
    assert [s["name"] for s in api.get("/schedules").json()] == ["all", "fast"]
    assert api.client.delete("/schedules/fast", headers=admin).status_code == 204
    assert api.get("/schedules/fast").status_code == 404
    assert {a for a, _ in api.audit("schedule.added") + api.audit("schedule.removed")} == {"api:t-admin"}


def test_strategies_validate(api: Api) -> None:
    ok = api.post("/strategies/validate", json={"builtin": "ema_trend"}, who="read").json()
    assert ok["valid"] is True and ok["name"]
    bad = api.post("/strategies/validate", json={"document": {"name": 3}}, who="read").json()
    assert bad["valid"] is False and bad["problems"] and all({"path", "message"} <= set(p) for p in bad["problems"])
    assert api.post("/strategies/validate", json={}, who="read").status_code == 400


def test_health_names_the_failing_parts(api: Api) -> None:
    r = api.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert set(body["failing"]) == {"exchange", "workers"}
    assert body["parts"]["database"]["ok"] and body["parts"]["broker"]["ok"] and body["parts"]["dispatch"]["ok"]
    assert "ConnectionError" in body["parts"]["exchange"]["error"] or "Error" in body["parts"]["exchange"]["error"]


def test_a_cursor_this_api_did_not_write_is_a_400(api: Api) -> None:
    import base64
    import json

    forged = base64.urlsafe_b64encode(json.dumps(["2025-03-10T00:00:00", "alpha", "x"]).encode()).decode()
    r = api.get("/runs", params={"cursor": forged.rstrip("=")})
    assert r.status_code == 400 and "cursor" in r.json()["error"]["message"]


def test_execute_dispatches_one_run_per_idempotency_key(api: Api) -> None:
    before = api.queue()
    first = api.post("/plans/execute", json={"agent": "flat"}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 202 and first.json()["created"] is True and first.json()["book"] == "sim"
    again = api.post("/plans/execute", json={"agent": "flat"}, headers={"Idempotency-Key": "k-1"})
    assert again.json() == {**first.json(), "created": False}
    assert api.queue() == before + 1  # one chain sent to the snapshot queue
    with session_scope(api.url) as s:
        run = s.get(Run, first.json()["run_id"])
        assert (run.agent, run.book, run.status) == ("flat", "sim", "pending") and run.source.startswith("api:")
    assert api.audit("run.requested") == [("api:t-operate", f"run {run.id} of flat [sim] requested")]
    other = api.post("/plans/execute", json={"agent": "beta"}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    fresh = api.post("/plans/execute", json={"agent": "flat"})
    assert fresh.json()["run_id"] != run.id and api.queue() == before + 2
    # a key is its caller's own: another token with the same key gets a run of its own, not a reply with ours
    theirs = api.post("/plans/execute", who="admin", json={"agent": "flat"}, headers={"Idempotency-Key": "k-1"})
    assert theirs.json()["created"] is True and theirs.json()["run_id"] not in (run.id, fresh.json()["run_id"])


def test_execute_race_on_one_key_makes_one_run(api: Api) -> None:
    import threading

    from fastapi.testclient import TestClient

    before = api.queue()
    barrier, results = threading.Barrier(2), []

    def request() -> None:
        client = TestClient(api.app)
        barrier.wait()
        results.append(client.post("/plans/execute", json={"agent": "alpha"},
                                   headers={**api.as_("operate"), "Idempotency-Key": "race"}).json())

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r["run_id"] for r in results}) == 1 and sorted(r["created"] for r in results) == [False, True]
    with session_scope(api.url) as s:
        assert s.scalar(select(func.count()).select_from(Run).where(Run.source.like("api:%"))) == 1
    assert api.queue() == before + 1


def test_a_cached_leaderboard_follows_new_data(api: Api) -> None:
    from tests.review.builders import Ledger, at

    params = {"book": "sim", "since": "2025-03-10", "until": "2025-03-11"}
    first = api.get("/leaderboard", params=params).json()
    assert api.get("/leaderboard", params=params).json() == first
    with session_scope(api.url) as s:
        Ledger(s, "sim").run("flat", at(23), equity=20_000.0)  # a new run and equity point in the window
    changed = api.get("/leaderboard", params=params).json()
    flat = next(a for a in changed["agents"] if a["agent"] == "flat")
    assert changed["agents"][0]["agent"] == "flat" and flat["return"] > 0.9, flat["return"]
