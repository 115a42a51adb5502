"""Plans on demand: a dry run of an agent now, up to its risk verdict (`generate`), and a trading run dispatched
to the workers, at most once per idempotency key (`execute`)."""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.agents import sync_agents
from okxlab.config import Config
from okxlab.db.models import AccountSnapshot, IdempotencyKey, Run, utcnow
from okxlab.db.ops import audit, insert_new
from okxlab.domain import STAGES, dry_book
from okxlab.errors import UserError
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.runner import skip_unready
from okxlab.pipeline.stages import Delivery, end_failed, execute_stage
from okxlab.review.trail import run_trail
from okxlab.risk.switches import switches_block
from okxlab.service.risk import Conflict

OPERATION = "plans.execute"
DRY_STAGES = STAGES[:STAGES.index("risk") + 1]  # a dry run ends at its verdicts


class ExchangeUnavailable(UserError):
    """The agent's exchange (or simulator) did not answer; nothing was sent (the API answers 503)."""
MAX_KEY = 200


def stage_env(config: Config, sessions: sessionmaker[Session]) -> StageEnv:
    """What the stages need, on the caller's database and config (exchange clients and planners load lazily)."""
    from okxlab.execution.exchange import ExchangeProvider
    from okxlab.pipeline.planners import PlannerProvider

    return StageEnv(config=config, sessions=sessions, exchanges=ExchangeProvider(config),
                    planners=PlannerProvider(config, sessions))


def execute(env: StageEnv, agent: str, *, key: str | None, actor: str, start: Callable[[str], None]) -> dict[str, Any]:
    """Create one run of `agent` in its configured book for now and send its stage chain.

    With a key, the key and the run are written in one transaction: a second request with the same key (even one
    racing the first: Postgres makes its insert wait for the first's commit) returns the first's run, starts
    nothing, and says `created: false`. A run written but not started (the process died between) is driven on by
    the reconciler, as any stuck run."""
    cfg = env.config.agent(agent)  # unknown agents are refused with the known ones
    if key is not None and not 0 < len(key) <= MAX_KEY:
        raise UserError(f"the Idempotency-Key header must be 1-{MAX_KEY} characters")
    book = env.config.exchange_mode(cfg)
    now = utcnow().replace(microsecond=0)
    # Keys are the caller's own: another token sending the same key makes its own run, not a reply with ours.
    key = hashlib.sha256(f"{actor}\n{key}".encode()).hexdigest() if key is not None else None
    tag = key[:16] if key else uuid.uuid4().hex[:16]
    with env.sessions.begin() as s:
        if key is not None:
            claimed = insert_new(s, IdempotencyKey, [{"key": key, "operation": OPERATION, "created_at": now,
                                                      "result": {}}], None, "key")
            if not claimed:
                return _earlier(s, key, agent)
        sync_agents(s, env.config)
        [run_id] = create_runs(s, f"api:{tag}", [(agent, book)], now, now=now)
        if key is not None:
            s.get(IdempotencyKey, key).result = {"run_id": run_id, "agent": agent, "book": book}
        audit(s, "run.requested", f"run {run_id} of {agent} [{book}] requested", agent=agent, run_id=run_id,
              actor=actor, data={"book": book})
    for ready in skip_unready(env, [run_id]):  # an agent that cannot plan ends the run with the reason
        start(ready)
    return {"run_id": run_id, "agent": agent, "book": book, "created": True}


def _earlier(s: Any, key: str, agent: str) -> dict[str, Any]:
    row = s.scalar(select(IdempotencyKey).where(IdempotencyKey.key == key))
    if row.operation != OPERATION or row.result.get("agent") != agent:
        raise Conflict(f"this Idempotency-Key was already used for {row.operation} of "
                       f"{row.result.get('agent') or 'another request'}; use a new key")
    return {**row.result, "created": False}


def generate(env: StageEnv, agent: str, *, actor: str) -> dict[str, Any]:
    """Run the stages up to the risk verdict for `agent` now, in this process, as a dry run: the same gather
    steps and decide functions as a trading run (the pipeline's stage runner drives them), on the market and
    account of the agent's trading book and judged on that book's risk state and switches, which it only reads.

    The run is recorded in the book `dry:<book>` (`runs show` shows it); its risk stage ends it, so it never
    reaches the order stage, takes no trading turn and changes nothing in the trading book. Raises NotFound for
    an unknown agent and ExchangeUnavailable when the exchange does not answer (the run ends `failed`)."""
    import ccxt

    cfg = env.config.agent(agent)  # unknown agents are refused with the known ones
    book = env.config.exchange_mode(cfg)
    now = utcnow().replace(microsecond=0)
    with env.sessions.begin() as s:
        sync_agents(s, env.config)
        [run_id] = create_runs(s, f"dry:{uuid.uuid4().hex[:16]}", [(agent, dry_book(book))], now, now=now)
        audit(s, "plan.generate", f"dry run {run_id} of {agent} on book {book} requested", agent=agent,
              run_id=run_id, actor=actor, data={"book": dry_book(book), "trading_book": book})
    delivery = Delivery(worker=f"api@{socket.gethostname()}")
    for ready in skip_unready(env, [run_id]):  # an agent that cannot plan ends the run with the reason
        for stage in DRY_STAGES:
            try:
                if not execute_stage(stage, ready, env, delivery):
                    break
            except Exception as exc:  # transient errors are left to retries in the pipeline; here, none come
                end_failed(env, stage, ready, f"{type(exc).__name__}: {exc}".strip())
                if isinstance(exc, ccxt.NetworkError):
                    raise ExchangeUnavailable(
                        f"the exchange of book {book} did not answer ({type(exc).__name__}); nothing was sent; "
                        f"dry run {ready} is recorded as failed") from exc
                raise
    with env.sessions() as s:
        return dry_result(s, run_id, book)


def dry_result(s: Session, run_id: str, book: str) -> dict[str, Any]:
    """A dry run's plan, validation and verdicts, each verdict with whether its order would go out now."""
    trail = run_trail(s, run_id)
    run = s.get(Run, run_id)
    epoch = s.scalars(select(AccountSnapshot.trading_epoch).where(AccountSnapshot.run_id == run_id)).first()
    snapshot_taken = trail["stages"][0]["status"] == "done"
    # None: another run of the agent holds its book's turn, so a trading run now would end agent_busy
    turn_free = epoch is not None if snapshot_taken else None
    verdicts = []
    for v in trail["verdicts"]:
        order = v["order"]
        if order is None:
            why = ("rejected: " + ", ".join(v["reasons"])) if v["outcome"] == "reject" else "no order"
        elif turn_free is False:
            why = "agent_busy"
        else:  # the kill-switch rule the order claim applies, on the switches as they stand (read only)
            why = switches_block(s, run.agent, book, purpose="close" if order["reduce_only"] else "open",
                                 reduce_only=bool(order["reduce_only"]), lock=False)
        verdicts.append({**{k: v[k] for k in ("index", "symbol", "action", "outcome", "reasons", "decision", "order")},
                         "would_send": why is None, "reason": why})
    plan = trail["plan"]
    return {
        "run_id": run_id, "agent": run.agent, "book": run.book, "trading_book": book,
        "status": run.status, "reason": run.reason, "sent": False,
        "plan": ({"planner": plan["planner"], "raw": plan["raw"], "document": plan["document"],
                  "error": plan["error"],
                  "decisions": plan["document"].get("decisions") if isinstance(plan["document"], dict) else None}
                 if plan else None),
        "llm_calls": trail["llm_calls"],
        "validation": trail["validation"],
        "verdicts": verdicts,
        "risk": ({k: trail["verdicts"][0]["inputs"].get(k) for k in ("trading_state", "global_pause", "equity",
                                                                     "peak_equity", "day_start_equity")}
                 if trail["verdicts"] else None),
        "turn_free": turn_free,
        "stages": [{"stage": st["stage"], "status": st["status"], "error": st["error"]} for st in trail["stages"]
                   if st["stage"] in DRY_STAGES],
    }
