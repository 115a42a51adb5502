"""Agent trading states in the running pipeline: the drawdown halt, the operator's resume, the global pause."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from okxlab.cli.main import main
from okxlab.db import models as m
from okxlab.replay.range import create_replay, drive, open_world, ticks_between
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

START = datetime(2022, 11, 1, tzinfo=UTC)
ALWAYS_LONG = {
    "schema_version": "okxlab.strategy.v1", "name": "always_long",
    "description": "long whenever flat, tight stop: losses come quickly",
    "entries": {"long": {"logic": "and", "conditions": [{"signal": "always"}]}},
    "stops": {"stop_loss": {"percent": 0.5}}, "leverage": 5, "confidence": 1,
}


def _config(tmp_path: Path) -> str:
    doc = tmp_path / "always_long.json"
    doc.write_text(json.dumps(ALWAYS_LONG))
    return f"""
[[agents]]
name = "gambler"
planner = "strategy"
strategy = "{doc}"
symbols = ["BTC-USDT-SWAP"]
[agents.risk]
risk_budget_pct = 1.5
max_drawdown_pct = 2.0
daily_loss_pct = 50
max_consecutive_rejections = 0
"""


def _cli(args: list[str], p) -> str:  # noqa: ANN001
    result = CliRunner().invoke(main, args, env={"OKXLAB_DATABASE_URL": p.db_url}, catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def _opening_orders(p, since_tick: datetime | None = None) -> list[m.Order]:  # noqa: ANN001
    with p.env.sessions() as s:
        q = select(m.Order).join(m.Run, m.Run.id == m.Order.run_id).where(m.Order.purpose == "open")
        if since_tick is not None:
            q = q.where(m.Run.scheduled_for >= since_tick)
        return s.scalars(q).all()


def test_drawdown_halts_the_agent_until_a_human_resumes_it(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    from workers.tasks import start_run

    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, _config(tmp_path)) as p:
        ticks = ticks_between(START, START + timedelta(days=5), "4H")
        replay = create_replay(p.env, kind="range", agents=["gambler"], start=ticks[0], end=ticks[-1], bar="4H",
                               offline_planners=True, fresh_llm=False)
        world = open_world(p.env, replay, p.sim.admin, p.sim.world_url, ticks[0])
        halted_at = None
        book = f"replay:{replay.id}"
        for i, tick in enumerate(ticks[:24]):
            drive(p.env, replay, p.sim.admin, world, [tick], start_run)
            with p.env.sessions() as s:
                if s.get(m.RiskStateRecord, ("gambler", book)).trading_state == "HALTED":
                    halted_at = i
                    break
        assert halted_at is not None, "three stop-outs at 1.5% never crossed a 2% drawdown"
        with p.env.sessions() as s:
            state = s.get(m.RiskStateRecord, ("gambler", book))
            live = s.get(m.RiskStateRecord, ("gambler", "sim"))
            events = s.scalars(select(m.AuditEvent).where(m.AuditEvent.kind == "risk.drawdown_halt")).all()
        assert state.state_reason == "DRAWDOWN_HALT" and len(events) == 1
        assert live is None or live.trading_state == "ACTIVE"  # a replay's halt never touches live trading
        assert "below the peak" in events[0].message
        listed = json.loads(_cli(["agents", "list", "--json"], p))
        assert listed[0]["trading_state"] == "HALTED" and listed[0]["state_reason"] == "DRAWDOWN_HALT"

        # halted: the strategy keeps proposing entries, the risk engine rejects them, nothing is opened
        after_halt = ticks[halted_at + 1: halted_at + 4]
        drive(p.env, replay, p.sim.admin, world, after_halt, start_run)
        with p.env.sessions() as s:
            verdicts = s.scalars(select(m.RiskVerdictRecord).join(m.Run, m.Run.id == m.RiskVerdictRecord.run_id)
                                 .where(m.Run.scheduled_for >= after_halt[0], m.RiskVerdictRecord.action == "open_long")).all()
        assert verdicts and all(v.outcome == "reject" and "AGENT_HALTED" in v.reasons for v in verdicts)
        assert _opening_orders(p, after_halt[0]) == []

        # a human resumes it: trading goes on from the next run, and the resume is audited
        assert "is now ACTIVE" in _cli(["agents", "resume", "gambler", "--book", book], p)
        later = ticks[halted_at + 4: halted_at + 6]
        drive(p.env, replay, p.sim.admin, world, later, start_run)
        with p.env.sessions() as s:
            kinds = [e.kind for e in s.scalars(select(m.AuditEvent).where(m.AuditEvent.agent == "gambler")
                                               .order_by(m.AuditEvent.id))]
            state = s.get(m.RiskStateRecord, ("gambler", book)).trading_state
        assert "risk.resumed" in kinds
        assert state == "ACTIVE" and _opening_orders(p, later[0])


def _scheduled_run(p, schedule: int) -> str:  # noqa: ANN001
    """One run of a schedule of the pipeline (book `sim`, the realtime simulator world), to its end."""
    from okxlab.pipeline.dispatch import create_runs
    from okxlab.replay.range import wait_for
    from workers.tasks import start_run

    tick = p.env.now().replace(second=0, microsecond=0)
    with p.env.sessions.begin() as s:
        (run_id,) = create_runs(s, f"schedule:{schedule}", [("gambler", "sim")], tick, now=p.env.now())
    start_run(run_id)
    return wait_for(p.env, [run_id], 60)[run_id]


def test_the_global_pause_blocks_entries_for_every_trading_agent(pg_url: str, redis_prefix: str,
                                                                 tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, _config(tmp_path)) as p:
        _cli(["risk", "pause", "--reason", "exchange incident"], p)
        assert _scheduled_run(p, 1) == "rejected"
        assert _opening_orders(p) == []
        with p.env.sessions() as s:
            reasons = [v.reasons for v in s.scalars(select(m.RiskVerdictRecord))]
        assert reasons and all("GLOBAL_PAUSE" in r for r in reasons)
        assert json.loads(_cli(["risk", "exposure", "--json"], p))["paused"] is True
        # a replay of history is not trading: the operator's pause does not apply to it
        replayed = p.replay(["gambler"], START, START)
        assert replayed.statuses == {"completed": 1} and len(_opening_orders(p)) == 1
        _cli(["risk", "resume"], p)
        assert _scheduled_run(p, 2) == "completed"
        with p.env.sessions() as s:
            opened = s.scalars(select(m.Order).where(m.Order.purpose == "open", m.Order.book == "sim")).all()
        assert len(opened) == 1


@pytest.mark.parametrize("args", [["risk", "resume"], ["agents", "resume", "gambler"]])
def test_switches_refuse_what_is_already_so(pg_url: str, redis_prefix: str, tmp_path: Path, args: list[str]) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, _config(tmp_path)) as p:
        result = CliRunner().invoke(main, args, env={"OKXLAB_DATABASE_URL": p.db_url})
        assert result.exit_code != 0 and result.stderr.startswith("okxlab: error: ")
