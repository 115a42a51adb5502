"""Hostile model output: a corpus of 111 bad answers through the whole pipeline, and not one order.

Twelve LLM agents (the real openai SDK against a local OpenAI-compatible server) run ten ticks of a replay;
each run's model answer (and its answer to the repair request) is one entry of tests/reliability/
hostile_corpus.py, chosen by the agent's model name and the run's invocation number in the prompt. The
agents' invalid-plan and rejection halts are off, so every answer is judged on its own. Afterwards no order
exists, in okxlab or at the simulator, and every run ended as its entry says, with a recorded reason naming
what was wrong.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from okxlab.db import models as m
from tests.conftest import REDIS_URL
from tests.reliability.harness import Results
from tests.reliability.hostile_corpus import CORPUS, SYMBOL, Bad
from tests.support.llm_server import LlmServer, Reply, Request, answer
from tests.support.models import CANARY_KEY, KEY_ENV
from tests.support.pipeline import running_pipeline

START = datetime(2022, 11, 1, tzinfo=UTC)
AGENTS, TICKS = 12, 10  # 120 runs: the 111 entries, and the first 9 once more


def entry_for(agent_index: int, invocation: int) -> Bad:
    return CORPUS[(agent_index * TICKS + invocation) % len(CORPUS)]


def hostile_model(request: Request) -> Reply:
    k = int((request.model or "").rsplit("-", 1)[1])
    prompt = next(msg["content"] for msg in request.messages if msg.get("role") == "user")
    invocation = int(re.search(r"invocation: (\d+)", prompt).group(1))
    last = float(re.search(r"last: ([0-9.]+)", prompt.split(f"### {SYMBOL}", 1)[1]).group(1))
    made = entry_for(k, invocation).make(last)
    return made if isinstance(made, Reply) else answer(made)


def config(base_url: str) -> str:
    return "[pipeline]\ncandles = 60\n" + "".join(f"""
[[agents]]
name = "hostile-{k}"
planner = "llm"
symbols = ["{SYMBOL}"]
[agents.llm]
provider = "openai_compatible"
base_url = "{base_url}"
model = "hostile-{k}"
api_key_env = "{KEY_ENV}"
timeout = 30
max_retries = 0
[agents.risk]
max_consecutive_invalid_plans = 0
max_consecutive_rejections = 0
""" for k in range(AGENTS))


def test_hostile_model_answers_never_trade_and_every_run_says_why(pg_url: str, redis_prefix: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  results: Results) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY_KEY)
    with LlmServer(responder=hostile_model) as llm, \
            running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config(llm.base_url)) as p:
        replay = p.replay([f"hostile-{k}" for k in range(AGENTS)], START, START + timedelta(hours=4 * (TICKS - 1)),
                          offline_planners=False, tick_timeout=120)
        with p.env.sessions() as s:
            runs = s.scalars(select(m.Run).where(m.Run.replay_id == replay.replay_id)).all()
            orders = s.scalar(select(func.count()).select_from(m.Order))
            calls = s.scalar(select(func.count()).select_from(m.LlmCallRecord))
        at_exchange = p.sim.admin.orders(f"replay-{replay.replay_id}")
        asked = len(llm.chat_requests)
    tick = {START + timedelta(hours=4 * t): t for t in range(TICKS)}
    outcomes, wrong = [], []
    for run in runs:
        entry = entry_for(int(run.agent.rsplit("-", 1)[1]), tick[run.scheduled_for])
        ok = (run.status == entry.status and entry.reason in (run.reason or "")
              and not (run.reason or "").startswith("invalid_plan: invalid_plan"))  # said once, clearly
        outcomes.append((entry, run, ok))
        if not ok:
            wrong.append(f"{entry.family} / {entry.label}: expected {entry.status} ({entry.reason}), "
                         f"got {run.status}: {(run.reason or '')[:200]}")
    families = Counter(e.family for e, _, _ in outcomes)
    results.record(
        "hostile_model", corpus=len(CORPUS), runs=len(runs), llm_requests=asked, llm_calls_recorded=calls,
        orders=orders, orders_at_exchange=len(at_exchange["orders"]) + len(at_exchange["rejections"]),
        ended_as_expected=sum(ok for _, _, ok in outcomes),
        statuses=dict(Counter(r.status for _, r, _ in outcomes)),
        families={f: {"runs": n, "as_expected": sum(ok for e, _, ok in outcomes if e.family == f)}
                  for f, n in sorted(families.items())},
        examples={e.label: r.reason[:160] for e, r, _ in outcomes[:: max(1, len(outcomes) // 12)]},
    )
    assert len(runs) == AGENTS * TICKS and len({e.label for e, _, _ in outcomes}) == len(CORPUS)
    assert orders == 0 and at_exchange["orders"] == [] and at_exchange["rejections"] == []
    assert wrong == [], "\n".join(wrong)
