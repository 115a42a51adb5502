"""The snapshot, quality and features stages.

snapshot: through ccxt, per symbol the ticker, the top of the book and recent closed candles, plus the
agent's balance and positions. Point in time: only bars that closed at or before the run's cutoff
(`min(scheduled_for, exchange clock)`) are kept, so a late run never sees bars after its own time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from okxlab.db.models import AccountSnapshot, FeatureSet, MarketSnapshot, QualityCheck, Run
from okxlab.execution.exchange import OKX_BAR_TO_CCXT, instrument_from_market, instrument_to_json, market_for
from okxlab.marketdata.bars import bar_ms
from okxlab.marketdata.features import compute_features
from okxlab.marketdata.quality import QualityLimits, assess
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.stages import StageContext, StageResult
from okxlab.pipeline.turns import snapshot_epoch


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def from_ms(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _f(value: Any, default: float = 0.0) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def account_from_exchange(balance: dict[str, Any], positions: list[dict[str, Any]]) -> dict[str, Any]:
    """The agent's account in okxlab's terms, from ccxt's balance and positions (raw OKX fields)."""
    data = (balance.get("info") or {}).get("data") or [{}]
    info = data[0]
    usdt = next((d for d in info.get("details", []) if d.get("ccy") == "USDT"), {})
    out_positions = []
    for p in positions:
        contracts = _f(p.get("contracts"))
        if contracts == 0:
            continue
        pinfo = p.get("info") or {}
        out_positions.append({
            "symbol": pinfo.get("instId") or p.get("symbol"),
            "side": p.get("side"),
            "contracts": abs(contracts),
            "entry_price": _f(p.get("entryPrice")),
            "mark_price": _f(p.get("markPrice")),
            "unrealized_pnl": _f(p.get("unrealizedPnl")),
            "leverage": _f(p.get("leverage"), 1.0),
            "ct_val": _f(p.get("contractSize"), 1.0),
            "opened_at": int(pinfo["cTime"]) if str(pinfo.get("cTime", "")).isdigit() else None,
        })
    return {
        "equity": _f(info.get("totalEq"), _f(usdt.get("eq"))),
        "cash": _f(usdt.get("cashBal")),
        "available": _f(usdt.get("availEq"), _f(usdt.get("availBal"))),
        "positions": out_positions,
    }


def snapshot_gather(env: StageEnv, run: Run) -> dict[str, Any]:
    """Everything the snapshot needs from the exchange, fetched outside any database transaction."""
    agent = env.config.agent(run.agent)
    with env.sessions() as s:  # before the account is read: a turn taken after this makes the snapshot stale
        epoch = snapshot_epoch(s, run.agent, run.book, run.id)
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
        bid = _f(book["bids"][0][0]) if book.get("bids") else _f(ticker.get("bid"))
        ask = _f(book["asks"][0][0]) if book.get("asks") else _f(ticker.get("ask"))
        symbols.append({
            "inst_id": inst_id, "last": _f(ticker.get("last")), "bid": bid, "ask": ask,
            "instrument": instrument_to_json(instrument_from_market(market)),
            "book": {"bids": book.get("bids", [])[:5], "asks": book.get("asks", [])[:5]},
            # point in time: only bars closed at or before the cutoff
            "candles": [[float(x) for x in c] for c in raw if c[0] + step <= cutoff_ms][-wanted:],
        })
    account = account_from_exchange(client.fetch_balance(), client.fetch_positions(ccxt_symbols))
    return {"exchange_ms": exchange_ms, "cutoff_ms": cutoff_ms, "bar": agent.bar, "symbols": symbols, "account": account,
            "epoch": epoch}


def snapshot_record(ctx: StageContext) -> StageResult:
    g, run = ctx.gathered, ctx.run
    as_of, exchange_time = from_ms(g["cutoff_ms"]), from_ms(g["exchange_ms"])
    summary: dict[str, Any] = {"as_of": as_of.isoformat(), "exchange_time": exchange_time.isoformat(), "symbols": {}}
    for sym in g["symbols"]:
        ctx.session.add(MarketSnapshot(
            run_id=run.id, symbol=sym["inst_id"], as_of=as_of, exchange_time=exchange_time, bar=g["bar"],
            last=sym["last"], bid=sym["bid"], ask=sym["ask"], funding_rate=None, instrument=sym["instrument"],
            order_book=sym["book"], candles=sym["candles"],
        ))
        summary["symbols"][sym["inst_id"]] = {"last": sym["last"], "bid": sym["bid"], "ask": sym["ask"],
                                              "candles": len(sym["candles"])}
    account = g["account"]
    ctx.session.add(AccountSnapshot(run_id=run.id, agent=run.agent, **account, open_orders=[], trading_epoch=g["epoch"]))
    summary["account"] = {"equity": account["equity"], "available": account["available"],
                          "positions": len(account["positions"])}
    return StageResult(output=summary)


def quality_stage(ctx: StageContext) -> StageResult:
    run = ctx.run
    limits = QualityLimits.from_table(ctx.env.config.pipeline.get("quality"))
    snaps = ctx.session.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run.id)).all()
    outcomes: dict[str, Any] = {}
    failures: list[str] = []
    for snap in snaps:
        result = assess(
            snap.candles, bar_ms=bar_ms(snap.bar), cutoff_ms=to_ms(snap.as_of), scheduled_ms=to_ms(run.scheduled_for),
            exchange_ms=to_ms(snap.exchange_time), bid=snap.bid, ask=snap.ask, last=snap.last, limits=limits,
        )
        ctx.session.add(QualityCheck(run_id=run.id, symbol=snap.symbol, outcome=result.outcome, reasons=result.reasons,
                                     metrics=result.metrics))
        outcomes[snap.symbol] = {"outcome": result.outcome, "reasons": result.reasons}
        if result.outcome == "fail":
            failures.append(f"{snap.symbol}: {'; '.join(result.reasons)}")
    overall = "fail" if failures else ("degraded" if any(o["outcome"] == "degraded" for o in outcomes.values()) else "pass")
    output = {"outcome": overall, "symbols": outcomes}
    if failures:
        return StageResult(output=output, end=("skipped", "skipped: data quality — " + " | ".join(failures)))
    return StageResult(output=output)


def features_stage(ctx: StageContext) -> StageResult:
    snaps = ctx.session.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == ctx.run.id)).all()
    output: dict[str, Any] = {}
    for snap in snaps:
        values = compute_features(snap.candles)
        ctx.session.add(FeatureSet(run_id=ctx.run.id, symbol=snap.symbol, values=values))
        output[snap.symbol] = {k: (round(v, 4) if isinstance(v, float) else v)
                               for k, v in values.items() if k in ("ema_fast", "ema_slow", "rsi", "atr")}
    return StageResult(output=output)
