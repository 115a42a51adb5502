"""The Celery application, configured from celeryconfig.py."""

from __future__ import annotations

import logging
import os
import sys

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready

AUTH_FLAGS = ("--basic-auth", "--basic_auth", "--auth")


def require_flower_auth(argv: list[str], environ: dict[str, str]) -> str | None:
    """Flower shows every task's arguments and can control the workers: never serve it unauthenticated.
    Returns the reason to refuse, or None."""
    if "flower" not in argv[1:]:
        return None
    if environ.get("FLOWER_BASIC_AUTH") or environ.get("FLOWER_AUTH") or any(a.startswith(AUTH_FLAGS) for a in argv):
        return None
    return ("Flower needs authentication: set FLOWER_BASIC_AUTH=user:password (or pass --basic-auth=user:password, "
            "or --auth for OAuth) and start it again")


_refusal = require_flower_auth(sys.argv, dict(os.environ))
if _refusal:
    sys.stderr.write(f"okxlab: error: {_refusal}\n")
    sys.exit(2)

app = Celery("okxlab")
app.config_from_object("celeryconfig")

log = logging.getLogger("okxlab.worker")


@worker_init.connect
def _refuse_unreadable_settings(**_kwargs) -> None:  # noqa: ANN003
    """A worker that cannot read its config file (or its order settings) could run no stage: it refuses to
    start, in one line, rather than run and fail every task it is given."""
    from okxlab.config import load_config
    from okxlab.errors import UserError
    from okxlab.execution.orders import claim_ttl

    try:
        load_config()
        claim_ttl()
    except UserError as exc:
        raise SystemExit(f"okxlab: error: {exc}") from None  # not an Exception: celery's signal lets it through


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
