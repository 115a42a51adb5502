"""The instruments the simulator lists, with OKX's contract rules and regular-tier (Lv1) fees.

Specs are OKX's (public/instruments): BTC-USDT-SWAP ctVal 0.01 BTC, ETH-USDT-SWAP ctVal 0.1 ETH, lot
and minimum 0.1 contract, tick 0.1 / 0.01; spot BTC-USDT lot 1e-8 min 1e-5 tick 0.1, ETH-USDT lot 1e-6
min 1e-4 tick 0.01. Fees (okx.com/fees, regular users Lv1): spot maker 0.08% / taker 0.10%; USDT-margined
perpetuals maker 0.02% / taker 0.05%. The maintenance margin rate (0.4%, OKX's first position tier for
the BTC and ETH USDT perpetuals) is this simulator's assumption, used for `mmr` and liquidation.

Order limits are OKX's too: maxMktSz / maxLmtSz / maxStopSz / maxTriggerSz (contracts or base), maxMktAmt
(spot market buys in quote) and maxLmtAmt (a limit order's value) as public/instruments lists them. The price
limit follows OKX's rule (buy orders above the highest limit and sell orders below the lowest are refused):
OKX's limits lie between index x (1 +/- Y) and index x (1 +/- Z), depending on the contract's premium
(Y 2 %, Z 5 % for BTC and ETH, its tier 1). The simulator has no premium, so it uses Z: it refuses only what
OKX refuses whatever the premium. The last price stands in for the index.
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
    max_mkt_sz: float = 1_000_000.0
    max_lmt_sz: float = 100_000_000.0
    max_stop_sz: float = 1_000_000.0
    max_trigger_sz: float = 100_000_000.0
    max_mkt_amt: float | None = None  # quote currency, spot market orders only
    max_lmt_amt: float = 20_000_000.0  # USD value of one limit order
    price_limit: float = 0.05  # Z: orders priced beyond last x (1 +/- Z) on their taking side are refused
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
        """`sz` as a whole number of lots, or None when it is not on the lot grid (or too large for a float to
        tell: past 2**53 lots every float is "whole")."""
        n = sz / self.lot_sz
        if not math.isfinite(n) or abs(n) > _EXACT:
            return None
        rounded = round(n)
        return rounded if math.isclose(n, rounded, rel_tol=1e-9, abs_tol=1e-9) else None

    def on_tick(self, px: float) -> bool:
        """A positive whole number of ticks (a float can tell up to 2**53 of them)."""
        n = px / self.tick_sz
        if not math.isfinite(n) or not 0.5 <= n <= _EXACT:
            return False
        return math.isclose(n, round(n), rel_tol=1e-9, abs_tol=1e-7)

    def price_limits(self, ref: float) -> tuple[float, float]:
        """(highest buy price, lowest sell price) around the reference price, on the tick grid."""
        hi = math.floor(round(ref * (1 + self.price_limit) / self.tick_sz, 6)) * self.tick_sz
        lo = math.ceil(round(ref * (1 - self.price_limit) / self.tick_sz, 6)) * self.tick_sz
        return round(hi, self.px_decimals), round(max(lo, self.tick_sz), self.px_decimals)

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
            "maxIcebergSz": _sz16(self.max_trigger_sz), "maxLmtAmt": _num(self.max_lmt_amt),
            "maxLmtSz": _num(self.max_lmt_sz), "maxMktAmt": "" if self.max_mkt_amt is None else _num(self.max_mkt_amt),
            "maxMktSz": _num(self.max_mkt_sz), "maxPlatOILmt": "", "maxStopSz": _num(self.max_stop_sz),
            "maxTriggerSz": _sz16(self.max_trigger_sz), "maxTwapSz": _sz16(self.max_trigger_sz),
            "minSz": _num(self.min_sz), "openType": "", "optType": "", "posLmtAmt": "", "posLmtPct": "",
            "preMktSwTime": "", "quoteCcy": "" if swap else self.quote_ccy,
            "ruleType": "normal", "settleCcy": self.quote_ccy if swap else "", "state": state, "stk": "",
            "tickSz": _num(self.tick_sz), "tradeQuoteCcyList": [] if swap else [self.quote_ccy],
            "uly": family if swap else "",
        }


def _num(x: float) -> str:
    return format(Decimal(repr(x)).normalize(), "f")


def _sz16(x: float) -> str:
    return f"{x:.16f}"  # OKX prints the algo sizes with 16 decimals


_EXACT = float(2**53)


SPOT_FEES = {"maker_fee": 0.0008, "taker_fee": 0.001}
SWAP_FEES = {"maker_fee": 0.0002, "taker_fee": 0.0005}

DEFAULT_SPECS: dict[str, InstrumentSpec] = {
    s.inst_id: s
    for s in (
        InstrumentSpec("BTC-USDT", "SPOT", "BTC", "USDT", tick_sz=0.1, lot_sz=1e-8, min_sz=1e-5,
                       max_lmt_sz=9_999_999_999, max_trigger_sz=9_999_999_999, max_mkt_amt=1_000_000,
                       list_time="1548133413000", code=1, **SPOT_FEES),
        InstrumentSpec("ETH-USDT", "SPOT", "ETH", "USDT", tick_sz=0.01, lot_sz=1e-6, min_sz=1e-4,
                       max_lmt_sz=999_999_999_999, max_trigger_sz=999_999_999_999, max_mkt_amt=1_000_000,
                       list_time="1548133413000", code=2, **SPOT_FEES),
        InstrumentSpec("BTC-USDT-SWAP", "SWAP", "BTC", "USDT", tick_sz=0.1, lot_sz=0.1, min_sz=0.1, ct_val=0.01,
                       max_lever=100, max_mkt_sz=12_000, max_stop_sz=12_000, code=10001, **SWAP_FEES),
        InstrumentSpec("ETH-USDT-SWAP", "SWAP", "ETH", "USDT", tick_sz=0.01, lot_sz=0.1, min_sz=0.1, ct_val=0.1,
                       max_lever=100, max_mkt_sz=20_000, max_stop_sz=20_000, code=10002, **SWAP_FEES),
    )
}
