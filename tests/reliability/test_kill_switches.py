"""Kill switches bind at the moment of the order, not only at the risk verdict.

A run's verdict is given in its risk stage; its order goes out in the order stage, later. Each test here pulls
a switch in between (the global pause, a halt, reduce-only, a halt with a flatten, a pause during an exchange
outage) through the real commands, then lets the order stage run: nothing may open after the switch, and
closing must still go. The race test pulls the pause at a random moment while order stages run, many times,
and checks from the audit log that every order was decided wholly before or wholly after the pause.

Runs trade in the `sim` book (the global pause is for trading books) against the simulator over HTTP; the
stages run in this process, as a worker thread runs them.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from okxlab.cli.main import main
from okxlab.db.models import AuditEvent, Order, PositionRecord, RiskVerdictRecord, Run
from okxlab.db.ops import insert_ignore
from okxlab.execution.exchange import market_for
from okxlab.execution.orders import OrderBusy, cl_ord_id_for_manual, send_order
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.stages import STAGES, execute_stage
from okxlab.risk.switches import set_pause
from tests.reliability.conftest import Lab, open_lab
from tests.reliability.harness import Results, buy_and_hold_config

RACE_TRIALS = 16
CONFIG = buy_and_hold_config("buyhold", *(f"racer{i}" for i in range(RACE_TRIALS)))


@pytest.fixture
def lab(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    with open_lab(pg_url, tmp_path, CONFIG) as lab:
        monkeypatch.setenv("OKXLAB_SIM_URL", lab.sim.url)  # the `sim` book: this simulator, for stages and commands
        yield lab


def trading_run(lab: Lab, agent: str = "buyhold", schedule: int = 1) -> str:
    """A run of `agent` in the `sim` book (the simulator's realtime world), as dispatch creates it."""
    tick = datetime.now(UTC).replace(microsecond=0)
    with lab.env.sessions.begin() as s:
        (run_id,) = create_runs(s, f"schedule:{schedule}", [(agent, "sim")], tick, now=tick)
    return run_id


def through_risk(lab: Lab, run_id: str) -> dict:
    """Snapshot to risk; returns the accepted opening order the verdict asks for."""
    for stage in STAGES[:-1]:
        assert execute_stage(stage, run_id, lab.env), stage
    with lab.env.sessions() as s:
        (verdict,) = s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id == run_id)).all()
    assert verdict.outcome in ("accept", "amend") and verdict.order and not verdict.order["reduce_only"]
    return verdict.order


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output + result.stderr
    return result.output


def placed(lab: Lab, agent: str) -> list[dict]:
    """Orders of `agent` the simulator received (its default world: the `sim` book)."""
    key = lab.config.agent(agent).credentials("sim").api_key
    return [o for o in lab.admin.orders("default", api_key=key)["orders"] if o.get("clOrdId")]


def the_order(lab: Lab, run_id: str) -> Order:
    with lab.env.sessions() as s:
        return s.scalars(select(Order).where(Order.run_id == run_id)).one()


def open_contracts(lab: Lab, agent: str) -> float:
    client = lab.env.client(lab.config.agent(agent), "sim")
    return sum(float(p.get("contracts") or 0) for p in client.fetch_positions(["BTC/USDT:USDT"]))


SWITCHES = {
    "pause": (("risk", "pause", "--reason", "incident"), "paused"),
    "halt": (("agents", "halt", "buyhold", "--reason", "misbehaving", "--book", "sim"), "halted"),
    "reduce-only": (("agents", "halt", "buyhold", "--reduce-only", "--reason", "wind down", "--book", "sim"),
                    "reduce_only"),
}


@pytest.mark.parametrize("switch", list(SWITCHES))
def test_a_switch_pulled_after_the_verdict_binds_the_order(lab: Lab, switch: str, results: Results) -> None:
    run_id = trading_run(lab)
    through_risk(lab, run_id)
    command, reason = SWITCHES[switch]
    cli(*command)
    assert execute_stage("order", run_id, lab.env) is False
    order = the_order(lab, run_id)
    with lab.env.sessions() as s:
        run = s.get(Run, run_id)
        events = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.run_id == run_id))]
    assert order.state == "not_sent" and order.last_error == reason and order.send_attempts == 0
    assert run.status == "rejected" and run.reason == f"not sent: {reason}"
    assert "order.not_sent" in events and "order.submitting" not in events
    assert placed(lab, "buyhold") == [] and open_contracts(lab, "buyhold") == 0
    _record(results, f"after_verdict_{switch}", orders_after_switch=len(placed(lab, "buyhold")))


def test_halt_and_flatten_then_the_pending_order_stage_does_not_reopen(lab: Lab, results: Results) -> None:
    first = trading_run(lab, schedule=1)
    through_risk(lab, first)
    assert execute_stage("order", first, lab.env) is False
    assert open_contracts(lab, "buyhold") > 0
    assert "1 position(s) closed" in cli("agents", "flatten", "buyhold", "--book", "sim", "--yes")
    # Flat again: the next run decides to buy back in, and its order is pending when the operator halts the
    # agent and flattens it once more.
    second = trading_run(lab, schedule=2)
    wanted = through_risk(lab, second)
    cli("agents", "halt", "buyhold", "--reason", "stop it", "--book", "sim")
    cli("agents", "flatten", "buyhold", "--book", "sim", "--yes")
    assert execute_stage("order", second, lab.env) is False
    assert the_order(lab, second).state == "not_sent"
    assert open_contracts(lab, "buyhold") == 0  # the flatten stands; not the verdict's {wanted['contracts']}
    with lab.env.sessions() as s:
        trips = s.scalars(select(PositionRecord).where(PositionRecord.agent == "buyhold")).all()
    assert [(t.status, t.exit_reason) for t in trips] == [("closed", "manual")]
    _record(results, "halt_flatten_then_order", pending_contracts=wanted["contracts"],
            reopened_contracts=open_contracts(lab, "buyhold"))


def test_reduce_only_and_halted_agents_may_still_close(lab: Lab, results: Results) -> None:
    run_id = trading_run(lab)
    through_risk(lab, run_id)
    assert execute_stage("order", run_id, lab.env) is False
    held = open_contracts(lab, "buyhold")
    cli("agents", "halt", "buyhold", "--reduce-only", "--reason", "wind down", "--book", "sim")
    cli("risk", "pause", "--reason", "everything stops")
    agent = lab.config.agent("buyhold")
    client = lab.env.client(agent, "sim")
    symbol = market_for(client, "BTC-USDT-SWAP")["symbol"]
    rows = [{"cl_ord_id": cl_ord_id_for_manual("buyhold", f"t:{purpose}"), "run_id": None, "idx": None,
             "agent": "buyhold", "book": "sim", "purpose": purpose, "symbol": "BTC-USDT-SWAP", "side": side,
             "order_type": "market", "contracts": size, "price": None, "reduce_only": purpose == "close",
             "leverage": None, "stop_loss": None, "take_profit": None, "tag": lab.config.broker_tag,
             "exchange_url": None, "state": "new", "send_attempts": 0, "filled": 0.0, "fee": 0.0}
            for purpose, side, size in (("open", "buy", 1.0), ("close", "sell", 1.0))]
    with lab.env.sessions.begin() as s:
        insert_ignore(s, Order, rows, ["cl_ord_id"])
        ids = {o.purpose: o.id for o in s.scalars(select(Order).where(Order.run_id.is_(None)))}
    assert send_order(lab.env.sessions, client, ids["open"], symbol).state == "not_sent"
    assert send_order(lab.env.sessions, client, ids["close"], symbol).state == "filled"
    assert open_contracts(lab, "buyhold") == pytest.approx(held - 1.0)
    cli("agents", "halt", "buyhold", "--reason", "stop", "--book", "sim")  # REDUCE_ONLY → HALTED, still paused
    assert "1 position(s) closed" in cli("agents", "flatten", "buyhold", "--book", "sim", "--yes")
    assert open_contracts(lab, "buyhold") == 0
    _record(results, "closing_under_switches", closes_sent=2, opens_sent=0)


def test_a_pause_during_an_exchange_outage_holds_the_order_when_the_exchange_is_back(lab: Lab,
                                                                                      results: Results) -> None:
    run_id = trading_run(lab)
    through_risk(lab, run_id)
    lab.admin.set_faults("default", error_5xx_rate=1.0, paths=["trade/batch-orders"])
    with pytest.raises(Exception, match="ExchangeNotAvailable|50026"):  # the placement's fate is unknown
        execute_stage("order", run_id, lab.env)
    assert the_order(lab, run_id).state == "unknown"
    cli("risk", "pause", "--reason", "exchange incident")
    lab.admin.set_faults("default")
    assert execute_stage("order", run_id, lab.env) is False  # looked up (never placed), then held by the pause
    order = the_order(lab, run_id)
    with lab.env.sessions() as s:
        kinds = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.run_id == run_id)
                                           .order_by(AuditEvent.id))]
    assert order.state == "not_sent" and order.last_error == "paused" and order.send_attempts == 2
    assert kinds.index("order.unknown") < kinds.index("order.not_sent")
    assert placed(lab, "buyhold") == [] and open_contracts(lab, "buyhold") == 0
    _record(results, "pause_during_outage", orders_after_pause=0)


def test_a_pause_racing_order_claims_is_never_crossed(lab: Lab, results: Results) -> None:
    """Pause at a random moment while an order stage runs, RACE_TRIALS times. An order that went out was
    claimed before the pause was recorded; one that came after it was not sent. Never the other way."""
    rng = random.Random(20261203)
    outcomes: Counter[str] = Counter()
    crossed: list[str] = []
    for i in range(RACE_TRIALS):
        agent = f"racer{i}"
        run_id = trading_run(lab, agent=agent, schedule=100 + i)
        through_risk(lab, run_id)
        delay = rng.uniform(0.0, 0.06)

        def order_stage(run_id: str = run_id) -> None:
            try:
                execute_stage("order", run_id, lab.env)
            except OrderBusy:  # pragma: no cover - nothing else holds these orders
                raise

        def pause(delay: float = delay, trial: int = i) -> None:
            threading.Event().wait(delay)
            with lab.env.sessions.begin() as s:
                set_pause(s, True, by="race", reason=f"trial {trial}")

        threads = [threading.Thread(target=order_stage), threading.Thread(target=pause)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        with lab.env.sessions.begin() as s:
            set_pause(s, False, by="race")
        order = the_order(lab, run_id)
        with lab.env.sessions() as s:
            events = {e.kind: e.id for e in s.scalars(select(AuditEvent).where(
                (AuditEvent.run_id == run_id) | (AuditEvent.kind == "risk.global_pause")).order_by(AuditEvent.id))}
            pause_id = max(e.id for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "risk.global_pause")))
        sent = [o for o in placed(lab, agent) if o["clOrdId"] == order.cl_ord_id]
        if order.state == "not_sent":
            outcomes["held by the pause"] += 1
            if sent or not events["order.not_sent"] > pause_id:
                crossed.append(f"{run_id}: not_sent, yet sent or decided before the pause")
        else:
            outcomes["sent before the pause"] += 1
            if len(sent) != 1 or not events["order.submitting"] < pause_id:
                crossed.append(f"{run_id}: {order.state}, claimed after the pause was recorded")
    assert crossed == []
    assert sum(outcomes.values()) == RACE_TRIALS
    _record(results, "race", trials=RACE_TRIALS, **{k.replace(" ", "_"): v for k, v in outcomes.items()},
            crossed=len(crossed))


def _record(results: Results, case: str, **figures: object) -> None:
    """One JSON file for all kill-switch cases (each test adds its own entry)."""
    import json

    path = results.directory / "kill_switches.json"
    data = json.loads(path.read_text()) if path.exists() else {"cases": {}}
    data["cases"][case] = figures
    results.record("kill_switches", cases=data["cases"])
