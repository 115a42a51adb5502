"""One trading run per (agent, book) at a time: two runs of one agent never size against the same account.

Two schedules covering one agent fire on the same tick (or a slow run is overtaken by the next): both take a
snapshot of the same account. Only one may trade; the other ends `skipped` with its reason, whether it
reaches its risk stage while the first is still between risk and order (`agent_busy`) or after the first
has traded (`stale_account`). The last test sends several such runs at once through a real worker process
and counts what reached the exchange.

Also here: a worker whose clock runs ahead never takes over another attempt's order claim (claims are timed
on the database's clock), and an order stage and a flatten booking the same fill both complete, with the
fill booked once and attributed to the run whose order made it.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from okxlab.cli.main import main
from okxlab.db.models import Fill, Order, PositionRecord, Run
from okxlab.execution.orders import OrderBusy, claim
from okxlab.execution.reconcile import reconcile
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.stages import STAGES, execute_stage
from tests.reliability.conftest import Lab, open_lab
from tests.reliability.harness import Results, buy_and_hold_config, wait_ended, wait_until
from tests.reliability.test_kill_switches import open_contracts, placed

CONFIG = buy_and_hold_config("buyhold")
PARALLEL_RUNS = 4


@pytest.fixture
def lab(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    with open_lab(pg_url, tmp_path, CONFIG) as lab:
        monkeypatch.setenv("OKXLAB_SIM_URL", lab.sim.url)
        yield lab


def same_tick_runs(lab: Lab, count: int, agent: str = "buyhold") -> list[str]:
    """`count` runs of one agent in the `sim` book at one tick, one per schedule (as overlapping schedules
    dispatch them)."""
    tick = datetime.now(UTC).replace(microsecond=0)
    ids = []
    with lab.env.sessions.begin() as s:
        for schedule in range(1, count + 1):
            ids += create_runs(s, f"schedule:{schedule}", [(agent, "sim")], tick, now=tick)
    return ids


def stages(lab: Lab, run_id: str, names: tuple[str, ...]) -> bool:
    go_on = True
    for stage in names:
        go_on = execute_stage(stage, run_id, lab.env)
    return go_on


def run_of(lab: Lab, run_id: str) -> Run:
    with lab.env.sessions() as s:
        return s.get(Run, run_id)


def test_the_second_run_reaching_risk_while_the_first_trades_is_skipped_busy(lab: Lab) -> None:
    first, second = same_tick_runs(lab, 2)
    upto_validate = STAGES[:STAGES.index("risk")]
    assert stages(lab, first, upto_validate) and stages(lab, second, upto_validate)
    assert execute_stage("risk", first, lab.env)  # takes the turn
    assert execute_stage("risk", second, lab.env) is False
    busy = run_of(lab, second)
    assert busy.status == "skipped" and busy.reason.startswith("skipped: agent_busy") and first in busy.reason
    assert execute_stage("order", first, lab.env) is False
    assert run_of(lab, first).status == "completed"
    assert len(placed(lab, "buyhold")) == 1


def test_a_run_whose_snapshot_predates_another_runs_trade_is_skipped_stale(lab: Lab) -> None:
    first, second = same_tick_runs(lab, 2)
    upto_validate = STAGES[:STAGES.index("risk")]
    assert stages(lab, first, upto_validate) and stages(lab, second, upto_validate)
    assert stages(lab, first, ("risk", "order")) is False  # traded and finished
    held = open_contracts(lab, "buyhold")
    assert execute_stage("risk", second, lab.env) is False
    stale = run_of(lab, second)
    assert stale.status == "skipped" and stale.reason.startswith("skipped: stale_account")
    assert len(placed(lab, "buyhold")) == 1 and open_contracts(lab, "buyhold") == held
    # the next tick decides on a fresh snapshot, which shows the position: nothing more is bought
    (later,) = create_runs_now(lab, 9)
    assert stages(lab, later, STAGES) is False
    assert run_of(lab, later).status == "completed" and len(placed(lab, "buyhold")) == 1


def create_runs_now(lab: Lab, schedule: int) -> list[str]:
    tick = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    with lab.env.sessions.begin() as s:
        return create_runs(s, f"schedule:{schedule}", [("buyhold", "sim")], tick, now=tick)


def test_same_tick_runs_through_a_real_worker_trade_once(lab: Lab, results: Results) -> None:
    runs = same_tick_runs(lab, PARALLEL_RUNS)
    lab.worker("turns", concurrency=8)
    sender = lab.sender()
    for run_id in runs:
        sender.start_run(run_id)
    ended = wait_ended(lab.env, runs, 120)
    statuses = sorted(r.status for r in ended.values())
    reasons = [r.reason.split(" —")[0] for r in ended.values() if r.status == "skipped"]
    with lab.env.sessions() as s:
        orders = s.scalars(select(Order).where(Order.agent == "buyhold")).all()
    at_exchange = placed(lab, "buyhold")
    assert statuses.count("completed") >= 1 and len(at_exchange) == 1 and len(orders) == 1
    assert all(r in ("skipped: agent_busy", "skipped: stale_account") for r in reasons), reasons
    single = orders[0].contracts
    assert open_contracts(lab, "buyhold") == pytest.approx(single)  # one run's size, not PARALLEL_RUNS of them
    results.record("trading_turns", runs_at_one_tick=PARALLEL_RUNS, orders_at_exchange=len(at_exchange),
                   contracts=open_contracts(lab, "buyhold"), one_run_contracts=single,
                   skipped={r: reasons.count(r) for r in sorted(set(reasons))},
                   completed=statuses.count("completed"))


def test_a_worker_whose_clock_runs_ahead_does_not_take_over_a_live_claim(lab: Lab, results: Results) -> None:
    (run_id,) = same_tick_runs(lab, 1)
    assert stages(lab, run_id, STAGES[:-1])
    with lab.env.sessions.begin() as s:
        run = s.get(Run, run_id)
    # The order row, as the order stage's first attempt creates it, and that attempt's claim: it is sending.
    from okxlab.db.ops import insert_ignore
    from tests.reliability.test_order_claims import _new_order_rows

    with lab.env.sessions.begin() as s:
        insert_ignore(s, Order, _new_order_rows(s, run, lab.config.broker_tag, None), ["cl_ord_id"])
        order = s.scalars(select(Order).where(Order.run_id == run_id)).one()
    assert claim(lab.env.sessions, order.id)
    # A second delivery, on a worker whose clock is 61 s ahead (past the 60 s claim TTL by its own reckoning).
    ahead = dataclasses.replace(lab.env, now=lambda: datetime.now(UTC) + timedelta(seconds=61))
    with pytest.raises(OrderBusy):
        execute_stage("order", run_id, ahead)
    assert placed(lab, "buyhold") == []
    with lab.env.sessions() as s:
        assert s.get(Order, order.id).send_attempts == 1
    results.record("clock_skew", worker_clock_ahead_s=61, claim_ttl_s=60, second_placements=len(placed(lab, "buyhold")))


def _lock_waits(db_url: str) -> int:
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_an_order_stage_and_a_flatten_booking_the_same_fill_both_complete(lab: Lab, results: Results) -> None:
    """The order stage has booked its fill and waits (the test holds the equity table) when a flatten fetches
    the same fill: the flatten waits for the booking, then finds the fill known. Both finish; the fill is
    booked once, to the run whose order made it; the ledger matches the exchange."""
    (run_id,) = same_tick_runs(lab, 1)
    assert stages(lab, run_id, STAGES[:-1])
    holder = psycopg2.connect(lab.db_url)
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE equity_snapshots IN SHARE MODE")  # the order stage's last insert waits
    outcome: dict[str, object] = {}

    def order_stage() -> None:
        outcome["order"] = execute_stage("order", run_id, lab.env)

    def flatten() -> None:
        result = CliRunner().invoke(main, ["agents", "flatten", "buyhold", "--book", "sim", "--yes"])
        outcome["flatten"] = (result.exit_code, result.output + result.stderr)

    stage_thread = threading.Thread(target=order_stage)
    flatten_thread = threading.Thread(target=flatten)
    try:
        stage_thread.start()
        wait_until(lambda: _lock_waits(lab.db_url) >= 1, 60, "the order stage to wait on the equity table")
        flatten_thread.start()
        wait_until(lambda: _lock_waits(lab.db_url) >= 2, 60, "the flatten to wait for the booking")
    finally:
        holder.rollback()
        holder.close()
    stage_thread.join(60)
    flatten_thread.join(60)
    assert outcome["order"] is False and run_of(lab, run_id).status == "completed"
    assert outcome["flatten"][0] == 0, outcome["flatten"]
    with lab.env.sessions() as s:
        fills = s.scalars(select(Fill).where(Fill.agent == "buyhold")).all()
        trips = s.scalars(select(PositionRecord).where(PositionRecord.agent == "buyhold")).all()
    assert len(fills) == 2 and len({f.trade_id for f in fills}) == 2  # the open and the flatten's close
    assert [(t.open_run_id, t.status, t.exit_reason) for t in trips] == [(run_id, "closed", "manual")]
    assert reconcile(lab.env, lab.config.agent("buyhold"), "sim").ok
    results.record("fill_race", bookers=2, fills=len(fills), duplicates=len(fills) - len({f.trade_id for f in fills}),
                   runs_left_running=0 if run_of(lab, run_id).status == "completed" else 1)
