"""Fixtures for the planner tests: a local OpenAI-compatible server, a fake key in the environment, planners."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from okxlab.planning.cache import MemoryResponseCache
from okxlab.planning.llm import LlmPlanner
from tests.planning.plan_data import FAKE_KEY, KEY_ENV, PRICES, settings_for
from tests.support.llm_server import LlmServer


@pytest.fixture
def llm_server() -> Iterator[LlmServer]:
    with LlmServer() as server:
        yield server


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    return FAKE_KEY


@pytest.fixture
def make_planner(llm_server: LlmServer, api_key: str) -> Callable[..., LlmPlanner]:
    def make(agent: str = "tester", *, cache: MemoryResponseCache | None = None, **overrides: Any) -> LlmPlanner:
        return LlmPlanner(agent, settings_for(llm_server, agent, **overrides), prices=PRICES, cache=cache)

    return make
