"""What the dispatch and reconcile tasks do, as plain functions that take a way to start a run."""

from __future__ import annotations

import logging
from collections.abc import Callable

from okxlab.db.models import Run
from okxlab.db.ops import audit
from okxlab.pipeline.dispatch import dispatch_due
from okxlab.pipeline.env import StageEnv, default_env
from okxlab.pipeline.recovery import find_stuck

log = logging.getLogger(__name__)

StartRun = Callable[..., None]


def skip_unready(env: StageEnv, run_ids: list[str]) -> list[str]:
    """End runs of agents that cannot plan (a missing API key, a broken strategy) with that reason.
    Returns the runs that may start."""
    ready = []
    with env.sessions.begin() as s:
        for run_id in run_ids:
            run = s.get(Run, run_id)
            problem = env.planners.check(env.config.agent(run.agent)) if run.replay_id is None else None
            if problem:
                run.status, run.reason = "skipped", f"skipped: agent not ready — {problem}"
                run.finished_at = run.updated_at = env.now()
                audit(s, "run.skipped", run.reason, agent=run.agent, run_id=run.id)
            else:
                ready.append(run_id)
    return ready


def dispatch_and_start(start: StartRun, env: StageEnv | None = None) -> int:
    env = env or default_env()
    with env.sessions.begin() as s:
        new = dispatch_due(s, env.config, env.now())
    ready = skip_unready(env, new)
    for run_id in ready:
        start(run_id)
    return len(ready)


def resume_stuck(start: StartRun, env: StageEnv | None = None) -> int:
    env = env or default_env()
    with env.sessions.begin() as s:
        stuck = find_stuck(s, env.now())
    for run_id, stage in stuck:
        log.warning("run %s stuck in %s: driving it on", run_id, stage)
        start(run_id, stage)
    return len(stuck)
