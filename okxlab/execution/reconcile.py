"""Ledger against exchange: do okxlab's books agree with the account at OKX (or the simulator)?

Compared, to the cent: USDT cash (OKX `cashBal`) against initial equity + realised PnL − fees + the funding
the exchange reports (its funding-fee bills: perpetuals pay or receive funding every 8 h, which no fill
shows; okxlab does not book it, so it is taken from the exchange and shown as `funding`); every open
position (side, contracts, average entry); every fill (each exchange fill booked once, nothing booked that
the exchange does not know). Each check is stored as a Reconciliation row and an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from okxlab.config import AgentConfig
from okxlab.db.models import Fill, Reconciliation, utcnow
from okxlab.db.ops import audit
from okxlab.execution import ledger
from okxlab.execution.exchange import Accounts, account_from_exchange, market_for

CASH_TOLERANCE = 0.005  # half a cent
PRICE_TOLERANCE = 1e-6  # relative, for average entry prices


@dataclass
class ReconcileResult:
    agent: str
    book: str
    ok: bool
    differences: list[str] = field(default_factory=list)
    ledger: dict[str, Any] = field(default_factory=dict)
    exchange: dict[str, Any] = field(default_factory=dict)


def compare(agent: AgentConfig, book: str, totals: ledger.LedgerTotals, booked: set[str],
            account: dict[str, Any], fills: list[ledger.ExchangeFill], funding: float = 0.0) -> ReconcileResult:
    """Pure comparison of the ledger's view and the exchange's view; `funding` is the funding the exchange
    paid (+) or charged (-) the account, which the ledger's cash does not hold."""
    diffs: list[str] = []
    expected = totals.cash + funding
    if abs(expected - account["cash"]) > CASH_TOLERANCE:
        diffs.append(f"cash: ledger {totals.cash:.2f} USDT{f' + funding {funding:+.2f}' if funding else ''}, "
                     f"exchange {account['cash']:.2f} USDT (difference {expected - account['cash']:+.2f})")
    ours = {p["symbol"]: p for p in totals.positions}
    theirs = {p["symbol"]: p for p in account["positions"]}
    for symbol in sorted(set(ours) | set(theirs)):
        a, b = ours.get(symbol), theirs.get(symbol)
        if a is None or b is None:
            present, missing = ("exchange", "ledger") if a is None else ("ledger", "exchange")
            diffs.append(f"{symbol}: position on the {present}, none on the {missing}")
            continue
        if a["side"] != b["side"] or abs(a["contracts"] - b["contracts"]) > 1e-9:
            diffs.append(f"{symbol}: ledger {a['side']} {a['contracts']:g}, exchange {b['side']} {b['contracts']:g} contracts")
        elif abs(a["entry_price"] - b["entry_price"]) > PRICE_TOLERANCE * b["entry_price"]:
            diffs.append(f"{symbol}: average entry ledger {a['entry_price']:.6f}, exchange {b['entry_price']:.6f}")
    exchange_ids = {f.trade_id for f in fills}
    unbooked = sorted(exchange_ids - booked)
    phantom = sorted(booked - exchange_ids)
    if unbooked:
        diffs.append(f"{len(unbooked)} exchange fill(s) not in the ledger (first: {unbooked[0]})")
    if phantom:
        diffs.append(f"{len(phantom)} ledger fill(s) the exchange does not report (first: {phantom[0]})")
    return ReconcileResult(
        agent=agent.name, book=book, ok=not diffs, differences=diffs,
        ledger={"cash": totals.cash, "funding": funding, "realized_pnl": totals.realized_pnl, "fees": totals.fees,
                "positions": totals.positions, "fills": len(booked)},
        exchange={"cash": account["cash"], "equity": account["equity"], "positions": account["positions"],
                  "fills": len(exchange_ids)},
    )


def exchange_funding(client: Any) -> float:
    """USDT funding paid (-) or received (+) by the account, from its funding-fee bills (OKX account/bills-archive,
    type 8: the last 3 months), paged by billId. 0 for a client without that endpoint."""
    call = getattr(client, "privateGetAccountBillsArchive", None)
    if call is None:
        return 0.0
    total, after = 0.0, None
    while True:
        rows = call({"type": "8", "ccy": "USDT", "limit": "100", **({"after": after} if after else {})})["data"]
        total += sum(float(r["balChg"]) for r in rows)
        if len(rows) < 100:
            return total
        after = rows[-1]["billId"]


def reconcile(env: Accounts, agent: AgentConfig, book: str, *, source: str = "cli") -> ReconcileResult:
    client = env.client(agent, book)
    symbol_of = {inst: market_for(client, inst)["symbol"] for inst in agent.symbols}
    account = account_from_exchange(client.fetch_balance(), client.fetch_positions(list(symbol_of.values())))
    fills = ledger.fetch_fills(client, symbol_of, None)
    funding = exchange_funding(client)
    with env.sessions() as s:
        totals = ledger.totals(s, agent.name, book, agent.initial_equity)
        booked = set(s.scalars(select(Fill.trade_id).where(Fill.agent == agent.name, Fill.book == book)))
    result = compare(agent, book, totals, booked, account, fills, funding)
    with env.sessions.begin() as s:
        s.add(Reconciliation(agent=agent.name, book=book, ts=utcnow(), source=source, ok=result.ok,
                             differences=result.differences, ledger=result.ledger, exchange=result.exchange))
        audit(s, "ledger.reconciled" if result.ok else "ledger.mismatch",
              f"{agent.name} [{book}]: " + ("ledger matches the exchange" if result.ok else "; ".join(result.differences)),
              agent=agent.name, data={"book": book, "ok": result.ok})
    return result
