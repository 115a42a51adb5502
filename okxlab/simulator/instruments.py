"""The instruments the simulator lists, with OKX's contract rules and regular-tier (Lv1) fees.

Specs are OKX's (public/instruments): BTC-USDT-SWAP ctVal 0.01 BTC, ETH-USDT-SWAP ctVal 0.1 ETH, lot
and minimum 0.1 contract, tick 0.1 / 0.01; spot BTC-USDT lot 1e-8 min 1e-5 tick 0.1, ETH-USDT lot 1e-6
min 1e-4 tick 0.01. Fees (okx.com/fees, regular users Lv1): spot maker 0.08% / taker 0.10%; USDT-margined
perpetuals maker 0.02% / taker 0.05%. The maintenance margin rate (0.4%, OKX's first position tier for
the BTC and ETH USDT perpetuals) is this simulator's assumption, used for `mmr` and liquidation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from okxlab.domain import Instrument


@cache
def decimals(step: float) -> int:
    """Digits after the point needed to print multiples of `step` (0.1 -> 1, 1e-8 -> 8)."""
    exp = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -int(exp))


@dataclass(frozen=True)
class InstrumentSpec:
    inst_id: str
    inst_type: str  # "SPOT" | "SWAP"
    base_ccy: str
    quote_ccy: str
    tick_sz: float
    lot_sz: float
    min_sz: float
    ct_val: float = 1.0  # base units per contract (1 for spot)
    max_lever: float = 1.0
    maker_fee: float = 0.0008  # positive rate; charged as a negative fee
    taker_fee: float = 0.001
    mmr: float = 0.004  # maintenance margin rate (swaps)
    max_mkt_sz: str = "1000000"
    list_time: str = "1611916828000"
    code: int = 0  # instIdCode

    @property
    def is_swap(self) -> bool:
        return self.inst_type == "SWAP"

    @property
    def settle_ccy(self) -> str:
        return self.quote_ccy

    @property
    def px_decimals(self) -> int:
        return decimals(self.tick_sz)

    @property
    def sz_decimals(self) -> int:
        return decimals(self.lot_sz)

    def round_px(self, px: float) -> float:
        """Nearest price on the tick grid."""
        return round(round(px / self.tick_sz) * self.tick_sz, self.px_decimals)

    def fmt_px(self, px: float | None) -> str:
        if px is None:
            return ""
        return f"{self.round_px(px):.{self.px_decimals}f}"

    def fmt_sz(self, sz: float) -> str:
        return f"{round(sz, self.sz_decimals):.{self.sz_decimals}f}".rstrip("0").rstrip(".") or "0"

    def lots(self, sz: float) -> int | None:
        """`sz` as a whole number of lots, or None when it is not on the lot grid."""
        n = sz / self.lot_sz
        rounded = round(n)
        return rounded if math.isclose(n, rounded, rel_tol=1e-9, abs_tol=1e-9) else None

    def on_tick(self, px: float) -> bool:
        n = px / self.tick_sz
        return math.isclose(n, round(n), rel_tol=1e-9, abs_tol=1e-7)

    def to_domain(self) -> Instrument:
        return Instrument(inst_id=self.inst_id, inst_type=self.inst_type, base_ccy=self.base_ccy,
                          quote_ccy=self.quote_ccy, ct_val=self.ct_val, lot_sz=self.lot_sz, min_sz=self.min_sz,
                          tick_sz=self.tick_sz, max_lever=self.max_lever)

    def payload(self, state: str) -> dict[str, Any]:
        """The public/instruments row, with the field names and string types OKX uses."""
        swap = self.is_swap
        family = f"{self.base_ccy}-{self.quote_ccy}"
        return {
            "alias": "", "auctionEndTime": "", "baseCcy": "" if swap else self.base_ccy, "category": "1",
            "contTdSwTime": "", "ctMult": "1" if swap else "", "ctType": "linear" if swap else "",
            "ctVal": _num(self.ct_val) if swap else "", "ctValCcy": self.base_ccy if swap else "",
            "expTime": "", "futureSettlement": False, "instFamily": family if swap else "",
            "instId": self.inst_id, "instIdCode": self.code,
            "instType": self.inst_type, "lever": _num(self.max_lever) if swap else "",
            "listTime": self.list_time, "lotSz": _num(self.lot_sz),
            "maxIcebergSz": "100000000.0000000000000000", "maxLmtAmt": "20000000", "maxLmtSz": "100000000",
            "maxMktAmt": "" if swap else "1000000", "maxMktSz": self.max_mkt_sz, "maxPlatOILmt": "",
            "maxStopSz": self.max_mkt_sz,
            "maxTriggerSz": "100000000.0000000000000000", "maxTwapSz": "100000000.0000000000000000",
            "minSz": _num(self.min_sz), "openType": "", "optType": "", "posLmtAmt": "", "posLmtPct": "",
            "preMktSwTime": "", "quoteCcy": "" if swap else self.quote_ccy,
            "ruleType": "normal", "settleCcy": self.quote_ccy if swap else "", "state": state, "stk": "",
            "tickSz": _num(self.tick_sz), "tradeQuoteCcyList": [] if swap else [self.quote_ccy],
            "uly": family if swap else "",
        }


def _num(x: float) -> str:
    return format(Decimal(repr(x)).normalize(), "f")


SPOT_FEES = {"maker_fee": 0.0008, "taker_fee": 0.001}
SWAP_FEES = {"maker_fee": 0.0002, "taker_fee": 0.0005}

DEFAULT_SPECS: dict[str, InstrumentSpec] = {
    s.inst_id: s
    for s in (
        InstrumentSpec("BTC-USDT", "SPOT", "BTC", "USDT", tick_sz=0.1, lot_sz=1e-8, min_sz=1e-5,
                       list_time="1548133413000", code=1, **SPOT_FEES),
        InstrumentSpec("ETH-USDT", "SPOT", "ETH", "USDT", tick_sz=0.01, lot_sz=1e-6, min_sz=1e-4,
                       list_time="1548133413000", code=2, **SPOT_FEES),
        InstrumentSpec("BTC-USDT-SWAP", "SWAP", "BTC", "USDT", tick_sz=0.1, lot_sz=0.1, min_sz=0.1, ct_val=0.01,
                       max_lever=100, max_mkt_sz="12000", code=10001, **SWAP_FEES),
        InstrumentSpec("ETH-USDT-SWAP", "SWAP", "ETH", "USDT", tick_sz=0.01, lot_sz=0.1, min_sz=0.1, ct_val=0.1,
                       max_lever=100, max_mkt_sz="20000", code=10002, **SWAP_FEES),
    )
}
