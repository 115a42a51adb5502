"""okxlab's execution against the simulator's partial maker fills: a limit order filling in two parts across two
bars is followed to its end by the order stage's refresh and booked by the ledger as two fills, each once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from okxlab.db.models import Agent, AuditEvent, Fill, Order, PositionRecord
from okxlab.db.session import session_factory
from okxlab.execution.ledger import apply_fills, collect_fills, totals
from okxlab.execution.orders import order_rows, refresh_open_orders, send_order
from okxlab.simulator import AccountSpec, SimServer, Simulator, ccxt_okx
from okxlab.simulator.clock import parse_time

SYM, ETH = "ETH/USDT:USDT", "ETH-USDT-SWAP"
T0 = parse_time("2022-09-13T08:00:00Z")  # the 08:00 and 08:05 5m bars both trade through 1712.10
BAR = 300_000


def test_a_limit_order_filling_in_two_parts_is_booked_as_two_fills_each_once(pg_url: str) -> None:
    sim = Simulator(agents=False, accounts=[AccountSpec("pk", "ps", "Pp", equity=10_000)], default_clock="replay")
    sim.create_world("pf", clock="replay", start=T0)
    sessions = session_factory(pg_url)
    now = datetime.fromtimestamp(T0 / 1000, UTC)
    with SimServer(sim, port=0).start() as server:
        client = ccxt_okx(server.world_url("pf"), "pk", "ps", "Pp", enableRateLimit=False)
        with sessions.begin() as s:
            s.add(Agent(name="maker", planner="strategy"))
            s.flush()
            row = order_rows("run-pf", "maker", "sim", [(0, {
                "symbol": ETH, "side": "buy", "order_type": "limit", "contracts": 500.0, "limit_price": 1712.1,
                "reduce_only": False, "leverage": 10.0, "stop_loss": None, "take_profit": None})], {ETH: 1715.2},
                tag="t", exchange_url=None, now=now)[0]
            row["run_id"] = None
            order = Order(**row)
            s.add(order)
            s.flush()
            order_id = order.id
        sent = send_order(sessions, client, order_id, SYM)
        assert sent.state == "submitted"  # resting: nothing traded at 1712.10 yet

        def sync() -> list[str]:  # the trade ids booked
            refresh_open_orders(sessions, client, "maker", "sim", now, {ETH: SYM})
            fills = collect_fills(sessions, client, "maker", "sim", {ETH: SYM})
            with sessions.begin() as s:
                return [f.trade_id for f in apply_fills(s, "maker", "sim", fills, {ETH: 0.1}, None)]

        server.admin.set_clock("pf", T0 + BAR - 1)
        first = sync()
        assert len(first) == 1
        with sessions() as s:
            order = s.get(Order, order_id)
            assert order.state == "partially_filled" and 0 < order.filled < 500
            part = order.filled
        assert sync() == []  # asked again in the same bar: nothing new, nothing twice

        server.admin.set_clock("pf", T0 + 2 * BAR - 1)
        second = sync()
        assert len(second) == 1 and second != first
        assert sync() == []
        with sessions() as s:
            order = s.get(Order, order_id)
            assert order.state == "filled" and order.filled == 500 and order.avg_price == 1712.1
            fills = s.scalars(select(Fill).where(Fill.agent == "maker").order_by(Fill.ts)).all()
            assert [f.trade_id for f in fills] == first + second
            assert [f.contracts for f in fills] == [part, round(500 - part, 1)]
            assert all(f.liquidity == "maker" and f.order_id == order_id and f.price == 1712.1 for f in fills)
            record = s.scalars(select(PositionRecord).where(PositionRecord.agent == "maker")).one()
            assert record.contracts == 500 and record.entry_price == 1712.1 and record.status == "open"
            states = [e.data["to"] for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
                      if e.kind.startswith("order.")]
            assert states[-2:] == ["partially_filled", "filled"]
            books = totals(s, "maker", "sim", 10_000.0)
        # the ledger's cash is the exchange's: 10,000 minus the two maker fees
        cash = float(client.fetch_balance()["info"]["data"][0]["details"][0]["cashBal"])
        assert round(books.cash, 6) == round(cash, 6) == round(10_000 - 500 * 0.1 * 1712.1 * 0.0002, 6)
