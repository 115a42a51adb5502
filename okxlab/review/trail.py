"""The whole trail of one run, as plain data: what `okxlab runs show` prints and `--json` emits.

The JSON shape is stable (documented in docs/cli.md): new keys may be added; existing keys keep their
meaning. Stages always appear in pipeline order, including those the run never reached.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.db.models import (
    AccountSnapshot,
    AuditEvent,
    Fill,
    LlmCallRecord,
    MarketSnapshot,
    Order,
    PlanRecord,
    PlanValidation,
    QualityCheck,
    RiskVerdictRecord,
    Run,
    StageRecord,
)
from okxlab.domain import STAGES
from okxlab.errors import NotFound

TRAIL_VERSION = 1


def run_summary(run: Run) -> dict[str, Any]:
    return {"id": run.id, "agent": run.agent, "source": run.source, "book": run.book,
            "scheduled_for": run.scheduled_for, "status": run.status, "stage": run.stage, "reason": run.reason,
            "replay_of": run.replay_of, "replay_id": run.replay_id, "created_at": run.created_at,
            "started_at": run.started_at, "finished_at": run.finished_at}


def run_trail(session: Session, run_id: str, *, full: bool = False) -> dict[str, Any]:
    """Everything recorded for `run_id`. `full` includes prompt texts and candles (large)."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; list runs with `okxlab runs list`")
    where = {"run_id": run_id}
    records = {r.stage: r for r in session.scalars(select(StageRecord).filter_by(**where))}
    stages = []
    for name in STAGES:
        r = records.get(name)
        stages.append({"stage": name, "status": r.status if r else "not_reached", "attempts": r.attempts if r else 0,
                       "queue": r.queue if r else None, "worker": r.worker if r else None,
                       "started_at": r.started_at if r else None, "finished_at": r.finished_at if r else None,
                       "queue_wait_ms": r.queue_wait_ms if r else None, "duration_ms": r.duration_ms if r else None,
                       "error": r.error if r else None, "output": r.output if r else {}})
    snaps = session.scalars(select(MarketSnapshot).filter_by(**where).order_by(MarketSnapshot.symbol)).all()
    account = session.scalar(select(AccountSnapshot).filter_by(**where))
    plan = session.scalar(select(PlanRecord).filter_by(**where))
    validation = session.scalar(select(PlanValidation).filter_by(**where))
    calls = session.scalars(select(LlmCallRecord).filter_by(**where).order_by(LlmCallRecord.seq)).all()
    verdicts = session.scalars(select(RiskVerdictRecord).filter_by(**where).order_by(RiskVerdictRecord.idx)).all()
    orders = session.scalars(select(Order).filter_by(**where).order_by(Order.idx)).all()
    order_ids = [o.id for o in orders]
    fills = session.scalars(select(Fill).where(Fill.order_id.in_(order_ids)).order_by(Fill.ts)).all() if order_ids else []
    events = session.scalars(select(AuditEvent).filter_by(**where).order_by(AuditEvent.id)).all()
    return {
        "version": TRAIL_VERSION,
        "run": run_summary(run),
        "stages": stages,
        "snapshot": {
            "symbols": [{"symbol": m.symbol, "as_of": m.as_of, "exchange_time": m.exchange_time, "bar": m.bar,
                         "last": m.last, "bid": m.bid, "ask": m.ask, "candles": m.candles if full else len(m.candles)}
                        for m in snaps],
            "account": ({"equity": account.equity, "cash": account.cash, "available": account.available,
                         "positions": account.positions} if account else None),
        },
        "quality": [{"symbol": q.symbol, "outcome": q.outcome, "reasons": q.reasons, "metrics": q.metrics}
                    for q in session.scalars(select(QualityCheck).filter_by(**where).order_by(QualityCheck.symbol))],
        "plan": ({"planner": plan.planner, "prompt_sha256": plan.prompt_sha256, "raw": plan.raw,
                  "document": plan.document, "error": plan.error, **({"prompt": plan.prompt} if full else {})}
                 if plan else None),
        "llm_calls": [{"seq": c.seq, "purpose": c.purpose, "provider": c.provider, "model": c.model,
                       "prompt_sha256": c.prompt_sha256, "response": c.response, "tokens_in": c.tokens_in,
                       "tokens_out": c.tokens_out, "cost_usd": c.cost_usd, "latency_ms": c.latency_ms,
                       "cached": c.cached, "error": c.error, **({"prompt": c.prompt} if full else {})} for c in calls],
        "validation": ({"valid": validation.valid, "schema_version": validation.schema_version,
                        "problems": validation.problems} if validation else None),
        "verdicts": [{"index": v.idx, "symbol": v.symbol, "action": v.action, "outcome": v.outcome,
                      "reasons": v.reasons, "proposal": v.proposal, "decision": v.decision, "order": v.order,
                      "inputs": v.inputs} for v in verdicts],
        "orders": [{"cl_ord_id": o.cl_ord_id, "ord_id": o.ord_id, "symbol": o.symbol, "side": o.side,
                    "order_type": o.order_type, "contracts": o.contracts, "price": o.price, "reduce_only": o.reduce_only,
                    "leverage": o.leverage, "stop_loss": o.stop_loss, "take_profit": o.take_profit, "tag": o.tag,
                    "state": o.state, "filled": o.filled, "avg_price": o.avg_price, "fee": o.fee,
                    "send_attempts": o.send_attempts, "last_error": o.last_error} for o in orders],
        "fills": [{"trade_id": f.trade_id, "cl_ord_id": f.cl_ord_id, "symbol": f.symbol, "side": f.side,
                   "price": f.price, "contracts": f.contracts, "fee": f.fee, "fee_ccy": f.fee_ccy, "ts": f.ts,
                   "slippage_bps": f.slippage_bps, "realized_pnl": f.realized_pnl, "exit_reason": f.exit_reason}
                  for f in fills],
        "events": [{"ts": e.ts, "kind": e.kind, "actor": e.actor, "message": e.message} for e in events],
    }
