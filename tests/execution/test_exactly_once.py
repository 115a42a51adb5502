"""Execution against the simulator through ccxt: attached stops, the broker tag, exactly-once orders, the ledger."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from okxlab.db.models import AuditEvent, EquitySnapshot, Fill, Order, PositionRecord, Run
from okxlab.errors import ConfigError
from okxlab.execution.orders import OrderBusy
from okxlab.execution.reconcile import reconcile
from okxlab.pipeline.stages import execute_stage
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

START = datetime(2022, 11, 1, 0, 0, tzinfo=UTC)

TIGHT_STOP = {
    "schema_version": "okxlab.strategy.v1",
    "name": "tight_stop",
    "description": "always long with a tight stop and a far target: the stop fires within a few bars",
    "entries": {"long": {"logic": "and", "conditions": [{"signal": "always"}]}},
    "stops": {"stop_loss": {"percent": 0.6}, "take_profit": {"percent": 25}},
    "leverage": 2,
    "confidence": 1,
}


def config_with(tmp_path: Path, extra: str = "") -> str:
    doc = tmp_path / "tight_stop.json"
    doc.write_text(json.dumps(TIGHT_STOP))
    return f"""
[pipeline]
candles = 100

[[agents]]
name = "stopper"
planner = "strategy"
strategy = "{doc}"
symbols = ["BTC-USDT-SWAP"]

[[agents]]
name = "trend"
planner = "strategy"
strategy = "builtin:ema_trend"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]

[[agents]]
name = "meanrev"
planner = "strategy"
strategy = "builtin:rsi_bollinger"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
{extra}
"""


def test_attached_stop_and_target_with_the_broker_tag_then_the_stop_closes_it(pg_url: str, redis_prefix: str,
                                                                               tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config_with(tmp_path)) as p:
        result = p.replay(["stopper"], START, START + timedelta(days=3))
        world = f"replay-{result.replay_id}"
        with p.env.sessions() as s:
            first = s.scalars(select(Order).where(Order.agent == "stopper").order_by(Order.id)).first()
            synced = s.scalars(select(EquitySnapshot).where(EquitySnapshot.run_id == first.run_id)).one().positions
            unprotected = s.scalars(select(AuditEvent).where(AuditEvent.kind == "position.unprotected")).all()
            closed = s.scalars(select(PositionRecord).where(PositionRecord.status == "closed")
                               .order_by(PositionRecord.id)).all()
            fills = s.scalars(select(Fill).where(Fill.exit_reason == "stop_loss")).all()
        # on the wire, as the simulator received it: our clOrdId, OKX's tag field, the stop and target attached
        raw = next(o["raw"] for o in p.sim_orders(world) if o["clOrdId"] == first.cl_ord_id)
        assert raw["tag"] == "c314b0aecb5bBCDE"
        attached = raw["attachAlgoOrds"][0]
        assert float(attached["slTriggerPx"]) == pytest.approx(first.stop_loss)
        assert float(attached["tpTriggerPx"]) == pytest.approx(first.take_profit)
        assert first.stop_loss < first.avg_price < first.take_profit
        # synced from the exchange each cycle: the live stop and target protecting the open position
        assert synced[0]["stop_loss"] == pytest.approx(first.stop_loss)
        assert synced[0]["take_profit"] == pytest.approx(first.take_profit)
        assert unprotected == []
        # the stop fired on the price path: the round trip is closed with that reason and its PnL
        assert closed, "the tight stop never triggered"
        trip = closed[0]
        assert trip.exit_reason == "stop_loss"
        assert trip.realized_pnl == pytest.approx(
            trip.max_contracts * trip.ct_val * (trip.exit_price - trip.entry_price))
        assert trip.realized_pnl < 0 and fills
        assert reconcile(p.env, p.config.agent("stopper"), f"replay:{result.replay_id}").ok


def test_the_order_stage_delivered_twice_at_once_sends_one_order(pg_url: str, redis_prefix: str,
                                                                 tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config_with(tmp_path)) as p:
        result = p.replay(["stopper"], START, START)
        world = f"replay-{result.replay_id}"
        with p.env.sessions() as s:
            run = s.scalars(select(Run)).one()
        assert len(p.sim_orders(world)) == 1
        # the run is complete; make two workers race on its order stage anyway
        from okxlab.db.models import StageRecord

        with p.env.sessions.begin() as s:
            for rec in s.scalars(select(StageRecord).where(StageRecord.stage == "order")):
                rec.status = "running"
            s.get(Run, run.id).status = "running"
            for order in s.scalars(select(Order)):
                order.state = "unknown"  # as if the first attempt died right after sending,
            for model in (EquitySnapshot, Fill, PositionRecord):  # before its records were committed
                s.execute(delete(model))
        outcomes: list[object] = []

        def deliver() -> None:
            try:
                outcomes.append(execute_stage("order", run.id, p.env))
            except OrderBusy as exc:  # the loser finds the order claimed by the winner: a retry, not a second send
                outcomes.append(exc)

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(p.sim_orders(world)) == 1  # resolved by lookup; never sent again
        assert len(outcomes) == 2 and sum(isinstance(o, OrderBusy) for o in outcomes) <= 1
        with p.env.sessions() as s:
            order = s.scalars(select(Order)).one()
        assert order.state == "filled" and order.send_attempts >= 2


def test_lost_responses_are_resolved_by_lookup_and_never_duplicated(pg_url: str, redis_prefix: str,
                                                                    tmp_path: Path) -> None:
    faults = {"lost_response_rate": 0.6, "seed": 7, "paths": ["trade/batch-orders"]}
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config_with(tmp_path)) as p:
        result = p.replay(["stopper", "trend"], START, START + timedelta(days=2), faults=faults)
        world = f"replay-{result.replay_id}"
        with p.env.sessions() as s:
            orders = s.scalars(select(Order)).all()
            unknown_seen = s.scalars(select(Order).where(Order.send_attempts > 1)).all()
        # orders okxlab sent (those the simulator made itself when a stop fired carry no clOrdId)
        at_sim = [o["clOrdId"] for o in p.sim_orders(world) if o["clOrdId"]]
        assert orders and unknown_seen, "no response was lost: the fault did not fire"
        assert len(at_sim) == len(set(at_sim)) == len(orders)  # one exchange order per okxlab order
        assert {o.state for o in orders} <= {"filled", "cancelled", "submitted"}
        assert result.statuses.get("failed", 0) == 0


def test_after_a_multi_day_replay_the_ledger_reconciles_to_the_cent(pg_url: str, redis_prefix: str,
                                                                     tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config_with(tmp_path)) as p:
        result = p.replay(["stopper", "trend", "meanrev"], START, START + timedelta(days=6))
        book = f"replay:{result.replay_id}"
        with p.env.sessions() as s:
            fills = s.scalars(select(Fill).where(Fill.book == book)).all()
            snaps = s.scalars(select(EquitySnapshot).where(EquitySnapshot.book == book)).all()
        assert len(fills) >= 4 and len(snaps) == result.runs
        for name in ("stopper", "trend", "meanrev"):
            check = reconcile(p.env, p.config.agent(name), book)
            assert check.ok, check.differences
            # the exchange's cash also holds the funding it settled every 8 h, which no fill shows
            assert check.ledger["cash"] + check.ledger["funding"] == pytest.approx(check.exchange["cash"], abs=0.005)


def test_live_mode_is_refused_without_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from okxlab.config import load_config
    from okxlab.execution.exchange import venue_for_book

    monkeypatch.setenv("OKX_MODE", "live")
    config = load_config()
    book = config.exchange_mode(config.agent("trend"))
    with pytest.raises(ConfigError, match="live trading is disabled.*LIVE_TRADING_ENABLED=true"):
        venue_for_book(config, book)
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "true")
    assert venue_for_book(config, book).mode == "live"


def test_an_unanswered_order_is_not_sent_again_before_it_had_time_to_land(
        pg_url: str, redis_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The exchange takes 4 s to place an order; okxlab's client gives up after 0.8 s, so every placement
    # times out while the request is still on its way, and the first retry comes long before it lands.
    monkeypatch.setenv("OKXLAB_EXCHANGE_TIMEOUT_MS", "800")
    monkeypatch.setenv("OKXLAB_ORDER_RESEND_SETTLE", "8")
    faults = {"latency_ms": 4000, "paths": ["trade/batch-orders"]}
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, config_with(tmp_path)) as p:
        result = p.replay(["stopper"], START, START, faults=faults)
        at_sim = p.sim.admin.orders(f"replay-{result.replay_id}")
        with p.env.sessions() as s:
            order = s.scalars(select(Order)).one()
            kinds = [e.kind for e in s.scalars(select(AuditEvent).where(AuditEvent.kind.like("order.%"))
                                               .order_by(AuditEvent.id))]
    assert result.statuses == {"completed": 1}
    assert "order.unknown" in kinds and "order.resolved" in kinds  # timed out, then found by clOrdId
    assert "order.not_found" not in kinds  # never judged absent while its request could still land
    assert [o["clOrdId"] for o in at_sim["orders"] if o["clOrdId"]] == [order.cl_ord_id]
    assert [r for r in at_sim["rejections"] if "51016" in str(r)] == []  # no second placement ever arrived
    assert order.state == "filled"
