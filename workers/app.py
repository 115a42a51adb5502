"""The Celery application, configured from celeryconfig.py."""

from __future__ import annotations

import logging
import os
import sys

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready


def refuse_unsafe_flower(argv: list[str], environ: dict[str, str]) -> str | None:
    """When this process is Flower: why it must not start (no usable authentication, an empty address), or None.
    Also makes 127.0.0.1 Flower's default address and puts /metrics behind auth (workers/flower_guard.py)."""
    from workers.flower_guard import flower_args, refuse_reason

    args = flower_args(argv)
    return None if args is None else refuse_reason(args, environ)


# Flower has no hook of its own: the check runs when `celery -A workers flower` imports this app, before Flower
# reads its options or binds its port.
_refusal = refuse_unsafe_flower(sys.argv, dict(os.environ))
if _refusal:
    sys.stderr.write(f"okxlab: error: {_refusal}\n")
    sys.exit(2)

app = Celery("okxlab")
app.config_from_object("celeryconfig")

log = logging.getLogger("okxlab.worker")


@worker_init.connect
def _refuse_unreadable_settings(**_kwargs) -> None:  # noqa: ANN003
    """A worker that cannot read its config file (or its environment settings) could run no stage: it refuses
    to start, in one line, rather than run and fail every task it is given."""
    from okxlab import settings
    from okxlab.config import load_config
    from okxlab.errors import UserError

    try:
        settings.current()
        load_config()
    except UserError as exc:
        raise SystemExit(f"okxlab: error: {exc}") from None  # not an Exception: celery's signal lets it through


@worker_init.connect
def _refuse_live_orders_without_the_switch(sender=None, **_kwargs) -> None:  # noqa: ANN001, ANN003
    """A worker that takes the order queue while an agent is in live mode and live trading is not switched on
    could only fail every order stage it is given: it refuses to start, in one line. Workers without the
    order queue (snapshot, plan, ...) only read market data and start as usual."""
    if sender is None or "order" not in _consumed_queues(sender):
        return
    from okxlab.config import live_trading_enabled, load_config
    from okxlab.errors import UserError

    if live_trading_enabled():
        return
    try:
        config = load_config()
        live = [a.name for a in config.agents if config.exchange_mode(a) == "live"]
    except UserError as exc:
        raise SystemExit(f"okxlab: error: {exc}") from None
    if live:
        raise SystemExit(
            f"okxlab: error: this worker consumes the order queue and {_agents_are(live)} in live mode, but live "
            "trading is disabled: set LIVE_TRADING_ENABLED=true to trade live, or OKX_MODE=demo for OKX demo trading")


def _agents_are(names: list[str]) -> str:
    return f"agent {names[0]} is" if len(names) == 1 else f"agents {', '.join(names)} are"


def _consumed_queues(worker) -> set[str]:  # noqa: ANN001
    # At worker_init the queues are already selected (-Q, -X); with neither, the worker consumes every queue
    # in task_queues, the order queue included.
    return set(worker.app.amqp.queues.consume_from)


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
