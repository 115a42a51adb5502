"""The order stage of the pipeline: turn accepted verdicts into orders (exactly once), follow live orders,
book new fills.

gather (outside the stage transaction, since it talks to the exchange):
  1. create one order row per accepted decision, keyed by its deterministic clOrdId (idempotent);
  2. send each behind a claim (execution.orders.send_order), which re-reads the kill switches; an unknown
     outcome raises and the stage is retried, and the retry looks the order up by clOrdId before anything is
     sent again;
  3. refresh this agent's live orders and fetch fills since the last one booked.
record (in the stage transaction): book the fills into the ledger, snapshot equity, give the book's trading
turn back (execution/decide.py decides the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from okxlab.db.models import Agent, MarketSnapshot, Order, RiskVerdictRecord, Run
from okxlab.db.ops import insert_ignore
from okxlab.domain import OrderState, is_dry_book
from okxlab.execution import ledger
from okxlab.execution.decide import decide_orders
from okxlab.execution.exchange import market_for
from okxlab.execution.orders import order_rows, protection_entry, refresh_open_orders, send_order
from okxlab.outcome import StageOutcome
from okxlab.pipeline.context import StageContext
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.turns import end_turn

RERUN_NOTE = "re-run of a past run: orders are recorded, not sent"


@dataclass
class Sent:
    """What the order stage's gather step did at the exchange."""

    orders: list[dict[str, Any]]  # per order: order_id, state, ord_id, error
    fills: list[ledger.ExchangeFill] = field(default_factory=list)
    ct_val: dict[str, float] = field(default_factory=dict)
    protection: dict[str, dict[str, Any]] = field(default_factory=dict)
    dry: bool = False  # a re-run: recorded, nothing sent


def order_gather(env: StageEnv, run: Run) -> Sent:
    if is_dry_book(run.book):  # the risk stage ends every dry run; this holds even if something drove one on
        raise RuntimeError(f"run {run.id} is a dry run (book {run.book}): it never reaches the order stage")
    agent = env.config.agent(run.agent)
    dry = env.is_rerun(run)
    url = None if dry else env.venue(run.book).url
    with env.sessions.begin() as s:
        mids = {m.symbol: (m.bid + m.ask) / 2
                for m in s.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run.id))}
        verdicts = s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id == run.id)
                             .order_by(RiskVerdictRecord.idx)).all()
        rows = order_rows(run.id, run.agent, run.book, [(v.idx, v.order) for v in verdicts], mids,
                          tag=env.config.broker_tag, exchange_url=url, now=env.now())
        if dry:  # a re-run of a past run records what it would send, and sends nothing
            for row in rows:
                row["state"], row["last_error"] = OrderState.NOT_SENT, RERUN_NOTE
        insert_ignore(s, Order, rows, ["cl_ord_id"])
        orders = s.scalars(select(Order).where(Order.run_id == run.id).order_by(Order.idx)).all()
    if dry:
        return Sent(orders=[{"order_id": o.id, "state": o.state, "ord_id": None, "error": None} for o in orders],
                    dry=True)
    client = env.client(agent, run.book)
    symbol_of = {inst: market_for(client, inst)["symbol"] for inst in agent.symbols}
    ct_val = {inst: float(market_for(client, inst).get("contractSize") or 1.0) for inst in agent.symbols}
    results = [send_order(env.sessions, client, o.id, symbol_of[o.symbol]) for o in orders]
    refresh_open_orders(env.sessions, client, run.agent, run.book, env.now(), symbol_of)
    fills = ledger.collect_fills(env.sessions, client, run.agent, run.book, symbol_of)
    return Sent(orders=[{"order_id": r.order_id, "state": r.state, "ord_id": r.ord_id, "error": r.error}
                        for r in results],
                fills=fills, ct_val=ct_val, protection=protective_orders(client, symbol_of))


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


def order_record(ctx: StageContext) -> StageOutcome:
    run, s, g = ctx.run, ctx.session, ctx.gathered
    if g.dry:
        return StageOutcome(output={"orders": g.orders, "dry": True},
                            end=("completed", f"completed: re-run; {len(g.orders)} order(s) recorded, not sent"))
    agent = s.get(Agent, run.agent)
    added = ledger.apply_fills(s, run.agent, run.book, g.fills, g.ct_val, run.id)
    snaps = s.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run.id)).all()
    verdicts = s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id == run.id)
                         .order_by(RiskVerdictRecord.idx)).all()
    books = ledger.Ledger.load(s, run.agent, run.book, agent.initial_equity)
    end_turn(s, run.agent, run.book, run.id)  # the run ends in this transaction: the next may trade
    return decide_orders(run.id, books, as_of=snaps[0].as_of if snaps else run.scheduled_for,
                         marks={m.symbol: m.last for m in snaps}, protection=g.protection, orders=g.orders,
                         new_fills=len(added), verdicts=verdicts)
