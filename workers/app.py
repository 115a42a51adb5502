"""The Celery application, configured from celeryconfig.py."""

from __future__ import annotations

import logging

from celery import Celery
from celery.signals import worker_process_init, worker_ready

app = Celery("okxlab")
app.config_from_object("celeryconfig")

log = logging.getLogger("okxlab.worker")


@worker_process_init.connect
def _fresh_connections(**_kwargs) -> None:  # noqa: ANN003
    # Database connections must not cross a fork.
    from okxlab.db.session import dispose_engines
    from okxlab.pipeline.env import reset_default_env

    dispose_engines()
    reset_default_env()


@worker_ready.connect
def _check_agents(**_kwargs) -> None:  # noqa: ANN003
    """A missing API key or a broken strategy is reported once, clearly, when the worker starts."""
    from okxlab.errors import UserError
    from okxlab.pipeline.env import default_env

    try:
        env = default_env()
    except UserError as exc:
        log.error("okxlab: %s", exc)
        return
    for agent in env.config.agents:
        problem = env.planners.check(agent)
        if problem:
            log.error("okxlab: agent %s cannot plan: %s (its runs will be skipped with this reason)", agent.name, problem)
