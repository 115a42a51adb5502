"""Private trade endpoints: orders (single and batch), cancel, amend, queries, fills, algo orders, close."""

from __future__ import annotations

from typing import Any

from okxlab.simulator import params as P
from okxlab.simulator.accounts import Account
from okxlab.simulator.errors import OkxError, missing, param_error
from okxlab.simulator.orders import AlgoOrder, Order


class Reply:
    """A response with an explicit top-level code (batch results: "0", "1" all failed, "2" partial)."""

    def __init__(self, code: str, msg: str, data: list[dict[str, Any]]):
        self.code, self.msg, self.data = code, msg, data

    def payload(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg, "data": self.data}


def _batch_reply(rows: list[dict[str, Any]], single: bool) -> Reply:
    failed = sum(1 for r in rows if r["sCode"] != "0")
    if not failed:
        return Reply("0", "", rows)
    if failed == len(rows):
        return Reply("1", "Operation failed." if single else "All operations failed.", rows)
    return Reply("2", "Bulk operation partially succeeded.", rows)


def _fail(exc: OkxError, **fields: Any) -> dict[str, Any]:
    return {**fields, "sCode": exc.code, "sMsg": exc.msg}


def _echo(item: Any, name: str) -> str:
    value = item.get(name, "") if isinstance(item, dict) else ""
    return value if isinstance(value, str) else str(value)


# ---- placing ------------------------------------------------------------------------------------------
def _place_one(w, a: Account, item: Any, endpoint: str) -> dict[str, Any]:
    try:
        order = w.place_order(a, item)
    except OkxError as exc:
        w.record_rejection(a, endpoint, item, exc)
        return _fail(exc, clOrdId=_echo(item, "clOrdId"), ordId="", tag=_echo(item, "tag"), ts=str(w.now))
    return {"clOrdId": order.cl_ord_id, "ordId": order.ord_id, "sCode": "0", "sMsg": "Order placed",
            "tag": order.tag, "ts": str(w.now)}


def place_order(w, a: Account, q, b) -> Reply:
    return _batch_reply([_place_one(w, a, P.body_object(b), "trade/order")], single=True)


def batch_orders(w, a: Account, q, b) -> Reply:
    items = P.body_list(b, 20)
    return _batch_reply([_place_one(w, a, item, "trade/batch-orders") for item in items], single=False)


# ---- finding orders -----------------------------------------------------------------------------------
def find_order(w, a: Account, src: dict[str, Any], not_found: str = "51603") -> Order:
    inst_id = P.text(src, "instId", required=True)
    w.spec(inst_id)
    ord_id = P.text(src, "ordId")
    cl = P.text(src, "clOrdId")
    if not ord_id and not cl:
        raise OkxError("51003")
    if not ord_id:
        ord_id = a.cl_ord_ids.get(cl, "")
    order = w.orders.get(ord_id)
    if order is None or order.api_key != a.api_key or order.inst_id != inst_id or (cl and order.cl_ord_id != cl):
        raise OkxError(not_found)
    return order


def get_order(w, a: Account, q, b) -> list[dict[str, Any]]:
    order = find_order(w, a, q)
    return [order.payload(w.spec(order.inst_id))]


def _cancel_one(w, a: Account, item: Any) -> dict[str, Any]:
    try:
        if not isinstance(item, dict):
            raise param_error("instId")
        order = find_order(w, a, item, not_found="51400")
        w.cancel_order(order)
    except OkxError as exc:
        return _fail(exc, clOrdId=_echo(item, "clOrdId"), ordId=_echo(item, "ordId"), ts=str(w.now))
    return {"clOrdId": order.cl_ord_id, "ordId": order.ord_id, "sCode": "0", "sMsg": "", "ts": str(w.now)}


def cancel_order(w, a: Account, q, b) -> Reply:
    return _batch_reply([_cancel_one(w, a, P.body_object(b))], single=True)


def cancel_batch_orders(w, a: Account, q, b) -> Reply:
    return _batch_reply([_cancel_one(w, a, item) for item in P.body_list(b, 20)], single=False)


def _amend_one(w, a: Account, item: Any) -> dict[str, Any]:
    try:
        if not isinstance(item, dict):
            raise param_error("instId")
        order = find_order(w, a, item, not_found="51503")
        w.amend_order(order, item)
    except OkxError as exc:
        return _fail(exc, clOrdId=_echo(item, "clOrdId"), ordId=_echo(item, "ordId"), reqId=_echo(item, "reqId"),
                     ts=str(w.now))
    return {"clOrdId": order.cl_ord_id, "ordId": order.ord_id, "reqId": _echo(item, "reqId"), "sCode": "0",
            "sMsg": "", "ts": str(w.now)}


def amend_order(w, a: Account, q, b) -> Reply:
    return _batch_reply([_amend_one(w, a, P.body_object(b))], single=True)


def amend_batch_orders(w, a: Account, q, b) -> Reply:
    return _batch_reply([_amend_one(w, a, item) for item in P.body_list(b, 20)], single=False)


# ---- lists --------------------------------------------------------------------------------------------
def _page(items: list[Any], key, q: dict[str, Any], limit_max: int = 100) -> list[Any]:
    """Newest first; `after` = older than that id, `before` = newer than it (ids compared as numbers)."""
    after = P.integer(q, "after")
    before = P.integer(q, "before")
    limit = P.integer(q, "limit", default=100, lo=1, hi=limit_max)
    out = []
    for item in sorted(items, key=key, reverse=True):
        k = key(item)
        if after is not None and k >= after:
            continue
        if before is not None and k <= before:
            continue
        out.append(item)
    return out[:limit] if before is None else out[-limit:]


def _order_filter(w, a: Account, q: dict[str, Any], states: tuple[str, ...]) -> list[Order]:
    inst_type = P.text(q, "instType")
    inst_id = P.text(q, "instId")
    ord_types = P.ids(P.text(q, "ordType"))
    state = P.text(q, "state")
    if state and state not in states:
        raise param_error("state")
    begin = P.integer(q, "begin")
    end = P.integer(q, "end")
    out = []
    for o in w.orders.values():
        if o.api_key != a.api_key or o.state not in states or (state and o.state != state):
            continue
        if (inst_type and o.inst_type != inst_type) or (inst_id and o.inst_id != inst_id):
            continue
        if ord_types and o.ord_type not in ord_types:
            continue
        if (begin is not None and o.c_time < begin) or (end is not None and o.c_time > end):
            continue
        out.append(o)
    return out


def orders_pending(w, a: Account, q, b) -> list[dict[str, Any]]:
    orders = _order_filter(w, a, q, ("live", "partially_filled"))
    return [o.payload(w.spec(o.inst_id)) for o in _page(orders, lambda o: int(o.ord_id), q)]


def orders_history(w, a: Account, q, b) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType", required=True)
    if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
        raise param_error("instType")
    orders = _order_filter(w, a, q, ("filled", "canceled"))
    return [o.payload(w.spec(o.inst_id)) for o in _page(orders, lambda o: int(o.ord_id), q)]


def _fills(w, a: Account, q: dict[str, Any], inst_type_required: bool) -> list[dict[str, Any]]:
    inst_type = P.text(q, "instType", required=inst_type_required)
    if inst_type and inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
        raise param_error("instType")
    inst_id = P.text(q, "instId")
    ord_id = P.text(q, "ordId")
    begin = P.integer(q, "begin")
    end = P.integer(q, "end")
    fills = [f for f in w.fills
             if f.api_key == a.api_key and (not inst_type or f.inst_type == inst_type)
             and (not inst_id or f.inst_id == inst_id) and (not ord_id or f.ord_id == ord_id)
             and (begin is None or f.ts >= begin) and (end is None or f.ts <= end)]
    return [f.payload(w.spec(f.inst_id)) for f in _page(fills, lambda f: int(f.bill_id), q)]


def fills(w, a: Account, q, b):
    return _fills(w, a, q, inst_type_required=False)


def fills_history(w, a: Account, q, b):
    return _fills(w, a, q, inst_type_required=True)


# ---- algo orders --------------------------------------------------------------------------------------
def place_algo(w, a: Account, q, b) -> Reply:
    item = P.body_object(b)
    try:
        algo = w.place_algo(a, item)
    except OkxError as exc:
        w.record_rejection(a, "trade/order-algo", item, exc)
        algo_cl = _echo(item, "algoClOrdId") or _echo(item, "clOrdId")
        return _batch_reply([_fail(exc, algoId="", algoClOrdId=algo_cl, clOrdId=algo_cl, tag=_echo(item, "tag"))],
                            single=True)
    return Reply("0", "", [{"algoClOrdId": algo.algo_cl_ord_id, "algoId": algo.algo_id,
                            "clOrdId": algo.algo_cl_ord_id, "sCode": "0", "sMsg": "", "tag": algo.tag}])


def find_algo(w, a: Account, src: dict[str, Any]) -> AlgoOrder:
    algo_id = P.text(src, "algoId")
    algo_cl = P.text(src, "algoClOrdId")
    if not algo_id and not algo_cl:
        raise OkxError("50015", param0="algoId", param1="algoClOrdId")
    if not algo_id:
        algo_id = a.algo_cl_ord_ids.get(algo_cl, "")
    algo = w.algos.get(algo_id)
    inst_id = P.text(src, "instId")
    if algo is None or algo.api_key != a.api_key or (inst_id and algo.inst_id != inst_id):
        raise OkxError("51603")
    return algo


def get_algo(w, a: Account, q, b):
    algo = find_algo(w, a, q)
    return [algo.payload(w.spec(algo.inst_id), w.last(algo.inst_id))]


def cancel_algos(w, a: Account, q, b) -> Reply:
    rows = []
    for item in P.body_list(b, 10):
        try:
            if not isinstance(item, dict):
                raise param_error("algoId")
            P.text(item, "instId", required=True)
            algo = find_algo(w, a, item)
            w.cancel_algo(algo)
            rows.append({"algoClOrdId": algo.algo_cl_ord_id, "algoId": algo.algo_id, "clOrdId": "",
                         "sCode": "0", "sMsg": "", "tag": algo.tag})
        except OkxError as exc:
            code = "51400" if exc.code == "51603" else exc.code
            rows.append(_fail(OkxError(code) if code != exc.code else exc, algoId=_echo(item, "algoId"),
                              algoClOrdId=_echo(item, "algoClOrdId"), clOrdId="", tag=""))
    return _batch_reply(rows, single=False)


def amend_algos(w, a: Account, q, b) -> Reply:
    item = P.body_object(b)
    try:
        P.text(item, "instId", required=True)
        algo = find_algo(w, a, item)
        w.amend_algo(algo, item)
    except OkxError as exc:
        return _batch_reply([_fail(exc, algoId=_echo(item, "algoId"), algoClOrdId=_echo(item, "algoClOrdId"),
                                   reqId=_echo(item, "reqId"))], single=True)
    return Reply("0", "", [{"algoClOrdId": algo.algo_cl_ord_id, "algoId": algo.algo_id,
                            "reqId": _echo(item, "reqId"), "sCode": "0", "sMsg": ""}])


def _algo_list(w, a: Account, q: dict[str, Any], live: bool) -> list[dict[str, Any]]:
    ord_types = P.ids(P.text(q, "ordType"))
    algo_id = P.text(q, "algoId")
    if not ord_types and not algo_id:
        raise missing("ordType")
    state = P.text(q, "state")
    if not live and not state and not algo_id:
        raise OkxError("50015", param0="state", param1="algoId")
    if state and state not in ("effective", "canceled", "order_failed"):
        raise param_error("state")
    inst_type = P.text(q, "instType")
    inst_id = P.text(q, "instId")
    algo_cl = P.text(q, "algoClOrdId")
    source = w._live_algos.values() if live else w.algos.values()  # a long replay has thousands of ended ones
    algos = [al for al in source
             if al.api_key == a.api_key and (al.is_live if live else not al.is_live)
             and (not ord_types or al.ord_type in ord_types) and (not algo_id or al.algo_id == algo_id)
             and (not state or al.state == state) and (not inst_type or al.inst_type == inst_type)
             and (not inst_id or al.inst_id == inst_id) and (not algo_cl or al.algo_cl_ord_id == algo_cl)]
    return [al.payload(w.spec(al.inst_id), w.last(al.inst_id)) for al in _page(algos, lambda x: int(x.algo_id), q)]


def algos_pending(w, a: Account, q, b):
    return _algo_list(w, a, q, live=True)


def algos_history(w, a: Account, q, b):
    return _algo_list(w, a, q, live=False)


# ---- closing a position -------------------------------------------------------------------------------
def close_position(w, a: Account, q, b) -> list[dict[str, Any]]:
    body = P.body_object(b)
    inst_id = P.text(body, "instId", required=True)
    spec = w.spec(inst_id)
    mode = P.choice(body, "mgnMode", ("cross", "isolated"), required=True)
    pos_side = P.choice(body, "posSide", ("net", "long", "short"), default="net")
    cl = P.cl_ord_id(body)
    tag = P.tag(body)
    auto_cxl = P.boolean(body, "autoCxl")
    if pos_side != "net":
        raise param_error("posSide")
    if mode != "cross":
        raise OkxError("51023")
    pos = a.positions.get(inst_id)
    if not spec.is_swap or pos is None or not pos.pos:
        raise OkxError("51023")
    if auto_cxl:
        for order in [o for o in w.orders.values() if o.api_key == a.api_key and o.inst_id == inst_id and o.is_open]:
            w.cancel_order(order)
    req = {"instId": inst_id, "tdMode": "cross", "side": "sell" if pos.pos > 0 else "buy", "ordType": "market",
           "sz": spec.fmt_sz(abs(pos.pos)), "reduceOnly": True}
    if cl:
        req["clOrdId"] = cl
    if tag:
        req["tag"] = tag
    order = w.place_order(a, req)
    order.raw = {**body, "_endpoint": "trade/close-position"}
    return [{"clOrdId": order.cl_ord_id, "instId": inst_id, "posSide": "net", "tag": order.tag}]
