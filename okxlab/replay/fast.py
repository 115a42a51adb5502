"""Fast mode: which runs of an in-process replay can change something, and passing over the others.

A run that would plan `hold` for every symbol and leave the risk state as it is changes nothing: fast mode
counts it and moves on (the module docstring of okxlab/replay/inprocess.py says when a run must execute).
Stretches of such runs are passed over without visiting each one: up to the next tick where the strategy's
choice may act for the side each account holds, a new UTC day, or the exchange's next event (a stop, a fill,
a liquidation), checking the stretch's equity against the risk rules at its price extremes.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime
from typing import Any

import numpy as np

from okxlab.domain import Account
from okxlab.marketdata.bars import DAY_MS
from okxlab.risk import state as risk_state


def _side(pos: Any) -> str | None:
    """The side a simulator position holds: None when flat."""
    return None if pos is None or not pos.pos else ("long" if pos.pos > 0 else "short")


class FastMode:
    """The skip logic of fast mode, mixed into InProcessReplay (it reads the replay's world, agents and
    ticks, and notes skipped runs as the runs would have left them)."""

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

    def _must_execute(self, agent: Any, k: int, tick: datetime) -> bool:
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

    def _risk_quiet(self, agent: Any, tick: datetime) -> bool:
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
    def _account_trips(agent: Any, equity: float, peak: float, day_start: float, tick: datetime) -> bool:
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

    def _note_quiet_run(self, agent: Any, tick: datetime) -> None:
        """A run that would hold everywhere: what it would leave behind that later runs read (its equity
        snapshot for the peak and the day's start, the run count)."""
        self._day_start(agent, tick)
        equity = self._ledger_equity(agent, tick)
        self._snapshot_taken(agent, tick, equity)
        agent.runs += 1
        agent.turns += 1  # it would have held: through risk, taking its turn
        agent.first_run = agent.first_run or tick
        agent.statuses["completed"] = agent.statuses.get("completed", 0) + 1
