"""The agents table mirrors the config file: names, planners and (non-secret) settings.

Trading state, counters and history stay in the database across config edits; an agent removed from the
config keeps its rows (its history is still audited) but is no longer dispatched.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.config import AgentConfig, Config
from okxlab.db.models import Agent
from okxlab.db.ops import audit


def agent_settings(agent: AgentConfig) -> dict[str, Any]:
    """What the database keeps of an agent's config: never credentials, only the names of env vars."""
    return {
        "symbols": list(agent.symbols),
        "bar": agent.bar,
        "planner": agent.planner,
        "strategy": agent.strategy,
        "params": agent.params,
        "offline_fallback": agent.offline_fallback,
        "llm": {k: v for k, v in agent.llm.items() if k in
                ("provider", "model", "base_url", "region", "api_key_env", "temperature", "max_tokens", "timeout",
                  "max_retries", "json_mode")},
        "mode": agent.mode,
        "limits": agent.limits.to_json(),
    }


def sync_agents(session: Session, config: Config) -> tuple[list[str], list[str]]:
    """Register the configured agents; returns the names (added, updated)."""
    existing = {a.name: a for a in session.scalars(select(Agent))}
    added, updated = [], []
    for cfg in config.agents:
        settings = agent_settings(cfg)
        row = existing.get(cfg.name)
        if row is None:
            session.add(Agent(name=cfg.name, planner=cfg.planner, description=cfg.description, settings=settings,
                              initial_equity=cfg.initial_equity))
            audit(session, "agent_added", f"agent {cfg.name} added from {config.path}", agent=cfg.name)
            added.append(cfg.name)
        elif row.settings != settings or row.description != cfg.description or row.planner != cfg.planner:
            row.settings, row.description, row.planner = settings, cfg.description, cfg.planner
            updated.append(cfg.name)
    session.flush()
    return added, updated
