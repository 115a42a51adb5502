"""Replays in one process: the pipeline's stage logic against an in-process simulator world, without Celery.

`celery -A workers replay range --mode pipeline` (the default) sends every run through the workers and the
simulator over HTTP. The two modes here decide exactly the same things with the same code — quality checks
(`marketdata.quality.assess`), features (`marketdata.features.compute_features`), the strategy planner,
plan validation (`planning.schema.validate_plan`), the risk engine (`risk.engine.assess_plan`,
`risk.state`), orders matched by the simulator's own engine (`World`, through `World.call` with the request
ccxt would send), and books kept with `execution.ledger` — and only change how it is executed:

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
import hashlib
import socket
import time
from bisect import bisect_left, bisect_right
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
from okxlab.marketdata.bars import DAY_MS, parse_bar
from okxlab.marketdata.features import decide_features
from okxlab.marketdata.quality import QualityInput, QualityLimits, decide_quality
from okxlab.marketdata.snapshot import SymbolSnapshot, decide_snapshot
from okxlab.outcome import StageOutcome
from okxlab.pipeline.dispatch import run_id_for
from okxlab.pipeline.env import StageEnv
from okxlab.planning.decide import decide_plan, decide_validate
from okxlab.replay.bulk import BulkWriter
from okxlab.replay.range import RangeResult, summarize, ticks_between
from okxlab.risk import state as risk_state
from okxlab.risk.decide import decide_risk, intent_to_json
from okxlab.risk.switches import load_risk_state, order_block, state_row, store_state
from okxlab.simulator.simulator import Simulator
from okxlab.simulator.world import World
from okxlab.strategies.engine import Signals, evaluate
from okxlab.strategies.indicators import Ohlcv, as_ohlcv
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

class SeriesView:
    """One instrument's closed candles at the replay's bar, with the numbers ccxt would have parsed from the
    simulator's candles endpoint (prices on the tick grid; volume in the base currency)."""

    def __init__(self, world: World, inst_id: str, bar: str):
        path = world.market.path(inst_id)
        if path is None:
            raise UserError(f"the simulator has no data for {inst_id}")
        self.inst_id, self.spec, self.path, self.bar = inst_id, world.spec(inst_id), path, bar
        self.bar_ms = parse_bar(bar).ms
        series, ends = path.resampled(parse_bar(bar))
        self.ends = np.asarray(ends, dtype=np.int64)
        self._ends = self.ends.tolist()
        ts = np.asarray(series.ts, dtype=np.int64)
        spec = self.spec
        prices = []
        for col in (series.open, series.high, series.low, series.close):
            col = np.asarray(col, dtype=np.float64)
            on_grid = np.round(col, spec.px_decimals)
            if not np.array_equal(on_grid, col):  # off the grid: exactly as the endpoint formats them
                on_grid = np.array([float(spec.fmt_px(x)) for x in col.tolist()])
            prices.append(on_grid)
        # ccxt reads OKX's base-currency volume (volCcy for swaps, vol for spot), printed to 8 decimals
        volume = np.array([round(x, 8) for x in np.asarray(series.volume, dtype=np.float64).tolist()])
        self.cols = (ts.astype(np.float64), *prices, volume)
        self.ts = ts
        # column-major: a window's columns are contiguous, so TA-Lib and numpy take them without copies
        self.rows = np.asfortranarray(np.column_stack(self.cols))
        self.ohlcv = Ohlcv(ts, *(np.ascontiguousarray(c) for c in self.cols[1:]))
        digest = hashlib.sha256()
        digest.update(inst_id.encode())
        digest.update(bar.encode())
        digest.update(np.ascontiguousarray(self.rows).tobytes())
        self.dataset = digest.hexdigest()

    def closed(self, t_ms: int) -> int:
        """How many bars closed at or before t."""
        return bisect_right(self._ends, t_ms)

    def reference(self, lo: int, hi: int) -> dict[str, Any]:
        return {"dataset": self.dataset, "inst_id": self.inst_id, "bar": self.bar,
                "from": int(self.ts[lo]) if hi > lo else None, "to": int(self.ts[hi - 1]) if hi > lo else None,
                "count": hi - lo}


def window_for(view: SeriesView, reference: dict[str, Any]) -> list[list[float]]:
    """The candles a snapshot reference stands for, as the pipeline would have stored them."""
    if reference.get("dataset") != view.dataset:
        raise UserError("the candle data differs from the data this replay ran on (dataset digest mismatch)")
    if not reference.get("count"):
        return []
    lo = int(np.searchsorted(view.ts, reference["from"]))
    return view.rows[lo:lo + int(reference["count"])].tolist()


def instrument_of(world: World, inst_id: str) -> Instrument:
    """The instrument as okxlab reads it from ccxt's market (execution.exchange.instrument_from_market)."""
    spec = world.spec(inst_id)
    swap = spec.is_swap
    return Instrument(inst_id=inst_id, inst_type="SWAP" if swap else "SPOT", base_ccy=spec.base_ccy,
                      quote_ccy=spec.quote_ccy, ct_val=float(spec.ct_val) if swap else 1.0,
                      lot_sz=float(spec.lot_sz), min_sz=float(spec.min_sz), tick_sz=float(spec.tick_sz),
                      max_lever=float(spec.max_lever) if swap else 1.0)


def _side(pos: Any) -> str | None:
    """The side a simulator position holds: None when flat."""
    return None if pos is None or not pos.pos else ("long" if pos.pos > 0 else "short")


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


class InProcessReplay:
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
                self.quality_risk[key] = _quality_risk(view, self.window, self.quality_limits,
                                                       parse_bar(view.bar).ms)
        for agent in self.agents:
            for sym in agent.symbols:
                agent.signals[sym], agent.fragile[sym] = _history_signals(agent.planner, self._view(agent, sym),
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
        result.agents = summarize(self.env, self.replay.id, list(self.replay.agents)) if self.mode == "inline" \
            else self._summary_from_memory()
        with self.env.sessions.begin() as s:
            row = s.get(Replay, self.replay.id)
            row.status, row.finished_at = "done", utcnow()
            row.summary = {"ticks": result.ticks, "runs": result.runs, "statuses": statuses, "seconds": result.seconds,
                           "agents": result.agents, "mode": self.mode, "executed_runs": executed,
                           "records": result.records,
                           "datasets": {f"{k[0]} {k[1]}": {"sha256": v.dataset, "bars": len(v.ts)}
                                        for k, v in self.views.items()}}
            audit(s, "replay.finished", f"replay {self.replay.id} ({self.mode}): {total} runs over {len(ticks)} "
                  f"ticks in {result.seconds} s", data={"replay_id": self.replay.id, "statuses": statuses})
        return result

    # ---- fast mode: does this run need to execute? -----------------------------------------------------
    def _prepare_fast(self, ticks: list[datetime]) -> None:
        """Per tick and symbol, whether a run must look at the strategy's choice for each position side, and
        whether it must execute whatever the choice (quality may fail, a decision on its own window)."""
        ticks_ms = np.array([int(t.timestamp() * 1000) for t in ticks], dtype=np.int64)
        for agent in self.agents:
            for sym in agent.symbols:
                view, sig = self._view(agent, sym), agent.signals[sym]
                n = np.searchsorted(view.ends, ticks_ms, side="right")
                i = np.maximum(n - 1, 0)
                risk = self.quality_risk[(sym, view.bar)][n] | (view.ends[i] != ticks_ms) | agent.fragile[sym][i] | (n == 0)
                agent.closed[sym] = n.tolist()
                agent.look[sym] = {
                    None: (risk | sig.enter_long[i] | sig.enter_short[i]).tolist(),
                    "long": (risk | sig.exit_long[i] | sig.enter_short[i]).tolist(),
                    "short": (risk | sig.exit_short[i] | sig.enter_long[i]).tolist(),
                }
                agent.risky[sym] = risk.tolist()
                # per tick and side held, the first tick at or after it where the choice must be looked at
                agent.next_look[sym] = {}
                for side, look in agent.look[sym].items():
                    at = np.where(np.asarray(look, dtype=bool), np.arange(len(ticks)), len(ticks))
                    agent.next_look[sym][side] = np.minimum.accumulate(at[::-1])[::-1].tolist() + [len(ticks)]
        days = ticks_ms // DAY_MS
        starts = np.flatnonzero(np.diff(days)) + 1  # first tick of each new UTC day
        self.next_day = np.concatenate([starts, [len(ticks)]])[np.searchsorted(starts, np.arange(len(ticks)),
                                                                               side="right")].tolist()

    def _must_execute(self, agent: _Agent, k: int, tick: datetime) -> bool:
        """Fast mode: whether the run at tick k can change anything (see the module docstring)."""
        world = self.world
        assert world is not None
        acct = world.accounts[agent.api_key]
        if len(world.fills) != agent.fills_seen and any(f.api_key == agent.api_key
                                                        for f in world.fills[agent.fills_seen:]):
            return True  # the exchange filled something since the last run (a stop, a resting order)
        if agent.live_orders:
            return True
        for sym in agent.symbols:
            side = _side(acct.positions.get(sym))
            if agent.look[sym][side][k]:
                if agent.risky[sym][k]:
                    return True  # quality may fail, or the decision is taken on the run's own window
                if agent.planner.choice(agent.signals[sym], agent.closed[sym][k] - 1, side).action != "hold":
                    return True
        return not self._risk_quiet(agent, tick)

    def _risk_quiet(self, agent: _Agent, tick: datetime) -> bool:
        """Whether the run's account check would leave the risk state as it is (no halt, no breaker), with the
        inputs the run would see: equity at the world's clock, the peak, the day's start."""
        world = self.world
        assert world is not None
        acct = world.accounts[agent.api_key]
        flat = all(_side(acct.positions.get(sym)) is None for sym in agent.symbols)
        eq = acct.balances.get("USDT", 0.0) if flat and not world.resting_orders() else world.margin(acct)["eq"]
        day = tick.date()
        peak = max(agent.peak or agent.initial_equity, agent.initial_equity, eq)
        key = (peak, self._day_start(agent, tick), day, agent.state)
        # The account check only trips on losses (from the peak, from the day's start): with everything else
        # the same, if it found nothing at some equity it finds nothing at any higher one. Remember the lowest.
        if agent.equity_memo is not None and agent.equity_memo[0] == key and eq >= agent.equity_memo[1]:
            return True
        if self._account_trips(agent, eq, peak, key[1], tick):
            return False
        agent.equity_memo = (key, eq)
        return True

    @staticmethod
    def _account_trips(agent: _Agent, equity: float, peak: float, day_start: float, tick: datetime) -> bool:
        """Whether a run's account check at these figures would change the agent's risk state."""
        account = Account(equity=equity, cash=equity, available=equity, start_equity=agent.initial_equity,
                          peak_equity=peak, day_start_equity=day_start)
        return bool(risk_state.check_account(account, agent.cfg.limits, agent.state, tick).changes)

    def _quiet_until(self, k: int) -> int:
        """Fast mode, after a tick where every run was quiet: the first later tick whose runs must be looked at
        for what they hold, without looking: the next tick where the strategy's choice may act for the side
        each account holds, a new UTC day (its breaker state and day-start equity are new), or the first tick
        at or after the exchange's next event (a stop, a fill, a liquidation)."""
        world = self.world
        assert world is not None
        end = self.next_day[k]
        for agent in self.agents:
            if agent.live_orders:
                return k + 1
            acct = world.accounts[agent.api_key]
            for sym in agent.symbols:
                end = min(end, agent.next_look[sym][_side(acct.positions.get(sym))][k + 1])
        if end > k + 1:
            event = world.next_event_at(self.ticks_ms[end - 1])
            if event is not None:
                end = min(end, bisect_left(self.ticks_ms, event, k + 1))
        return end

    def _quiet_stretch(self, k: int, ticks: list[datetime]) -> int:
        """Fast mode: note the quiet runs of the ticks after k that need no look (see `_quiet_until`) and return
        the index of the next tick the drive must handle: at once when the stretch's equity is bounded (see
        `_quiet_in_bounds`; a flat account's is its cash), otherwise each tick's equity checked against the risk
        rules as its run would (a tick where they would trip is handed back to the drive)."""
        world = self.world
        assert world is not None
        end = self._quiet_until(k)
        if end <= k + 1:
            return k + 1
        if self._quiet_in_bounds(k, end, ticks):
            return end
        for j in range(k + 1, end):
            world.glide(self.ticks_ms[j])
            if not all(self._risk_quiet(agent, ticks[j]) for agent in self.agents):
                return j
            for agent in self.agents:
                self._note_quiet_run(agent, ticks[j])
        return end

    def _quiet_in_bounds(self, k: int, end: int, ticks: list[datetime]) -> bool:
        """The stretch of ticks k+1 .. end-1 at once, when each account holds at most one position and no order
        rests: its equity then moves with one price, monotonically, so the stretch's lowest and highest equity
        are those at its lowest and highest price. If the risk rules pass at the lowest equity against the
        highest peak the stretch can reach, they pass at every tick (they only trip on losses from the peak and
        from the day's start), and the runs are noted with their exact peak and last equity. False (nothing
        done) when that does not hold; the caller then checks tick by tick."""
        world = self.world
        assert world is not None
        if world.resting_orders():
            return False
        t_ms = self.ticks_ms[k + 1:end]
        plans = []
        for agent in self.agents:
            acct = world.accounts[agent.api_key]
            held = [sym for sym in agent.symbols if _side(acct.positions.get(sym)) is not None]
            if len(held) > 1 or any(p.pos and sym not in agent.symbols for sym, p in acct.positions.items()):
                return False
            extremes = [len(t_ms) - 1]  # the last tick's equity is the next runs' last snapshot
            if held:
                px = [world.market.last(held[0], t) for t in t_ms]
                if None in px:
                    return False  # a tick without a price: equity falls back to other prices there
                extremes += [px.index(min(px)), px.index(max(px))]
            # equity as the run's account check sees it (the exchange's) and as its snapshot books it (the ledger)
            seen = [(world.margin_at(acct, t_ms[i])["eq"] if held else acct.balances.get("USDT", 0.0),
                     self._ledger_equity(agent, ticks[k + 1 + i],
                                         {held[0]: px[i]} if held else None)) for i in extremes]
            low = min(eq for eq, _ in seen)
            peak = max(agent.peak or agent.initial_equity, agent.initial_equity, *(max(pair) for pair in seen))
            if self._account_trips(agent, low, peak, self._day_start(agent, ticks[k + 1]), ticks[k + 1]):
                return False
            plans.append((agent, max(booked for _, booked in seen), seen[0][1]))
        for agent, booked_high, booked_last in plans:
            agent.peak = booked_high if agent.peak is None else max(agent.peak, booked_high)
            agent.last_snapshot = (ticks[end - 1], booked_last)
            agent.runs += end - k - 1
            agent.turns += end - k - 1  # each would have held: through risk, taking its turn
            agent.statuses["completed"] = agent.statuses.get("completed", 0) + end - k - 1
        world.glide(self.ticks_ms[end - 1])
        return True

    def _note_quiet_run(self, agent: _Agent, tick: datetime) -> None:
        """A run that would hold everywhere: what it would leave behind that later runs read (its equity
        snapshot for the peak and the day's start, the run count)."""
        self._day_start(agent, tick)
        equity = self._ledger_equity(agent, tick)
        self._snapshot_taken(agent, tick, equity)
        agent.runs += 1
        agent.turns += 1  # it would have held: through risk, taking its turn
        agent.first_run = agent.first_run or tick
        agent.statuses["completed"] = agent.statuses.get("completed", 0) + 1

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
                asks, bids = world.market.book(spec, px, 5)
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
            trades = len(agent.ledger.closed) + len(agent.ledger.open)
            out.append({"agent": agent.cfg.name, "equity": final,
                        "return_pct": (final / agent.initial_equity - 1) * 100.0, "trades": trades,
                        "max_drawdown_pct": None})
        return sorted(out, key=lambda r: -r["return_pct"])


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


# ---- signals over the whole history, and the bars where they must be decided again -------------------

def _history_signals(planner: StrategyPlanner, view: SeriesView, window: int) -> tuple[Signals, np.ndarray]:
    """Signals for every bar of the series, and a mask of bars whose decision must be taken on the run's own
    window (near-ties; every bar for strategies that read recursive indicators)."""
    strategy = planner.strategy
    data = view.ohlcv
    signals = evaluate(strategy, data)
    n = len(data)
    fragile = np.zeros(n, dtype=bool)
    if any(c.operand is not None and c.operand.indicator in RECURSIVE for c in strategy.conditions()) or \
            any(getattr(s, "kind", "") == "atr" for s in (strategy.stop_loss, strategy.take_profit) if s is not None):
        fragile[:] = True  # their values depend on the window's start: decide every bar on its own window
        return signals, fragile
    from okxlab.strategies.indicators import IndicatorBook

    book = IndicatorBook(as_ohlcv(data))

    def line(op: Any) -> np.ndarray:
        return book.line(op.indicator, op.params, op.line)

    def near(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), a.shape)
        scale = np.maximum(np.abs(a), np.abs(b))
        with np.errstate(invalid="ignore"):
            out = np.abs(a - b) <= TIE_TOLERANCE * scale
        # a line that turns defined within the window can differ too: NaN next to a number is fragile
        return out | (np.isnan(a) != np.isnan(b))

    for c in strategy.conditions():
        s = c.signal
        if s == "always":
            continue
        if s in ("cross_above", "cross_below", "above", "below", "overbought", "oversold"):
            a = line(c.operand)
            b = line(c.other) if c.other is not None else float(c.level)  # type: ignore[arg-type]
            tie = near(a, b)
        elif s in ("touch_upper", "break_upper", "touch_lower", "break_lower"):
            upper = s.endswith("upper")
            band = book.line(c.operand.indicator, c.operand.params, "upper" if upper else "lower")
            price = (data.high if upper else data.low) if s.startswith("touch") else data.close
            tie = near(price, band)
        elif s.endswith("_alignment"):
            lines = [book.line(c.operand.indicator, (("period", p),), "value") for p in c.periods]
            tie = np.zeros(n, dtype=bool)
            for x, y in zip(lines, lines[1:], strict=False):
                tie |= near(x, y)
        else:  # divergences, candle patterns: no cheap tie test; decide on the window
            fragile[:] = True
            return signals, fragile
        if s.startswith("cross") or s.startswith("break"):
            tie = tie | np.concatenate([[True], tie[:-1]])  # the previous bar takes part in a cross
        within = max(int(getattr(c, "within", 1) or 1), 1)
        if within > 1:  # a tie anywhere in the lookback
            counts = np.concatenate([[0], np.cumsum(tie, dtype=np.int64)])
            idx = np.arange(n)
            tie = counts[idx + 1] - counts[np.maximum(idx + 1 - within, 0)] > 0
        fragile |= tie
    # the first bars of the history: a run's window and the history start at the same bar, nothing differs;
    # bars whose window is shorter than the lookback of any indicator are decided on their window anyway
    fragile[:window] = True
    return signals, fragile


def _quality_risk(view: SeriesView, window: int, limits: QualityLimits, bar_ms: int) -> np.ndarray:
    """For each number of closed bars n, whether a run seeing bars [n - window, n) might not pass the quality
    checks (too few bars, missing bars, inconsistent OHLC, the ticker far from the last close). A superset of
    the runs `assess` fails: fast mode executes those runs and lets `assess` decide."""
    ts = view.ts
    total = len(ts)
    n = np.arange(total + 1)
    lo = np.maximum(n - window, 0)
    count = n - lo
    risk = count < max(limits.min_candles, 1)
    last = np.maximum(n - 1, 0)
    expected = (ts[last] - ts[np.minimum(lo, total - 1)]) // bar_ms + 1
    risk |= expected != count
    o, h, low, c = view.cols[1], view.cols[2], view.cols[3], view.cols[4]
    bad = (h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (low <= 0) | ~np.isfinite(np.column_stack(view.cols[1:5])).all(axis=1)
    bad_count = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    risk |= (bad_count[n] - bad_count[lo]) > 0
    next_open = np.append(o, np.nan)[n]  # the price at the tick: the open of the bar starting there
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.abs(next_open / c[last] - 1.0) * 100.0
    risk |= ~(deviation <= limits.ticker_deviation_pct / 2)
    return risk


def run_inprocess(env: StageEnv, replay: Replay, simulator: Simulator, *, mode: str,
                  progress: Progress | None = None, full_records: bool | None = None) -> InProcessResult:
    return InProcessReplay(env, replay, simulator, mode=mode, progress=progress, full_records=full_records).run()


def replay_in_process(env: StageEnv, *, agents: list[str], start: datetime, end: datetime, bar: str, mode: str,
                      data_paths: tuple[str, ...] = (), offline_planners: bool = False,
                      progress: Progress | None = None, simulator: Simulator | None = None,
                      full_records: bool | None = None) -> InProcessResult:
    """`replay range --mode inline|fast`: a replay row, an in-process simulator, the drive."""
    from okxlab.replay.range import create_replay

    if mode not in MODES:
        raise UserError(f"--mode {mode!r} is not an in-process mode ({', '.join(MODES)})")
    sim = simulator or Simulator(agents=env.config, data_paths=data_paths, default_clock="replay")
    replay = create_replay(env, kind="range", agents=agents, start=start, end=end, bar=bar,
                           offline_planners=offline_planners, fresh_llm=False)
    try:
        return run_inprocess(env, replay, sim, mode=mode, progress=progress, full_records=full_records)
    except BaseException:
        with env.sessions.begin() as s:
            row = s.get(Replay, replay.id)
            row.status, row.finished_at = "failed", utcnow()
        raise
