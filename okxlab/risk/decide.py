"""The risk stage's decision: the engine's verdict on each decision of a valid plan, as records.

The engine (engine.py, state.py) is pure; this turns its outcome into what is stored: one verdict per
decision with the identifiers of what it was judged on, an audit event per rejection and per state change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from okxlab.db.models import RiskVerdictRecord
from okxlab.domain import Account, OrderIntent, Plan, SymbolMarket, Verdict
from okxlab.outcome import StageOutcome
from okxlab.risk import state as risk_state
from okxlab.risk.engine import assess_plan
from okxlab.risk.limits import RiskLimits
from okxlab.risk.switches import transition_audits


def intent_to_json(order: OrderIntent | None) -> dict[str, Any] | None:
    if order is None:
        return None
    return {"symbol": order.symbol, "side": order.side, "contracts": order.contracts, "order_type": order.order_type,
            "reduce_only": order.reduce_only, "leverage": order.leverage, "limit_price": order.limit_price,
            "stop_loss": order.stop_loss, "take_profit": order.take_profit}


def decide_risk(run_id: str, *, agent: str, book: str, plan: Plan, account: Account,
                markets: dict[str, SymbolMarket], limits: RiskLimits, state: risk_state.RiskState, as_of: datetime,
                judged_on: dict[str, Any]) -> tuple[StageOutcome, risk_state.RiskState, list[Verdict]]:
    """`judged_on`: the ids of the records the verdict used (plan validation, account and market snapshots),
    stored with every verdict. Returns the records, the agent's state after them, and the verdicts."""
    result = assess_plan(plan, account, markets, limits, state, as_of)
    out = StageOutcome()
    out.rows += transition_audits(agent, book, risk_state.Transition(result.state, result.changes), run_id)
    inputs = {**judged_on, "limits": limits.to_json(), "trading_state": result.state.trading_state.value,
              "global_pause": result.state.global_pause, "equity": account.equity,
              "peak_equity": account.peak_equity, "day_start_equity": account.day_start_equity}
    for verdict, proposal in zip(result.verdicts, plan.decisions, strict=True):
        out.add(RiskVerdictRecord, {"run_id": run_id, "idx": verdict.index, "symbol": verdict.symbol,
                                    "action": verdict.action, "outcome": verdict.outcome,
                                    "reasons": list(verdict.reasons), "proposal": proposal.to_json(),
                                    "decision": verdict.decision.to_json(), "order": intent_to_json(verdict.order),
                                    "inputs": inputs})
        if verdict.outcome == "reject":
            out.audit("risk.rejected", f"{verdict.symbol} {verdict.action} rejected: {', '.join(verdict.reasons)}",
                      agent=agent, run_id=run_id, data={"reasons": list(verdict.reasons)})
    out.output = {"verdicts": [f"{v.symbol} {v.action}: {v.outcome}" + (f" ({', '.join(v.reasons)})" if v.reasons else "")
                               for v in result.verdicts],
                  "orders": sum(v.order is not None for v in result.verdicts),
                  "trading_state": result.state.trading_state.value}
    return out, result.state, list(result.verdicts)
