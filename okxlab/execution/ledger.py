"""Each agent's books, kept from the exchange's fills: cash, positions, realised and unrealised PnL, fees.

Net position mode, USDT-margined swaps: a fill in the position's direction adds at a new average price; a
fill against it realises PnL on the closed part, and any excess opens the other way. Cash is the initial
equity plus realised PnL minus fees, which is what OKX reports as the USDT `cashBal`, so the ledger and the
exchange can be reconciled to the cent. Each round trip is a PositionRecord closed with an exit reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ccxt
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.db.models import EquitySnapshot, Fill, Order, PositionRecord
from okxlab.db.ops import serialize

log = logging.getLogger(__name__)

EPS = 1e-9
EXIT_BY_PURPOSE = {"close": "signal", "flatten": "manual", "open": None}
EXIT_BY_ACTUAL_SIDE = {"sl": "stop_loss", "tp": "take_profit"}


@dataclass
class ExchangeFill:
    """One fill as OKX reports it (fills-history), in plain types."""

    trade_id: str
    ord_id: str
    cl_ord_id: str
    symbol: str
    side: str
    price: float
    contracts: float
    fee: float  # positive = paid
    fee_ccy: str
    ts_ms: int
    liquidity: str | None
    exit_reason: str | None = None  # filled in for fills of orders okxlab did not send
    trigger_price: float | None = None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _fill_from_ccxt(trade: dict[str, Any]) -> ExchangeFill:
    info = trade.get("info") or {}
    fee = float(info["fee"]) if info.get("fee") not in (None, "") else -float((trade.get("fee") or {}).get("cost") or 0)
    return ExchangeFill(
        trade_id=str(info.get("tradeId") or trade["id"]),
        ord_id=str(info.get("ordId") or trade.get("order") or ""),
        cl_ord_id=str(info.get("clOrdId") or trade.get("clientOrderId") or ""),
        symbol=str(info.get("instId")),
        side=str(info.get("side") or trade["side"]),
        price=float(info.get("fillPx") or trade["price"]),
        contracts=float(info.get("fillSz") or trade["amount"]),
        fee=-fee,  # OKX reports charges as negative numbers
        fee_ccy=str(info.get("feeCcy") or (trade.get("fee") or {}).get("currency") or "USDT"),
        ts_ms=int(info.get("ts") or trade["timestamp"]),
        liquidity={"T": "taker", "M": "maker"}.get(info.get("execType", ""), trade.get("takerOrMaker")),
    )


def fetch_fills(client: ccxt.okx, symbol_of: dict[str, str], since_ms: int | None) -> list[ExchangeFill]:
    """Every fill of these instruments at or after `since_ms` (all when None), oldest first.

    OKX pages newest first, 100 at a time. Pages overlap on their oldest millisecond (several fills of one
    order share a timestamp and may straddle a page) and are de-duplicated by trade id.
    """
    out: dict[tuple[str, str], ExchangeFill] = {}
    for symbol in symbol_of.values():
        until: int | None = None
        while True:
            params = {"until": until} if until is not None else {}
            batch = client.fetch_my_trades(symbol, since_ms, None if since_ms is not None else 100, params)
            fresh = 0
            for trade in batch:
                f = _fill_from_ccxt(trade)
                fresh += (f.symbol, f.trade_id) not in out
                out[(f.symbol, f.trade_id)] = f
            if len(batch) < 100 or not fresh:
                break
            until = min(int(t["timestamp"]) for t in batch)  # inclusive: the overlap is de-duplicated
    return sorted(out.values(), key=lambda f: (f.ts_ms, f.symbol, f.trade_id))


def classify_foreign_fill(client: ccxt.okx, fill: ExchangeFill, symbol: str) -> None:
    """Why the exchange filled an order okxlab did not send: a stop loss, a take profit, a liquidation."""
    try:
        order = client.fetch_order(fill.ord_id, symbol)
    except ccxt.BaseError:
        fill.exit_reason = "manual"
        return
    info = order.get("info") or {}
    if "liquidation" in str(info.get("category", "")):
        fill.exit_reason = "liquidation"
        return
    algo_id = info.get("algoId")
    if algo_id:
        try:
            algo = client.fetch_order(algo_id, symbol, {"trigger": True})
            ainfo = algo.get("info") or {}
            fill.exit_reason = EXIT_BY_ACTUAL_SIDE.get(ainfo.get("actualSide", ""), "stop_loss")
            side = ainfo.get("actualSide")
            px = ainfo.get("slTriggerPx") if side == "sl" else ainfo.get("tpTriggerPx")
            fill.trigger_price = float(px) if px not in (None, "") else None
            return
        except ccxt.BaseError:
            log.warning("could not read algo order %s behind fill %s", algo_id, fill.trade_id)
    fill.exit_reason = "manual"


def collect_fills(sessions: sessionmaker[Session], client: ccxt.okx, agent: str, book: str,
                  symbol_of: dict[str, str]) -> list[ExchangeFill]:
    """The exchange's fills since the last one booked, with an exit reason for those of orders okxlab did not
    send (stops, take profits, liquidations, manual trades)."""
    with sessions() as s:
        since = last_fill_ms(s, agent, book)
    fills = fetch_fills(client, symbol_of, since - 1 if since else None)
    with sessions() as s:
        ours = set(s.scalars(select(Order.cl_ord_id).where(Order.agent == agent,
                                                          Order.cl_ord_id.in_([f.cl_ord_id for f in fills]))))
    for f in fills:
        if f.cl_ord_id not in ours:
            classify_foreign_fill(client, f, symbol_of[f.symbol])
    return fills


@dataclass
class LedgerTotals:
    cash: float
    realized_pnl: float
    fees: float
    positions: list[dict[str, Any]] = field(default_factory=list)
    unrealized_pnl: float = 0.0

    @property
    def equity(self) -> float:
        return self.cash + self.unrealized_pnl


def _open_record(s: Session, agent: str, book: str, symbol: str) -> PositionRecord | None:
    return s.scalar(select(PositionRecord).where(PositionRecord.agent == agent, PositionRecord.book == book,
                                                 PositionRecord.symbol == symbol, PositionRecord.status == "open"))


def apply_fills(s: Session, agent: str, book: str, fills: list[ExchangeFill], ct_val: dict[str, float],
                run_id: str | None) -> list[Fill]:
    """Book new fills (already-known ones are skipped). Returns the rows added.

    One booking per (agent, book) at a time: two order stages (or a flatten) that fetched the same fills
    wait for each other here, and the second finds the first's fills known instead of colliding on them.
    A fill of an order okxlab sent belongs to that order's run, whichever run books it."""
    serialize(s, f"ledger:{agent}:{book}")
    known = set(s.scalars(select(Fill.trade_id).where(Fill.agent == agent, Fill.book == book,
                                                      Fill.trade_id.in_([f.trade_id for f in fills]))))
    ours = {o.cl_ord_id: o for o in s.scalars(select(Order).where(
        Order.agent == agent, Order.cl_ord_id.in_([f.cl_ord_id for f in fills if f.cl_ord_id])))}
    added = []
    for f in fills:
        if f.trade_id in known or f.symbol not in ct_val:
            continue
        order = ours.get(f.cl_ord_id)
        reason = EXIT_BY_PURPOSE.get(order.purpose) if order else f.exit_reason
        reference = order.reference_price if order else f.trigger_price
        sign = 1.0 if f.side == "buy" else -1.0
        row = Fill(agent=agent, book=book, trade_id=f.trade_id, order_id=order.id if order else None, ord_id=f.ord_id,
                   cl_ord_id=f.cl_ord_id or None, symbol=f.symbol, side=f.side, price=f.price, contracts=f.contracts,
                   ct_val=ct_val[f.symbol], fee=f.fee, fee_ccy=f.fee_ccy, ts=datetime.fromtimestamp(f.ts_ms / 1000, UTC),
                   liquidity=f.liquidity,
                   slippage_bps=round(sign * (f.price - reference) / reference * 1e4, 4) if reference else None)
        _book_position(s, agent, book, row, reason, order.run_id if order and order.run_id else run_id)
        s.add(row)
        added.append(row)
    s.flush()
    return added


def _book_position(s: Session, agent: str, book: str, fill: Fill, reason: str | None, run_id: str | None) -> None:
    opened = book_fill(_open_record(s, agent, book, fill.symbol), fill, reason, run_id, agent=agent, book=book)
    if opened is not None:
        s.add(opened)
        s.flush()


def book_fill(record: PositionRecord | None, fill: Fill, reason: str | None, run_id: str | None, *, agent: str,
              book: str) -> PositionRecord | None:
    """Book one fill against the open round trip of its symbol (`record`, None when flat), without I/O.

    Updates `record` and `fill` in place (realised PnL, exit reason, closing) and returns the round trip the
    fill opens, if any (a fill from flat, or the excess of a reversal). In-process replays call this directly.
    """
    direction = "long" if fill.side == "buy" else "short"
    remaining = fill.contracts
    if record is not None and record.side != direction:  # reduces (and maybe reverses) the position
        closing = min(remaining, record.contracts)
        sign = 1.0 if record.side == "long" else -1.0
        pnl = closing * fill.ct_val * (fill.price - record.entry_price) * sign
        closed_before = record.max_contracts - record.contracts
        record.exit_price = ((record.exit_price or 0.0) * closed_before + fill.price * closing) / (closed_before + closing)
        record.contracts -= closing
        record.realized_pnl += pnl
        record.fees += fill.fee * closing / fill.contracts
        fill.realized_pnl = pnl
        fill.exit_reason = reason or "manual"
        remaining -= closing
        if record.contracts <= EPS:
            record.contracts, record.status, record.closed_at = 0.0, "closed", fill.ts
            record.exit_reason = fill.exit_reason
            record.close_run_id = run_id
        if remaining <= EPS:
            return None
        record = None
    if record is None:
        return PositionRecord(agent=agent, book=book, symbol=fill.symbol, side=direction, status="open",
                              contracts=remaining, max_contracts=remaining, ct_val=fill.ct_val, entry_price=fill.price,
                              realized_pnl=0.0, fees=fill.fee * remaining / fill.contracts, opened_at=fill.ts,
                              open_run_id=run_id)
    # adds to the position at a new average price
    total = record.contracts + remaining
    record.entry_price = (record.entry_price * record.contracts + fill.price * remaining) / total
    record.contracts = total
    record.max_contracts = max(record.max_contracts, total)
    record.fees += fill.fee * remaining / fill.contracts
    return None


def totals(s: Session, agent: str, book: str, initial_equity: float, marks: dict[str, float] | None = None) -> LedgerTotals:
    """The ledger now: cash from realised PnL and fees, positions valued at `marks` (symbol → price)."""
    realized, fees = s.execute(select(func.coalesce(func.sum(Fill.realized_pnl), 0.0), func.coalesce(func.sum(Fill.fee), 0.0))
                               .where(Fill.agent == agent, Fill.book == book)).one()
    out = LedgerTotals(cash=initial_equity + realized - fees, realized_pnl=realized, fees=fees)
    for p in s.scalars(select(PositionRecord).where(PositionRecord.agent == agent, PositionRecord.book == book,
                                                    PositionRecord.status == "open").order_by(PositionRecord.symbol)):
        mark = (marks or {}).get(p.symbol, p.entry_price)
        upl = p.contracts * p.ct_val * (mark - p.entry_price) * (1.0 if p.side == "long" else -1.0)
        out.unrealized_pnl += upl
        out.positions.append({"symbol": p.symbol, "side": p.side, "contracts": p.contracts, "entry_price": p.entry_price,
                              "mark_price": mark, "unrealized_pnl": upl})
    return out


def last_fill_ms(s: Session, agent: str, book: str) -> int | None:
    ts = s.scalar(select(func.max(Fill.ts)).where(Fill.agent == agent, Fill.book == book))
    return int(ts.timestamp() * 1000) if ts else None


def snapshot_equity(s: Session, agent: str, book: str, run_id: str | None, ts: datetime, initial_equity: float,
                    marks: dict[str, float], protection: dict[str, dict[str, Any]] | None = None) -> EquitySnapshot:
    """The ledger's equity at `marks`; `protection`: the live stop/target orders at the exchange per symbol."""
    t = totals(s, agent, book, initial_equity, marks)
    for p in t.positions:
        p.update((protection or {}).get(p["symbol"], {"stop_loss": None, "take_profit": None, "algo_ids": []}))
    row = EquitySnapshot(agent=agent, book=book, run_id=run_id, ts=ts, cash=t.cash, equity=t.equity,
                         unrealized_pnl=t.unrealized_pnl, realized_pnl=t.realized_pnl, fees=t.fees, positions=t.positions)
    s.add(row)
    return row
