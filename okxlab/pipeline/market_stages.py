"""The snapshot, quality and features stages of the pipeline: their inputs gathered, their decisions made in
okxlab/marketdata (snapshot.py, quality.py, features.py).

snapshot: through ccxt, per symbol the ticker, the top of the book and recent closed candles, plus the
agent's balance and positions. Point in time: only bars that closed at or before the run's cutoff
(`min(scheduled_for, exchange clock)`) are kept, so a late run never sees bars after its own time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from okxlab.db.models import MarketSnapshot, Run
from okxlab.domain import account_book
from okxlab.execution.exchange import (
    OKX_BAR_TO_CCXT,
    account_from_exchange,
    instrument_from_market,
    instrument_to_json,
    market_for,
    to_float,
)
from okxlab.marketdata.bars import bar_ms
from okxlab.marketdata.features import decide_features
from okxlab.marketdata.quality import QualityInput, QualityLimits, decide_quality
from okxlab.marketdata.snapshot import SymbolSnapshot, decide_snapshot
from okxlab.outcome import StageOutcome
from okxlab.pipeline.context import StageContext
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.turns import snapshot_epoch


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class Snapshot:
    """What the snapshot stage fetched from the exchange."""

    exchange_ms: int
    cutoff_ms: int
    bar: str
    symbols: list[SymbolSnapshot]
    account: dict[str, Any]
    epoch: int | None


def snapshot_gather(env: StageEnv, run: Run) -> Snapshot:
    """Everything the snapshot needs from the exchange, fetched outside any database transaction."""
    agent = env.config.agent(run.agent)
    with env.sessions() as s:  # before the account is read: a turn taken after this makes the snapshot stale
        epoch = snapshot_epoch(s, run.agent, account_book(run.book), run.id)  # a dry run: its trading book's
    client = env.client(agent, run.book)
    exchange_ms = int(client.fetch_time())
    cutoff_ms = min(exchange_ms, to_ms(run.scheduled_for))
    step = bar_ms(agent.bar)
    wanted = env.config.candles_per_symbol
    symbols, ccxt_symbols = [], []
    for inst_id in agent.symbols:
        market = market_for(client, inst_id)
        ccxt_symbols.append(market["symbol"])
        ticker = client.fetch_ticker(market["symbol"])
        book = client.fetch_order_book(market["symbol"], limit=5)
        raw = client.fetch_ohlcv(market["symbol"], OKX_BAR_TO_CCXT[agent.bar], limit=min(wanted + 2, 300))
        # point in time: only bars closed at or before the cutoff
        candles = [[float(x) for x in c] for c in raw if c[0] + step <= cutoff_ms][-wanted:]
        symbols.append(SymbolSnapshot(
            inst_id=inst_id, last=to_float(ticker.get("last")),
            bid=to_float(book["bids"][0][0]) if book.get("bids") else to_float(ticker.get("bid")),
            ask=to_float(book["asks"][0][0]) if book.get("asks") else to_float(ticker.get("ask")),
            instrument=instrument_to_json(instrument_from_market(market)),
            book={"bids": book.get("bids", [])[:5], "asks": book.get("asks", [])[:5]},
            candles=candles, count=len(candles)))
    account = account_from_exchange(client.fetch_balance(), client.fetch_positions(ccxt_symbols))
    return Snapshot(exchange_ms, cutoff_ms, agent.bar, symbols, account, epoch)


def snapshot_record(ctx: StageContext) -> StageOutcome:
    g, run = ctx.gathered, ctx.run
    return decide_snapshot(run.id, run.agent, as_of=from_ms(g.cutoff_ms), exchange_time=from_ms(g.exchange_ms),
                           bar=g.bar, symbols=g.symbols, account=g.account, epoch=g.epoch)


def _snapshots(ctx: StageContext) -> list[MarketSnapshot]:
    return ctx.session.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == ctx.run.id)).all()


def quality_stage(ctx: StageContext) -> StageOutcome:
    limits = QualityLimits.from_table(ctx.env.config.pipeline.get("quality"))
    inputs = [QualityInput(symbol=snap.symbol, candles=snap.candles, bar_ms=bar_ms(snap.bar),
                           cutoff_ms=to_ms(snap.as_of), exchange_ms=to_ms(snap.exchange_time), bid=snap.bid,
                           ask=snap.ask, last=snap.last) for snap in _snapshots(ctx)]
    return decide_quality(ctx.run.id, to_ms(ctx.run.scheduled_for), inputs, limits)


def features_stage(ctx: StageContext) -> StageOutcome:
    return decide_features(ctx.run.id, [(snap.symbol, snap.candles) for snap in _snapshots(ctx)])
