"""Bills (every balance change, as OKX's account/bills and asset/bills list them), funding and transfers.

A bill is written for each balance change the simulator makes: a fill (type 2, with its fee and pnl), a
funding payment (type 8) and a transfer between the funding account (6) and the trading account (18)
(type 1 in the trading account's bills; 130/131 in the funding account's). Bills are kept in `World.bills`
as plain dicts (raw floats; `bill_payload` formats them), append-only, and saved with the world.

Funding (docs/simulator.md, "Funding"): every perpetual swap settles at 00:00, 08:00 and 16:00 UTC. The rate
settled at F is OKX's formula over the period [F - 8 h, F):

    rate = clamp(P + clamp(I - P, -0.05 %, +0.05 %), -cap, +cap)

with P the average premium index (swap price - index) / index, I the interest rate, 0.01 % per 8 h (OKX's for
USDT-margined swaps) and cap OKX's 0.375 % for BTC and ETH. The index is the instrument's spot series (BTC-USDT
for BTC-USDT-SWAP) where the world has one: P is then averaged over the times in the period where both series
open a bar (real prices, not the synthetic path between them). Without a spot series the index is taken to be
the swap's own price: P = 0 and the rate is I, 0.01 %. A funding-rate history given with `--data` replaces the
model at the times it covers.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from okxlab.simulator.errors import OkxError
from okxlab.simulator.orders import fnum

FUNDING_PERIOD_MS = 8 * 3_600_000
INTEREST_RATE = 0.0001  # per 8 h, USDT-margined swaps
PREMIUM_CLAMP = 0.0005
FUNDING_CAP = 0.00375
TRADING, FUNDING = "18", "6"


# ---- funding rates ---------------------------------------------------------------------------------------
def _index_path(market, inst_id: str):
    spec = market.spec(inst_id)
    if spec is None or not spec.is_swap:
        return None
    return market.path(f"{spec.base_ccy}-{spec.quote_ccy}")


def average_premium(market, inst_id: str, start: int, upto: int) -> float | None:
    """Average premium of the swap over its index on [start, upto), sampled where both series open a bar;
    None when there is no such time (no index, or no common bar boundary)."""
    swap, index = market.path(inst_id), _index_path(market, inst_id)
    if swap is None or index is None:
        return None
    samples = []
    i = bisect_left(swap._ts, start)
    while i < len(swap._ts) and swap._ts[i] < upto:
        t = swap._ts[i]
        j = index.index(t)
        if j >= 0 and index._ts[j] == t and index._o[j] > 0:
            samples.append((swap._o[i] - index._o[j]) / index._o[j])
        i += 1
    return sum(samples) / len(samples) if samples else None


def model_rate(premium: float | None) -> float:
    p = premium or 0.0
    return max(-FUNDING_CAP, min(FUNDING_CAP, p + max(-PREMIUM_CLAMP, min(PREMIUM_CLAMP, INTEREST_RATE - p))))


def funding_rate(market, inst_id: str, at: int, upto: int | None = None) -> tuple[float, float, str]:
    """(rate, premium, source) of the funding settled at `at` (a funding time), from what is known at `upto`
    (default `at`: the whole period). Source: "data" (a given history) or "model"."""
    given = getattr(market, "funding_history", {}).get(inst_id)
    if given and at in given:
        rate, _realized = given[at]
        return rate, 0.0, "data"
    premium = average_premium(market, inst_id, at - FUNDING_PERIOD_MS, at if upto is None else min(upto, at))
    return model_rate(premium), premium or 0.0, "model"


def funding_source(market, inst_id: str) -> str:
    """How an instrument's funding rates are made (GET /admin/data)."""
    given = getattr(market, "funding_history", {}).get(inst_id)
    index = _index_path(market, inst_id)
    model = (f"model: OKX's formula, index {index.spec.inst_id} where it has data, else premium 0 (rate 0.01 %)"
             if index is not None else "model: no index series, premium 0 (rate 0.01 %)")
    if given:
        return f"data ({len(given)} funding times given, {min(given)} .. {max(given)}); elsewhere {model}"
    return model


def realized_rate(market, inst_id: str, at: int) -> float:
    given = getattr(market, "funding_history", {}).get(inst_id)
    if given and at in given:
        return given[at][1]
    return funding_rate(market, inst_id, at)[0]


def settle_funding(w, at: int) -> None:
    """Pay funding at funding time `at` on every open swap position: long pays short when the rate is
    positive, payment = position notional at mark x rate. One type-8 bill per payment."""
    w.funding_settled = at
    rates: dict[str, float] = {}
    for acct in w.accounts.values():
        for pos in list(acct.positions.values()):
            spec = w.spec(pos.inst_id)
            if not pos.pos or not spec.is_swap:
                continue
            if pos.inst_id not in rates:
                rates[pos.inst_id] = realized_rate(w.market, pos.inst_id, at)
            rate = rates[pos.inst_id]
            path = w.market.path(pos.inst_id)
            mark = path.last_known(at) if path is not None else w.mark(pos.inst_id)
            pay = -pos.pos * spec.ct_val * mark * rate
            if pay == 0:
                continue
            acct.credit(spec.settle_ccy, pay)
            pos.funding_fee += pay
            pos.realized_pnl += pay
            acct.u_time = at
            add_bill(w, acct, spec.settle_ccy, pay, "8", "174" if pay > 0 else "173", ts=at, instId=pos.inst_id,
                     instType=spec.inst_type, mgnMode="cross", px=mark, sz=abs(pos.pos), pnl=pay,
                     fillMarkPx=mark, notes=f"funding rate {fnum(rate)}")


# ---- bills ---------------------------------------------------------------------------------------------
def new_bill_id(w) -> str:
    return f"3{w._id('bill'):018d}"


def add_bill(w, acct, ccy: str, chg: float, type_: str, sub_type: str, *, bill_id: str | None = None,
             account: str = TRADING, ts: int | None = None, **fields: Any) -> dict[str, Any]:
    bal = (acct.balances if account == TRADING else acct.funding).get(ccy, 0.0)
    bill = {"api_key": acct.api_key, "account": account, "billId": bill_id or new_bill_id(w), "ccy": ccy,
            "balChg": chg, "bal": bal, "type": type_, "subType": sub_type, "ts": w.now if ts is None else ts, **fields}
    w.bills.append(bill)
    return bill


def fill_bills(w, acct, spec, fill, before: float) -> None:
    """The bills of one fill (already applied to the balances): one for a swap (pnl + fee in the settlement
    currency), two for spot (the currency paid and the one received, the fee on the latter)."""
    common = {"instId": fill.inst_id, "instType": fill.inst_type, "ordId": fill.ord_id, "clOrdId": fill.cl_ord_id,
              "tag": fill.tag, "tradeId": fill.trade_id, "px": fill.fill_px, "sz": fill.fill_sz,
              "execType": fill.exec_type, "fillMarkPx": fill.mark_px if spec.is_swap else None}
    buy = fill.side == "buy"
    if spec.is_swap:
        sub = ("6" if before < 0 else "3") if buy else ("5" if before > 0 else "4")
        add_bill(w, acct, spec.settle_ccy, fill.fill_pnl + fill.fee, "2", sub, bill_id=fill.bill_id,
                 fee=fill.fee, pnl=fill.fill_pnl, mgnMode="cross", **common)
        return
    sub = "1" if buy else "2"
    notional = fill.fill_px * fill.fill_sz
    paid, got = (spec.quote_ccy, spec.base_ccy) if buy else (spec.base_ccy, spec.quote_ccy)
    add_bill(w, acct, paid, -(notional if buy else fill.fill_sz), "2", sub, bill_id=fill.bill_id, fee=0.0,
             pnl=0.0, mgnMode="cash", **common)
    add_bill(w, acct, got, (fill.fill_sz if buy else notional) + fill.fee, "2", sub, fee=fill.fee, pnl=0.0,
             mgnMode="cash", **common)


def bill_payload(w, bill: dict[str, Any]) -> dict[str, Any]:
    spec = w.market.spec(bill.get("instId", "")) if bill.get("instId") else None
    px, sz = bill.get("px"), bill.get("sz")

    def num(key: str) -> str:
        v = bill.get(key)
        return "" if v is None else fnum(v)

    return {
        "bal": fnum(bill["bal"]), "balChg": fnum(bill["balChg"]), "billId": bill["billId"], "ccy": bill["ccy"],
        "clOrdId": bill.get("clOrdId", ""), "earnAmt": "", "earnApr": "", "execType": bill.get("execType", ""),
        "fee": num("fee"), "fillFwdPx": "", "fillIdxPx": "", "fillMarkPx": num("fillMarkPx"),
        "fillMarkVol": "", "fillPxUsd": "", "fillPxVol": "", "fillTime": str(bill["ts"]) if bill["type"] == "2" else "",
        "from": bill.get("from", ""), "instId": bill.get("instId", ""), "instType": bill.get("instType", ""),
        "interest": "0", "mgnMode": bill.get("mgnMode", ""), "notes": bill.get("notes", ""),
        "ordId": bill.get("ordId", ""), "pnl": num("pnl"),
        "posBal": "0", "posBalChg": "0",
        "px": (spec.fmt_px(px) if spec and px is not None else num("px")),
        "subType": bill["subType"], "sz": (spec.fmt_sz(sz) if spec and sz is not None else num("sz")),
        "tag": bill.get("tag", ""), "to": bill.get("to", ""), "tradeId": bill.get("tradeId", ""),
        "ts": str(bill["ts"]), "type": bill["type"],
    }


def funding_bill_payload(bill: dict[str, Any]) -> dict[str, Any]:
    """A funding-account bill as asset/bills lists it."""
    return {"billId": bill["billId"], "ccy": bill["ccy"], "clientId": bill.get("clientId", ""),
            "balChg": fnum(bill["balChg"]), "bal": fnum(bill["bal"]), "type": bill["type"],
            "notes": bill.get("notes", ""), "ts": str(bill["ts"])}


# ---- transfers -----------------------------------------------------------------------------------------
def transferable(w, acct, ccy: str, account: str) -> float:
    """What may leave `account`: the funding balance, or the trading account's available equity (USDT: what
    no position's margin or order needs; other currencies: what no order holds)."""
    if account == FUNDING:
        return acct.funding.get(ccy, 0.0)
    if ccy == "USDT":
        m = w.margin(acct)
        return max(0.0, min(m["avail"], m["cash"] - m["frozen"]))
    return acct.balances.get(ccy, 0.0) - w.frozen_base(acct, ccy)


def transfer(w, acct, ccy: str, amt: float, src: str, dst: str, client_id: str) -> dict[str, Any]:
    if amt > transferable(w, acct, ccy, src) + 1e-12:
        raise OkxError("58350", "Insufficient balance")
    trans_id = str(w._id("bill"))
    books = {TRADING: acct.balances, FUNDING: acct.funding}
    books[src][ccy] = books[src].get(ccy, 0.0) - amt
    books[dst][ccy] = books[dst].get(ccy, 0.0) + amt
    acct.u_time = w.now
    extra = {"transId": trans_id, "clientId": client_id, "from": src, "to": dst}
    trading_chg = amt if dst == TRADING else -amt
    # as OKX writes a transfer bill: `sz` the signed change (what ccxt's fetch_transfers reads), its note
    add_bill(w, acct, ccy, trading_chg, "1", "11" if trading_chg > 0 else "12", sz=trading_chg,
             notes="From Funding Account" if trading_chg > 0 else "To Funding Account", **extra)
    # the funding account's bill types: 130 "transferred from trading account", 131 "transferred to trading account"
    add_bill(w, acct, ccy, -trading_chg, "130" if dst == FUNDING else "131", "", account=FUNDING,
             notes="From Trading Account" if dst == FUNDING else "To Trading Account", **extra)
    return {"transId": trans_id, "ccy": ccy, "clientId": client_id, "from": src, "amt": fnum(amt), "to": dst}
