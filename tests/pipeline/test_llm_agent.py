"""An LLM agent through the whole pipeline: the real openai SDK against a local OpenAI-compatible server."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from okxlab.cli.main import main
from okxlab.db import models as m
from tests.conftest import REDIS_URL
from tests.support.llm_server import LlmServer, answer
from tests.support.models import CANARY_KEY, KEY_ENV, llm_agent_config, trader
from tests.support.pipeline import running_pipeline

START = datetime(2022, 11, 1, tzinfo=UTC)


def _all_text(session) -> str:  # noqa: ANN001
    """Every row of every table, as text."""
    out = []
    for table in m.Base.metadata.sorted_tables:
        for row in session.execute(text(f'SELECT * FROM "{table.name}"')):
            out.append(repr(tuple(row)))
    return "\n".join(out)


def test_an_llm_agent_trades_through_the_pipeline_and_its_key_is_nowhere(
        pg_url: str, redis_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY_KEY)
    caplog.set_level(logging.DEBUG)
    with LlmServer(responder=trader) as llm, \
            running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, llm_agent_config(llm.base_url)) as p:
        result = p.replay(["scripted"], START, START + timedelta(hours=4 * 7), offline_planners=False)
        assert result.statuses == {"completed": 8}
        with p.env.sessions() as s:
            plans = s.scalars(select(m.PlanRecord)).all()
            calls = s.scalars(select(m.LlmCallRecord)).all()
            orders = s.scalars(select(m.Order)).all()
            everything = _all_text(s)
            run_ids = [r.id for r in s.scalars(select(m.Run).order_by(m.Run.scheduled_for))]
        assert {pl.planner for pl in plans} == {"llm:openai_compatible/test-model"}
        assert len(calls) == 8 and all(c.tokens_in == 120 and c.tokens_out == 40 and c.prompt_sha256 for c in calls)
        assert [o.purpose for o in orders] == ["open", "close", "open", "close"]  # invocations 0/2 and 4/6
        # the key went to the model in the Authorization header, and nowhere else
        assert {r.authorization for r in llm.chat_requests} == {f"Bearer {CANARY_KEY}"}
        assert all(CANARY_KEY not in r.text for r in llm.chat_requests)
        shown = CliRunner().invoke(main, ["runs", "show", run_ids[0]], env={"OKXLAB_DATABASE_URL": pg_url})
        shown_json = CliRunner().invoke(main, ["runs", "show", run_ids[0], "--json", "--full"],
                                        env={"OKXLAB_DATABASE_URL": pg_url})
    assert "llm plan: openai_compatible/test-model tokens 120→40" in shown.output
    first_call = json.loads(shown_json.output)["llm_calls"][0]
    assert "## Market" in first_call["prompt"]  # the exact prompt is kept, with its hash
    assert hashlib.sha256(first_call["prompt"].encode()).hexdigest() == first_call["prompt_sha256"]
    for where, blob in (("database", everything), ("runs show", shown.output + shown_json.output),
                        ("logs", caplog.text)):
        assert CANARY_KEY not in blob, f"the API key leaked into the {where}"
        assert CANARY_KEY[10:24] not in blob, f"part of the API key leaked into the {where}"


def test_garbage_twice_ends_invalid_plan_and_trades_nothing(pg_url: str, redis_prefix: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY_KEY)
    with LlmServer() as llm, \
            running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, llm_agent_config(llm.base_url)) as p:
        llm.script(answer("I think BTC goes up!!"), answer("{'decisions': [oops"))
        result = p.replay(["scripted"], START, START, offline_planners=False)
        assert result.statuses == {"invalid_plan": 1}
        with p.env.sessions() as s:
            run = s.scalars(select(m.Run)).one()
            state = s.get(m.RiskStateRecord, ("scripted", f"replay:{result.replay_id}"))
            calls = s.scalars(select(m.LlmCallRecord).order_by(m.LlmCallRecord.seq)).all()
        assert run.reason.startswith("invalid_plan:")
        assert [c.purpose for c in calls] == ["plan", "repair"]
        assert state.consecutive_invalid_plans == 1
        assert p.sim_orders(f"replay-{result.replay_id}") == []
