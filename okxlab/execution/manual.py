"""Manual control: flatten an agent — cancel its orders, close its positions — through the same order path.

Closing orders are ordinary okxlab orders (claimed, deterministic clOrdId, audited), reduce-only at market,
so a flatten retried after a crash cannot close twice. Their fills are booked with exit reason `manual`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ccxt
from sqlalchemy import select

from okxlab.config import AgentConfig
from okxlab.db.models import Order, utcnow
from okxlab.db.ops import audit, insert_ignore
from okxlab.execution import ledger
from okxlab.execution.exchange import Accounts, account_from_exchange, market_for
from okxlab.execution.orders import cl_ord_id_for_manual, send_order

ALGO_TYPES = ("conditional", "oco", "trigger")


@dataclass
class FlattenResult:
    cancelled: list[str] = field(default_factory=list)
    closed: list[dict[str, Any]] = field(default_factory=list)
    fills: int = 0


def _cancel_all(client: ccxt.okx, symbol: str) -> list[str]:
    cancelled = []
    for order in client.fetch_open_orders(symbol):
        client.cancel_order(order["id"], symbol)
        cancelled.append(str(order["id"]))
    for kind in ALGO_TYPES:
        for algo in client.fetch_open_orders(symbol, None, None, {"trigger": True, "ordType": kind}):
            client.cancel_order(algo["id"], symbol, {"trigger": True})
            cancelled.append(f"algo:{algo['id']}")
    return cancelled


def flatten(env: Accounts, agent: AgentConfig, book: str, *, request_id: str, actor: str) -> FlattenResult:
    """Cancel every open order of `agent` and close every position, audited. `request_id` names this flatten
    (the same id → the same closing orders, so a retry never closes twice)."""
    url = env.venue(book).url
    client = env.client(agent, book)
    symbol_of = {inst: market_for(client, inst)["symbol"] for inst in agent.symbols}
    result = FlattenResult()
    for symbol in symbol_of.values():
        result.cancelled += _cancel_all(client, symbol)
    now = utcnow()
    with env.sessions.begin() as s:
        for order in s.scalars(select(Order).where(Order.agent == agent.name, Order.book == book,
                                                   Order.state.in_(("submitted", "partially_filled")))):
            order.state, order.closed_at, order.updated_at = "cancelled", now, now
        audit(s, "agent.flatten", f"{agent.name} [{book}]: flatten requested; {len(result.cancelled)} order(s) cancelled",
              agent=agent.name, actor=actor, data={"book": book, "cancelled": result.cancelled})
    account = account_from_exchange(client.fetch_balance(), client.fetch_positions(list(symbol_of.values())))
    rows = []
    for p in account["positions"]:
        rows.append({"cl_ord_id": cl_ord_id_for_manual(agent.name, f"{request_id}:{p['symbol']}"), "run_id": None,
                     "idx": None, "agent": agent.name, "book": book, "purpose": "flatten", "symbol": p["symbol"],
                     "side": "sell" if p["side"] == "long" else "buy", "order_type": "market",
                     "contracts": p["contracts"], "price": None, "reduce_only": True, "leverage": None,
                     "stop_loss": None, "take_profit": None, "tag": env.config.broker_tag, "exchange_url": url,
                     "state": "new", "reference_price": p["mark_price"], "send_attempts": 0, "filled": 0.0, "fee": 0.0,
                     "created_at": now, "updated_at": now})
    with env.sessions.begin() as s:
        insert_ignore(s, Order, rows, ["cl_ord_id"])
        ids = {r.cl_ord_id: r.id for r in s.scalars(select(Order).where(Order.cl_ord_id.in_([r["cl_ord_id"] for r in rows])))}
    for row in rows:
        sent = send_order(env.sessions, client, ids[row["cl_ord_id"]], symbol_of[row["symbol"]])
        result.closed.append({"symbol": row["symbol"], "contracts": row["contracts"], "state": sent.state})
    fills = ledger.collect_fills(env.sessions, client, agent.name, book, symbol_of)
    marks = {p["symbol"]: p["mark_price"] for p in account["positions"] if p.get("mark_price")}
    at = datetime.fromtimestamp(int(client.fetch_time()) / 1000, UTC)  # the book's market time, not ours
    with env.sessions.begin() as s:
        result.fills = len(ledger.apply_fills(s, agent.name, book, fills, {i: float(market_for(client, i).get("contractSize")
                                                                                       or 1.0) for i in symbol_of}, None))
        # The agent's equity as it stands after the closes, so `agents list` agrees with `reconcile` now rather
        # than after the next run.
        ledger.snapshot_equity(s, agent.name, book, None, at, agent.initial_equity, marks)
    return result
