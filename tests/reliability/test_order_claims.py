"""Order claims under the faults the suite found: a claim left by a dead attempt, and two attempts racing.

The stages run in this process (execute_stage, as a worker thread runs them) against Postgres and the
simulator over HTTP; what the exchange received is read from the simulator's admin API.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ccxt
import psycopg2
import pytest
from sqlalchemy import select

from okxlab.db.models import Order, Run, StageRecord
from okxlab.db.ops import insert_ignore
from okxlab.execution.exchange import market_for
from okxlab.execution.orders import OrderBusy, OutcomeUnknown, claim, claim_ttl, send_order
from okxlab.pipeline.stages import STAGES, execute_stage
from tests.reliability.conftest import Lab, open_lab
from tests.reliability.harness import buy_and_hold_config, wait_until, world_run

START = datetime(2022, 11, 20, tzinfo=UTC)
CONFIG = buy_and_hold_config("buyhold")


@pytest.fixture
def lab(pg_url: str, tmp_path: Path):  # noqa: ANN201
    with open_lab(pg_url, tmp_path, CONFIG) as lab:
        yield lab


def _new_order_rows(s, run, tag, url):  # noqa: ANN001, ANN202 - the order stage's rows, as it creates them
    from okxlab.db.models import MarketSnapshot, RiskVerdictRecord
    from okxlab.execution.orders import order_rows

    mids = {m.symbol: (m.bid + m.ask) / 2 for m in s.scalars(select(MarketSnapshot).where(MarketSnapshot.run_id == run.id))}
    verdicts = s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id == run.id)).all()
    return order_rows(run.id, run.agent, run.book, [(v.idx, v.order) for v in verdicts], mids, tag=tag,
                      exchange_url=url, now=datetime.now(UTC))


def _up_to_risk(lab: Lab) -> tuple[str, str, Order]:
    """A run through risk with its order row created (state new), as the order stage creates it."""
    wr = world_run(lab.env, lab.admin, lab.sim.world_url, "buyhold", START)
    for stage in STAGES[:-1]:
        assert execute_stage(stage, wr.run_id, lab.env)
    with lab.env.sessions.begin() as s:
        run = s.get(Run, wr.run_id)
        insert_ignore(s, Order, _new_order_rows(s, run, lab.config.broker_tag, lab.sim.world_url(wr.world)), ["cl_ord_id"])
        order = s.scalars(select(Order).where(Order.run_id == wr.run_id)).one()
    return wr.run_id, wr.world, order


def _placements(lab: Lab, world: str, cl_ord_id: str) -> int:
    """Order requests with this clOrdId the exchange received: placed, or refused as a duplicate."""
    seen = lab.admin.orders(world)
    return (sum(o.get("clOrdId") == cl_ord_id for o in seen["orders"])
            + sum(r["raw"].get("clOrdId") == cl_ord_id for r in seen["rejections"]))


def test_an_order_claimed_by_a_dead_attempt_is_retried_then_taken_over_and_sent_once(lab: Lab) -> None:
    run_id, world, order = _up_to_risk(lab)
    # What a worker killed in the middle of sending leaves behind: the order claimed and `submitting`.
    assert claim(lab.env.sessions, order.id)
    with lab.env.sessions.begin() as s:
        s.get(Order, order.id).state = "submitting"
    # Redelivered at once: the claim is fresh, so nobody knows whether the order went out. The stage must not
    # complete with it unresolved; it fails transiently and says when the claim expires.
    with pytest.raises(OrderBusy) as busy:
        execute_stage("order", run_id, lab.env)
    assert 0 < busy.value.retry_after <= claim_ttl().total_seconds()
    with lab.env.sessions() as s:
        assert s.get(Run, run_id).status == "running"
        record = s.scalar(select(StageRecord).where(StageRecord.run_id == run_id, StageRecord.stage == "order"))
        assert record.status == "running" and "OrderBusy" in record.error
    assert _placements(lab, world, order.cl_ord_id) == 0
    # Once the claim has expired (on the database's clock), the retry takes it over, looks the order up (never
    # sent), and sends it once.
    with lab.env.sessions.begin() as s:
        s.get(Order, order.id).claimed_at -= claim_ttl() + timedelta(seconds=1)
    assert execute_stage("order", run_id, lab.env) is False  # the run ends here
    with lab.env.sessions() as s:
        run = s.get(Run, run_id)
        final = s.get(Order, order.id)
    assert run.status == "completed", run.reason
    assert final.state == "filled" and final.send_attempts == 2
    assert _placements(lab, world, order.cl_ord_id) == 1


def _lock_waits(db_url: str) -> int:
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def test_two_attempts_racing_for_a_new_order_send_it_once(lab: Lab) -> None:
    """Two deliveries of one order stage at once (a redelivery while the first still runs). The test holds the
    audit log, so every order state change waits to be recorded: the moment between winning the claim and
    marking the order `submitting` lasts as long as the test likes. Only one attempt may send."""
    run_id, world, order = _up_to_risk(lab)
    agent = lab.config.agent("buyhold")
    with lab.env.sessions() as s:
        book = s.get(Run, run_id).book
    holder = psycopg2.connect(lab.db_url)
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE audit_events IN SHARE MODE")  # reads go on; inserts wait
    outcomes: dict[str, str] = {}

    def attempt(name: str) -> None:
        client = lab.env.client(agent, book)
        symbol = market_for(client, order.symbol)["symbol"]
        try:
            outcomes[name] = send_order(lab.env.sessions, client, order.id, symbol).state
        except OrderBusy:
            outcomes[name] = "busy"

    threads = {name: threading.Thread(target=attempt, args=(name,)) for name in ("first", "second")}
    try:
        threads["first"].start()
        wait_until(lambda: _lock_waits(lab.db_url) >= 1, 30, "the first attempt to wait on the audit log")
        threads["second"].start()
        wait_until(lambda: _lock_waits(lab.db_url) >= 2, 30, "the second attempt to wait on the database")
    finally:
        holder.rollback()
        holder.close()
    for t in threads.values():
        t.join(60)
    with lab.env.sessions() as s:
        final = s.get(Order, order.id)
    assert _placements(lab, world, order.cl_ord_id) == 1  # one request reached the exchange, not two
    assert final.state == "filled" and final.send_attempts == 1
    assert outcomes["first"] == "filled" and outcomes["second"] in ("busy", "filled"), outcomes


def test_an_exchange_error_before_the_send_holds_no_claim_so_the_retry_goes_at_once(lab: Lab) -> None:
    """The exchange answers set-leverage with a 5xx: nothing was sent, and the retry must not have to wait for
    a claim to expire (a minute) before it can send."""
    run_id, world, order = _up_to_risk(lab)
    lab.admin.set_faults(world, error_5xx_rate=1.0, paths=["account/set-leverage"])
    with pytest.raises(ccxt.ExchangeNotAvailable):
        execute_stage("order", run_id, lab.env)
    with lab.env.sessions() as s:
        failed = s.get(Order, order.id)
    assert failed.state == "new" and failed.send_attempts == 0  # leverage comes before the claim
    lab.admin.set_faults(world)
    assert execute_stage("order", run_id, lab.env) is False  # at once: no OrderBusy
    with lab.env.sessions() as s:
        final = s.get(Order, order.id)
        run = s.get(Run, run_id)
    assert run.status == "completed" and final.state == "filled" and final.send_attempts == 1
    assert _placements(lab, world, order.cl_ord_id) == 1


def test_a_lookup_the_exchange_does_not_answer_gives_the_claim_up_so_the_retry_goes_at_once(lab: Lab) -> None:
    """A placement's answer was lost (the order is `unknown`) and the exchange then fails the lookup too: the
    order must stay free to claim (still unknown), not held under a claim for a minute."""
    run_id, world, order = _up_to_risk(lab)
    lab.admin.set_faults(world, lost_response_rate=1.0, paths=["trade/batch-orders"])
    with pytest.raises(OutcomeUnknown):
        execute_stage("order", run_id, lab.env)
    lab.admin.set_faults(world, error_5xx_rate=1.0, paths=["trade/order"])  # the lookup by clOrdId
    with pytest.raises(OutcomeUnknown):
        execute_stage("order", run_id, lab.env)
    with lab.env.sessions() as s:
        assert s.get(Order, order.id).state == "unknown"
    lab.admin.set_faults(world)
    assert execute_stage("order", run_id, lab.env) is False  # at once: no OrderBusy
    with lab.env.sessions() as s:
        final = s.get(Order, order.id)
    assert final.state == "filled" and final.send_attempts == 3
    assert _placements(lab, world, order.cl_ord_id) == 1  # found by the lookup, never sent again
