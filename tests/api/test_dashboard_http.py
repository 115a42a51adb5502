"""The dashboard over HTTP, without a browser: sign-in and its cookie, redirects that stay on this site, hostile
text shown as text, one-line errors, public mode, races between two operators, and the live-event hub."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sqlalchemy import select

from okxlab.api.ui.live import QUEUE_SIZE, EventHub, _offer
from okxlab.api.ui.session import COOKIE, csrf_for
from okxlab.db.models import AuditEvent, PlanRecord, Run
from okxlab.db.session import session_factory, session_scope
from okxlab.service import risk
from tests.api.conftest import Api

HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def signed_in(api: Api, scope: str = "read") -> None:
    """The test client keeps the session cookie the sign-in sets."""
    r = api.client.post("/ui/signin", data={"token": api.tokens[scope], "next": "/"}, follow_redirects=False)
    assert r.status_code == 303 and api.client.cookies.get(COOKIE) == api.tokens[scope]


def test_sign_in_sets_a_strict_http_only_cookie_and_bad_tokens_get_one_line(api: Api) -> None:
    r = api.client.post("/ui/signin", data={"token": api.tokens["read"], "next": "/ui/pipeline"},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/pipeline"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and f"{COOKIE}=" in cookie
    for token in ("nope", api.tokens["revoked"]):
        bad = api.client.post("/ui/signin", data={"token": token, "next": "/"}, follow_redirects=False)
        assert bad.status_code == 401 and "set-cookie" not in bad.headers
        assert "that token is unknown or revoked" in bad.text and "Traceback" not in bad.text


def test_redirects_after_sign_in_stay_on_this_site(api: Api) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        r = api.client.post("/ui/signin", data={"token": api.tokens["read"], "next": target}, follow_redirects=False)
        assert r.headers["location"] == "/", target


def test_pages_need_a_session_and_a_revoked_one_is_refused(api: Api) -> None:
    api.client.cookies.clear()
    r = api.client.get("/ui/agents/alpha", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/signin?next=%2Fui%2Fagents%2Falpha"
    assert api.client.get("/ui/data/arena").status_code == 401  # data and parts: a status, not a redirect
    assert api.client.get("/ui/events").status_code == 401
    assert api.client.get("/ui/part/board").status_code == 401
    api.client.cookies.set(COOKIE, api.tokens["revoked"])
    r = api.client.get("/", follow_redirects=False)
    assert r.status_code == 303


def test_hostile_text_from_a_model_is_shown_as_text(api: Api) -> None:
    with session_scope(api.url) as s:
        run_id = s.scalars(select(Run.id).where(Run.agent == "alpha").order_by(Run.scheduled_for.desc())).first()
        plan = s.scalars(select(PlanRecord).where(PlanRecord.run_id == run_id)).first()
        if plan is None:
            plan = PlanRecord(run_id=run_id, planner="llm", raw="")
            s.add(plan)
        plan.raw, plan.document = HOSTILE, None
        s.get(Run, run_id).reason = HOSTILE
    signed_in(api)
    for path in ("/ui/agents/alpha?book=sim", f"/ui/runs/{run_id}", "/ui/part/feed?agent=alpha&book=sim"):
        page = api.client.get(path).text
        assert HOSTILE not in page and "<script>alert(2)" not in page, path
        assert "&lt;img src=x onerror=" in page, path


def test_errors_are_one_line_pages(api: Api) -> None:
    signed_in(api)
    r = api.client.get("/ui/agents/nobody")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "unknown agent &#39;nobody&#39;; configured agents: alpha, beta, flat" in r.text
    assert api.client.get("/ui/part/nothing").status_code == 404
    assert api.client.get("/ui/part/feed?agent=alpha").status_code == 400
    assert api.client.get("/ui/part/agent-head").status_code == 400
    r = api.client.get("/?since=yesterday-ish")
    assert r.status_code == 400 and "is not a time" in r.text
    r = api.client.get("/?book=nope")
    assert r.status_code == 404 and "no runs in book" in r.text
    # the JSON API still answers JSON
    assert api.get("/agents/nobody").json()["error"]["code"] == "not_found"


def test_two_operators_halting_at_once_halt_once(api: Api) -> None:
    signed_in(api, "operate")
    headers = {"X-CSRF-Token": csrf_for(api.tokens["operate"]), "HX-Request": "true"}
    answers: list[str] = []
    barrier = threading.Barrier(2)

    def halt() -> None:
        barrier.wait()
        r = api.client.post("/ui/agents/alpha/halt", data={"book": "sim", "reason": "race"},
                            headers=headers)
        answers.append(r.text)

    threads = [threading.Thread(target=halt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted("is HALTED in book sim" in a for a in answers) == [False, True], answers
    assert any("already HALTED" in a for a in answers)
    with session_scope(api.url) as s:
        halts = s.scalars(select(AuditEvent).where(AuditEvent.agent == "alpha", AuditEvent.actor == "web:t-operate"))
        assert len([e for e in halts if "HALTED" in e.message]) == 1


def test_public_mode_reads_without_a_token_and_changes_nothing(api: Api, monkeypatch: Any) -> None:
    api.app.state.ctx.public = True
    api.client.cookies.clear()
    arena = api.client.get("/")
    assert arena.status_code == 200 and 'data-agent="alpha"' in arena.text and 'id="controls"' not in arena.text
    assert api.client.post("/ui/risk/pause", headers={"X-CSRF-Token": "x"}).status_code == 401
    assert api.client.get("/ui/reports").status_code == 200


def test_the_hub_delivers_committed_changes_and_a_stalled_page_resyncs(api: Api) -> None:
    async def scenario() -> list[dict[str, Any]]:
        hub = EventHub(api.url).start()
        try:
            queue = hub.subscribe()
            await asyncio.get_running_loop().run_in_executor(None, hub.listening.wait, 10)
            assert (await asyncio.wait_for(queue.get(), 5))["kind"] == "resync"  # anything before: re-read
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: risk.pause(session_factory(api.url), "hub test", actor="test"))
            return [await asyncio.wait_for(queue.get(), 5)]
        finally:
            hub.stop()

    event = asyncio.run(scenario())[0]
    assert event["kind"] == "control" and event["key"] == "global_pause"

    async def stalled() -> list[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        for n in range(QUEUE_SIZE + 5):
            _offer(queue, {"kind": "fill", "n": n})
        return [queue.get_nowait() for _ in range(queue.qsize())]

    assert asyncio.run(stalled()) == [{"kind": "resync"}] + [{"kind": "fill", "n": n}
                                                             for n in range(QUEUE_SIZE + 1, QUEUE_SIZE + 5)]


def test_an_open_position_shows_the_stop_and_target_its_entry_carried(api: Api) -> None:
    from okxlab.db.models import Order, PositionRecord

    with session_scope(api.url) as s:
        position = s.scalars(select(PositionRecord).where(PositionRecord.agent == "alpha",
                                                          PositionRecord.status == "open")).one()
        run_id = s.scalars(select(Run.id).where(Run.agent == "alpha").order_by(Run.scheduled_for.desc())).first()
        position.open_run_id = run_id
        s.add(Order(cl_ord_id="dashstop1", run_id=run_id, idx=0, agent="alpha", book="sim", purpose="open",
                    symbol=position.symbol, side="buy", order_type="market", contracts=1.0, stop_loss=95_000.0,
                    take_profit=110_000.0, tag="t", state="filled", filled=1.0))
    shown = api.get("/agents/alpha").json()["positions"]
    assert [(p["stop_loss"], p["take_profit"]) for p in shown] == [(95_000.0, 110_000.0)]
    signed_in(api)
    page = api.client.get("/ui/part/positions?agent=alpha&book=sim").text
    assert "95,000.00" in page and "110,000.00" in page


def test_a_replay_started_in_the_page_is_queued_and_audited(api: Api) -> None:
    signed_in(api, "operate")
    headers = {"X-CSRF-Token": csrf_for(api.tokens["operate"]), "HX-Request": "true"}
    r = api.client.post("/ui/replays", headers=headers, data={
        "agents": ["alpha", "beta"], "start": "2025-03-01", "end": "2025-03-02", "bar": "4H", "mode": "fast"})
    assert r.status_code == 200 and "queued (7 ticks, fast mode)" in r.text, r.text
    assert api.queue("replay") == 1
    assert [a for a, m in api.audit("replay.requested") if a == "web:t-operate"], api.audit("replay.requested")
    bad = api.client.post("/ui/replays", headers=headers, data={"agents": ["alpha"], "start": "soon", "end": "later"})
    assert "is not a time" in bad.text and api.queue("replay") == 1  # refused in one line, nothing queued


def test_the_hub_listens_again_after_its_connection_is_killed(api: Api) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    async def scenario() -> list[dict[str, Any]]:
        hub = EventHub(api.url).start()
        loop = asyncio.get_running_loop()
        try:
            queue = hub.subscribe()
            await loop.run_in_executor(None, hub.listening.wait, 10)
            await asyncio.wait_for(queue.get(), 5)  # the first resync
            u = make_url(api.url)
            with psycopg2.connect(host=u.host, port=u.port, user=u.username, dbname=u.database) as conn, \
                    conn.cursor() as cur:  # what a database restart does to the listening connection
                cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE query LIKE 'LISTEN okxlab_events%' AND pid <> pg_backend_pid()")
            seen = [await asyncio.wait_for(queue.get(), 15)]  # reconnected: pages are told to re-read
            await loop.run_in_executor(None, lambda: risk.pause(session_factory(api.url), "after", actor="test"))
            seen.append(await asyncio.wait_for(queue.get(), 10))
            return seen
        finally:
            hub.stop()

    resync, event = asyncio.run(scenario())
    assert resync == {"kind": "resync"} and event["kind"] == "control"


def test_pages_asking_for_one_board_at_once_build_it_once(api: Api) -> None:
    from okxlab.review.settings import ReviewSettings
    from okxlab.service.leaderboard import BoardCache

    cache, sessions, settings = BoardCache(), session_factory(api.url), ReviewSettings()
    boards: list[dict[str, Any]] = []
    barrier = threading.Barrier(6)

    def ask() -> None:
        with sessions() as s:
            barrier.wait()
            boards.append(cache.board(s, settings, "sim", None, None))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(boards) == 6 and all(b == boards[0] for b in boards) and boards[0]["agents"]
    assert cache.computed == 1
