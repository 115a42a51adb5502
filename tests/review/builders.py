"""Ledger rows for the review tests, written straight into a migrated database (no pipeline needed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from okxlab.db.models import (
    Agent,
    AuditEvent,
    EquitySnapshot,
    Fill,
    LlmCallRecord,
    MarketSnapshot,
    PlanValidation,
    PositionRecord,
    RiskVerdictRecord,
    Run,
    StageRecord,
)
from okxlab.pipeline.stages import STAGES

BTC = "BTC-USDT-SWAP"
DAY = date(2025, 3, 10)
START = datetime(2025, 3, 10, tzinfo=UTC)
BAR = timedelta(hours=4)


def at(hours: float) -> datetime:
    """A time on DAY, in hours after midnight UTC (negative: the day before)."""
    return START + timedelta(hours=hours)


@dataclass
class Ledger:
    s: Session
    book: str = "sim"
    runs: list[str] = field(default_factory=list)
    # The book's market time minus the wall clock: a simulator world may trade 2022 prices today. Runs are
    # scheduled (and audited) on the wall clock; snapshots, equity, fills and positions stand in market time.
    market_shift: timedelta = timedelta(0)

    def agent(self, name: str, planner: str = "strategy", initial_equity: float = 10_000.0) -> None:
        if self.s.get(Agent, name) is None:
            self.s.add(Agent(name=name, planner=planner, initial_equity=initial_equity))
            self.s.flush()

    def run(self, agent: str, when: datetime, *, status: str = "completed", stage: str = "order",
            equity: float | None = None, btc: float | None = None, reason: str | None = None,
            created_at: datetime | None = None, durations: dict[str, float] | None = None,
            failed_stage: str | None = None) -> str:
        run_id = hashlib.sha256(f"{self.book}|{agent}|{when.isoformat()}".encode()).hexdigest()[:32]
        self.s.add(Run(id=run_id, source=f"schedule:{self.book}", book=self.book, agent=agent, scheduled_for=when,
                       status=status, stage=stage, reason=reason, created_at=created_at or when,
                       updated_at=created_at or when))
        self.s.flush()
        reached = STAGES[: STAGES.index(stage) + 1]
        for name in reached:
            failed = name == failed_stage
            self.s.add(StageRecord(run_id=run_id, stage=name, status="failed" if failed else "done",
                                   attempts=2 if failed else 1, queue=name,
                                   duration_ms=(durations or {}).get(name, 10.0), queue_wait_ms=5.0))
        if btc is not None:
            market = when + self.market_shift
            self.s.add(MarketSnapshot(run_id=run_id, symbol=BTC, as_of=market, exchange_time=market, bar="4H", last=btc,
                                      bid=btc - 0.5, ask=btc + 0.5, funding_rate=0.0001, instrument={},
                                      order_book={"bids": [], "asks": []}, candles=[]))
        if equity is not None:
            self.s.add(EquitySnapshot(agent=agent, book=self.book, run_id=run_id, ts=when + self.market_shift,
                                      cash=equity, equity=equity,
                                      unrealized_pnl=0.0, realized_pnl=0.0, fees=0.0, positions=[]))
        self.s.flush()
        self.runs.append(run_id)
        return run_id

    def position(self, agent: str, opened: datetime, closed: datetime | None, *, pnl: float, fees: float,
                 reason: str | None, side: str = "long", entry: float = 100_000.0, exit: float | None = None,
                 symbol: str = BTC) -> None:
        self.s.add(PositionRecord(agent=agent, book=self.book, symbol=symbol, side=side,
                                  status="closed" if closed else "open", contracts=0.0 if closed else 1.0,
                                  max_contracts=1.0, ct_val=0.01, entry_price=entry,
                                  exit_price=exit if closed else None, realized_pnl=pnl, fees=fees,
                                  opened_at=opened + self.market_shift,
                                  closed_at=closed + self.market_shift if closed else None,
                                  exit_reason=reason if closed else None))
        self.s.flush()

    def fill(self, agent: str, when: datetime, *, fee: float, slippage_bps: float | None, trade_id: str,
             price: float = 100_000.0, pnl: float = 0.0, exit_reason: str | None = None) -> None:
        self.s.add(Fill(agent=agent, book=self.book, trade_id=trade_id, symbol=BTC, side="buy", price=price,
                        contracts=1.0, ct_val=0.01, fee=fee, fee_ccy="USDT", ts=when + self.market_shift,
                        liquidity="taker",
                        slippage_bps=slippage_bps, realized_pnl=pnl, exit_reason=exit_reason))
        self.s.flush()

    def verdict(self, run_id: str, idx: int, outcome: str, reasons: list[str], action: str = "open_long") -> None:
        self.s.add(RiskVerdictRecord(run_id=run_id, idx=idx, symbol=BTC, action=action, outcome=outcome,
                                     reasons=reasons, proposal={}, decision={}, order=None, inputs={}))
        self.s.flush()

    def invalid_plan(self, run_id: str, problems: list[str]) -> None:
        self.s.add(PlanValidation(run_id=run_id, valid=False, schema_version="okxlab.plan.v1", problems=problems))
        self.s.flush()

    def llm_call(self, run_id: str, seq: int, *, tokens_in: int, tokens_out: int, cost: float,
                 cached: bool = False, model: str = "deepseek-chat") -> None:
        self.s.add(LlmCallRecord(run_id=run_id, seq=seq, purpose="plan", provider="deepseek", model=model,
                                 prompt="p", prompt_sha256="0" * 64, response="{}", tokens_in=tokens_in,
                                 tokens_out=tokens_out, cost_usd=cost, cached=cached, latency_ms=100.0))
        self.s.flush()

    def event(self, kind: str, message: str, *, agent: str | None = None, run_id: str | None = None,
              ts: datetime | None = None, actor: str = "system", data: dict[str, Any] | None = None) -> None:
        self.s.add(AuditEvent(ts=ts or START, kind=kind, agent=agent, run_id=run_id, actor=actor, message=message,
                              data=data or {}))
        self.s.flush()


# The day's scenario (4-hourly runs, 20:00 the day before is the opening): prices and equities by hour.
HOURS = [-4, 0, 4, 8, 12, 16, 20]
BTC_PATH = [100_000, 100_000, 101_000, 100_500, 102_000, 101_500, 103_000]
EQUITY = {
    "alpha": [10_000, 10_100, 10_250, 10_200, 10_400, 10_500, 10_700],
    "beta": [10_000, 9_990, 10_010, 9_980, 10_020, 10_000, 10_030],
    "flat": [10_000] * 7,
}


def build_day(s: Session, book: str = "sim", market_shift: timedelta = timedelta(0)) -> Ledger:
    """DAY on `book`: three agents, BTC from 100,000 to 103,000, trades, verdicts, an invalid plan, LLM calls,
    a halt, a skipped run and a failed stage. Every figure the tests check is derived from these rows.
    `market_shift`: the book's market clock against the wall clock the runs are scheduled on."""
    ledger = Ledger(s, book, market_shift=market_shift)
    for name in EQUITY:
        ledger.agent(name, planner="llm" if name == "alpha" else "strategy")
    ids: dict[tuple[str, int], str] = {}
    for i, hour in enumerate(HOURS):
        for name, path in EQUITY.items():
            ids[(name, hour)] = ledger.run(name, at(hour), equity=path[i], btc=BTC_PATH[i],
                                           durations={"plan": 100.0 + 10 * i, "order": 50.0 + i})
    # alpha: two closed trades (one win, one loss) and one still open at the end of the day
    ledger.position("alpha", at(0), at(8), pnl=300.0, fees=10.0, reason="take_profit", exit=103_000.0)
    ledger.position("alpha", at(8), at(14), pnl=-100.0, fees=10.0, reason="stop_loss", exit=99_000.0)
    ledger.position("alpha", at(16), None, pnl=0.0, fees=5.0, reason=None)
    # beta: one trade closed by its own signal
    ledger.position("beta", at(4), at(16), pnl=50.0, fees=4.0, reason="signal", side="short", exit=99_950.0)
    for n, (when, fee, slip) in enumerate([(at(0), 5.0, 2.0), (at(8), 5.0, 4.0), (at(8), 5.0, None), (at(14), 5.0, 6.0)]):
        ledger.fill("alpha", when, fee=fee, slippage_bps=slip, trade_id=f"a{n}")
    ledger.verdict(ids[("alpha", 4)], 0, "reject", ["MAX_LEVERAGE"])
    ledger.verdict(ids[("alpha", 4)], 1, "amend", ["SIZE_CAPPED"])
    ledger.verdict(ids[("alpha", 8)], 0, "accept", [])
    ledger.verdict(ids[("beta", 4)], 0, "reject", ["MAX_LEVERAGE", "NO_STOP_LOSS"])
    ledger.invalid_plan(ids[("alpha", 12)], ["decisions[0].symbol: DOGE-USDT-SWAP is not traded by this agent"])
    ledger.llm_call(ids[("alpha", 0)], 0, tokens_in=1000, tokens_out=200, cost=0.0005)
    ledger.llm_call(ids[("alpha", 4)], 0, tokens_in=1100, tokens_out=250, cost=0.0006)
    ledger.llm_call(ids[("alpha", 8)], 0, tokens_in=1100, tokens_out=0, cost=0.0, cached=True)
    ledger.event("risk.rejected", "BTC-USDT-SWAP open_long rejected: MAX_LEVERAGE", agent="alpha",
                 run_id=ids[("alpha", 4)], ts=at(4))
    ledger.event("risk.drawdown_halt", "beta halted: drawdown 41% ≥ 40%", agent="beta", run_id=ids[("beta", 20)],
                 ts=at(20))
    ledger.event("risk.global_pause", "trading paused for every agent: maintenance", actor="ops", ts=at(9))
    # runs that ended short: a skip (stale data) and a failure in the order stage
    ledger.run("beta", at(22), status="skipped", stage="quality", reason="skipped: stale data")
    ledger.run("flat", at(22), status="failed", stage="order", reason="order: exchange unavailable",
               failed_stage="order")
    return ledger
