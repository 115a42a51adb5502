"""The order stage: turn accepted verdicts into orders (exactly once), follow live orders, book new fills.

gather (outside the stage transaction, since it talks to the exchange):
  1. create one order row per accepted decision, keyed by its deterministic clOrdId (idempotent);
  2. send each behind a claim (orders.send_order); an unknown outcome raises and the stage is retried,
     and the retry looks the order up by clOrdId before anything is sent again;
  3. refresh this agent's live orders and fetch fills since the last one booked.
record (in the stage transaction): book the fills into the ledger and store an equity snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from okxlab.db.models import Agent, MarketSnapshot, Order, RiskVerdictRecord, Run
from okxlab.db.ops import audit, insert_ignore
from okxlab.execution import ledger
from okxlab.execution.exchange import market_for
from okxlab.execution.orders import cl_ord_id_for, refresh_open_orders, send_order
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.stages import StageContext, StageResult
from okxlab.pipeline.turns import end_turn


def _order_rows(s, run: Run, tag: str, exchange_url: str | None) -> list[dict[str, Any]]:  # noqa: ANN001
    mids = {m.symbol: (m.bid + m.ask) / 2 for m in s.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run.id))}
    verdicts = s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id == run.id)
                         .order_by(RiskVerdictRecord.idx)).all()
    rows = []
    for v in verdicts:
        o = v.order
        if not o:
            continue
        rows.append({
            "cl_ord_id": cl_ord_id_for(run.id, v.idx), "run_id": run.id, "idx": v.idx, "agent": run.agent,
            "book": run.book, "purpose": "close" if o["reduce_only"] else "open", "symbol": o["symbol"],
            "side": o["side"], "order_type": o["order_type"], "contracts": o["contracts"], "price": o["limit_price"],
            "reduce_only": o["reduce_only"], "leverage": o["leverage"], "stop_loss": o["stop_loss"],
            "take_profit": o["take_profit"], "tag": tag, "exchange_url": exchange_url, "state": "new",
            "reference_price": mids.get(o["symbol"]), "send_attempts": 0, "filled": 0.0, "fee": 0.0,
        })
    return rows


def order_gather(env: StageEnv, run: Run) -> dict[str, Any]:
    agent = env.config.agent(run.agent)
    dry = env.is_rerun(run)
    url = None if dry else env.venue(run.book).url
    with env.sessions.begin() as s:
        rows = _order_rows(s, run, env.config.broker_tag, url)
        if dry:  # a re-run of a past run records what it would send, and sends nothing
            for row in rows:
                row["state"], row["last_error"] = "not_sent", "re-run of a past run: orders are recorded, not sent"
        insert_ignore(s, Order, rows, ["cl_ord_id"])
        orders = s.scalars(select(Order).where(Order.run_id == run.id).order_by(Order.idx)).all()
    if dry:
        return {"orders": [{"order_id": o.id, "state": o.state, "ord_id": None, "error": None} for o in orders],
                "fills": [], "ct_val": {}, "dry": True}
    client = env.client(agent, run.book)
    symbol_of = {inst: market_for(client, inst)["symbol"] for inst in agent.symbols}
    ct_val = {inst: float(market_for(client, inst).get("contractSize") or 1.0) for inst in agent.symbols}
    results = [send_order(env.sessions, client, o.id, symbol_of[o.symbol]) for o in orders]
    refresh_open_orders(env.sessions, client, run.agent, run.book, env.now(), symbol_of)
    fills = ledger.collect_fills(env.sessions, client, run.agent, run.book, symbol_of)
    protection = protective_orders(client, symbol_of)
    return {"orders": [{"order_id": r.order_id, "state": r.state, "ord_id": r.ord_id, "error": r.error} for r in results],
            "fills": [f.to_json() for f in fills], "ct_val": ct_val, "protection": protection}


def protective_orders(client, symbol_of: dict[str, str]) -> dict[str, dict[str, Any]]:  # noqa: ANN001
    """The live stop-loss / take-profit algo orders at the exchange, per symbol with an open position."""
    held = [p for p in client.fetch_positions(list(symbol_of.values())) if float(p.get("contracts") or 0)]
    out: dict[str, dict[str, Any]] = {}
    for position in held:
        inst_id = (position.get("info") or {}).get("instId")
        if inst_id not in symbol_of:
            continue
        algos = client.fetch_open_orders(symbol_of[inst_id], None, None, {"trigger": True, "ordType": "conditional,oco"})
        out[inst_id] = protection_entry((str(algo["id"]), algo.get("info") or {}) for algo in algos)
    return out


def protection_entry(algos: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A position's live stop loss, take profit and algo ids, from its pending algo orders as (algoId, the OKX
    row)."""
    entry: dict[str, Any] = {"stop_loss": None, "take_profit": None, "algo_ids": []}
    for algo_id, info in algos:
        entry["algo_ids"].append(algo_id)
        if info.get("slTriggerPx"):
            entry["stop_loss"] = float(info["slTriggerPx"])
        if info.get("tpTriggerPx"):
            entry["take_profit"] = float(info["tpTriggerPx"])
    return entry


def order_record(ctx: StageContext) -> StageResult:
    run, s, g = ctx.run, ctx.session, ctx.gathered
    if g.get("dry"):
        return StageResult(output={"orders": g["orders"], "dry": True},
                           end=("completed", f"completed: re-run; {len(g['orders'])} order(s) recorded, not sent"))
    agent = s.get(Agent, run.agent)
    fills = [ledger.ExchangeFill(**f) for f in g["fills"]]
    added = ledger.apply_fills(s, run.agent, run.book, fills, g["ct_val"], run.id)
    snaps = s.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run.id)).all()
    marks = {m.symbol: m.last for m in snaps}
    as_of = snaps[0].as_of if snaps else run.scheduled_for
    equity = ledger.snapshot_equity(s, run.agent, run.book, run.id, as_of, agent.initial_equity, marks,
                                    protection=g["protection"])
    for p in equity.positions:
        if p.get("stop_loss") is None:
            audit(s, "position.unprotected", f"{p['symbol']} {p['side']} {p['contracts']:g} has no live stop loss at "
                  "the exchange", agent=run.agent, run_id=run.id, data={"symbol": p["symbol"], "book": run.book})
    output = {"orders": g["orders"], "new_fills": len(added), "equity": round(equity.equity, 2)}
    verdicts = s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id == run.id)
                         .order_by(RiskVerdictRecord.idx)).all()
    end_turn(s, run.agent, run.book, run.id)  # the run ends in this transaction: the next may trade
    return StageResult(output=output, end=run_outcome(verdicts, g["orders"]))


def run_outcome(verdicts: list[RiskVerdictRecord], orders: list[dict[str, Any]]) -> tuple[str, str]:
    """How the run ends: completed (orders sent, or nothing to do) or rejected (by risk or the exchange)."""
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
