"""A run's inputs, loaded from the records earlier stages wrote (never from the exchange again).

This is what makes a stage replayable: plan, validate and risk see exactly the snapshot the run took.
Account statistics (peak equity, the day's starting equity, invocations) are scoped to the run's book,
so a replay's accounts never mix with the scheduled pipeline's.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from okxlab.config import AgentConfig
from okxlab.db.models import (
    AccountSnapshot,
    EquitySnapshot,
    FeatureSet,
    MarketSnapshot,
    Order,
    RiskStateRecord,
    Run,
)
from okxlab.domain import Account, SymbolMarket, account_book, make_account
from okxlab.execution.exchange import instrument_from_json


def load_markets(session: Session, run_id: str) -> dict[str, SymbolMarket]:
    features = {f.symbol: f.values for f in session.scalars(select(FeatureSet).where(FeatureSet.run_id == run_id))}
    out: dict[str, SymbolMarket] = {}
    for snap in session.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run_id)):
        out[snap.symbol] = SymbolMarket(
            symbol=snap.symbol,
            instrument=instrument_from_json(snap.instrument),
            as_of=snap.as_of,
            last=snap.last,
            bid=snap.bid,
            ask=snap.ask,
            bar=snap.bar,
            # An in-process replay stores a reference to its dataset instead of the candles (okxlab/replay):
            # stages after features do not read them.
            candles=() if isinstance(snap.candles, dict) else tuple((int(c[0]), *map(float, c[1:6])) for c in snap.candles),
            features={k: v for k, v in features.get(snap.symbol, {}).items() if not isinstance(v, str)},
            funding_rate=snap.funding_rate,
        )
    return out


def _protective_levels(session: Session, run: Run, book: str, symbol: str) -> tuple[float | None, float | None]:
    """The stop loss and take profit okxlab attached when it last opened `symbol` in `book`."""
    order = session.scalars(
        select(Order)
        .where(Order.agent == run.agent, Order.book == book, Order.symbol == symbol, Order.purpose == "open",
               Order.filled > 0)
        .order_by(Order.id.desc())
        .limit(1)
    ).first()
    return (order.stop_loss, order.take_profit) if order else (None, None)


def load_account(session: Session, run: Run, agent: AgentConfig, as_of: datetime) -> Account:
    snap = session.scalar(select(AccountSnapshot).where(AccountSnapshot.run_id == run.id))
    if snap is None:
        raise LookupError(f"run {run.id} has no account snapshot")
    book = account_book(run.book)  # a dry run is judged on its trading book's history
    in_book = [EquitySnapshot.agent == run.agent, EquitySnapshot.book == book, EquitySnapshot.ts < as_of]
    reset = session.scalar(select(RiskStateRecord.drawdown_reset_snapshot_id)
                           .where(RiskStateRecord.agent == run.agent, RiskStateRecord.book == book))
    if reset is not None:  # resumed by a human: drawdown is measured from the resume on
        in_book.append(EquitySnapshot.id > reset)
    day_start = datetime.combine(as_of.date(), time(0), tzinfo=as_of.tzinfo)
    runs_in_book = (Run.agent == run.agent, Run.book == book)
    first = session.scalar(select(func.min(Run.scheduled_for)).where(*runs_in_book)) or run.scheduled_for
    return make_account(
        {"equity": snap.equity, "cash": snap.cash, "available": snap.available, "positions": snap.positions},
        protective={p["symbol"]: _protective_levels(session, run, book, p["symbol"]) for p in snap.positions},
        start_equity=agent.initial_equity,
        peak=session.scalar(select(func.max(EquitySnapshot.equity)).where(*in_book)),
        peak_reset=reset is not None,
        day_start=session.scalars(select(EquitySnapshot.equity)
                                  .where(EquitySnapshot.agent == run.agent, EquitySnapshot.book == book,
                                         EquitySnapshot.ts <= day_start)
                                  .order_by(EquitySnapshot.ts.desc()).limit(1)).first(),
        invocations=int(session.scalar(select(func.count()).select_from(Run)
                                       .where(*runs_in_book, Run.scheduled_for < run.scheduled_for)) or 0),
        minutes_since_start=(as_of - first) / timedelta(minutes=1),
    )
