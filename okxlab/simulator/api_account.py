"""Private account endpoints: balance, positions, config, leverage, fee rates, funding balance."""

from __future__ import annotations

from typing import Any

from okxlab.simulator import params as P
from okxlab.simulator.accounts import Account
from okxlab.simulator.errors import OkxError, param_error
from okxlab.simulator.orders import flever, fnum


def balance(w, a: Account, q, b) -> list[dict[str, Any]]:
    wanted = set(P.ids(P.text(q, "ccy")))
    m = w.margin(a)
    details = []
    total_eq = notional_usd = 0.0
    for ccy in sorted(a.balances, key=lambda c: (c != "USDT", c)):
        bal = a.balances[ccy]
        if ccy == "USDT":
            frozen = m["imr"] + m["frozen"]
            row = {"availBal": fnum(m["cash"] - m["frozen"]), "availEq": fnum(m["avail"]), "cashBal": fnum(bal),
                   "eq": fnum(m["eq"]), "eqUsd": fnum(m["eq"]), "frozenBal": fnum(frozen), "imr": fnum(m["imr"]),
                   "mmr": fnum(m["mmr"]), "ordFrozen": fnum(m["frozen"]), "upl": fnum(m["upl"]),
                   "notionalLever": fnum(m["notional"] / m["eq"]) if m["eq"] > 0 else "0",
                   "mgnRatio": fnum(m["eq"] / m["mmr"]) if m["mmr"] > 0 else ""}
            eq_usd = m["eq"]
        else:
            if abs(bal) < 1e-12 and ccy not in wanted:
                continue
            frozen = w.frozen_base(a, ccy)
            price = _usd_price(w, ccy)
            eq_usd = bal * price
            row = {"availBal": fnum(bal - frozen), "availEq": fnum(bal - frozen), "cashBal": fnum(bal),
                   "eq": fnum(bal), "eqUsd": fnum(eq_usd), "frozenBal": fnum(frozen), "imr": "", "mmr": "",
                   "ordFrozen": fnum(frozen), "upl": "0", "notionalLever": "", "mgnRatio": ""}
        total_eq += eq_usd
        notional_usd += m["notional"] if ccy == "USDT" else 0.0
        if wanted and ccy not in wanted:
            continue
        details.append({
            "accAvgPx": "", "borrowFroz": "", "ccy": ccy, "clSpotInUse": "", "clSpotInUseAmt": "",
            "colBorrAutoConversion": "0",
            "collateralEnabled": False, "collateralRestrict": False, "crossLiab": "", "disEq": row["eqUsd"],
            "fixedBal": "0", "interest": "", "isoEq": "0", "isoLiab": "", "isoUpl": "0", "liab": "",
            "maxLoan": "", "maxSpotInUse": "", "maxSpotInUseAmt": "", "openAvgPx": "", "rewardBal": "0", "smtSyncEq": "0",
            "spotBal": "", "spotCopyTradingEq": "0", "spotInUse": "", "spotInUseAmt": "", "spotIsoBal": "0", "spotUpl": "",
            "spotUplRatio": "", "stgyEq": "0", "totalPnl": "", "totalPnlRatio": "", "twap": "0",
            "uTime": str(a.u_time), "uplLiab": "", "coinUsdPrice": fnum(_usd_price(w, ccy)), **row,
        })
    return [{"adjEq": "", "availEq": "", "borrowFroz": "", "details": details, "imr": "", "isoEq": "0",
             "mgnRatio": "", "mmr": "", "notionalUsd": fnum(notional_usd), "notionalUsdForBorrow": "",
             "notionalUsdForFutures": "", "notionalUsdForOption": "", "notionalUsdForSwap": fnum(notional_usd),
             "ordFroz": "", "totalEq": fnum(total_eq), "uTime": str(w.now), "upl": fnum(m["upl"])}]


def _usd_price(w, ccy: str) -> float:
    if ccy in ("USDT", "USDC", "USD"):
        return 1.0
    for inst_id in (f"{ccy}-USDT", f"{ccy}-USDT-SWAP"):
        if w.market.path(inst_id) is not None:
            return w.mark(inst_id)
    return 0.0


def position_row(w, a: Account, pos) -> dict[str, Any]:
    spec = w.spec(pos.inst_id)
    mark = w.mark(pos.inst_id)
    lever = a.lever(pos.inst_id)
    upl = (mark - pos.avg_px) * pos.pos * spec.ct_val
    last = w.last(pos.inst_id)
    last = mark if last is None else last
    upl_last = (last - pos.avg_px) * pos.pos * spec.ct_val
    value = abs(pos.pos) * spec.ct_val * mark
    imr = value / lever
    mmr = value * spec.mmr
    m = w.margin(a)
    liq = w.liquidation_px(a, pos.inst_id)
    close_algos = [{"algoId": al.algo_id, "closeFraction": al.close_fraction or "1",
                    "slTriggerPx": spec.fmt_px(al.sl_trigger_px) if al.sl_trigger_px is not None else "",
                    "slTriggerPxType": "last" if al.sl_trigger_px is not None else "",
                    "tpTriggerPx": spec.fmt_px(al.tp_trigger_px) if al.tp_trigger_px is not None else "",
                    "tpTriggerPxType": "last" if al.tp_trigger_px is not None else ""}
                   for al in w._live_algos.values()  # live ones only: a long replay has thousands of ended ones
                   if al.is_live and al.api_key == a.api_key and al.inst_id == pos.inst_id and al.reduce_only]
    return {
        "adl": "1", "availPos": spec.fmt_sz(abs(pos.pos)), "avgPx": fnum(pos.avg_px), "baseBal": "",
        "baseBorrowed": "", "baseInterest": "", "bePx": fnum(pos.avg_px), "bizRefId": "", "bizRefType": "",
        "cTime": str(pos.c_time), "ccy": spec.settle_ccy, "clSpotInUseAmt": "", "closeOrderAlgo": close_algos,
        "deltaBS": "", "deltaPA": "", "fee": fnum(pos.fee), "fundingFee": fnum(pos.funding_fee), "gammaBS": "", "gammaPA": "",
        "idxPx": spec.fmt_px(w.index(pos.inst_id)), "imr": fnum(imr), "instId": pos.inst_id, "instType": spec.inst_type,
        "interest": "", "last": spec.fmt_px(last), "lever": flever(lever), "liab": "", "liabCcy": "",
        "liqPenalty": "0", "liqPx": fnum(liq) if liq is not None else "", "margin": "",
        "markPx": spec.fmt_px(mark), "maxSpotInUseAmt": "", "mgnMode": "cross",
        "mgnRatio": fnum(m["eq"] / m["mmr"]) if m["mmr"] > 0 else "", "mmr": fnum(mmr),
        "notionalUsd": fnum(value), "optVal": "", "pendingCloseOrdLiabVal": "", "pnl": fnum(pos.pnl),
        "pos": spec.fmt_sz(pos.pos) if pos.pos > 0 else "-" + spec.fmt_sz(-pos.pos), "posCcy": "",
        "posId": pos.pos_id, "posSide": "net", "quoteBal": "", "quoteBorrowed": "", "quoteInterest": "",
        "realizedPnl": fnum(pos.realized_pnl), "spotInUseAmt": "", "spotInUseCcy": "", "thetaBS": "",
        "thetaPA": "", "tradeId": pos.last_trade_id, "uTime": str(pos.u_time), "upl": fnum(upl),
        "uplLastPx": fnum(upl_last), "uplRatio": fnum(upl / imr) if imr else "0",
        "uplRatioLastPx": fnum(upl_last / imr) if imr else "0", "usdPx": "", "vegaBS": "", "vegaPA": "",
    }


def positions(w, a: Account, q, b) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType")
    if inst_type and inst_type not in ("MARGIN", "SWAP", "FUTURES", "OPTION"):
        raise param_error("instType")
    inst_ids = P.ids(P.text(q, "instId"))
    for inst_id in inst_ids:
        w.spec(inst_id)
    pos_ids = P.ids(P.text(q, "posId"))
    rows = []
    for pos in a.positions.values():
        if not pos.pos or (inst_ids and pos.inst_id not in inst_ids) or (pos_ids and pos.pos_id not in pos_ids):
            continue
        if inst_type and w.spec(pos.inst_id).inst_type != inst_type:
            continue
        rows.append(position_row(w, a, pos))
    return rows


def positions_history(w, a: Account, q, b) -> list[dict[str, Any]]:
    inst_id = P.text(q, "instId")
    limit = P.integer(q, "limit", default=100, lo=1, hi=100)
    rows = []
    for key, pos, closed_at in reversed(w.closed_positions):
        if key != a.api_key or (inst_id and pos.inst_id != inst_id):
            continue
        spec = w.spec(pos.inst_id)
        close_avg = pos.close_notional / pos.close_qty if pos.close_qty else 0.0
        open_value = pos.max_pos * spec.ct_val * pos.avg_px / a.lever(pos.inst_id)
        rows.append({"cTime": str(pos.c_time), "ccy": spec.settle_ccy, "closeAvgPx": fnum(close_avg),
                     "closeTotalPos": spec.fmt_sz(pos.close_qty), "direction": pos.direction, "fee": fnum(pos.fee),
                     "fundingFee": fnum(pos.funding_fee), "instId": pos.inst_id, "instType": spec.inst_type,
                     "lever": flever(a.lever(pos.inst_id)), "liqPenalty": "0", "mgnMode": "cross",
                     "openAvgPx": fnum(pos.avg_px), "openMaxPos": spec.fmt_sz(pos.max_pos), "pnl": fnum(pos.pnl),
                     "pnlRatio": fnum(pos.pnl / open_value) if open_value else "0", "posId": pos.pos_id,
                     "posSide": "net", "realizedPnl": fnum(pos.realized_pnl), "triggerPx": "",
                     "type": "3" if any(o.category == "full_liquidation" and o.inst_id == pos.inst_id
                                        and o.api_key == key and o.u_time == closed_at for o in w.orders.values())
                     else "2", "uTime": str(closed_at), "uly": f"{spec.base_ccy}-{spec.quote_ccy}"})
        if len(rows) >= limit:
            break
    return rows


def config(w, a: Account, q, b) -> list[dict[str, Any]]:
    return [{"acctLv": "2", "acctStpMode": "cancel_maker", "autoLoan": False, "ctIsoMode": "automatic",
             "enableSpotBorrow": False, "greeksType": "PA", "ip": "", "kycLv": "2", "label": a.label,
             "level": "Lv1", "levelTmp": "", "liquidationGear": "-1", "mainUid": a.uid, "mgnIsoMode": "automatic",
             "opAuth": "0", "perm": "read_only,trade", "posMode": "net_mode", "roleType": "0",
             "spotBorrowAutoRepay": False, "spotOffsetType": "", "spotRoleType": "0", "spotTraderInsts": [],
             "traderInsts": [], "type": "0", "uid": a.uid}]


def set_position_mode(w, a: Account, q, b) -> list[dict[str, Any]]:
    mode = P.choice(P.body_object(b), "posMode", ("net_mode", "long_short_mode"), required=True)
    if mode != "net_mode":
        raise OkxError("51010")
    return [{"posMode": mode}]


def leverage_info(w, a: Account, q, b) -> list[dict[str, Any]]:
    inst_ids = P.ids(P.text(q, "instId", required=True))
    mode = P.choice(q, "mgnMode", ("cross", "isolated"), required=True)
    rows = []
    for inst_id in inst_ids:
        spec = w.spec(inst_id)
        lever = a.lever(inst_id) if spec.is_swap else 1.0
        rows.append({"instId": inst_id, "mgnMode": mode, "posSide": "net", "lever": flever(lever)})
    return rows


def set_leverage(w, a: Account, q, b) -> list[dict[str, Any]]:
    body = P.body_object(b)
    lever = P.number(body, "lever", required=True)
    mode = P.choice(body, "mgnMode", ("cross", "isolated"), required=True)
    inst_id = P.text(body, "instId")
    if not inst_id:
        if P.text(body, "ccy"):
            raise OkxError("54000")
        raise OkxError("50015", param0="instId", param1="ccy")
    spec = w.spec(inst_id)
    if mode != "cross":
        raise OkxError("51010")
    if not spec.is_swap:
        raise OkxError("54000")
    if lever < 0.01:
        raise param_error("lever")
    if lever > spec.max_lever:
        raise OkxError("59102")
    old = a.lever(inst_id)
    a.leverage[inst_id] = lever
    if lever < old and w.margin(a)["avail"] < 0:
        a.leverage[inst_id] = old
        raise OkxError("59108", "Your account leverage is too low and has insufficient margins. Please increase the leverage.")
    return [{"lever": flever(lever), "mgnMode": mode, "instId": inst_id, "posSide": "net"}]


def trade_fee(w, a: Account, q, b) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType", required=True)
    if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
        raise param_error("instType")
    inst_id = P.text(q, "instId")
    if inst_id and w.spec(inst_id).inst_type != inst_type:
        raise OkxError("51015", "Instrument ID doesn't match instrument type.")
    spot = inst_type in ("SPOT", "MARGIN")
    sample = next((s for s in w.market.specs.values() if s.is_swap != spot), None)
    maker = -(sample.maker_fee if sample else 0.0)
    taker = -(sample.taker_fee if sample else 0.0)
    return [{"category": "1", "delivery": "", "exercise": "", "instType": inst_type, "level": "Lv1",
             "maker": fnum(maker), "makerU": "" if spot else fnum(maker), "makerUSDC": "",
             "taker": fnum(taker), "takerU": "" if spot else fnum(taker), "takerUSDC": "",
             "ruleType": "normal", "ts": str(w.now), "uly": ""}]


def currencies(w, a: Account, q, b) -> list[dict[str, Any]]:
    return []
