"""The order stage's decision once its orders are out and its fills booked: the equity snapshot, a warning
for every position without a live stop at the exchange, and how the run ends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from okxlab.db.models import EquitySnapshot
from okxlab.execution.ledger import Ledger
from okxlab.outcome import StageOutcome


def decide_orders(run_id: str, ledger: Ledger, *, as_of: datetime, marks: dict[str, float],
                  protection: dict[str, dict[str, Any]], orders: list[dict[str, Any]], new_fills: int,
                  verdicts: Sequence[Any]) -> StageOutcome:
    """`orders`: what became of each order the run sent ({"order_id", "state", "ord_id", "error"});
    `verdicts`: the run's risk verdicts (with `symbol`, `action`, `outcome`, `reasons`)."""
    out = StageOutcome()
    equity = out.add(EquitySnapshot, ledger.equity_row(run_id, as_of, marks, protection))
    for p in equity["positions"]:
        if p.get("stop_loss") is None:
            out.audit("position.unprotected", f"{p['symbol']} {p['side']} {p['contracts']:g} has no live stop loss at "
                      "the exchange", agent=ledger.agent, run_id=run_id, data={"symbol": p["symbol"], "book": ledger.book})
    out.output = {"orders": orders, "new_fills": new_fills, "equity": round(equity["equity"], 2)}
    out.end = run_outcome(verdicts, orders)
    return out


def run_outcome(verdicts: Sequence[Any], orders: list[dict[str, Any]]) -> tuple[str, str]:
    """How the run ends: completed (orders sent, or nothing to do) or rejected (by risk, the exchange or a
    kill switch at the moment of the order)."""
    if orders:
        states = [o["state"] for o in orders]
        if all(st == "rejected" for st in states):
            return "rejected", "rejected by the exchange: " + "; ".join(str(o["error"])[:200] for o in orders)
        if all(st == "not_sent" for st in states):  # a kill switch pulled after the verdict
            return "rejected", "not sent: " + ", ".join(sorted({str(o["error"]) for o in orders}))
        return "completed", f"completed: {len(states)} order(s) " + ", ".join(sorted(set(states)))
    actionable = [v for v in verdicts if v.action != "hold"]
    rejected = [v for v in actionable if v.outcome == "reject"]
    if rejected and len(rejected) == len(actionable):
        detail = "; ".join(f"{v.symbol} {v.action}: {', '.join(v.reasons)}" for v in rejected)
        return "rejected", f"rejected: {detail}"[:1000]
    if not verdicts:
        return "completed", "completed: empty plan"
    return "completed", "completed: nothing to trade (" + ", ".join(f"{v.symbol} {v.action}" for v in verdicts) + ")"
