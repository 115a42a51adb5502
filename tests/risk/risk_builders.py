"""Small builders for risk engine tests: a BTC swap at 60,000, a 10,000 USDT account, default limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from okxlab.domain import Account, Decision, Instrument, Plan, Position, SizeRequest, SymbolMarket, Verdict
from okxlab.risk.engine import evaluate
from okxlab.risk.limits import RiskLimits
from okxlab.risk.state import RiskState

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
BTC = "BTC-USDT-SWAP"
ETH = "ETH-USDT-SWAP"
SOL = "SOL-USDT-SWAP"
BTC_SPOT = "BTC-USDT"


def swap(inst_id: str = BTC, **kw: Any) -> Instrument:
    base = dict(inst_id=inst_id, inst_type="SWAP", base_ccy=inst_id.split("-")[0], quote_ccy="USDT",
                ct_val=0.01, lot_sz=0.1, min_sz=0.1, tick_sz=0.1, max_lever=100.0)
    return Instrument(**{**base, **kw})


def spot(inst_id: str = BTC_SPOT, **kw: Any) -> Instrument:
    base = dict(inst_id=inst_id, inst_type="SPOT", base_ccy=inst_id.split("-")[0], quote_ccy="USDT",
                ct_val=1.0, lot_sz=0.00000001, min_sz=0.00001, tick_sz=0.1, max_lever=10.0)
    return Instrument(**{**base, **kw})


def market(instrument: Instrument | None = None, last: float = 60_000.0, spread: float = 0.2) -> SymbolMarket:
    inst = instrument or swap()
    return SymbolMarket(symbol=inst.inst_id, instrument=inst, as_of=NOW, last=last, bid=last - spread / 2,
                        ask=last + spread / 2, bar="4H", candles=())


def markets(*items: SymbolMarket) -> dict[str, SymbolMarket]:
    return {m.symbol: m for m in (items or (market(),))}


def account(**kw: Any) -> Account:
    base = dict(equity=10_000.0, cash=10_000.0, available=10_000.0)
    return Account(**{**base, **kw})


def position(symbol: str = BTC, side: str = "long", contracts: float = 1.0, **kw: Any) -> Position:
    base = dict(symbol=symbol, side=side, contracts=contracts, entry_price=60_000.0, mark_price=60_000.0,
                unrealized_pnl=0.0, leverage=5.0, ct_val=0.01)
    return Position(**{**base, **kw})


def opening(action: str = "open_long", symbol: str = BTC, **kw: Any) -> Decision:
    """A sane opening: 1,000 USDT notional at 5x, stop 2 % away, take profit 5 % away."""
    long = action == "open_long"
    base = dict(symbol=symbol, action=action, confidence=0.7, rationale="test",
                size=SizeRequest("notional_usdt", 1_000.0), leverage=5.0, order_type="market",
                stop_loss=58_800.0 if long else 61_200.0, take_profit=63_000.0 if long else 57_000.0)
    return Decision(**{**base, **kw})


def close(symbol: str = BTC, **kw: Any) -> Decision:
    return Decision(**{**dict(symbol=symbol, action="close", confidence=0.7, rationale="test"), **kw})


def hold(symbol: str = BTC) -> Decision:
    return Decision(symbol=symbol, action="hold", confidence=0.5, rationale="test")


def plan(*decisions: Decision) -> Plan:
    return Plan(schema_version="okxlab.plan.v1", decisions=tuple(decisions))


def run(*decisions: Decision, acct: Account | None = None, mkts: dict[str, SymbolMarket] | None = None,
        limits: RiskLimits | None = None, state: RiskState | None = None,
        now: datetime = NOW) -> list[Verdict]:
    return evaluate(plan(*decisions), acct or account(), markets() if mkts is None else mkts,
                    limits or RiskLimits(), state or RiskState(), now)


def one(decision: Decision, **kw: Any) -> Verdict:
    (verdict,) = run(decision, **kw)
    return verdict


def loss_at_stop(verdict: Verdict, inst: Instrument, entry: float, limits: RiskLimits) -> float:
    """USDT lost if the stop is hit: price move plus the fee and slippage buffers."""
    order = verdict.order
    assert order is not None and order.stop_loss is not None
    units = order.contracts * inst.ct_val
    cost_pct = limits.fee_buffer_pct + limits.slippage_buffer_pct
    return units * abs(entry - order.stop_loss) + units * entry * cost_pct / 100.0


