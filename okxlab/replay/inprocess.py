"""Replays in one process: the pipeline's stage decisions against an in-process simulator world, without Celery.

`celery -A workers replay range --mode pipeline` (the default) sends every run through the workers and the
simulator over HTTP. The two modes here gather each stage's inputs from the in-process world instead of
ccxt and the database, and then call the very functions the pipeline's stages call to decide — the
snapshot, quality, features, plan and validation records, the risk verdicts, the order rows and the order
state machine, the kill-switch rule at the moment of the order, the ledger (`execution.ledger.Ledger`) and
the run's outcome — writing what they decide through the bulk writer (okxlab/replay/bulk.py) instead of the
stage's transaction. Orders are matched by the simulator's own engine (`World.call`, with the request ccxt
would send). What this module adds is the loop, the clock and the gathering; fast mode's skip logic is in
okxlab/replay/fast.py and the market views and whole-history signals in okxlab/replay/series.py.

- **inline**: every run of every tick executes every stage, and every record the pipeline writes is written
  (runs, stage records, snapshots, quality checks, features, plans, validations, verdicts, orders, fills,
  positions, equity, audit events), in bulk (okxlab/replay/bulk.py).
- **fast**: the strategy's signals are evaluated once over the whole history, and a run executes its stages
  only when it can change something: when the strategy would act, when the account's risk state would change
  (drawdown halt, daily loss breaker), when the quality checks might not pass, or when the exchange filled
  something since the last run (a stop). The other runs would plan `hold` for every symbol and change
  nothing; they are counted, not stored, and stretches of them are passed over without visiting each one
  (see `_quiet_stretch`). Records are minimal: the runs that executed, their orders, fills,
  positions, equity snapshots and audit events (`full_records=True` adds every stage record of those runs;
  without it the features stage, which only feeds LLM prompts and records, is not computed).

Both modes evaluate a strategy's signals once over the whole history and decide each run with the planner's
per-bar decision. That is exact: a bar where a comparison the strategy makes is within 1e-8 (relative) of a
tie is decided again on that run's own window of candles, as the pipeline would, because TA-Lib's running
sums differ in the last bits with where the window starts (on the 115,506-bar BTC file, 2 bars would
otherwise flip); strategies that read recursive indicators (EMA, MACD, RSI, ATR, KDJ) or signals without a
cheap tie test are decided on every run's own window.

Point in time holds as in the pipeline: a run at T sees bars closed by T; the world's clock is moved to T
before the run (fills and stops on the price path up to T happen first), and orders fill at the world's
price at T, the open of the bar starting at T.

Differences from the pipeline, by design (none changes a decision):
- `MarketSnapshot.candles` holds a reference to the dataset slice instead of a copy of the candles
  (`{"dataset": sha256 of the series, "inst_id", "bar", "from", "to", "count"}`): 150 candles for each of
  100,000 runs would be 90 million numbers; the reference reproduces them exactly (see `window_for`).
- Only rule-based planners (strategy agents, or LLM agents' offline stand-ins with --offline-planners).
- Stage records name the worker `inline@<host>` and no queue; durations are measured in-process.
"""

from __future__ import annotations

import gc
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from types import SimpleNamespace
from typing import Any

import numpy as np

from okxlab.config import AgentConfig
from okxlab.db import models as m
from okxlab.db.models import Replay, utcnow
from okxlab.db.ops import audit
from okxlab.domain import LIVE_ORDER, STAGES, Account, Instrument, SymbolMarket, make_account
from okxlab.errors import UserError
from okxlab.execution import ledger
from okxlab.execution.decide import decide_orders
from okxlab.execution.exchange import account_from_exchange, instrument_to_json
from okxlab.execution.orders import okx_order_fields, order_rows, protection_entry, transition
from okxlab.marketdata.bars import parse_bar
from okxlab.marketdata.features import decide_features
from okxlab.marketdata.quality import QualityInput, QualityLimits, decide_quality
from okxlab.marketdata.snapshot import SymbolSnapshot, decide_snapshot
from okxlab.outcome import StageOutcome
from okxlab.pipeline.dispatch import run_id_for
from okxlab.pipeline.env import StageEnv
from okxlab.planning.decide import decide_plan, decide_validate
from okxlab.replay.bulk import BulkWriter
from okxlab.replay.fast import FastMode
from okxlab.replay.range import RangeResult, baseline, book_baseline, summarize, ticks_between
from okxlab.replay.series import SeriesView, history_signals, instrument_of, quality_risk
from okxlab.review.settings import ReviewSettings
from okxlab.risk import state as risk_state
from okxlab.risk.decide import decide_risk, intent_to_json
from okxlab.risk.switches import load_risk_state, order_block, state_row, store_state
from okxlab.simulator.simulator import Simulator
from okxlab.simulator.world import World
from okxlab.strategies.engine import Signals
from okxlab.strategies.indicators import Ohlcv
from okxlab.strategies.planner import StrategyPlanner

MODES = ("inline", "fast")
Progress = Callable[[int, int, dict[str, int]], None]
TIE_TOLERANCE = 1e-8  # relative: closer than this, a comparison is decided again on the run's own window
# Indicators whose value at bar t depends on where the window starts by more than rounding (recursive seeds).
RECURSIVE = frozenset({"ema", "macd", "rsi", "atr", "kdj"})
BATCH_ROWS = 20_000  # rows handed to the writer at a time: fewer, larger COPYs (per-batch costs dominate)
# What fast mode writes of the runs it executes (with full_records: everything, as inline mode does).
ALWAYS_WRITTEN = frozenset({m.Run, m.Order, m.Fill, m.PositionRecord, m.EquitySnapshot, m.AuditEvent})


# ---- market data as the snapshot stage sees it ---------------------------------------------------------

def _f(value: Any, default: float = 0.0) -> float:
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


# ---- one agent's state between runs ---------------------------------------------------------------------

@dataclass
class _Agent:
    cfg: AgentConfig
    api_key: str
    planner: StrategyPlanner
    planner_name: str
    symbols: tuple[str, ...]
    state: risk_state.RiskState
    initial_equity: float
    signals: dict[str, Signals] = field(default_factory=dict)  # fast mode: over the whole history
    fragile: dict[str, np.ndarray] = field(default_factory=dict)  # bars to decide again on the run's window
    ledger: ledger.Ledger | None = None  # its books in the replay's book, for the whole replay
    turns: int = 0  # trading turns taken in the book, as the pipeline's runs take them (pipeline/turns.py)
    peak: float | None = None  # highest equity snapshot so far
    last_snapshot: tuple[datetime, float] | None = None
    day_start: dict[date, float | None] = field(default_factory=dict)
    runs: int = 0
    first_run: datetime | None = None
    protective: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # last opening's SL/TP
    ours: dict[str, Any] = field(default_factory=dict)  # clOrdId -> order
    live_orders: list[Any] = field(default_factory=list)  # resting orders to follow
    fills_seen: int = 0  # index into world.fills
    statuses: dict[str, int] = field(default_factory=dict)
    equity_memo: tuple[Any, ...] | None = None  # fast mode: inputs of the last risk-state check
    limits_json: dict[str, Any] = field(default_factory=dict)
    flat_account: dict[str, Any] | None = None  # the last account snapshot, while flat with nothing open
    closed: dict[str, list[int]] = field(default_factory=dict)  # fast mode, per tick: bars closed
    look: dict[str, dict[str | None, list[bool]]] = field(default_factory=dict)  # ... the choice may act
    risky: dict[str, list[bool]] = field(default_factory=dict)  # ... the run must execute
    next_look: dict[str, dict[str | None, list[int]]] = field(default_factory=dict)  # ... the next tick to look


@dataclass
class InProcessResult(RangeResult):
    mode: str = "inline"
    executed: int = 0  # runs whose stages executed (fast mode skips runs that would only hold)
    records: int = 0  # rows written


class _StageFailed(Exception):
    """The stage could not do its job (as a stage task that fails for good): the run ends `failed`."""


class InProcessReplay(FastMode):
    """Drives one replay in this process (see the module docstring)."""

    def __init__(self, env: StageEnv, replay: Replay, simulator: Simulator, *, mode: str = "inline",
                 progress: Progress | None = None, worker: str | None = None, full_records: bool | None = None):
        if mode not in MODES:
            raise UserError(f"--mode {mode!r} is not an in-process mode ({', '.join(MODES)})")
        self.env, self.replay, self.sim, self.mode = env, replay, simulator, mode
        self.progress = progress
        self.full_records = mode == "inline" if full_records is None else full_records
        self.worker = worker or f"inline@{socket.gethostname()}"
        self.book = f"replay:{replay.id}"
        self.bar = replay.bar
        self.bar_ms = parse_bar(replay.bar).ms
        self.wanted = env.config.candles_per_symbol
        self.window = min(self.wanted, min(self.wanted + 2, 300) - 1)  # closed bars the snapshot keeps
        self.quality_limits = QualityLimits.from_table(env.config.pipeline.get("quality"))
        self.tag = env.config.broker_tag
        self.writer = BulkWriter(env.sessions.kw["bind"])
        self.views: dict[tuple[str, str], SeriesView] = {}  # (instId, the agent's bar)
        self.agents: list[_Agent] = []
        self.world: World | None = None
        self.instruments: dict[str, Instrument] = {}
        self.instrument_json: dict[str, dict[str, Any]] = {}
        self.tick_sizes: dict[str, float] = {}
        self.quality_risk: dict[str, np.ndarray] = {}  # fast mode: by bars closed, runs whose checks may not pass
        self.next_day: list[int] = []  # fast mode, per tick: the index of the first tick of the next UTC day
        self.ticks_ms: list[int] = []

    # ---- set-up ----------------------------------------------------------------------------------------
    def _setup(self, ticks: list[datetime]) -> None:
        name = f"replay-{self.replay.id}"
        with self.sim.lock:
            self.world = self.sim.create_world(name, clock="replay", start=int(ticks[0].timestamp() * 1000))
        with self.env.sessions.begin() as s:
            for name_ in self.replay.agents:
                cfg = self.env.config.agent(name_)
                planner = self.env.planners.for_agent(cfg, offline=bool(self.replay.offline_planners))
                inner = getattr(planner, "inner", planner)
                if not isinstance(inner, StrategyPlanner):
                    raise UserError(f"agent {cfg.name}: --mode {self.mode} replays rule-based planners only; use "
                                    "--offline-planners (its offline stand-in) or --mode pipeline")
                api_key = cfg.credentials("sim").api_key
                if api_key not in self.world.accounts:
                    raise UserError(f"agent {cfg.name} has no account in the simulator world")
                self.agents.append(_Agent(cfg=cfg, api_key=api_key, planner=inner, planner_name=planner.name,
                                          symbols=tuple(cfg.symbols),
                                          state=load_risk_state(s, state_row(s, cfg.name, self.book)),
                                          initial_equity=cfg.initial_equity, limits_json=cfg.limits.to_json(),
                                          ledger=ledger.Ledger(cfg.name, self.book, cfg.initial_equity)))
            row = s.get(Replay, self.replay.id)
            row.exchange_url = self.replay.exchange_url = f"inprocess://{name}"
        for agent in self.agents:
            for sym in agent.symbols:
                if (sym, agent.cfg.bar) not in self.views:
                    self.views[(sym, agent.cfg.bar)] = SeriesView(self.world, sym, agent.cfg.bar)
                    self.instruments[sym] = instrument_of(self.world, sym)
                    self.instrument_json[sym] = instrument_to_json(self.instruments[sym])
                    self.tick_sizes[sym] = self.instruments[sym].tick_sz
        last_ms = int(ticks[-1].timestamp() * 1000)
        for (sym, _bar), view in self.views.items():
            if view.path.price_at(last_ms) is None or view.path.price_at(int(ticks[0].timestamp() * 1000)) is None:
                raise UserError(f"{sym} has no price at every tick of the window (data "
                                f"{_iso(view.path.start_ms)} to {_iso(view.path.end_ms)}); shorten the window")
        if self.mode == "fast":
            for key, view in self.views.items():
                self.quality_risk[key] = quality_risk(view, self.window, self.quality_limits,
                                                       parse_bar(view.bar).ms)
        for agent in self.agents:
            for sym in agent.symbols:
                agent.signals[sym], agent.fragile[sym] = history_signals(agent.planner, self._view(agent, sym),
                                                                          self.window)

    def _view(self, agent: _Agent, sym: str) -> SeriesView:
        return self.views[(sym, agent.cfg.bar)]

    # ---- the drive -------------------------------------------------------------------------------------
    def run(self) -> InProcessResult:
        started = time.monotonic()
        ticks = ticks_between(self.replay.start, self.replay.end, self.bar)
        if not ticks:
            raise UserError(f"no {self.bar} bar boundary between {self.replay.start.isoformat()} and "
                            f"{self.replay.end.isoformat()}")
        self._setup(ticks)
        if self.mode == "fast":
            self._prepare_fast(ticks)
        else:  # every run writes these: their ids in one draw per table
            runs, symbols = len(ticks) * len(self.agents), len(ticks) * sum(len(a.symbols) for a in self.agents)
            self.writer.expect({m.StageRecord: runs * len(STAGES), m.AccountSnapshot: runs, m.PlanRecord: runs,
                                m.PlanValidation: runs, m.MarketSnapshot: symbols, m.QualityCheck: symbols,
                                m.FeatureSet: symbols, m.RiskVerdictRecord: symbols, m.EquitySnapshot: runs})
        world = self.world
        assert world is not None
        statuses: dict[str, int] = {}
        executed = total = 0
        fast = self.mode == "fast"
        ticks_ms = self.ticks_ms = [int(t.timestamp() * 1000) for t in ticks]
        # The replay holds a growing heap (the world's orders and fills, rows waiting to be written) and
        # allocates many short-lived objects: the cyclic collector's full scans of it cost ~10%. Objects that
        # exist now are left alone, and young collections are rarer; both are put back afterwards.
        threshold = gc.get_threshold()
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
        try:
            i, n, next_progress = 0, len(ticks), 10_000
            while i < n:
                tick, t_ms = ticks[i], ticks_ms[i]
                world.set_clock(t_ms)
                quiet = True
                for agent in self.agents:
                    if fast and not self._must_execute(agent, i, tick):
                        status = "completed"
                        self._note_quiet_run(agent, tick)
                    else:
                        quiet = False
                        status = self._execute(agent, tick, t_ms)
                        executed += 1
                    statuses[status] = statuses.get(status, 0) + 1
                    total += 1
                step = 1
                if quiet:  # fast mode: the following runs may be as quiet as this one, known without looking
                    step = self._quiet_stretch(i, ticks) - i
                    statuses["completed"] += (step - 1) * len(self.agents)
                    total += (step - 1) * len(self.agents)
                i += step
                if self.writer.pending() >= BATCH_ROWS:
                    self.writer.flush()
                if self.progress and i >= next_progress:
                    self.progress(i, n, statuses)
                    next_progress = (i // 10_000 + 1) * 10_000
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
        if self.progress:
            self.progress(len(ticks), len(ticks), statuses)
        self._finish_agents()
        self.writer.close()
        result = InProcessResult(replay_id=self.replay.id, ticks=len(ticks), runs=total, statuses=statuses,
                                 seconds=round(time.monotonic() - started, 2), mode=self.mode, executed=executed,
                                 records=self.writer.written)
        if self.mode == "inline":  # every run recorded: the book says it all, as for the pipeline
            result.agents, result.baseline = summarize(self.env, self.replay.id, list(self.replay.agents)), \
                book_baseline(self.env, self.replay.id)
        else:  # fast mode records only the runs that act: the figures come from memory and the data
            result.agents, result.baseline = self._summary_from_memory(), self._baseline_from_data(ticks_ms)
        with self.env.sessions.begin() as s:
            row = s.get(Replay, self.replay.id)
            row.status, row.finished_at = "done", utcnow()
            row.summary = {"ticks": result.ticks, "runs": result.runs, "statuses": statuses, "seconds": result.seconds,
                           "agents": result.agents, "baseline": result.baseline, "mode": self.mode,
                           "executed_runs": executed,
                           "records": result.records,
                           "datasets": {f"{k[0]} {k[1]}": {"sha256": v.dataset, "bars": len(v.ts)}
                                        for k, v in self.views.items()}}
            audit(s, "replay.finished", f"replay {self.replay.id} ({self.mode}): {total} runs over {len(ticks)} "
                  f"ticks in {result.seconds} s", data={"replay_id": self.replay.id, "statuses": statuses})
        return result

    # ---- one run, every stage --------------------------------------------------------------------------
    def _execute(self, agent: _Agent, tick: datetime, t_ms: int) -> str:
        w, world = self.writer, self.world
        assert world is not None
        now = utcnow()
        run_id = run_id_for(self.book, agent.cfg.name, tick)
        run = {"id": run_id, "source": self.book, "book": self.book, "schedule_id": None, "replay_id": self.replay.id,
               "replay_of": None, "agent": agent.cfg.name, "scheduled_for": tick, "status": "running", "stage": None,
               "reason": None, "created_at": now, "started_at": now, "finished_at": None, "updated_at": now}
        w.add(m.Run, run)
        self._day_start(agent, tick)
        run_ctx = _RunCtx(run_id=run_id, tick=tick, t_ms=t_ms, agent=agent)
        end: tuple[str, str] | None = None
        for stage in STAGES:
            t0 = time.perf_counter()
            started_at = utcnow()
            error = None
            try:
                output, end = getattr(self, f"_stage_{stage}")(run_ctx)
            except _StageFailed as exc:
                error = str(exc)
                output, end = {}, ("failed", f"{stage} failed: {error}"[:2000])
            if self.full_records:
                w.add(m.StageRecord, {"id": w.new_id(m.StageRecord), "run_id": run_id, "stage": stage,
                                      "status": "failed" if error else "done", "attempts": 1, "queue": None,
                                      "worker": self.worker, "task_id": None, "started_at": started_at,
                                      "finished_at": utcnow(), "queue_wait_ms": 0.0,
                                      "duration_ms": round((time.perf_counter() - t0) * 1000.0, 3), "error": error,
                                      "output": output})
            run["stage"] = stage
            if end is not None:
                break
        status, reason = end if end is not None else ("completed", "completed")
        run.update(status=status, reason=reason, finished_at=utcnow(), updated_at=utcnow())
        agent.runs += 1
        agent.first_run = agent.first_run or tick
        agent.statuses[status] = agent.statuses.get(status, 0) + 1
        return status

    # ---- the stages: gather from the world, decide with the pipeline's own functions, write in bulk ----
    def _write(self, outcome: StageOutcome) -> StageOutcome:
        """The bulk writer as the decision's sink: every row in inline mode; in fast mode only runs, orders,
        fills, positions, equity and audit events (full_records writes the stage records of executed runs too).
        Rows written get their ids here, so later stages can refer to them."""
        w = self.writer
        for model, row in outcome.rows:
            if self.full_records or model in ALWAYS_WRITTEN:
                if "id" not in row:
                    row["id"] = w.new_id(model)
                w.add(model, row)
        return outcome

    def _audit_row(self, row: dict[str, Any] | None) -> None:
        if row is not None:
            self.writer.add(m.AuditEvent, {"id": self.writer.new_id(m.AuditEvent), **row})

    # snapshot: market (ticker last, book top, closed candles) and the account, from the world at T
    def _stage_snapshot(self, c: _RunCtx) -> tuple[dict[str, Any], None]:
        world, agent = self.world, c.agent
        assert world is not None
        symbols = []
        for sym in agent.symbols:
            view = self._view(agent, sym)
            spec = view.spec
            px = view.path.price_at(c.t_ms)
            if px is None:  # what ccxt raises for the simulator's answer to a ticker without data
                raise _StageFailed("ExchangeError: okx {\"code\":\"52000\",\"msg\":\"No market data found.\"}")
            last = spec.round_px(px)
            book = None
            if self.full_records:
                asks, bids = world.book(spec, px, 5)
                ask, bid = asks[0].px, bids[0].px
                # as ccxt parses OKX's book rows: [price, size, the row's third field ("0")]; levels are on the
                # tick grid already, and a size printed to the lot's decimals reads back as that rounding
                sz_dec, lot = spec.sz_decimals, spec.lot_sz
                book = {"bids": [[lv.px, round(lv.lots * lot, sz_dec), 0] for lv in bids],
                        "asks": [[lv.px, round(lv.lots * lot, sz_dec), 0] for lv in asks]}
            else:  # the top of that book, without the levels only the record shows
                ask, bid = world.market.touch(spec, px)
            n = view.closed(c.t_ms)
            lo = max(0, n - self.window)
            symbols.append(SymbolSnapshot(inst_id=sym, last=last, bid=bid, ask=ask, instrument=self.instrument_json[sym],
                                          book=book, candles=view.reference(lo, n), count=n - lo))
            c.markets[sym] = _Snap(None, sym, last, bid, ask, lo, n)
        account = self._account_payload(agent)
        out = self._write(decide_snapshot(c.run_id, agent.cfg.name, as_of=c.tick, exchange_time=c.tick,
                                          bar=agent.cfg.bar, symbols=symbols, account=account, epoch=agent.turns))
        for model, row in out.rows:
            if model is m.MarketSnapshot:
                c.markets[row["symbol"]].id = row.get("id")
            else:
                c.account_id = row.get("id")
        c.account_raw = account
        return out.output, None

    def _account_payload(self, agent: _Agent) -> dict[str, Any]:
        """execution's account_from_exchange, on the balance and positions the world serves."""
        world = self.world
        assert world is not None
        if agent.flat_account is not None and agent.fills_seen == len(world.fills) and not agent.live_orders:
            return agent.flat_account  # flat, no order, no fill since: the exchange would say the same again
        balance = world.call("GET", "account/balance", api_key=agent.api_key)
        raw_positions = world.call("GET", "account/positions", api_key=agent.api_key)["data"]
        positions = []
        for p in raw_positions:
            if p.get("instId") not in agent.symbols:
                continue
            pos = _f(p.get("pos"))
            positions.append({  # the fields of ccxt's parsed position that okxlab reads
                "info": p, "symbol": p.get("instId"), "contracts": abs(pos),
                "side": "long" if pos > 0 else "short", "entryPrice": p.get("avgPx"), "markPrice": p.get("markPx"),
                "unrealizedPnl": p.get("upl"), "leverage": p.get("lever"),
                "contractSize": self.instruments[p["instId"]].ct_val,
            })
        account = account_from_exchange({"info": balance}, positions)
        acct = world.accounts[agent.api_key]
        flat = not any(p.pos for p in acct.positions.values()) and not world.resting_orders(agent.api_key)
        agent.flat_account = account if flat else None
        return account

    def _stage_quality(self, c: _RunCtx) -> tuple[dict[str, Any], tuple[str, str] | None]:
        inputs = []
        for sym, snap in c.markets.items():
            view = self._view(c.agent, sym)
            inputs.append(QualityInput(symbol=sym, candles=view.rows[snap.lo:snap.hi], bar_ms=view.bar_ms,
                                       cutoff_ms=c.t_ms, exchange_ms=c.t_ms, bid=snap.bid, ask=snap.ask, last=snap.last))
        out = self._write(decide_quality(c.run_id, c.t_ms, inputs, self.quality_limits))
        return out.output, out.end

    def _stage_features(self, c: _RunCtx) -> tuple[dict[str, Any], None]:
        if not self.full_records:  # only recorded (and shown to LLM planners); rule strategies and risk ignore it
            return {}, None
        out = self._write(decide_features(c.run_id, [(sym, self._view(c.agent, sym).rows[snap.lo:snap.hi])
                                                     for sym, snap in c.markets.items()]))
        for _, row in out.rows:
            c.markets[row["symbol"]].features = row["values"]
        return out.output, None

    def _stage_plan(self, c: _RunCtx) -> tuple[dict[str, Any], tuple[str, str] | None]:
        agent = c.agent
        c.account = self._account(agent, c)

        def signals_at(sym: str) -> tuple[Signals, int] | str:
            snap = c.markets.get(sym)
            if snap is None:
                return "no market data for this run"
            if snap.hi == snap.lo:
                return "no closed candles in this run"
            return self._signals(agent, sym, snap)

        result = agent.planner.plan_with(agent.symbols, c.account, agent.cfg.limits, self.tick_sizes, signals_at)
        result.planner = agent.planner_name  # an LLM agent's offline stand-in records itself as such
        out = self._write(decide_plan(c.run_id, result))
        c.document, c.plan_error = result.document, result.error
        return out.output, out.end

    def _signals(self, agent: _Agent, sym: str, snap: _Snap) -> tuple[Signals, int]:
        """The strategy's signals for the run's last closed bar: from the whole history's, unless that bar must
        be decided on the run's own window (see `_history_signals`)."""
        i = snap.hi - 1
        if not agent.fragile[sym][i]:
            return agent.signals[sym], i
        ohlcv = self._view(agent, sym).ohlcv
        window = Ohlcv(*(a[snap.lo:snap.hi] for a in (ohlcv.ts, ohlcv.open, ohlcv.high, ohlcv.low, ohlcv.close,
                                                        ohlcv.volume)))
        signals = agent.planner.signals(window)
        return signals, len(signals) - 1

    def _stage_validate(self, c: _RunCtx) -> tuple[dict[str, Any], tuple[str, str] | None]:
        agent = c.agent
        out, agent.state, c.plan = decide_validate(
            c.run_id, agent=agent.cfg.name, book=self.book, document=c.document, plan_error=c.plan_error,
            symbols=agent.symbols, state=agent.state, limits=agent.cfg.limits, now=utcnow())
        self._write(out)
        c.validation_id = next((row.get("id") for model, row in out.rows if model is m.PlanValidation), None)
        return out.output, out.end

    def _stage_risk(self, c: _RunCtx) -> tuple[dict[str, Any], None]:
        agent = c.agent
        markets = {sym: SymbolMarket(symbol=sym, instrument=self.instruments[sym], as_of=c.tick, last=s.last, bid=s.bid,
                                     ask=s.ask, bar=agent.cfg.bar, candles=(),
                                     features={k: v for k, v in (s.features or {}).items() if not isinstance(v, str)})
                   for sym, s in c.markets.items()}
        agent.turns += 1  # as the pipeline's run takes its book's trading turn here
        judged_on = {"plan_validation_id": c.validation_id, "account_snapshot_id": c.account_id,
                     "market_snapshot_ids": {sym: s.id for sym, s in c.markets.items()}}
        out, agent.state, c.verdicts = decide_risk(c.run_id, agent=agent.cfg.name, book=self.book, plan=c.plan,
                                                   account=c.account, markets=markets, limits=agent.cfg.limits,
                                                   state=agent.state, as_of=c.tick, judged_on=judged_on)
        self._write(out)
        return out.output, None

    def _stage_order(self, c: _RunCtx) -> tuple[dict[str, Any], tuple[str, str]]:
        agent, w = c.agent, self.writer
        rows = order_rows(c.run_id, agent.cfg.name, self.book, [(v.index, intent_to_json(v.order)) for v in c.verdicts],
                          {sym: (s.bid + s.ask) / 2 for sym, s in c.markets.items()}, tag=self.tag,
                          exchange_url=self.replay.exchange_url, now=utcnow())
        results = []
        for row in rows:
            row["id"] = w.new_id(m.Order)
            order = SimpleNamespace(**row)
            w.add(m.Order, vars(order))  # written at the next flush, in whatever state sending leaves it
            self._send(agent, order)
            results.append({"order_id": order.id, "state": order.state, "ord_id": order.ord_id,
                            "error": order.last_error})
        self._refresh_live(agent)
        added = self._collect_fills(agent, c.run_id)
        out = self._write(decide_orders(c.run_id, agent.ledger, as_of=c.tick,
                                        marks={sym: s.last for sym, s in c.markets.items()},
                                        protection=self._protection(agent), orders=results, new_fills=added,
                                        verdicts=c.verdicts))
        equity = next(row["equity"] for model, row in out.rows if model is m.EquitySnapshot)
        self._snapshot_taken(agent, c.tick, equity)
        return out.output, out.end  # type: ignore[return-value]

    # ---- orders and fills: execution.orders' state machine and execution.ledger, against the world ---
    def _send(self, agent: _Agent, order: SimpleNamespace) -> None:
        world = self.world
        assert world is not None
        now = utcnow()
        # The kill switches at the moment of the order, by the order stage's own rule (risk.switches).
        blocked = order_block(agent.state.trading_state, agent.state.global_pause, purpose=order.purpose,
                              reduce_only=order.reduce_only)
        if blocked is not None:
            self._audit_row(transition(order, "not_sent", now, note=blocked, last_error=blocked))
            return
        agent.flat_account = None  # the account changes with this order
        spec = world.spec(order.symbol)
        if order.leverage and not order.reduce_only and \
                world.accounts[agent.api_key].lever(order.symbol) != float(order.leverage):
            # Account set-up before the claim, as execution.orders does (setting the leverage the account already
            # has changes nothing at the exchange: it is not asked again).
            got = world.call("POST", "account/set-leverage", body={"lever": order.leverage, "mgnMode": "cross",
                                                                    "instId": order.symbol}, api_key=agent.api_key)
            if got.get("code") != "0":  # ccxt raises: the order stays new, the stage fails and the run with it
                raise _StageFailed(f"ExchangeError: okx {got.get('code')}: {got.get('msg')}")
        self._audit_row(transition(order, "submitting", now, send_attempts=1, claimed_at=now))
        req: dict[str, Any] = {"instId": order.symbol, "side": order.side, "ordType": order.order_type,
                               "sz": spec.fmt_sz(order.contracts), "tdMode": "cross"}
        if order.price is not None:
            req["px"] = spec.fmt_px(order.price)
        attached: dict[str, Any] = {}
        if order.stop_loss:
            attached.update(slTriggerPx=spec.fmt_px(order.stop_loss), slOrdPx="-1", slTriggerPxType="last")
        if order.take_profit:
            attached.update(tpTriggerPx=spec.fmt_px(order.take_profit), tpOrdPx="-1", tpTriggerPxType="last")
        if attached:
            req["attachAlgoOrds"] = [attached]
        req.update(clOrdId=order.cl_ord_id, tag=order.tag)
        if order.reduce_only:
            req["reduceOnly"] = True
        agent.ours[order.cl_ord_id] = order
        reply = world.call("POST", "trade/batch-orders", body=[req], api_key=agent.api_key)
        data = (reply.get("data") or [{}])[0]
        if reply.get("code") != "0" or data.get("sCode") not in (None, "0"):
            error = f"okx {data.get('sCode') or reply.get('code')}: {data.get('sMsg') or reply.get('msg')}"
            self._audit_row(transition(order, "rejected", now, note=error[:200],
                                       last_error=f"ExchangeError: {error}"[:500]))
            return
        order.ord_id = data["ordId"]
        found = world.call("GET", "trade/order", {"ordId": data["ordId"], "instId": order.symbol},
                           api_key=agent.api_key)["data"][0]
        state, fields = okx_order_fields(order, found)
        self._audit_row(transition(order, state, now, **fields))
        if order.state in LIVE_ORDER:
            agent.live_orders.append(order)

    def _refresh_live(self, agent: _Agent) -> None:
        world = self.world
        assert world is not None
        still = []
        for order in agent.live_orders:
            info = world.call("GET", "trade/order", {"ordId": order.ord_id, "instId": order.symbol},
                              api_key=agent.api_key)["data"][0]
            state, fields = okx_order_fields(order, info)
            self._audit_row(transition(order, state, utcnow(), **fields))
            if order.state in LIVE_ORDER:
                still.append(order)
        agent.live_orders = still

    def _collect_fills(self, agent: _Agent, run_id: str) -> int:
        world = self.world
        assert world is not None
        new = [f for f in world.fills[agent.fills_seen:] if f.api_key == agent.api_key and f.inst_id in agent.symbols]
        agent.fills_seen = len(world.fills)
        books = agent.ledger
        for sf in new:
            f = ledger.fill_from_okx(sf.payload(world.spec(sf.inst_id)))
            order = agent.ours.get(f.cl_ord_id)
            if order is None:
                self._classify_foreign(agent, f)
            opened = len(books.opened)
            row = books.book_fill(f, order, self.instruments[f.symbol].ct_val, run_id)
            row["id"] = self.writer.new_id(m.Fill)
            self.writer.add(m.Fill, row)
            if len(books.opened) > opened:
                books.opened[-1].id = self.writer.new_id(m.PositionRecord)
                if order is not None and order.purpose == "open":
                    agent.protective[f.symbol] = (order.stop_loss, order.take_profit)
        return len(new)

    def _classify_foreign(self, agent: _Agent, f: ledger.ExchangeFill) -> None:
        """ledger.classify_foreign_fill, through the world's order endpoints."""
        world = self.world
        assert world is not None
        got = world.call("GET", "trade/order", {"ordId": f.ord_id, "instId": f.symbol}, api_key=agent.api_key)
        info = got["data"][0] if got.get("code") == "0" and got.get("data") else None
        algo = None
        if info and info.get("algoId") and "liquidation" not in str(info.get("category", "")):
            found = world.call("GET", "trade/order-algo", {"algoId": info["algoId"]}, api_key=agent.api_key)
            algo = found["data"][0] if found.get("code") == "0" and found.get("data") else None
        f.exit_reason, f.trigger_price = ledger.exit_of(info, algo)

    # ---- the account as load_account builds it, and the ledger's equity ----------------------------
    def _snapshot_taken(self, agent: _Agent, tick: datetime, equity: float) -> None:
        """A run's equity snapshot, as later runs read it: the peak, the last one, and the day's start (the
        pipeline reads the latest snapshot at or before 00:00: one taken at 00:00 itself counts, from the run
        after it on)."""
        agent.peak = equity if agent.peak is None else max(agent.peak, equity)
        agent.last_snapshot = (tick, equity)
        if tick.hour == tick.minute == tick.second == tick.microsecond == 0:
            agent.day_start[tick.date()] = equity

    def _day_start(self, agent: _Agent, tick: datetime) -> float:
        day = tick.date()
        if day not in agent.day_start:
            start = datetime.combine(day, dtime(0), tzinfo=tick.tzinfo)
            last = agent.last_snapshot
            agent.day_start[day] = last[1] if last is not None and last[0] <= start else None
        value = agent.day_start[day]
        return value if value is not None else agent.initial_equity

    def _account(self, agent: _Agent, c: _RunCtx) -> Account:
        first = agent.first_run or c.tick
        return make_account(c.account_raw, protective=agent.protective, start_equity=agent.initial_equity,
                            peak=agent.peak, peak_reset=False, day_start=self._day_start(agent, c.tick),
                            invocations=agent.runs, minutes_since_start=(c.tick - first) / timedelta(minutes=1))

    def _ledger_equity(self, agent: _Agent, tick: datetime, marks: dict[str, float] | None = None) -> float:
        """The ledger's equity at `marks`, or at the world's last price of each symbol held."""
        world = self.world
        assert world is not None
        books = agent.ledger
        prices = {sym: (marks or {}).get(sym) or world.market.last(sym, world.now) or p.entry_price
                  for sym, p in books.open.items()}
        return books.cash + books.valued(prices)[0]

    def _protection(self, agent: _Agent) -> dict[str, dict[str, Any]]:
        """The pipeline's protective_orders: the live stop/target algo orders of each symbol held."""
        world = self.world
        assert world is not None
        out: dict[str, dict[str, Any]] = {}
        for sym, pos in world.accounts[agent.api_key].positions.items():
            if not pos.pos or sym not in agent.symbols:
                continue
            pending = world.call("GET", "trade/orders-algo-pending", {"instId": sym, "ordType": "conditional,oco"},
                                 api_key=agent.api_key)
            out[sym] = protection_entry((str(info["algoId"]), info) for info in pending.get("data") or [])
        return out

    def _finish_agents(self) -> None:
        """Positions still open, and each agent's risk state, as the pipeline would leave them."""
        for agent in self.agents:
            for rec in [*agent.ledger.closed, *agent.ledger.open.values()]:
                self.writer.add(m.PositionRecord, _row(rec))
        self.writer.flush()
        with self.env.sessions.begin() as s:
            for agent in self.agents:
                row = state_row(s, agent.cfg.name, self.book)
                store_state(row, agent.state)
                row.trading_epoch = agent.turns

    def _summary_from_memory(self) -> list[dict[str, Any]]:
        out = []
        for agent in self.agents:
            final = self._ledger_equity(agent, self.replay.end)
            out.append({"agent": agent.cfg.name, "equity": final,
                        "return_pct": (final / agent.initial_equity - 1) * 100.0, "trades": len(agent.ledger.closed),
                        "open": len(agent.ledger.open), "max_drawdown_pct": None})
        return sorted(out, key=lambda r: -r["return_pct"])

    def _baseline_from_data(self, ticks_ms: list[int]) -> dict[str, Any]:
        """Buy-and-hold of the review benchmark from the last close at or before the first and the last tick
        (the runs that would have seen those prices were skipped, so the book holds no snapshot of them)."""
        symbol = ReviewSettings.from_config(self.env.config).benchmark
        view = next((v for (sym, _), v in self.views.items() if sym == symbol), None)
        if view is None:
            return baseline(symbol, None, None, f"no agent of this replay trades {symbol}")
        first, last = view.closed(ticks_ms[0]), view.closed(ticks_ms[-1])
        closes = view.ohlcv.close
        return baseline(symbol, float(closes[first - 1]) if first else None, float(closes[last - 1]) if last else None,
                        "bar closes at the first and last tick, 1x, no fees or funding")


@dataclass
class _Snap:
    id: int
    symbol: str
    last: float
    bid: float
    ask: float
    lo: int  # the window: bars [lo, hi) of the series
    hi: int
    features: dict[str, Any] | None = None


@dataclass
class _RunCtx:
    run_id: str
    tick: datetime
    t_ms: int
    agent: _Agent
    markets: dict[str, _Snap] = field(default_factory=dict)
    account_id: int | None = None
    account_raw: dict[str, Any] = field(default_factory=dict)
    account: Account | None = None
    document: Any = None
    plan_error: str | None = None
    plan: Any = None
    validation_id: int | None = None
    verdicts: list[Any] = field(default_factory=list)


def _row(obj: m.Base) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def run_inprocess(env: StageEnv, replay: Replay, simulator: Simulator, *, mode: str,
                  progress: Progress | None = None, full_records: bool | None = None) -> InProcessResult:
    return InProcessReplay(env, replay, simulator, mode=mode, progress=progress, full_records=full_records).run()


def replay_in_process(env: StageEnv, *, agents: list[str], start: datetime, end: datetime, bar: str, mode: str,
                      data_paths: tuple[str, ...] = (), offline_planners: bool = False,
                      progress: Progress | None = None, simulator: Simulator | None = None,
                      full_records: bool | None = None, replay: Replay | None = None) -> InProcessResult:
    """`replay range --mode inline|fast`: a replay row (`replay`, when one was created already, as for a replay
    requested over HTTP), an in-process simulator, the drive."""
    from okxlab.replay.range import create_replay

    if mode not in MODES:
        raise UserError(f"--mode {mode!r} is not an in-process mode ({', '.join(MODES)})")
    def world() -> Simulator:
        return simulator or Simulator(agents=env.config, data_paths=data_paths, default_clock="replay")

    sim = None
    if replay is None:  # a simulator that cannot be built (missing data) writes no replay row
        sim = world()
        replay = create_replay(env, kind="range", agents=agents, start=start, end=end, bar=bar,
                               offline_planners=offline_planners, fresh_llm=False)
    try:  # a replay row made already (requested over HTTP) is marked failed if its world cannot be built
        return run_inprocess(env, replay, sim or world(), mode=mode, progress=progress, full_records=full_records)
    except BaseException:
        with env.sessions.begin() as s:
            row = s.get(Replay, replay.id)
            row.status, row.finished_at = "failed", utcnow()
        raise
