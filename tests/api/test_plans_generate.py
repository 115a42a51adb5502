"""POST /plans/generate: a dry run of an agent now, up to its risk verdict, against the simulator over HTTP and
real Postgres, with no worker. It reads the trading book and changes nothing there; the simulator receives no
order; the verdict is the one a trading run would get (the global pause, a halt)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from okxlab.agents import sync_agents
from okxlab.config import load_config
from okxlab.db import models as m
from okxlab.db.session import session_factory, session_scope
from okxlab.risk.switches import set_pause, state_row
from okxlab.simulator.server import SimServer
from okxlab.simulator.simulator import DEFAULT_WORLD, Simulator
from tests.api.conftest import CONFIG, make_tokens
from tests.support.llm_server import LlmServer, answer, error

HOLDER = """
[[agents]]
name = "holder"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
"""
MODEL = """
[[agents]]
name = "model"
planner = "llm"
symbols = ["BTC-USDT-SWAP"]
[agents.llm]
provider = "openai_compatible"
base_url = "{url}"
model = "test-model"
api_key_env = "OKXLAB_TEST_DRY_KEY"
max_retries = 0
"""
BOOK_TABLES = (m.EquitySnapshot, m.Order, m.Fill, m.PositionRecord)


@dataclass
class Dry:
    client: TestClient
    sim: SimServer
    url: str
    tokens: dict[str, str]

    def generate(self, agent: str, who: str = "operate") -> Any:
        return self.client.post("/plans/generate", json={"agent": agent}, headers={"X-API-Token": self.tokens[who]})

    def sim_orders(self) -> dict[str, Any]:
        return self.sim.admin.orders(DEFAULT_WORLD)

    def book_state(self, agent: str, book: str = "sim") -> dict[str, Any]:
        """Everything of `agent` in `book` a dry run must not change: its risk state row (epoch and turn
        included) and how many equity, order, fill and position rows it has."""
        with session_scope(self.url) as s:
            row = s.get(m.RiskStateRecord, (agent, book))
            state = ({c.key: getattr(row, c.key) for c in m.RiskStateRecord.__table__.columns} if row else None)
            counts = {t.__tablename__: s.scalar(select(func.count()).select_from(t).where(t.agent == agent,
                                                                                        t.book == book))
                      for t in BOOK_TABLES}
        return {"state": state, "counts": counts}


@pytest.fixture
def llm() -> Iterator[LlmServer]:
    with LlmServer(responder=lambda _: answer("I would buy some bitcoin today.")) as server:
        yield server


@pytest.fixture
def dry(api_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, llm: LlmServer) -> Iterator[Dry]:
    from okxlab.api.app import create_app

    config = tmp_path / "okxlab-dry.toml"
    config.write_text(CONFIG + HOLDER + MODEL.format(url=llm.base_url))
    monkeypatch.setenv("OKXLAB_CONFIG", str(config))
    monkeypatch.setenv("OKXLAB_TEST_DRY_KEY", "sk-test")
    with SimServer(Simulator(agents=load_config())).start() as sim:
        monkeypatch.setenv("OKXLAB_SIM_URL", sim.url)
        with TestClient(create_app(public=False), raise_server_exceptions=False) as client:
            yield Dry(client, sim, api_env, make_tokens(api_env))


def _opening(body: dict[str, Any]) -> dict[str, Any]:
    [verdict] = [v for v in body["verdicts"] if v["action"] in ("open_long", "open_short")]
    return verdict


def test_a_dry_run_plans_and_judges_on_the_trading_book_and_changes_nothing(dry: Dry) -> None:
    before = {a: dry.book_state(a) for a in ("holder", "alpha")}
    r = dry.generate("holder")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["book"] == "dry:sim" and body["trading_book"] == "sim" and body["sent"] is False
    assert body["status"] == "completed" and "dry run" in body["reason"]
    assert body["plan"]["planner"].startswith("strategy:buy_and_hold") or "buy_and_hold" in body["plan"]["planner"]
    assert body["plan"]["decisions"] and body["validation"]["valid"] is True
    verdict = _opening(body)  # buy and hold opens on an agent's first run in its book
    assert verdict["outcome"] in ("accept", "amend") and verdict["order"]["contracts"] > 0
    assert verdict["would_send"] is True and verdict["reason"] is None
    assert body["risk"]["global_pause"] is False and body["risk"]["trading_state"] == "ACTIVE"
    assert body["turn_free"] is True
    assert [s["status"] for s in body["stages"]] == ["done"] * 6

    # nothing went to the exchange, and nothing changed in the trading book (no state row was even created)
    orders = dry.sim_orders()
    assert orders["orders"] == [] and orders["algos"] == []
    assert {a: dry.book_state(a) for a in ("holder", "alpha")} == before
    assert dry.book_state("holder", "dry:sim")["state"] is None  # no turn taken in the dry book either

    # auditable: the whole trail, the order stage never reached, no order rows
    trail = dry.client.get(f"/runs/{body['run_id']}", headers={"X-API-Token": dry.tokens["read"]}).json()
    assert trail["run"]["book"] == "dry:sim"
    assert {s["stage"]: s["status"] for s in trail["stages"]}["order"] == "not_reached"
    assert trail["orders"] == [] and trail["verdicts"][verdict["index"]]["outcome"] == verdict["outcome"]
    assert trail["snapshot"]["account"]["equity"] > 0
    with session_scope(dry.url) as s:
        actors = [e.actor for e in s.scalars(select(m.AuditEvent).where(m.AuditEvent.kind == "plan.generate"))]
    assert actors == ["api:t-operate"]

    # a dry book is no account: the agent's books, the leaderboard's books and the agents list leave it out
    detail = dry.client.get("/agents/holder", headers={"X-API-Token": dry.tokens["read"]}).json()
    assert [b["book"] for b in detail["books"]] == ["sim"]
    listed = dry.client.get("/agents", headers={"X-API-Token": dry.tokens["read"]}).json()
    assert {a["book"] for a in listed} == {"sim"}
    board = dry.client.get("/leaderboard?book=dry:sim", headers={"X-API-Token": dry.tokens["read"]})
    assert board.status_code == 404


def test_the_account_is_judged_on_the_trading_books_history(dry: Dry) -> None:
    """The equity peak the drawdown rule measures from is the trading book's (not the empty dry book's): with
    a peak of 20,000 in book sim and 10,000 in the account now, the agent is past its drawdown limit, and the
    dry run's entry is refused for it, as a trading run's would be."""
    with session_scope(dry.url) as s:
        sync_agents(s, load_config())
        s.add(m.EquitySnapshot(agent="holder", book="sim", run_id=None, ts=datetime(2000, 1, 1, tzinfo=UTC),
                               cash=20_000.0, equity=20_000.0, unrealized_pnl=0.0, realized_pnl=0.0, fees=0.0))
    before = dry.book_state("holder")
    body = dry.generate("holder").json()
    assert body["risk"]["peak_equity"] == 20_000.0 and body["risk"]["equity"] < 20_000.0, body["risk"]
    verdict = _opening(body)
    assert verdict["outcome"] == "reject" and "DRAWDOWN_HALT" in verdict["reasons"] and not verdict["would_send"]
    # a trading run would halt the agent here; the dry run only says so, and the book keeps its state
    assert dry.book_state("holder") == before and before["state"] is None
    assert dry.sim_orders()["orders"] == []


def test_a_model_that_answers_no_plan_ends_the_dry_run_as_the_pipeline_would(dry: Dry, llm: LlmServer) -> None:
    body = dry.generate("model").json()
    assert body["status"] == "invalid_plan" and body["reason"].startswith("invalid_plan"), body
    assert body["plan"]["raw"] == "I would buy some bitcoin today."  # the model's text, as it answered
    assert body["validation"]["valid"] is False and body["verdicts"] == [] and body["llm_calls"]
    assert [s["status"] for s in body["stages"]][-1] == "not_reached"  # risk
    # the trading book's invalid-plan counter is the real runs' alone
    assert dry.book_state("model")["state"] is None

    llm.responder = lambda _: error(500)
    # A recorded answer to the same prompt is reused, as in the pipeline, and the market may not have moved since
    # the first dry run: forget the recorded answers so the model is asked again.
    with session_scope(dry.url) as s:
        s.execute(delete(m.LlmCacheEntry))
    body = dry.generate("model").json()
    assert body["status"] == "failed" and "llm_error" in body["reason"], body
    assert body["plan"]["error"].startswith("llm_error") and body["verdicts"] == []
    assert dry.sim_orders()["orders"] == []


def test_the_verdict_follows_the_global_pause_and_the_agent_state_of_the_trading_book(dry: Dry) -> None:
    sessions = session_factory(dry.url)
    with sessions.begin() as s:  # the agent has traded in its book: a state row with an epoch of its own
        sync_agents(s, load_config())
        row = state_row(s, "holder", "sim")
        row.trading_epoch, row.consecutive_invalid_plans = 7, 1
        set_pause(s, True, by="test", reason="maintenance")
    before = dry.book_state("holder")

    paused = dry.generate("holder").json()
    verdict = _opening(paused)
    # the risk engine rejects the entry, as the pipeline's risk stage would; the order would not be sent
    assert verdict["outcome"] == "reject" and "GLOBAL_PAUSE" in verdict["reasons"], verdict
    assert verdict["would_send"] is False and "GLOBAL_PAUSE" in verdict["reason"]
    assert paused["risk"]["global_pause"] is True and paused["status"] == "completed"
    assert dry.book_state("holder") == before

    with sessions.begin() as s:
        set_pause(s, False, by="test")
    r = dry.client.post("/agents/holder/halt", json={"reason": "looking"}, headers={"X-API-Token": dry.tokens["operate"]})
    assert r.status_code == 200, r.text
    before = dry.book_state("holder")
    halted = dry.generate("holder").json()
    verdict = _opening(halted)
    assert verdict["outcome"] == "reject" and "AGENT_HALTED" in verdict["reasons"] and not verdict["would_send"]
    assert halted["risk"]["trading_state"] == "HALTED"

    assert dry.book_state("holder") == before  # the epoch, the counters and the halt stay as they were
    assert before["state"]["trading_epoch"] == 7 and before["state"]["consecutive_invalid_plans"] == 1
    assert dry.sim_orders()["orders"] == []


def test_unknown_agent_scope_and_an_unreachable_exchange(api: Any) -> None:
    r = api.post("/plans/generate", json={"agent": "nobody"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert "nobody" in r.json()["error"]["message"]
    assert api.post("/plans/generate", "read", json={"agent": "alpha"}).status_code == 403
    assert api.post("/plans/generate", None, json={"agent": "alpha"}).status_code == 401

    r = api.post("/plans/generate", json={"agent": "alpha"})  # the config's simulator URL: nothing answers
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "exchange_unavailable" and "nothing was sent" in error["message"]
    with session_scope(api.url) as s:
        [run] = s.scalars(select(m.Run).where(m.Run.book == "dry:sim")).all()
        assert run.status == "failed" and run.reason.startswith("snapshot failed")
        assert s.get(m.RiskStateRecord, ("alpha", "dry:sim")) is None


def test_the_command_is_the_same_dry_run(dry: Dry, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from okxlab.cli.main import main

    r = CliRunner().invoke(main, ["plans", "generate", "holder", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["book"] == "dry:sim" and body["status"] == "completed" and _opening(body)["would_send"] is True
    text = CliRunner().invoke(main, ["plans", "generate", "holder"], catch_exceptions=False)
    assert text.exit_code == 0 and "open_long" in text.stdout and "nothing was sent" in text.stdout
    assert dry.sim_orders()["orders"] == [] and dry.book_state("holder")["state"] is None

    monkeypatch.setenv("OKXLAB_SIM_URL", "http://127.0.0.1:9")
    down = CliRunner().invoke(main, ["plans", "generate", "holder"], catch_exceptions=False)
    assert down.exit_code == 2 and down.stderr.startswith("okxlab: error: the exchange of book sim did not answer")
