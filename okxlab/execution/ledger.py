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
from types import SimpleNamespace
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


def fill_from_okx(info: dict[str, Any]) -> ExchangeFill:
    """A fill from OKX's own row (fills-history), as ccxt would have parsed it."""
    return _fill_from_ccxt({"info": info})


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


def exit_of(order_info: dict[str, Any] | None, algo_info: dict[str, Any] | None) -> tuple[str, float | None]:
    """Why the exchange filled an order okxlab did not send, and the trigger price: from OKX's row of that
    order and, when it came from an algo order, the algo's row. A stop loss, a take profit, a liquidation, or
    (anything else) a manual trade."""
    if order_info is None:
        return "manual", None
    if "liquidation" in str(order_info.get("category", "")):
        return "liquidation", None
    if algo_info is None:
        return "manual", None
    side = algo_info.get("actualSide", "")
    px = algo_info.get("slTriggerPx") if side == "sl" else algo_info.get("tpTriggerPx")
    return EXIT_BY_ACTUAL_SIDE.get(side, "stop_loss"), float(px) if px not in (None, "") else None


def classify_foreign_fill(client: ccxt.okx, fill: ExchangeFill, symbol: str) -> None:
    """`exit_of` for a fill of an order okxlab did not send, asking the exchange through ccxt."""
    try:
        info = client.fetch_order(fill.ord_id, symbol).get("info") or {}
    except ccxt.BaseError:
        info = None
    algo = None
    if info and info.get("algoId") and "liquidation" not in str(info.get("category", "")):
        try:
            algo = client.fetch_order(info["algoId"], symbol, {"trigger": True}).get("info") or {}
        except ccxt.BaseError:
            log.warning("could not read algo order %s behind fill %s", info["algoId"], fill.trade_id)
    fill.exit_reason, fill.trigger_price = exit_of(info, algo)


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


class Ledger:
    """One agent's books in one book: its open round trips, realised PnL and fees. The pipeline loads it from
    the database for each order stage; an in-process replay keeps one for the whole replay. Either way fills
    are booked and equity valued here, once."""

    def __init__(self, agent: str, book: str, initial_equity: float, *,
                 open_records: dict[str, PositionRecord] | None = None, realized: float = 0.0, fees: float = 0.0):
        self.agent, self.book, self.initial_equity = agent, book, initial_equity
        self.open: dict[str, PositionRecord] = dict(open_records or {})
        self.realized, self.fees = realized, fees
        self.opened: list[PositionRecord] = []  # round trips opened since this ledger was made
        self.closed: list[PositionRecord] = []  # ... and closed since

    @classmethod
    def load(cls, s: Session, agent: str, book: str, initial_equity: float) -> Ledger:
        realized, fees = s.execute(select(func.coalesce(func.sum(Fill.realized_pnl), 0.0),
                                          func.coalesce(func.sum(Fill.fee), 0.0))
                                   .where(Fill.agent == agent, Fill.book == book)).one()
        records = s.scalars(select(PositionRecord).where(PositionRecord.agent == agent, PositionRecord.book == book,
                                                         PositionRecord.status == "open"))
        return cls(agent, book, initial_equity, open_records={r.symbol: r for r in records}, realized=realized,
                   fees=fees)

    @property
    def cash(self) -> float:
        return self.initial_equity + self.realized - self.fees

    def book_fill(self, f: ExchangeFill, order: Any, ct_val: float, run_id: str | None) -> dict[str, Any]:
        """Book one exchange fill; `order` is the okxlab order it filled (an Order row or a replay's order
        object), None for orders okxlab did not send. Returns the fill's row. A fill belongs to its order's
        run, whichever run books it."""
        reason = EXIT_BY_PURPOSE.get(order.purpose) if order is not None else f.exit_reason
        reference = order.reference_price if order is not None else f.trigger_price
        sign = 1.0 if f.side == "buy" else -1.0
        fill = SimpleNamespace(
            agent=self.agent, book=self.book, trade_id=f.trade_id, order_id=order.id if order is not None else None,
            ord_id=f.ord_id, cl_ord_id=f.cl_ord_id or None, symbol=f.symbol, side=f.side, price=f.price,
            contracts=f.contracts, ct_val=ct_val, fee=f.fee, fee_ccy=f.fee_ccy,
            ts=datetime.fromtimestamp(f.ts_ms / 1000, UTC), liquidity=f.liquidity,
            slippage_bps=round(sign * (f.price - reference) / reference * 1e4, 4) if reference else None,
            realized_pnl=0.0, exit_reason=None)
        record = self.open.get(f.symbol)
        owner = order.run_id if order is not None and order.run_id else run_id
        opened = book_round_trip(record, fill, reason, owner, agent=self.agent, book=self.book)
        if record is not None and record.status == "closed":
            del self.open[f.symbol]
            self.closed.append(record)
        if opened is not None:
            self.open[f.symbol] = opened
            self.opened.append(opened)
        self.realized += fill.realized_pnl or 0.0
        self.fees += fill.fee
        return vars(fill)

    def valued(self, marks: dict[str, float] | None = None) -> tuple[float, list[dict[str, Any]]]:
        """Unrealised PnL and the open positions, at `marks` (symbol → price; a position's entry price without
        one), in symbol order."""
        upl_total, positions = 0.0, []
        for symbol in sorted(self.open):
            p = self.open[symbol]
            mark = (marks or {}).get(symbol, p.entry_price)
            upl = p.contracts * p.ct_val * (mark - p.entry_price) * (1.0 if p.side == "long" else -1.0)
            upl_total += upl
            positions.append({"symbol": symbol, "side": p.side, "contracts": p.contracts, "entry_price": p.entry_price,
                              "mark_price": mark, "unrealized_pnl": upl})
        return upl_total, positions

    def equity_row(self, run_id: str | None, ts: datetime, marks: dict[str, float],
                   protection: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The equity snapshot at `marks`; `protection`: the live stop/target orders at the exchange per symbol."""
        upl, positions = self.valued(marks)
        for p in positions:
            p.update((protection or {}).get(p["symbol"], {"stop_loss": None, "take_profit": None, "algo_ids": []}))
        return {"agent": self.agent, "book": self.book, "run_id": run_id, "ts": ts, "cash": self.cash,
                "equity": self.cash + upl, "unrealized_pnl": upl, "realized_pnl": self.realized, "fees": self.fees,
                "positions": positions}


def book_round_trip(record: PositionRecord | None, fill: Any, reason: str | None, run_id: str | None, *,
                    agent: str, book: str) -> PositionRecord | None:
    """Book one fill against the open round trip of its symbol (`record`, None when flat), without I/O.

    Updates `record` and `fill` in place (realised PnL, exit reason, closing) and returns the round trip the
    fill opens, if any (a fill from flat, or the excess of a reversal)."""
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


def apply_fills(s: Session, agent: str, book: str, fills: list[ExchangeFill], ct_val: dict[str, float],
                run_id: str | None) -> list[Fill]:
    """Book new fills (already-known ones are skipped). Returns the rows added.

    One booking per (agent, book) at a time: two order stages (or a flatten) that fetched the same fills
    wait for each other here, and the second finds the first's fills known instead of colliding on them."""
    serialize(s, f"ledger:{agent}:{book}")
    known = set(s.scalars(select(Fill.trade_id).where(Fill.agent == agent, Fill.book == book,
                                                      Fill.trade_id.in_([f.trade_id for f in fills]))))
    ours = {o.cl_ord_id: o for o in s.scalars(select(Order).where(
        Order.agent == agent, Order.cl_ord_id.in_([f.cl_ord_id for f in fills if f.cl_ord_id])))}
    books = Ledger.load(s, agent, book, 0.0)  # booking needs no cash figure
    added = []
    for f in fills:
        if f.trade_id in known or f.symbol not in ct_val:
            continue
        row = Fill(**books.book_fill(f, ours.get(f.cl_ord_id), ct_val[f.symbol], run_id))
        s.add(row)
        added.append(row)
    for record in books.opened:
        s.add(record)
    s.flush()
    return added


def totals(s: Session, agent: str, book: str, initial_equity: float, marks: dict[str, float] | None = None) -> LedgerTotals:
    """The ledger now: cash from realised PnL and fees, positions valued at `marks` (symbol → price)."""
    books = Ledger.load(s, agent, book, initial_equity)
    upl, positions = books.valued(marks)
    return LedgerTotals(cash=books.cash, realized_pnl=books.realized, fees=books.fees, positions=positions,
                        unrealized_pnl=upl)


def last_fill_ms(s: Session, agent: str, book: str) -> int | None:
    ts = s.scalar(select(func.max(Fill.ts)).where(Fill.agent == agent, Fill.book == book))
    return int(ts.timestamp() * 1000) if ts else None


def snapshot_equity(s: Session, agent: str, book: str, run_id: str | None, ts: datetime, initial_equity: float,
                    marks: dict[str, float], protection: dict[str, dict[str, Any]] | None = None) -> EquitySnapshot:
    """The ledger's equity at `marks`, stored; `protection`: the live stop/target orders per symbol."""
    row = EquitySnapshot(**Ledger.load(s, agent, book, initial_equity).equity_row(run_id, ts, marks, protection))
    s.add(row)
    return row
