"""Which planner an agent gets: its strategy, its model, or (offline) its model's rule-based stand-in.

Offline planners exist so the quick start and offline replays run with no API keys. They are never used
silently: the planner's name says `offline:` and the demo says so plainly.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from okxlab.config import AgentConfig, Config
from okxlab.errors import ConfigError
from okxlab.planning.base import PlanContext, Planner, PlanResult
from okxlab.planning.cache import ResponseCache
from okxlab.planning.llm import LlmPlanner
from okxlab.planning.providers import parse_llm_settings, parse_prices
from okxlab.planning.stored_cache import DatabaseResponseCache
from okxlab.secrets import configured_secrets
from okxlab.strategies.load import load_strategy
from okxlab.strategies.planner import StrategyPlanner


def llm_planner(agent: AgentConfig, config: Config, cache: ResponseCache | None = None) -> LlmPlanner:
    """The planner for an `llm` agent of the config. Raises ConfigError (one line) for bad settings or a missing key.

    Built here, not in planning/, so the planning package needs neither the config nor the secrets module."""
    settings = parse_llm_settings(agent.name, agent.llm)
    prices = parse_prices(config.llm.get("prices") if isinstance(config.llm, Mapping) else None)
    return LlmPlanner(agent.name, settings, prices=prices, cache=cache, secrets=configured_secrets(config))


class OfflineStandIn:
    """An LLM agent's rule-based stand-in, labelled as such in every record it produces."""

    def __init__(self, agent: AgentConfig, inner: StrategyPlanner):
        self.inner = inner
        self.name = f"offline:{inner.strategy.name} (stand-in for {agent.llm.get('provider', 'llm')})"

    def plan(self, ctx: PlanContext) -> PlanResult:
        result = self.inner.plan(ctx)
        result.planner = self.name
        return result


class PlannerProvider:
    """Builds each agent's planner once per process (planners are thread-safe and hold no run state)."""

    def __init__(self, config: Config, sessions: sessionmaker[Session] | None = None):
        self.config = config
        self.cache = DatabaseResponseCache(sessions) if sessions is not None else None
        self._planners: dict[tuple[str, bool], Planner] = {}
        self._lock = threading.Lock()
        self.base_dir = Path(config.path).parent if not config.path.startswith("<") else None

    def for_agent(self, agent: AgentConfig, *, offline: bool = False) -> Planner:
        key = (agent.name, offline and agent.planner == "llm")
        with self._lock:
            planner = self._planners.get(key)
            if planner is None:
                planner = self._build(agent, offline)
                self._planners[key] = planner
            return planner

    def _build(self, agent: AgentConfig, offline: bool) -> Planner:
        if agent.planner == "strategy":
            return StrategyPlanner(agent, load_strategy(agent.strategy or "", agent.params, self.base_dir))
        if offline:
            if not agent.offline_fallback:
                raise ConfigError(f"agent {agent.name}: offline planners were asked for but it has no offline_fallback "
                                  "strategy in the config")
            return OfflineStandIn(agent, StrategyPlanner(agent, load_strategy(agent.offline_fallback, {}, self.base_dir)))
        return llm_planner(agent, self.config, cache=self.cache)

    def check(self, agent: AgentConfig, *, offline: bool = False) -> str | None:
        """None if the agent can plan; otherwise the one-line reason (missing key, bad strategy)."""
        try:
            self.for_agent(agent, offline=offline)
        except ConfigError as exc:
            return str(exc)
        return None
