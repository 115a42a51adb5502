"""Live pushes end to end: a run dispatched through the real broker to a real worker buys on the simulator, the
fill is booked, Postgres notifies, and the open agent page shows the fill without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from sqlalchemy import select

from okxlab.db.models import Fill
from okxlab.db.session import session_factory
from okxlab.replay.range import wait_for
from okxlab.service import tokens
from tests.conftest import REDIS_URL
from tests.support.browser import live, screenshot, serving, sign_in, wait
from tests.support.pipeline import running_pipeline

CONFIG = """
[[agents]]
name = "holder"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
"""


def test_a_fill_on_the_simulator_appears_in_the_open_page(pg_url: str, redis_prefix: str, tmp_path: Path,
                                                          driver: Any) -> None:
    from okxlab.api.app import create_app

    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        token = tokens.create(session_factory(pg_url), "watcher", "operate", actor="test")
        with serving(create_app(public=False)) as base:
            sign_in(driver, base, token, "/ui/agents/holder?book=sim")
            live(driver)
            assert not driver.find_elements(By.CSS_SELECTOR, "#fills [data-fill]")
            driver.execute_script("window.__notReloaded = true;")

            r = httpx.post(f"{base}/plans/execute", json={"agent": "holder"},
                           headers={"X-API-Token": token, "Idempotency-Key": "live-fill"})
            assert r.status_code == 202, r.text
            run_id = r.json()["run_id"]
            assert wait_for(p.env, [run_id], timeout=60)[run_id] == "completed"
            with p.env.sessions() as s:
                fill_ids = [str(i) for i in s.scalars(select(Fill.id).where(Fill.agent == "holder", Fill.book == "sim"))]
            assert fill_ids, "buy-and-hold's first run should have bought"

            shown = wait(driver, lambda d: d.execute_script(  # ids read in one script (parts are swapped live)
                "return [...document.querySelectorAll('#fills [data-fill]')].map(r => r.dataset.fill)"), timeout=10,
                what="the fill in the page")
            assert sorted(shown) == sorted(fill_ids)
            assert driver.execute_script("return window.__notReloaded === true")  # pushed, not reloaded
            # the position, the decision feed and the state followed the same push
            # read in one script: a part swapped in between finding it and reading it would be a stale element
            wait(driver, lambda d: "BTC-USDT-SWAP" in d.execute_script(
                "return document.getElementById('positions').textContent"), what="the position")
            wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, f"#feed [data-run='{run_id}']"), what="the run")
            screenshot(driver, "agent-live-fill")
            # the market page marks the entry on the candles the run saw
            driver.get(f"{base}/ui/market?book=sim&symbol=BTC-USDT-SWAP")
            chart = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "[data-chart=market][data-loaded]"),
                         what="the market chart")
            assert int(chart.get_attribute("data-points")) > 10
            assert not driver.find_element(By.CSS_SELECTOR, "[data-empty]").is_displayed()
            screenshot(driver, "market")
