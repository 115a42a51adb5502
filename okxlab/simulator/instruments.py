"""The instruments the simulator lists, with OKX's contract rules and regular-tier (Lv1) fees.

Specs are OKX's own public/instruments rows, shipped in okxlab/data/instruments.json (spot BTC, ETH, ADA,
LTC against USDT; the USDT-margined perpetuals of BTC, ETH, LTC, ADA, SUSHI), e.g. BTC-USDT-SWAP ctVal
0.01 BTC, lot and minimum 0.1 contract, tick 0.1; `okxlab sim --instruments FILE` adds any other spot or
linear swap from a saved public/instruments answer. Fees (okx.com/fees, regular users Lv1): spot maker 0.08% / taker 0.10%; USDT-margined
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

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from okxlab.domain import Instrument
from okxlab.errors import UserError


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
SHIPPED = Path(__file__).resolve().parents[1] / "data" / "instruments.json"
_TYPES = ("SPOT", "SWAP")


def _opt(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def spec_from_okx(row: dict[str, Any], code: int) -> InstrumentSpec:
    """An InstrumentSpec from one public/instruments row as OKX answers it (strings), with OKX's regular-tier
    fees for its type. Only spot and linear (USDT-margined) perpetual swaps: the simulator settles in USDT."""
    inst_id, kind = row.get("instId", "?"), row.get("instType")
    if kind not in _TYPES:
        raise ValueError(f"{inst_id}: instType {kind!r} is not simulated (only {', '.join(_TYPES)})")
    swap = kind == "SWAP"
    if swap and (row.get("ctType") != "linear" or row.get("settleCcy") != "USDT"):
        raise ValueError(f"{inst_id}: only linear USDT-margined swaps are simulated (ctType {row.get('ctType')!r}, "
                         f"settleCcy {row.get('settleCcy')!r})")
    base, quote = (row["ctValCcy"], row["settleCcy"]) if swap else (row["baseCcy"], row["quoteCcy"])
    defaults = InstrumentSpec("x", kind, base, quote, tick_sz=1, lot_sz=1, min_sz=1)
    return InstrumentSpec(
        inst_id, kind, base, quote, tick_sz=float(row["tickSz"]), lot_sz=float(row["lotSz"]),
        min_sz=float(row["minSz"]), ct_val=float(row["ctVal"]) if swap else 1.0,
        max_lever=float(row["lever"]) if swap and row.get("lever") else 1.0,
        max_mkt_sz=_opt(row.get("maxMktSz")) or defaults.max_mkt_sz,
        max_lmt_sz=_opt(row.get("maxLmtSz")) or defaults.max_lmt_sz,
        max_stop_sz=_opt(row.get("maxStopSz")) or defaults.max_stop_sz,
        max_trigger_sz=_opt(row.get("maxTriggerSz")) or defaults.max_trigger_sz,
        max_mkt_amt=None if swap else _opt(row.get("maxMktAmt")),
        max_lmt_amt=_opt(row.get("maxLmtAmt")) or defaults.max_lmt_amt,
        list_time=row.get("listTime") or defaults.list_time, code=int(row.get("instIdCode") or code),
        **(SWAP_FEES if swap else SPOT_FEES))


def _rows(document: Any) -> list[dict[str, Any]]:
    """The rows of an OKX answer ({"code", "data": [...]}), a bare list of rows, or answers keyed by instType."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        return document["data"]
    if isinstance(document, dict) and any(k in document for k in _TYPES):
        return [r for k in _TYPES for r in _rows(document.get(k, []))]
    raise ValueError("expected an OKX public/instruments answer: {\"data\": [rows]} or a list of rows")


def load_specs(path: str | Path, first_code: dict[str, int] | None = None) -> dict[str, InstrumentSpec]:
    """Specs from a public/instruments answer saved to a file. Rows without an instIdCode get one in file
    order (spot from 1, swaps from 10001), so the same file always gives the same codes."""
    try:
        document = json.loads(Path(path).read_text())
        next_code = dict(first_code or {"SPOT": 1, "SWAP": 10001})
        out: dict[str, InstrumentSpec] = {}
        for row in _rows(document):
            kind = row.get("instType")
            out[row.get("instId", "?")] = spec_from_okx(row, next_code.get(kind, 0))
            next_code[kind] = next_code.get(kind, 0) + 1
        return out
    except OSError as exc:
        raise UserError(f"instruments file {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:  # JSON errors are ValueErrors too
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise UserError(f"instruments file {path}: {what}") from None


DEFAULT_SPECS: dict[str, InstrumentSpec] = load_specs(SHIPPED)
