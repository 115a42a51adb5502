"""Bills, transfers, the funding account, funding rates and open interest (okxlab/simulator/ledger.py has the
model); and the endpoints whose truthful answer for a paper account is an empty list."""

from __future__ import annotations

from typing import Any

from okxlab.marketdata.bars import BarError, parse_bar
from okxlab.simulator import params as P
from okxlab.simulator.accounts import Account
from okxlab.simulator.errors import OkxError, param_error
from okxlab.simulator.ledger import (
    FUNDING,
    FUNDING_CAP,
    FUNDING_PERIOD_MS,
    INTEREST_RATE,
    TRADING,
    bill_payload,
    funding_bill_payload,
    funding_rate,
    realized_rate,
    transfer,
)
from okxlab.simulator.orders import fnum

DAY_MS = 86_400_000
INST_TYPES = ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION")


def _page_by(items: list[dict[str, Any]], key, q: dict[str, Any], limit_max: int = 100) -> list[dict[str, Any]]:
    """Newest first; `after` = older than that key, `before` = newer than it."""
    after = P.integer(q, "after")
    before = P.integer(q, "before")
    limit = P.integer(q, "limit", default=100, lo=1, hi=limit_max)
    out = [x for x in sorted(items, key=key, reverse=True)
           if (after is None or key(x) < after) and (before is None or key(x) > before)]
    return out[:limit] if before is None else out[-limit:]


def _bills(w, a: Account, q: dict[str, Any], window_ms: int) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType")
    if inst_type and inst_type not in INST_TYPES:
        raise param_error("instType")
    ccy, inst_id, mgn = P.text(q, "ccy"), P.text(q, "instId"), P.text(q, "mgnMode")
    type_, sub = P.text(q, "type"), P.text(q, "subType")
    begin = P.integer(q, "begin")
    end = P.integer(q, "end")
    oldest = w.now - window_ms
    rows = [b for b in w.bills
            if b["api_key"] == a.api_key and b["account"] == TRADING and b["ts"] >= oldest
            and (not inst_type or b.get("instType") == inst_type) and (not ccy or b["ccy"] == ccy)
            and (not inst_id or b.get("instId") == inst_id) and (not mgn or b.get("mgnMode") == mgn)
            and (not type_ or b["type"] == type_) and (not sub or b["subType"] == sub)
            and (begin is None or b["ts"] >= begin) and (end is None or b["ts"] <= end)]
    return [bill_payload(w, b) for b in _page_by(rows, lambda b: int(b["billId"]), q)]


def bills(w, a: Account, q, b) -> list[dict[str, Any]]:
    """account/bills: the last 7 days, as on OKX."""
    return _bills(w, a, q, 7 * DAY_MS)


def bills_archive(w, a: Account, q, b) -> list[dict[str, Any]]:
    """account/bills-archive: the last 3 months, as on OKX."""
    return _bills(w, a, q, 92 * DAY_MS)


def asset_bills(w, a: Account, q, b) -> list[dict[str, Any]]:
    """asset/bills: the funding account's bills; after/before are timestamps there (OKX)."""
    ccy, type_, client = P.text(q, "ccy"), P.text(q, "type"), P.text(q, "clientId")
    rows = [x for x in w.bills if x["api_key"] == a.api_key and x["account"] == FUNDING
            and (not ccy or x["ccy"] == ccy) and (not type_ or x["type"] == type_)
            and (not client or x.get("clientId") == client)]
    after = P.integer(q, "after")
    before = P.integer(q, "before")
    limit = P.integer(q, "limit", default=100, lo=1, hi=100)
    rows = [x for x in sorted(rows, key=lambda x: int(x["billId"]), reverse=True)
            if (after is None or x["ts"] < after) and (before is None or x["ts"] > before)]
    return [funding_bill_payload(x) for x in (rows[:limit] if before is None else rows[-limit:])]


def funding_balances(w, a: Account, q, b) -> list[dict[str, Any]]:
    """asset/balances: the funding account. It starts empty; transfers fill it."""
    wanted = set(P.ids(P.text(q, "ccy")))
    return [{"availBal": fnum(v), "bal": fnum(v), "ccy": ccy, "frozenBal": "0"}
            for ccy, v in sorted(a.funding.items()) if (not wanted or ccy in wanted) and (v or ccy in wanted)]


def asset_transfer(w, a: Account, q, b) -> list[dict[str, Any]]:
    body = P.body_object(b)
    ccy = P.text(body, "ccy", required=True).upper()
    amt = P.number(body, "amt", required=True)
    src = P.choice(body, "from", (FUNDING, TRADING), required=True)
    dst = P.choice(body, "to", (FUNDING, TRADING), required=True)
    kind = P.text(body, "type", default="0")
    if kind != "0":  # 1-4 move money to or from sub-accounts: a simulated account has none
        raise param_error("type")
    if src == dst:
        raise param_error("to")
    if amt <= 0:
        raise param_error("amt")
    client_id = P.text(body, "clientId")
    if len(client_id) > 32 or not client_id.isalnum() and client_id:
        raise param_error("clientId")
    return [transfer(w, a, ccy, amt, src, dst, client_id)]


def transfer_state(w, a: Account, q, b) -> list[dict[str, Any]]:
    trans_id, client_id = P.text(q, "transId"), P.text(q, "clientId")
    if not trans_id and not client_id:
        raise OkxError("50015", param0="transId", param1="clientId")
    for x in w.bills:
        if (x["api_key"] == a.api_key and x["account"] == TRADING and x["type"] == "1"
                and (x.get("transId") == trans_id if trans_id else x.get("clientId") == client_id)):
            return [{"amt": fnum(abs(x["balChg"])), "ccy": x["ccy"], "clientId": x.get("clientId", ""),
                     "from": x["from"], "instId": "", "state": "success", "subAcct": "", "to": x["to"],
                     "toInstId": "", "transId": x["transId"], "type": "0"}]
    return []


def empty(w, a: Account, q, b) -> list[dict[str, Any]]:
    """A paper account deposits, withdraws and borrows nothing: an empty list is the truth."""
    return []


# ---- funding rates -------------------------------------------------------------------------------------
def _swap(w, q: dict[str, Any]):
    spec = w.spec(P.text(q, "instId", required=True))
    if not spec.is_swap:
        raise param_error("instId")
    return spec


def funding_rate_now(w, a, q, b) -> list[dict[str, Any]]:
    spec = _swap(w, q)
    nxt = (w.now // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS
    rate, premium, source = funding_rate(w.market, spec.inst_id, nxt, upto=w.now)
    last = nxt - FUNDING_PERIOD_MS
    return [{"instType": "SWAP", "instId": spec.inst_id, "fundingRate": fnum(rate), "nextFundingRate": "",
             "fundingTime": str(nxt), "nextFundingTime": str(nxt + FUNDING_PERIOD_MS), "method": "current_period",
             "premium": fnum(round(premium, 8)), "settFundingRate": fnum(realized_rate(w.market, spec.inst_id, last)),
             "settState": "settled", "impactValue": "", "interestRate": fnum(INTEREST_RATE),
             "maxFundingRate": fnum(FUNDING_CAP), "minFundingRate": fnum(-FUNDING_CAP), "formulaType": "withRate",
             "sodUtc0": "", "sodUtc8": "", "ts": str(w.now)}]


def funding_rate_history(w, a, q, b) -> list[dict[str, Any]]:
    """Settled rates, newest first: every funding time up to the clock while the swap has data."""
    spec = _swap(w, q)
    after = P.integer(q, "after")
    before = P.integer(q, "before")
    limit = P.integer(q, "limit", default=100, lo=1, hi=100)
    path = w.market.path(spec.inst_id)
    if path is None:
        return []
    newest = min(w.now, path.end_ms + FUNDING_PERIOD_MS - 1) // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS
    if after is not None:
        newest = min(newest, (after - 1) // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS)
    oldest = path.start_ms // FUNDING_PERIOD_MS * FUNDING_PERIOD_MS + FUNDING_PERIOD_MS
    if before is not None:
        oldest = max(oldest, (before // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS)
    times = list(range(newest, oldest - 1, -FUNDING_PERIOD_MS))
    times = times[:limit] if before is None else times[-limit:]
    out = []
    for t in times:
        rate, _premium, _source = funding_rate(w.market, spec.inst_id, t)
        out.append({"formulaType": "withRate", "fundingRate": fnum(rate), "fundingTime": str(t),
                    "instId": spec.inst_id, "instType": "SWAP", "method": "current_period",
                    "realizedRate": fnum(realized_rate(w.market, spec.inst_id, t))})
    return out


# ---- open interest (a model: candles carry no open interest) -------------------------------------------
def _oi_at(w, spec, t: int) -> tuple[float, float, float] | None:
    """(contracts, base, USD) open at t: modelled as the base volume traded in the 24 h before t."""
    path = w.market.path(spec.inst_id)
    if path is None or path.price_at(t) is None or path.price_at(t - DAY_MS) is None:
        return None  # (without a whole day of data before t there is no 24 h volume to model it on)
    st = path.stats_24h(t)
    base = st["vol24h"]
    return base / spec.ct_val, base, base * path.price_at(t)


def open_interest(w, a, q, b) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType", required=True)
    if inst_type not in ("SWAP", "FUTURES", "OPTION"):
        raise param_error("instType")
    inst_id = P.text(q, "instId")
    specs = [w.spec(inst_id)] if inst_id else list(w.market.specs.values())
    out = []
    for spec in specs:
        if spec.inst_type != inst_type:
            continue
        oi = _oi_at(w, spec, w.now)
        if oi is not None:
            out.append({"instType": spec.inst_type, "instId": spec.inst_id, "oi": fnum(round(oi[0], 2)),
                        "oiCcy": fnum(round(oi[1], 8)), "oiUsd": fnum(round(oi[2], 2)), "ts": str(w.now)})
    return out


def open_interest_history(w, a, q, b) -> list[list[str]]:
    spec = _swap(w, q)
    period = P.text(q, "period", default="5m")
    if period not in ("5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H", "1D", "2D", "3D", "5D", "1W", "1M", "3M"):
        raise param_error("period")
    try:
        bar = parse_bar(period)
    except BarError:
        raise param_error("period") from None
    begin = P.integer(q, "begin")
    end = P.integer(q, "end")
    limit = P.integer(q, "limit", default=100, lo=1, hi=100)
    step = bar.nominal_ms
    t = min(w.now, end if end is not None else w.now) // step * step
    out = []
    while len(out) < limit and (begin is None or t >= begin):
        oi = _oi_at(w, spec, t)
        if oi is None:
            break
        out.append([str(t), fnum(round(oi[0], 2)), fnum(round(oi[1], 8)), fnum(round(oi[2], 2))])
        t -= step
    return out
