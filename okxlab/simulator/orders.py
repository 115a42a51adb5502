"""Orders, algo orders and fills as the simulator keeps them, and their OKX payloads.

Payload field names and string formatting follow OKX's v5 responses (trade/order, orders-pending,
orders-history, order-algo, orders-algo-pending, fills-history), as ccxt parses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from okxlab.simulator.instruments import InstrumentSpec


def fnum(x: float | None) -> str:
    """A float as OKX prints amounts: plain decimal, shortest exact repr, no exponent."""
    if x is None:
        return ""
    if x == 0:
        return "0"
    text = repr(float(x))  # the same shortest digits; about 5x faster than numpy's formatter
    if "e" in text or "n" in text:  # exponent form (below 1e-4, from 1e16), inf, nan
        return np.format_float_positional(float(x), trim="-")
    return text[:-2] if text.endswith(".0") else text


def flever(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else fnum(x)


@dataclass
class AttachedAlgo:
    """One element of attachAlgoOrds on a parent order (TP and/or SL, created when the parent fills)."""

    attach_algo_id: str
    attach_algo_cl_ord_id: str = ""
    tp_trigger_px: float | None = None
    tp_ord_px: float | None = None  # -1 = market
    tp_trigger_px_type: str = "last"
    sl_trigger_px: float | None = None
    sl_ord_px: float | None = None
    sl_trigger_px_type: str = "last"

    def payload(self, spec: InstrumentSpec) -> dict[str, Any]:
        return {
            "attachAlgoId": self.attach_algo_id, "attachAlgoClOrdId": self.attach_algo_cl_ord_id,
            "tpTriggerPx": _px(spec, self.tp_trigger_px), "tpOrdPx": _ordpx(spec, self.tp_ord_px),
            "tpTriggerPxType": self.tp_trigger_px_type if self.tp_trigger_px is not None else "",
            "slTriggerPx": _px(spec, self.sl_trigger_px), "slOrdPx": _ordpx(spec, self.sl_ord_px),
            "slTriggerPxType": self.sl_trigger_px_type if self.sl_trigger_px is not None else "",
        }


def _px(spec: InstrumentSpec, px: float | None) -> str:
    return "" if px is None else spec.fmt_px(px)


def _ordpx(spec: InstrumentSpec, px: float | None) -> str:
    if px is None:
        return ""
    return "-1" if px == -1 else spec.fmt_px(px)


@dataclass
class Order:
    ord_id: str
    api_key: str
    inst_id: str
    inst_type: str
    side: str  # buy | sell
    ord_type: str  # market | limit | post_only | ioc | fok
    sz: float  # contracts (swap), base (spot), or quote for a spot market buy with tgtCcy=quote_ccy
    px: float | None
    td_mode: str
    c_time: int
    seq: int
    cl_ord_id: str = ""
    tag: str = ""
    tgt_ccy: str = ""
    reduce_only: bool = False
    pos_side: str = "net"
    lever: float = 0.0
    state: str = "live"  # live | partially_filled | filled | canceled
    acc_fill_sz: float = 0.0
    notional_filled: float = 0.0  # sum px*sz for avgPx
    fee: float = 0.0
    fee_ccy: str = ""
    pnl: float = 0.0
    fill_px: float | None = None
    fill_sz: float = 0.0
    fill_time: int | None = None
    trade_id: str = ""
    u_time: int = 0
    cancel_source: str = ""
    cancel_reason: str = ""
    attached: list[AttachedAlgo] = field(default_factory=list)
    attached_created: bool = False
    algo_id: str = ""  # the algo order that created this order
    algo_cl_ord_id: str = ""
    source: str = ""
    category: str = "normal"  # "full_liquidation" for orders placed by a liquidation
    exit_sl: tuple[float, float] | None = None  # (triggerPx, ordPx) when a stop loss created this order
    exit_tp: tuple[float, float] | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # the request fields as received

    @property
    def is_open(self) -> bool:
        return self.state in ("live", "partially_filled")

    @property
    def remaining(self) -> float:
        return max(0.0, self.sz - self.acc_fill_sz)

    @property
    def avg_px(self) -> float | None:
        return self.notional_filled / self.acc_fill_sz if self.acc_fill_sz > 0 else None

    def payload(self, spec: InstrumentSpec) -> dict[str, Any]:
        sl = self.exit_sl
        tp = self.exit_tp
        sz = fnum(self.sz) if self.tgt_ccy == "quote_ccy" else spec.fmt_sz(self.sz)
        return {
            "accFillSz": spec.fmt_sz(self.acc_fill_sz), "algoClOrdId": self.algo_cl_ord_id, "algoId": self.algo_id,
            "attachAlgoClOrdId": self.attached[0].attach_algo_cl_ord_id if self.attached else "",
            "attachAlgoOrds": [] if self.attached_created else [a.payload(spec) for a in self.attached],
            "avgPx": fnum(self.avg_px) if self.avg_px is not None else "",
            "cTime": str(self.c_time), "cancelSource": self.cancel_source, "cancelSourceReason": self.cancel_reason,
            "category": self.category, "ccy": "", "clOrdId": self.cl_ord_id, "fee": fnum(self.fee),
            "feeCcy": self.fee_ccy or spec.quote_ccy,
            "fillPx": spec.fmt_px(self.fill_px) if self.fill_px is not None else "",
            "fillSz": spec.fmt_sz(self.fill_sz), "fillTime": str(self.fill_time) if self.fill_time is not None else "",
            "instId": self.inst_id, "instType": self.inst_type, "isTpLimit": "false",
            "lever": flever(self.lever) if self.lever else "", "linkedAlgoOrd": {"algoId": ""},
            "ordId": self.ord_id, "ordType": self.ord_type, "pnl": fnum(self.pnl), "posSide": self.pos_side,
            "px": spec.fmt_px(self.px) if self.px is not None else "", "pxType": "", "pxUsd": "", "pxVol": "",
            "quickMgnType": "", "rebate": "0", "rebateCcy": spec.quote_ccy,
            "reduceOnly": "true" if self.reduce_only else "false", "side": self.side,
            "slOrdPx": _ordpx(spec, sl[1]) if sl else "", "slTriggerPx": _px(spec, sl[0]) if sl else "",
            "slTriggerPxType": "last" if sl else "", "source": self.source, "state": self.state, "stpId": "",
            "stpMode": "cancel_maker", "sz": sz, "tag": self.tag, "tdMode": self.td_mode, "tgtCcy": self.tgt_ccy,
            "tpOrdPx": _ordpx(spec, tp[1]) if tp else "", "tpTriggerPx": _px(spec, tp[0]) if tp else "",
            "tpTriggerPxType": "last" if tp else "", "tradeId": self.trade_id, "uTime": str(self.u_time),
        }


@dataclass
class AlgoOrder:
    algo_id: str
    api_key: str
    inst_id: str
    inst_type: str
    side: str
    ord_type: str  # conditional | oco | trigger
    sz: float | None  # None with closeFraction=1 (close the whole position)
    td_mode: str
    c_time: int
    seq: int
    algo_cl_ord_id: str = ""
    tag: str = ""
    tgt_ccy: str = ""
    reduce_only: bool = False
    close_fraction: str = ""
    pos_side: str = "net"
    lever: float = 0.0
    tp_trigger_px: float | None = None
    tp_ord_px: float | None = None
    sl_trigger_px: float | None = None
    sl_ord_px: float | None = None
    trigger_px: float | None = None
    order_px: float | None = None
    state: str = "live"  # live | effective | canceled | order_failed
    actual_side: str = ""  # "sl" | "tp" for TP/SL orders, the side for trigger orders
    actual_sz: float = 0.0
    actual_px: float | None = None
    trigger_time: int | None = None
    ord_id: str = ""  # the order placed when it triggered
    parent_ord_id: str = ""  # the order it was attached to
    u_time: int = 0
    fail_code: str = "0"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_live(self) -> bool:
        return self.state == "live"

    def payload(self, spec: InstrumentSpec, last: float | None) -> dict[str, Any]:
        sz = "" if self.sz is None else (fnum(self.sz) if self.tgt_ccy == "quote_ccy" else spec.fmt_sz(self.sz))
        return {
            "activePx": "", "actualPx": spec.fmt_px(self.actual_px) if self.actual_px is not None else "",
            "actualSide": self.actual_side, "actualSz": spec.fmt_sz(self.actual_sz),
            "algoClOrdId": self.algo_cl_ord_id, "algoId": self.algo_id, "amendPxOnTriggerType": "0",
            "attachAlgoOrds": [], "cTime": str(self.c_time), "callbackRatio": "", "callbackSpread": "", "ccy": "",
            "chaseType": "", "chaseVal": "", "clOrdId": self.algo_cl_ord_id, "closeFraction": self.close_fraction,
            "failCode": self.fail_code, "instId": self.inst_id, "instType": self.inst_type, "isTradeBorrowMode": "",
            "last": spec.fmt_px(last) if last is not None else "", "lever": flever(self.lever) if self.lever else "",
            "linkedOrd": {"ordId": self.parent_ord_id}, "maxChaseType": "", "maxChaseVal": "", "moveTriggerPx": "",
            "ordId": self.ord_id, "ordIdList": [self.ord_id] if self.ord_id else [],
            "ordPx": _ordpx(spec, self.order_px), "ordType": self.ord_type, "posSide": self.pos_side,
            "pxLimit": "", "pxSpread": "", "pxVar": "", "quickMgnType": "",
            "reduceOnly": "true" if self.reduce_only else "false", "side": self.side,
            "slOrdPx": _ordpx(spec, self.sl_ord_px), "slTriggerPx": _px(spec, self.sl_trigger_px),
            "slTriggerPxType": "last" if self.sl_trigger_px is not None else "",
            "state": self.state, "sz": sz, "szLimit": "", "tag": self.tag, "tdMode": self.td_mode,
            "tgtCcy": self.tgt_ccy, "timeInterval": "",
            "tpOrdPx": _ordpx(spec, self.tp_ord_px), "tpTriggerPx": _px(spec, self.tp_trigger_px),
            "tpTriggerPxType": "last" if self.tp_trigger_px is not None else "",
            "triggerPx": _px(spec, self.trigger_px), "triggerPxType": "last" if self.trigger_px is not None else "",
            "triggerTime": str(self.trigger_time) if self.trigger_time is not None else "",
            "uTime": str(self.u_time),
        }


@dataclass
class Fill:
    trade_id: str
    bill_id: str
    api_key: str
    ord_id: str
    cl_ord_id: str
    tag: str
    inst_id: str
    inst_type: str
    side: str
    fill_px: float
    fill_sz: float
    fee: float  # negative = charged
    fee_ccy: str
    fee_rate: float  # negative = charged
    exec_type: str  # T (taker) | M (maker)
    fill_pnl: float
    ts: int
    mark_px: float
    idx_px: float | None = None  # None: fills kept by an older simulator (then the mark is shown)

    def payload(self, spec: InstrumentSpec) -> dict[str, Any]:
        return {
            "side": self.side, "fillSz": spec.fmt_sz(self.fill_sz), "fillPx": spec.fmt_px(self.fill_px),
            "fillPxVol": "", "fillFwdPx": "", "fee": fnum(self.fee), "fillPnl": fnum(self.fill_pnl),
            "ordId": self.ord_id, "feeRate": fnum(self.fee_rate), "instType": self.inst_type, "fillPxUsd": "",
            "instId": self.inst_id, "clOrdId": self.cl_ord_id, "posSide": "net", "billId": self.bill_id,
            "fillMarkVol": "", "tag": self.tag, "fillTime": str(self.ts), "execType": self.exec_type,
            "fillIdxPx": spec.fmt_px(self.mark_px if self.idx_px is None else self.idx_px), "tradeId": self.trade_id,
            "fillMarkPx": spec.fmt_px(self.mark_px) if spec.is_swap else "", "feeCcy": self.fee_ccy,
            "ts": str(self.ts),
        }
