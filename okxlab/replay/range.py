"""Replaying history through the real pipeline, tick by tick, on a simulator world with a replay clock.

For each bar boundary T of the window: the world's clock is set to T (fills and stops between the previous
tick and T happen on the recorded price path), one run per agent is created for T, their stage chains are
sent to the workers, and the driver waits until every run of T has ended before moving the clock. A run at
T can therefore see nothing after T: the simulator serves nothing after its clock, and the snapshot keeps
only bars closed by T. The same stage code runs as in live trading.

Each replay has its own world, so its accounts start at their initial equity and its ledger is its own
book (`replay:<id>`); several replays can run at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from okxlab.agents import sync_agents
from okxlab.db.models import Replay, Run, utcnow
from okxlab.db.ops import audit
from okxlab.errors import UserError
from okxlab.marketdata.bars import bar_ms
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.stages import TERMINAL
from okxlab.simulator.admin import AdminClient

StartRun = Callable[..., None]
Progress = Callable[[int, int, dict[str, int]], None]


@dataclass
class RangeResult:
    replay_id: int
    ticks: int
    runs: int
    statuses: dict[str, int] = field(default_factory=dict)
    # Per agent, best first, the same keys in every mode: agent, equity, return_pct, trades (closed round
    # trips), open (positions still open), max_drawdown_pct (None where the mode did not record every run).
    agents: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    # Buy-and-hold of the benchmark over the window: symbol, return_pct (None if unknown), note.
    baseline: dict[str, Any] = field(default_factory=dict)


def _tick_range(start: datetime, end: datetime, bar: str) -> range:
    """The bar boundaries in [start, end] in ms (start rounded up to a boundary), not yet listed."""
    step = bar_ms(bar)
    first = -(-int(start.timestamp() * 1000) // step) * step
    return range(first, int(end.timestamp() * 1000) + 1, step)


def ticks_between(start: datetime, end: datetime, bar: str) -> list[datetime]:
    """Bar boundaries in [start, end] (start rounded up to a boundary)."""
    return [datetime.fromtimestamp(ms / 1000, UTC) for ms in _tick_range(start, end, bar)]


def count_ticks(start: datetime, end: datetime, bar: str) -> int:
    """len(ticks_between(...)) without making the list (a window of centuries must be refusable cheaply)."""
    return len(_tick_range(start, end, bar))


def create_replay(env: StageEnv, *, kind: str, agents: list[str], start: datetime, end: datetime, bar: str,
                  offline_planners: bool, fresh_llm: bool) -> Replay:
    for name in agents:
        env.config.agent(name)  # unknown agents are refused before anything is written
    if end < start:
        raise UserError(f"the replay window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    with env.sessions.begin() as s:
        sync_agents(s, env.config)
        replay = Replay(kind=kind, agents=agents, start=start, end=end, bar=bar, offline_planners=offline_planners,
                        fresh_llm=fresh_llm, status="running")
        s.add(replay)
        s.flush()
        audit(s, "replay.started", f"{kind} replay {replay.id}: {', '.join(agents)} from {start.isoformat()} to "
              f"{end.isoformat()} ({bar})", data={"replay_id": replay.id})
    return replay


def wait_for(env: StageEnv, run_ids: list[str], timeout: float, poll: float = 0.01) -> dict[str, str]:
    """Block until every run has ended; returns run id → status. Raises if one is still moving at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with env.sessions() as s:
            rows = dict(s.execute(select(Run.id, Run.status).where(Run.id.in_(run_ids))).all())
        if all(st in TERMINAL for st in rows.values()) and len(rows) == len(run_ids):
            return rows
        if time.monotonic() > deadline:
            with env.sessions() as s:
                stuck = s.scalars(select(Run).where(Run.id.in_(run_ids), Run.status.not_in(TERMINAL))).all()
                detail = ", ".join(f"{r.id} in {r.stage or 'queue'}" for r in stuck)
            raise UserError(f"replay stalled: run(s) still not finished after {timeout:.0f} s: {detail}; "
                            "are workers consuming the stage queues?")
        time.sleep(poll)


def open_world(env: StageEnv, replay: Replay, admin: AdminClient, world_url: Callable[[str], str], first_tick: datetime,
               faults: dict[str, Any] | None = None) -> str:
    """Create the replay's own simulator world (replay clock at the first tick) and record its URL."""
    world = f"replay-{replay.id}"
    admin.create_world(world, clock="replay", start=int(first_tick.timestamp() * 1000), faults=faults)
    with env.sessions.begin() as s:
        s.get(Replay, replay.id).exchange_url = world_url(world)
    replay.exchange_url = world_url(world)
    return world


def drive(env: StageEnv, replay: Replay, admin: AdminClient, world: str, ticks: list[datetime], start_run: StartRun,
          *, progress: Progress | None = None, tick_timeout: float = 300.0,
          statuses: dict[str, int] | None = None) -> dict[str, int]:
    """Run every agent of `replay` at each tick, in order; each tick's runs end before the clock moves on."""
    book = f"replay:{replay.id}"
    statuses = statuses if statuses is not None else {}
    for i, tick in enumerate(ticks):
        admin.set_clock(world, int(tick.timestamp() * 1000))
        with env.sessions.begin() as s:
            run_ids = create_runs(s, book, [(a, book) for a in replay.agents], tick, replay_id=replay.id,
                                  now=utcnow())
        for run_id in run_ids:
            start_run(run_id)
        for status in wait_for(env, run_ids, tick_timeout).values():
            statuses[status] = statuses.get(status, 0) + 1
        if progress:
            progress(i + 1, len(ticks), statuses)
    return statuses


def run_range(env: StageEnv, replay: Replay, admin: AdminClient, world_url: Callable[[str], str], start_run: StartRun,
              *, progress: Progress | None = None, tick_timeout: float = 300.0,
              faults: dict[str, Any] | None = None) -> RangeResult:
    """Drive `replay` over its whole window. `faults`: simulator fault settings for its world (reliability tests)."""
    started = time.monotonic()
    ticks = ticks_between(replay.start, replay.end, replay.bar)
    if not ticks:
        raise UserError(f"no {replay.bar} bar boundary between {replay.start.isoformat()} and {replay.end.isoformat()}")
    world = open_world(env, replay, admin, world_url, ticks[0], faults)
    statuses = drive(env, replay, admin, world, ticks, start_run, progress=progress, tick_timeout=tick_timeout)
    total = sum(statuses.values())
    result = RangeResult(replay_id=replay.id, ticks=len(ticks), runs=total, statuses=statuses,
                         seconds=round(time.monotonic() - started, 2))
    result.agents = summarize(env, replay.id, list(replay.agents))
    result.baseline = book_baseline(env, replay.id)
    with env.sessions.begin() as s:
        row = s.get(Replay, replay.id)
        row.status, row.finished_at = "done", utcnow()
        row.summary = {"ticks": result.ticks, "runs": result.runs, "statuses": statuses, "seconds": result.seconds,
                       "agents": result.agents, "baseline": result.baseline}
        audit(s, "replay.finished", f"replay {replay.id}: {total} runs over {len(ticks)} ticks in {result.seconds} s",
              data={"replay_id": replay.id, "statuses": statuses})
    return result


def summarize(env: StageEnv, replay_id: int, agents: list[str]) -> list[dict[str, Any]]:
    """Per agent: final equity, return, trades and max drawdown in this replay's book, best first."""
    from okxlab.review.metrics import load_metrics

    book = f"replay:{replay_id}"
    out = []
    with env.sessions() as s:
        for name in agents:
            perf = load_metrics(s, name, book).performance
            initial = env.config.agent(name).initial_equity
            final = perf.equity_end if perf.equity_end is not None else initial
            out.append({"agent": name, "equity": final, "return_pct": (final / initial - 1) * 100.0,
                        "trades": perf.trades, "open": perf.open_trades,
                        "max_drawdown_pct": (perf.max_drawdown.depth or 0.0) * 100.0})
    return sorted(out, key=lambda r: -r["return_pct"])


def book_baseline(env: StageEnv, replay_id: int) -> dict[str, Any]:
    """Buy-and-hold of the review benchmark over the replay, from the prices its runs saw (as the leaderboard)."""
    from okxlab.review.leaderboard import build_leaderboard
    from okxlab.review.settings import ReviewSettings

    settings = ReviewSettings.from_config(env.config)
    with env.sessions() as s:
        bh = build_leaderboard(s, f"replay:{replay_id}", settings=settings).buy_and_hold
    return baseline(bh.symbol, bh.price_start, bh.price_end, bh.note)


def baseline(symbol: str, first: float | None, last: float | None, note: str | None = None) -> dict[str, Any]:
    known = bool(first and last)
    return {"symbol": symbol, "return_pct": (last / first - 1) * 100.0 if known else None,
            "first": first if known else None, "last": last if known else None,
            "note": note or ("" if known else f"no {symbol} prices over the window")}


def latest_window(admin: AdminClient, symbols: list[str], bar: str, ticks: int, warmup_bars: int) -> tuple[datetime, datetime]:
    """The most recent stretch of `ticks` bars where every symbol has data (after `warmup_bars` of history)."""
    spans = admin.data().get("instruments", {})
    missing = [s for s in symbols if s not in spans]
    if missing:
        raise UserError(f"the simulator has no data for {', '.join(missing)}")
    first = max(int(spans[s]["start"]) for s in symbols)
    last = min(int(spans[s]["end"]) for s in symbols)
    step = bar_ms(bar)
    end_ms = (last // step) * step
    start_ms = end_ms - (ticks - 1) * step
    if start_ms - warmup_bars * step < first:
        raise UserError(f"not enough common history for {ticks} {bar} ticks after {warmup_bars} bars of warm-up")
    return (datetime.fromtimestamp(start_ms / 1000, UTC), datetime.fromtimestamp(end_ms / 1000, UTC))

