"""`replay range --mode inline|fast` decide exactly what `--mode pipeline` decides (real workers, Redis, Postgres
and the simulator over HTTP): the same runs, the same plans and verdicts, the same orders and fills."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from okxlab.db import models as m
from okxlab.pipeline.env import build_env
from okxlab.replay.inprocess import replay_in_process
from okxlab.simulator.simulator import Simulator
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CONFIG = """
[pipeline]
candles = 60

[[agents]]
name = "smacross"
planner = "strategy"
strategy = "builtin:sma_cross"
symbols = ["BTC-USDT-SWAP"]
[agents.params]
fast = 3
slow = 8
stop_pct = 4

[[agents]]
name = "trend"
planner = "strategy"
strategy = "builtin:ema_trend"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
[agents.risk]
risk_budget_pct = 2.0
"""

START = datetime(2022, 11, 1, tzinfo=UTC)
END = START + timedelta(days=6)
AGENTS = ["smacross", "trend"]


def _book(s, replay_id: int) -> dict:  # noqa: ANN001
    book = f"replay:{replay_id}"
    runs = s.scalars(select(m.Run).where(m.Run.replay_id == replay_id).order_by(m.Run.scheduled_for, m.Run.agent)).all()
    ids = [r.id for r in runs]
    by_run = {r.id: (r.agent, r.scheduled_for) for r in runs}

    def rows(model, *order):  # noqa: ANN001, ANN002
        return s.scalars(select(model).where(model.run_id.in_(ids)).order_by(*order)).all()

    return {
        "runs": [(r.agent, r.scheduled_for, r.status, r.reason) for r in runs],
        "fills": [(f.agent, f.symbol, f.side, f.contracts, f.price, f.fee, f.ts, f.exit_reason, f.realized_pnl)
                  for f in s.scalars(select(m.Fill).where(m.Fill.book == book).order_by(m.Fill.ts, m.Fill.agent))],
        "positions": [(p.agent, p.symbol, p.side, p.entry_price, p.exit_price, p.opened_at, p.closed_at, p.exit_reason,
                       p.status, p.realized_pnl)
                      for p in s.scalars(select(m.PositionRecord).where(m.PositionRecord.book == book)
                                         .order_by(m.PositionRecord.opened_at, m.PositionRecord.agent))],
        "orders": [(by_run[o.run_id], o.symbol, o.side, o.contracts, o.state, o.stop_loss, o.filled, o.avg_price)
                   for o in rows(m.Order, m.Order.run_id)],
        "verdicts": {(by_run[v.run_id], v.idx): (v.action, v.outcome, v.reasons, v.decision, v.order)
                     for v in rows(m.RiskVerdictRecord)},
        "plans": {by_run[p.run_id]: (p.planner, p.document) for p in rows(m.PlanRecord)},
        "quality": {(by_run[q.run_id], q.symbol): (q.outcome, q.reasons) for q in rows(m.QualityCheck)},
        "features": {(by_run[f.run_id], f.symbol): f.values for f in rows(m.FeatureSet)},
        "market": {(by_run[x.run_id], x.symbol): (x.last, x.bid, x.ask, x.instrument, x.order_book)
                   for x in rows(m.MarketSnapshot)},
        "accounts": {by_run[a.run_id]: (a.equity, a.cash, a.available, a.positions) for a in rows(m.AccountSnapshot)},
        "equity": {by_run[e.run_id]: (e.cash, e.equity, e.positions) for e in rows(m.EquitySnapshot)},
        "stages": sorted((by_run[r.run_id], r.stage, r.status) for r in rows(m.StageRecord)),
        "outputs": {(by_run[r.run_id], r.stage): _plain(r.output, book) for r in rows(m.StageRecord)},
        "order_rows": [(by_run[o.run_id], o.idx, o.purpose, o.reduce_only, o.leverage, o.take_profit, o.price,
                        o.reference_price, o.fee, o.send_attempts, o.last_error, o.tag, o.reply and
                        {k: v for k, v in o.reply.items() if k not in ("ordId", "clOrdId", "cTime", "uTime")})
                       for o in rows(m.Order, m.Order.run_id)],
        "verdict_inputs": {(by_run[v.run_id], v.idx): {k: x for k, x in v.inputs.items() if not k.endswith(("_id", "_ids"))}
                           for v in rows(m.RiskVerdictRecord)},
        "epochs": {by_run[a.run_id]: a.trading_epoch for a in rows(m.AccountSnapshot)},
        "audit": {run: [(e.kind, _plain(e.message, book), _plain(e.data, book)) for e in events]
                  for run, events in _audit_by_run(s, ids, by_run).items()},
        "risk_state": [(r.trading_state, r.state_reason, r.consecutive_invalid_plans, r.consecutive_rejections,
                        r.daily_loss_day, r.trading_run_id, r.trading_epoch)
                       for r in s.scalars(select(m.RiskStateRecord).where(m.RiskStateRecord.book == book))],
    }


def _audit_by_run(s, ids: list[str], by_run: dict) -> dict:  # noqa: ANN001
    out: dict = {}
    for e in s.scalars(select(m.AuditEvent).where(m.AuditEvent.run_id.in_(ids)).order_by(m.AuditEvent.id)):
        out.setdefault(by_run[e.run_id], []).append(e)
    return out


_IDS = re.compile(r"\b(o[xm][0-9a-f]{30}|[A-Za-z0-9_-]{1,14}-\d{8}T\d{6}-[0-9a-f]{8})\b")


def _plain(value, book: str):  # noqa: ANN001, ANN202
    """`value` with what names a replay rather than a decision taken out: its book, its runs' ids, their
    clOrdIds (derived from run ids) and database row ids."""
    if isinstance(value, dict):
        return {k: (None if k in ("order_id",) else _plain(v, book)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, book) for v in value]
    if isinstance(value, str):
        return _IDS.sub("ID", value.replace(book, "BOOK"))
    return value


def test_inline_and_fast_replays_decide_what_the_pipeline_decides(pg_url: str, redis_prefix: str,
                                                                 tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        piped = p.replay(AGENTS, START, END)
        env = build_env(p.config, pg_url)
        inline = replay_in_process(env, agents=AGENTS, start=START, end=END, bar="4H", mode="inline",
                                   simulator=Simulator(agents=p.config))
        fast = replay_in_process(env, agents=AGENTS, start=START, end=END, bar="4H", mode="fast",
                                 simulator=Simulator(agents=p.config), full_records=True)
        minimal = replay_in_process(env, agents=AGENTS, start=START, end=END, bar="4H", mode="fast",
                                    simulator=Simulator(agents=p.config))
        with env.sessions() as s:
            a, b, c = _book(s, piped.replay_id), _book(s, inline.replay_id), _book(s, fast.replay_id)
            d = _book(s, minimal.replay_id)

    assert piped.statuses == inline.statuses == fast.statuses == minimal.statuses
    assert a["fills"], "the window must trade for this test to mean anything"
    assert {k for k, *_ in a["fills"]} == set(AGENTS)
    # inline: every record of every run, as the pipeline wrote it
    for key in ("runs", "fills", "positions", "orders", "verdicts", "plans", "quality", "features", "market",
                "accounts", "equity", "stages", "outputs", "order_rows", "verdict_inputs", "epochs", "audit",
                "risk_state"):
        assert b[key] == a[key], key
    assert any(kind.startswith("order.") for events in a["audit"].values() for kind, *_ in events)
    # fast: the same trades; the runs it executed are recorded as the pipeline recorded them
    for key in ("fills", "positions", "orders", "order_rows", "risk_state"):
        assert c[key] == a[key], key
    assert fast.executed < fast.runs
    for key in ("verdicts", "plans", "quality", "accounts", "equity", "outputs", "verdict_inputs", "epochs", "audit"):
        assert c[key] and all(a[key][k] == v for k, v in c[key].items()), key
    # minimal records: the same trades and equity at the runs that executed, no stage tables
    for key in ("fills", "positions", "orders"):
        assert d[key] == a[key], key
    assert d["equity"] == c["equity"] and not d["plans"] and not d["stages"]
    # the summaries: the same columns, the same figures (trades closed, positions open), a baseline in each
    def summary(result) -> list:  # noqa: ANN001
        return [(r["agent"], round(r["equity"], 6), round(r["return_pct"], 6), r["trades"], r["open"])
                for r in result.agents]

    assert summary(piped) == summary(inline) == summary(fast) == summary(minimal)
    assert sum(r["trades"] + r["open"] for r in piped.agents) > 0
    assert piped.baseline == inline.baseline and piped.baseline["return_pct"] is not None
    assert fast.baseline["return_pct"] == pytest.approx(piped.baseline["return_pct"], abs=0.05), (fast.baseline,
                                                                                                  piped.baseline)


def test_replay_range_fast_from_the_celery_command_line(sqlite_url: str, tmp_path: Path) -> None:
    """`celery -A workers replay range --mode fast`: no workers and no simulator server needed."""
    import os
    import subprocess
    import sys

    from okxlab.db.migrate import upgrade

    upgrade(sqlite_url)
    config = tmp_path / "okxlab.toml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKXLAB_")}
    env.update({"OKXLAB_CONFIG": str(config), "OKXLAB_DATABASE_URL": sqlite_url, "OKXLAB_HOME": str(tmp_path)})
    celery = str(Path(sys.executable).with_name("celery"))
    proc = subprocess.run([celery, "-A", "workers", "replay", "range", "--agent", "smacross", "--start",
                           "2022-11-01T00:00Z", "--end", "2022-11-04T00:00Z", "--mode", "fast"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "(fast): 19 runs over 19 ticks" in proc.stdout and "smacross" in proc.stdout
    bad = subprocess.run([celery, "-A", "workers", "replay", "range", "--agent", "smacross", "--start",
                          "2022-11-01T00:00Z", "--end", "2022-11-04T00:00Z", "--mode", "fast", "--fresh-llm"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and bad.stderr.startswith("okxlab: error: ") and len(bad.stderr.splitlines()) == 1


def test_a_run_of_an_inline_replay_is_rerun_from_risk_and_refused_from_plan(pg_url: str, redis_prefix: str,
                                                                           tmp_path: Path) -> None:
    import pytest

    from okxlab.errors import UserError
    from okxlab.replay.range import wait_for
    from okxlab.replay.rerun import create_rerun
    from workers.tasks import start_run

    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        env = build_env(p.config, pg_url)
        inline = replay_in_process(env, agents=AGENTS, start=START, end=START, bar="4H", mode="inline",
                                   simulator=Simulator(agents=p.config))
        with env.sessions() as s:
            original = s.scalars(select(m.Run).where(m.Run.replay_id == inline.replay_id)
                                 .order_by(m.Run.agent)).first()
        # its candles are a reference to the replay's dataset: a stage that reads candles cannot run again
        with pytest.raises(UserError, match="in-process replay.*re-run it from validate, risk or order"):
            create_rerun(p.env, original.id, "plan", fresh_llm=False)
        _, rerun_id = create_rerun(p.env, original.id, "risk", fresh_llm=False)
        start_run(rerun_id, "risk")
        assert wait_for(p.env, [rerun_id], 60)[rerun_id] in ("completed", "rejected")
        with p.env.sessions() as s:
            before = [(v.symbol, v.outcome, v.order) for v in s.scalars(
                select(m.RiskVerdictRecord).where(m.RiskVerdictRecord.run_id == original.id).order_by(m.RiskVerdictRecord.idx))]
            after = [(v.symbol, v.outcome, v.order) for v in s.scalars(
                select(m.RiskVerdictRecord).where(m.RiskVerdictRecord.run_id == rerun_id).order_by(m.RiskVerdictRecord.idx))]
        assert before and after == before  # the same verdicts on the same stored inputs
