"""The snapshot stage's record: what the exchange showed one run, per instrument and for the account.

How it is read differs by executor (ccxt over HTTP in the pipeline, the in-process world in replays); what is
recorded is decided here, once. Point in time: the candles are closed bars at or before the run's cutoff.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from okxlab.db.models import AccountSnapshot, MarketSnapshot
from okxlab.outcome import StageOutcome


@dataclass(frozen=True)
class SymbolSnapshot:
    inst_id: str
    last: float
    bid: float
    ask: float
    instrument: dict[str, Any]  # execution.exchange.instrument_to_json
    book: dict[str, Any]  # top levels: {"bids": [[px, sz, _]...], "asks": [...]}
    candles: Any  # closed bars [[ts, o, h, l, c, v], ...], or an in-process replay's dataset reference
    count: int  # how many candles that is


def decide_snapshot(run_id: str, agent: str, *, as_of: datetime, exchange_time: datetime, bar: str,
                    symbols: list[SymbolSnapshot], account: dict[str, Any], epoch: int | None) -> StageOutcome:
    """`account`: execution.exchange.account_from_exchange; `epoch`: the book's trading epoch when the
    account was read (pipeline/turns.py)."""
    out = StageOutcome(output={"as_of": as_of.isoformat(), "exchange_time": exchange_time.isoformat(), "symbols": {}})
    for sym in symbols:
        row = {"run_id": run_id, "symbol": sym.inst_id, "as_of": as_of, "exchange_time": exchange_time, "bar": bar,
               "last": sym.last, "bid": sym.bid, "ask": sym.ask, "funding_rate": None, "instrument": sym.instrument,
               "order_book": sym.book, "candles": sym.candles}
        out.add(MarketSnapshot, row)
        out.output["symbols"][sym.inst_id] = {"last": sym.last, "bid": sym.bid, "ask": sym.ask, "candles": sym.count}
    out.add(AccountSnapshot, {"run_id": run_id, "agent": agent, "equity": account["equity"], "cash": account["cash"],
                              "available": account["available"], "positions": account["positions"],
                              "open_orders": [], "trading_epoch": epoch})
    out.output["account"] = {"equity": account["equity"], "available": account["available"],
                             "positions": len(account["positions"])}
    return out
