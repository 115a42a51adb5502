"""The dashboard in a real browser over the API's test day (agents alpha, beta, flat in book sim): what the pages
show equals what the API answers, operator controls act and are refused without operate scope, the decision feed
carries the risk engine's reasons, and every page renders at 1280 and 390 px, light and dark."""

from __future__ import annotations

import re
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from sqlalchemy import select

from okxlab.db.models import AuditEvent, RiskStateRecord, Run
from okxlab.db.session import session_scope
from tests.api.conftest import Api
from tests.support.browser import live, screenshot, sign_in, wait


def _number(text: str) -> float | None:
    """A figure as the page prints it (10,300.00 · +3.00% · 1.23) back to a number."""
    cleaned = re.sub(r"[,%+\s]", "", text)
    return None if cleaned in ("", "-") else float(cleaned)


def _rows(driver: Any) -> dict[str, dict[str, str]]:
    rows = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr"):
        cells = {td.get_attribute("data-field"): td.text for td in tr.find_elements(By.CSS_SELECTOR, "[data-field]")}
        cells["rank"] = tr.find_element(By.CSS_SELECTOR, "td").text
        rows[tr.get_attribute("data-agent")] = cells
    return rows


def test_the_arena_shows_the_leaderboard_the_api_answers(site: tuple[Api, str], driver: Any) -> None:
    api, base = site
    assert api.post("/agents/beta/halt", json={"reason": "test", "book": "sim"}).status_code == 200
    sign_in(driver, base, api.tokens["read"])
    driver.get(f"{base}/?book=sim")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr"), what="the leaderboard")
    board = api.get("/leaderboard?book=sim").json()
    shown = _rows(driver)
    assert set(shown) == {a["agent"] for a in board["agents"]} == {"alpha", "beta", "flat"}
    for a in board["agents"]:
        row = shown[a["agent"]]
        assert int(row["rank"]) == a["rank"]
        assert _number(row["equity"]) == round(a["equity_end"], 2)
        assert _number(row["return"]) == round(a["return"] * 100, 2)
        assert _number(row["trades"]) == a["trades"]
        assert _number(row["max_drawdown"]) == round(a["max_drawdown"] * 100, 2)
        assert _number(row["win_rate"]) == (None if a["win_rate"] is None else round(a["win_rate"] * 100, 2))
        assert _number(row["sharpe"]) == (None if a["sharpe"] is None else round(a["sharpe"], 2))
    states = {a["name"]: a["effective_state"] for a in api.get("/agents?book=sim").json()}
    assert {name: row["state"] for name, row in shown.items()} == states
    assert states["beta"] == "HALTED"
    # the chart drew every agent and both baselines from the same book
    chart = driver.find_element(By.CSS_SELECTOR, "[data-chart=arena]")
    wait(driver, lambda d: chart.get_attribute("data-loaded"), what="the arena chart")
    legend = driver.find_element(By.CSS_SELECTOR, ".legend").text
    assert all(name in legend for name in ("alpha", "beta", "flat", "buy-and-hold", "cash")), legend
    assert driver.find_elements(By.CSS_SELECTOR, "[data-chart=arena] canvas")
    screenshot(driver, "arena-1280-light")
    driver.execute_script("document.getElementById('theme-toggle').click()")
    assert driver.execute_script("return document.documentElement.dataset.theme") == "dark"
    screenshot(driver, "arena-1280-dark")
    driver.set_window_size(390, 844)
    driver.get(f"{base}/?book=sim")
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr"), what="the narrow arena")
    # at phone width the page does not scroll sideways: only the table's own box does
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    screenshot(driver, "arena-390-dark")


def test_the_decision_feed_shows_a_rejected_plan_with_its_reasons(site: tuple[Api, str], driver: Any) -> None:
    api, base = site
    sign_in(driver, base, api.tokens["read"])
    driver.get(f"{base}/ui/agents/beta?book=sim")
    feed = wait(driver, lambda d: d.find_element(By.ID, "feed"), what="the decision feed")
    rejected = [el for el in feed.find_elements(By.CSS_SELECTOR, ".verdict") if "reject" in el.text]
    assert rejected, feed.text
    assert "MAX_LEVERAGE" in rejected[0].text and "NO_STOP_LOSS" in rejected[0].text
    # alpha's feed pages: newest first, ten a page, with its LLM usage and its invalid plan's problem
    driver.get(f"{base}/ui/agents/alpha?book=sim")
    runs = [a.get_attribute("data-run") for a in driver.find_elements(By.CSS_SELECTOR, "#feed article")]
    listed = [r["id"] for r in api.get("/runs?agent=alpha&book=sim&limit=10").json()["items"]]
    assert runs == listed
    text = driver.find_element(By.ID, "feed").text
    assert "DOGE-USDT-SWAP is not traded by this agent" in text and "1100 in / 250 out" in text
    screenshot(driver, "agent-1280")
    driver.set_window_size(390, 844)
    driver.get(f"{base}/ui/agents/alpha?book=sim")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    screenshot(driver, "agent-390")
    driver.set_window_size(1280, 900)
    driver.get(f"{base}/ui/agents/alpha?book=sim")
    trades = driver.find_element(By.ID, "trade-log").text
    assert "take_profit" in trades and "stop_loss" in trades


def test_halting_in_the_page_halts_the_agent(site: tuple[Api, str], driver: Any) -> None:
    api, base = site
    sign_in(driver, base, api.tokens["operate"], "/ui/agents/alpha?book=sim")
    live(driver)
    assert driver.find_element(By.ID, "state").text == "ACTIVE"
    driver.find_element(By.ID, "halt").click()
    alert = wait(driver, lambda d: d.switch_to.alert, what="the confirmation")
    assert "Halt alpha in book sim" in alert.text and "closing stays allowed" in alert.text
    alert.accept()
    wait(driver, lambda d: d.find_element(By.ID, "state").text == "HALTED", what="HALTED in the page")
    with session_scope(api.url) as s:
        assert s.get(RiskStateRecord, ("alpha", "sim")).trading_state == "HALTED"
        actors = [e.actor for e in s.scalars(select(AuditEvent).where(AuditEvent.agent == "alpha",
                                                                       AuditEvent.kind.like("agent.%")))]
    assert "web:t-operate" in actors
    assert "is HALTED in book sim" in driver.find_element(By.ID, "agent-notice").text
    screenshot(driver, "agent-halted")
    # resume is offered now, and asks before acting too; dismissing it changes nothing
    driver.find_element(By.ID, "resume").click()
    wait(driver, lambda d: d.switch_to.alert, what="the confirmation").dismiss()
    with session_scope(api.url) as s:
        assert s.get(RiskStateRecord, ("alpha", "sim")).trading_state == "HALTED"


def test_without_operate_scope_there_are_no_controls_and_forged_posts_are_refused(
        site: tuple[Api, str], driver: Any) -> None:
    api, base = site
    sign_in(driver, base, api.tokens["read"], "/ui/agents/alpha?book=sim")
    assert driver.find_elements(By.ID, "state")
    assert not driver.find_elements(By.ID, "controls") and not driver.find_elements(By.ID, "halt")
    read_cookie = driver.get_cookie("okxlab_session")
    assert read_cookie["httpOnly"] and read_cookie["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""  # scripts cannot read the token

    def post(cookie: str | None, csrf: str | None = None, path: str = "/ui/agents/alpha/halt") -> httpx.Response:
        headers = {"X-CSRF-Token": csrf} if csrf else {}
        cookies = {"okxlab_session": cookie} if cookie else {}
        return httpx.post(f"{base}{path}", data={"book": "sim"}, headers=headers, cookies=cookies)

    assert post(None).status_code == 401
    assert post(read_cookie["value"]).status_code == 403
    operate = api.tokens["operate"]
    # an operate cookie without the page's CSRF token: what a form on another site could send
    forged = post(operate)
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert post(operate, csrf="0" * 64).status_code == 403
    assert post(operate, path="/ui/risk/pause").status_code == 403
    # the JSON API never takes the cookie at all
    assert httpx.post(f"{base}/agents/alpha/halt", json={"reason": "x", "book": "sim"},
                      cookies={"okxlab_session": operate}).status_code == 401
    with session_scope(api.url) as s:
        state = s.get(RiskStateRecord, ("alpha", "sim"))
        assert state is None or state.trading_state == "ACTIVE"
        assert not s.scalars(select(AuditEvent).where(AuditEvent.kind == "risk.paused")).all()


def test_every_page_renders_and_links_runs(site: tuple[Api, str], driver: Any) -> None:
    api, base = site
    with session_scope(api.url) as s:
        run_id = s.scalars(select(Run.id).where(Run.agent == "alpha").order_by(Run.scheduled_for)).first()
    driver.get(f"{base}/ui/pipeline")  # not signed in, not public: sent to sign in, and back afterwards
    assert "/ui/signin" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(api.tokens["operate"])
    driver.find_element(By.ID, "signin").click()
    wait(driver, lambda d: d.current_url.endswith("/ui/pipeline"), what="the return to the pipeline page")
    latency = driver.find_element(By.ID, "latency").text
    assert "plan" in latency and "order" in latency
    screenshot(driver, "pipeline")
    driver.get(f"{base}/ui/runs/{run_id}")
    assert driver.find_element(By.ID, "run-status").text == api.get(f"/runs/{run_id}").json()["run"]["status"]
    assert "snapshot" in driver.find_element(By.ID, "stages").text
    screenshot(driver, "run")
    driver.get(f"{base}/ui/market?book=sim")
    wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "[data-chart=market]").get_attribute("data-loaded"),
         what="the market chart")
    assert driver.find_element(By.CSS_SELECTOR, "[data-chart=market]").get_attribute("data-points") == "0"
    assert "No candles recorded for BTC-USDT-SWAP" in driver.find_element(By.CSS_SELECTOR, "[data-empty]").text
    screenshot(driver, "market-empty")
    driver.get(f"{base}/ui/replays")
    assert driver.find_element(By.ID, "replay-form")  # operate scope: the form to start one
    screenshot(driver, "replays")
    driver.get(f"{base}/ui/reports")
    screenshot(driver, "reports")
    driver.get(f"{base}/ui/agents/nobody")
    assert "unknown agent 'nobody'" in driver.find_element(By.ID, "error").text
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "/ui/agents/nobody" not in e["message"]]
    assert not errors, errors


def test_pages_left_behind_close_their_event_streams(site: tuple[Api, str], driver: Any) -> None:
    # Pages kept in the back/forward cache held their streams open: after six, the browser had no connection
    # left for this host and the next page never loaded.
    api, base = site
    sign_in(driver, base, api.tokens["read"], "/ui/replays")
    hub = api.app.state.hub
    driver.set_page_load_timeout(10)
    try:
        for n in range(9):
            driver.get(f"{base}/ui/{'replays' if n % 2 else 'reports'}?n={n}")
            live(driver)
            assert driver.find_element(By.TAG_NAME, "h1").text in ("Replays", "Reports")
        driver.back()
        live(driver)  # a page back from the cache listens again
        wait(driver, lambda d: len(hub._subscribers) <= 2, what="the streams of pages left to close")
    finally:
        driver.set_page_load_timeout(30)
