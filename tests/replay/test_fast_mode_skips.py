"""Fast mode skips runs it can prove quiet (flat stretches at once, open positions tick by tick against the
risk rules, up to the exchange's next stop). It must still decide what inline mode decides, where every run
executes (inline itself is checked against the pipeline in test_inprocess_modes.py): here with stops tight
enough to fire between runs, a daily loss breaker and a drawdown halt that trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from okxlab.bootstrap import prepare
from okxlab.config import load_config
from okxlab.db import models as m
from okxlab.pipeline.env import build_env
from okxlab.replay.inprocess import replay_in_process
from okxlab.simulator.simulator import Simulator

CONFIG = """
[pipeline]
candles = 60

[[agents]]
name = "tight"
planner = "strategy"
strategy = "builtin:sma_cross"
symbols = ["BTC-USDT-SWAP"]
bar = "15m"
[agents.params]
fast = 5
slow = 20
stop_pct = 0.5
[agents.risk]
risk_budget_pct = 3.0

[[agents]]
name = "daily"
planner = "strategy"
strategy = "builtin:sma_cross"
symbols = ["BTC-USDT-SWAP"]
bar = "15m"
[agents.params]
fast = 8
slow = 30
stop_pct = 10
[agents.risk]
risk_budget_pct = 5.0
daily_loss_pct = 0.5

[[agents]]
name = "fragile"
planner = "strategy"
strategy = "builtin:sma_cross"
symbols = ["BTC-USDT-SWAP"]
bar = "15m"
[agents.params]
fast = 12
slow = 40
stop_pct = 10
[agents.risk]
risk_budget_pct = 5.0
max_drawdown_pct = 2.0
"""

START = datetime(2026, 1, 10, tzinfo=UTC)
END = START + timedelta(days=24)
AGENTS = ["tight", "daily", "fragile"]


def _book(s, replay_id: int) -> dict:  # noqa: ANN001
    book = f"replay:{replay_id}"
    runs = s.scalars(select(m.Run).where(m.Run.replay_id == replay_id)).all()
    key = {r.id: (r.agent, r.scheduled_for) for r in runs}
    return {
        "fills": [(f.agent, f.side, f.contracts, f.price, f.fee, f.ts, f.exit_reason, f.realized_pnl)
                  for f in s.scalars(select(m.Fill).where(m.Fill.book == book).order_by(m.Fill.ts, m.Fill.agent,
                                                                                       m.Fill.id))],
        "positions": [(p.agent, p.side, p.entry_price, p.exit_price, p.opened_at, p.closed_at, p.exit_reason,
                       p.realized_pnl)
                      for p in s.scalars(select(m.PositionRecord).where(m.PositionRecord.book == book)
                                         .order_by(m.PositionRecord.opened_at, m.PositionRecord.agent))],
        "orders": sorted((key[o.run_id], o.side, o.contracts, o.state, o.stop_loss, o.avg_price)
                         for o in s.scalars(select(m.Order).where(m.Order.book == book))),
        "risk": sorted((key[e.run_id], e.kind) for e in s.scalars(select(m.AuditEvent).where(
            m.AuditEvent.run_id.in_(list(key)), m.AuditEvent.kind.like("risk.%")))),
        "equity": {key[e.run_id]: (e.cash, e.equity) for e in s.scalars(
            select(m.EquitySnapshot).where(m.EquitySnapshot.run_id.in_(list(key))))},
        "verdicts": {(key[v.run_id], v.idx): (v.outcome, v.reasons, v.order, v.inputs["equity"],
                                              v.inputs["peak_equity"], v.inputs["day_start_equity"])
                     for v in s.scalars(select(m.RiskVerdictRecord).where(m.RiskVerdictRecord.run_id.in_(list(key))))},
        "states": {r.agent: (r.trading_state, r.state_reason, r.daily_loss_day) for r in s.scalars(
            select(m.RiskStateRecord).where(m.RiskStateRecord.book == book))},
    }


def test_fast_mode_decides_what_inline_decides_when_stops_and_limits_fire(pg_url: str, tmp_path: Path,
                                                                          monkeypatch) -> None:  # noqa: ANN001
    cfg_file = tmp_path / "okxlab.toml"
    cfg_file.write_text(CONFIG)
    monkeypatch.setenv("OKXLAB_CONFIG", str(cfg_file))
    config = load_config()
    prepare(config, pg_url, seed=False)
    env = build_env(config, pg_url)
    inline = replay_in_process(env, agents=AGENTS, start=START, end=END, bar="15m", mode="inline",
                               simulator=Simulator(agents=config))
    fast = replay_in_process(env, agents=AGENTS, start=START, end=END, bar="15m", mode="fast",
                             simulator=Simulator(agents=config), full_records=True)
    with env.sessions() as s:
        a, b = _book(s, inline.replay_id), _book(s, fast.replay_id)

    assert inline.statuses == fast.statuses
    assert fast.executed < fast.runs  # runs were skipped...
    for key in ("fills", "positions", "orders", "risk", "states"):
        assert b[key] == a[key], key  # ...and nothing was decided differently
    # the runs fast mode executed saw the account as inline's did: equity, peak (drawdown), day start (breaker)
    for key in ("equity", "verdicts"):
        assert b[key] and all(a[key][k] == v for k, v in b[key].items()), key
    # what makes the comparison mean something: stops filled between runs, and both limits tripped
    reasons = [p[6] for p in a["positions"]]
    assert reasons.count("stop_loss") >= 5, reasons
    kinds = [kind for _, kind in a["risk"]]
    assert kinds.count("risk.daily_loss_limit") >= 2 and "risk.daily_loss_cleared" in kinds, kinds
    assert "risk.drawdown_halt" in kinds, kinds
