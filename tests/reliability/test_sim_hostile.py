"""Hostile requests to the simulator: each gets OKX's answer (or the admin API's), never a 500, never a traceback,
and changes nothing.

`okxlab sim` runs as a real process (its state file and admin token in tmp). An account holds a position and a
resting order, so amendments and stops have something to aim at. Each case is sent over raw HTTP with `requests`,
signed with OKX's scheme where it needs to be (okxlab.simulator.auth.sign, the one the simulator verifies with),
and must come back: not HTTP 500, JSON, in OKX's {code, msg, data} shape with the code OKX gives (the sCode of
the order row for order requests; the admin API's {error} shape and status for /admin), and with the account,
its orders and the worlds exactly as before. At the end the process's whole output is searched for tracebacks.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from okxlab.simulator.auth import sign
from okxlab.simulator.clock import iso, parse_time
from okxlab.simulator.token import TOKEN_HEADER
from tests.reliability.harness import Results, free_port
from tests.reliability.sim_process import SimProcess

KEY, SECRET, PASSPHRASE = "hostile-key-3b9e51", "hostile-secret-77ad20", "hostile-pass-4Q"
START = parse_time("2022-09-13T08:00:00Z")
DEEP = 50_000

Body = str | bytes | Callable[["Ctx"], Any]


@dataclass
class Ctx:
    """What the cases aim at: prices at the clock, the resting order."""

    last: float
    resting: str


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: Body = ""
    code: str = ""  # OKX's code (an order row's sCode); "" for an admin case
    signed: bool = True
    headers: dict[str, str | bytes] = field(default_factory=dict)  # set after signing: what the client sends
    admin: str | None = None  # an admin case: "token" (the right one), or the token header value to send
    status: int = 0  # the HTTP status an admin case must get


def order(**fields: Any) -> Callable[[Ctx], dict[str, Any]]:
    """A BTC-USDT-SWAP limit buy of 1 inside the price limit, with `fields` replaced (callables get the Ctx)."""
    def build(ctx: Ctx) -> dict[str, Any]:
        body = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "limit", "sz": "1",
                "px": f"{ctx.last * 0.98:.1f}"}
        body.update({k: v(ctx) if callable(v) else v for k, v in fields.items()})
        return {k: v for k, v in body.items() if v is not None}
    return build


def amend(**fields: Any) -> Callable[[Ctx], dict[str, Any]]:
    return lambda ctx: {"instId": "BTC-USDT-SWAP", "ordId": ctx.resting, **fields}


def algo(**fields: Any) -> Callable[[Ctx], dict[str, Any]]:
    base = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "sell", "ordType": "conditional", "sz": "1",
            "reduceOnly": "true", "slTriggerPx": lambda c: f"{c.last * 0.9:.1f}"}
    return lambda ctx: {k: v(ctx) if callable(v) else v for k, v in {**base, **fields}.items()}


def px(factor: float) -> Callable[[Ctx], str]:
    return lambda ctx: f"{ctx.last * factor:.1f}"


TRADE, BATCH, AMEND, ALGO, LEVER = ("/api/v5/trade/order", "/api/v5/trade/batch-orders", "/api/v5/trade/amend-order",
                                    "/api/v5/trade/order-algo", "/api/v5/account/set-leverage")
BALANCE = "/api/v5/account/balance"
FAMILIES: dict[str, list[Case]] = {"bodies": [
    Case("50k-deep array, unsigned", "POST", TRADE, "[" * DEEP + "]" * DEEP, "50002", signed=False),
    Case("50k-deep array, signed", "POST", TRADE, "[" * DEEP + "]" * DEEP, "50002"),
    Case("50k-deep object, signed", "POST", TRADE, '{"a":' * DEEP + "1" + "}" * DEEP, "50002"),
    Case("20-deep valid JSON", "POST", TRADE, json.dumps(json.loads("[" * 20 + "]" * 20)), "50002"),
    Case("NaN literal", "POST", TRADE, '{"instId": "BTC-USDT-SWAP", "sz": NaN}', "50002"),
    Case("Infinity literal", "POST", TRADE, '{"instId": "BTC-USDT-SWAP", "px": -Infinity}', "50002"),
    Case("5000-digit integer", "POST", TRADE, '{"sz": ' + "9" * 5000 + "}", "50002"),
    Case("body not UTF-8", "POST", TRADE, b"\xff\xfe{\"sz\": \"1\"}", "50002", signed=False),
    Case("body over 1 MB", "POST", TRADE, "x" * (1 << 21), "51000", signed=False),
    Case("empty POST body", "POST", TRADE, "", "50000"),
    Case("a JSON string as the body", "POST", TRADE, '"buy everything"', "50002"),
    Case("null as the body", "POST", TRADE, "null", "50002"),
    Case("21 orders in a batch", "POST", BATCH, lambda c: [order()(c)] * 21, "51111"),
    Case("a batch of numbers", "POST", BATCH, "[1, 2, 3]", "51000"),
], "authentication headers": [
    Case("non-ASCII passphrase", "GET", BALANCE, headers={"OK-ACCESS-PASSPHRASE": "пароль".encode()}, code="50105"),
    Case("passphrase not UTF-8", "GET", BALANCE, headers={"OK-ACCESS-PASSPHRASE": b"\xff\xfe\xfd"}, code="50105"),
    Case("non-ASCII signature", "GET", BALANCE, headers={"OK-ACCESS-SIGN": "подпись=".encode()}, code="50113"),
    Case("8 kB signature", "GET", BALANCE, headers={"OK-ACCESS-SIGN": "A" * 8192}, code="50113"),
    Case("60 kB signature", "GET", BALANCE, headers={"OK-ACCESS-SIGN": "A" * 60_000}, code="50113"),
    Case("non-ASCII key", "GET", BALANCE, headers={"OK-ACCESS-KEY": "ключ".encode()}, code="50111"),
    Case("full-width digits in the timestamp", "GET", BALANCE,
         headers={"OK-ACCESS-TIMESTAMP": "２０２２-09-13T08:00:00.000Z".encode()}, code="50112"),
    Case("timestamp in year 9999", "GET", BALANCE, headers={"OK-ACCESS-TIMESTAMP": "9999-12-31T23:59:59.999Z"},
         code="50102"),
    Case("timestamp of month 0", "GET", BALANCE, headers={"OK-ACCESS-TIMESTAMP": "2022-00-00T00:00:00.000Z"},
         code="50112"),
], "sizes": [
    Case("market size 1e308", "POST", TRADE, order(ordType="market", px=None, sz="1e308"), "51202"),
    Case("limit size 1e308 as a JSON number", "POST", TRADE, order(sz=1e308), "51203"),
    Case("size 1e309 (infinite)", "POST", TRADE, order(sz="1e309"), "51000"),
    Case("size 'NaN'", "POST", TRADE, order(sz="NaN"), "51000"),
    Case("size 'Infinity'", "POST", TRADE, order(sz="Infinity"), "51000"),
    Case("size -0", "POST", TRADE, order(sz="-0"), "51000"),
    Case("size in hexadecimal", "POST", TRADE, order(sz="0x10"), "51000"),
    Case("size in Arabic-Indic digits", "POST", TRADE, order(sz="\u0661"), "51000"),
    Case("size 1e-300", "POST", TRADE, order(sz="1e-300"), "51020"),
    Case("size off the lot grid", "POST", TRADE, order(sz="0.15"), "51121"),
    Case("market size above maxMktSz", "POST", TRADE, order(ordType="market", px=None, sz="12000.1"), "51202"),
    Case("limit size above maxLmtSz", "POST", TRADE, order(sz="100000000.1"), "51203"),
    Case("limit order worth more than maxLmtAmt", "POST", TRADE, order(side="sell", sz="100000", px=px(1.04)),
         "51203"),
], "prices": [
    Case("buy at 1e308", "POST", TRADE, order(px="1e308"), "51006"),
    Case("buy at 1e-300", "POST", TRADE, order(px="1e-300"), "51122"),
    Case("sell at 1e-300", "POST", TRADE, order(side="sell", px="1e-300"), "51122"),
    Case("sell at 1e20 (off any float grid)", "POST", TRADE, order(side="sell", px="1e20"), "51000"),
    Case("price 'NaN'", "POST", TRADE, order(px="NaN"), "51000"),
    Case("price -1", "POST", TRADE, order(px="-1"), "51000"),
    Case("buy 20 % above the last price", "POST", TRADE, order(px=px(1.2)), "51006"),
    Case("sell 20 % below the last price", "POST", TRADE, order(side="sell", px=px(0.8)), "51006"),
    Case("amend to a price of 1e308", "POST", AMEND, amend(newPx="1e308"), "51006"),
    Case("amend to a size of 1e308", "POST", AMEND, amend(newSz="1e308"), "51203"),
    Case("amend a take profit to -5", "POST", AMEND, amend(newTpTriggerPx="-5"), "51000"),
    Case("stop loss trigger 1e308", "POST", ALGO, algo(slTriggerPx="1e308"), "51000"),
    Case("stop order size 1e308", "POST", ALGO, algo(sz="1e308"), "51275"),
    Case("trigger order size 1e308", "POST", ALGO,
         algo(ordType="trigger", slTriggerPx=None, reduceOnly=None, triggerPx=px(1.1), orderPx="-1", sz="1e308"),
         "51252"),
    Case("attached stop loss 1e308", "POST", TRADE, order(attachAlgoOrds=[{"slTriggerPx": "1e308"}]), "51000"),
    Case("attached orders nested", "POST", TRADE, order(attachAlgoOrds=[[[{"slTriggerPx": "1"}]]]), "51000"),
], "other fields and queries": [
    Case("leverage 1e308", "POST", LEVER, '{"instId": "BTC-USDT-SWAP", "lever": "1e308", "mgnMode": "cross"}',
         "59102"),
    Case("leverage 'NaN'", "POST", LEVER, '{"instId": "BTC-USDT-SWAP", "lever": "NaN", "mgnMode": "cross"}', "51000"),
    Case("non-ASCII tag", "POST", TRADE, order(tag="t\u00e1g"), "51000"),
    Case("10,000-character clOrdId", "POST", TRADE, order(clOrdId="a" * 10_000), "51000"),
    Case("NUL in the instrument id", "POST", TRADE, order(instId="BTC-USDT-SWAP\u0000"), "51001"),
    Case("limit=1e400 in a query", "GET", "/api/v5/trade/orders-history?instType=SWAP&limit=1e400", code="51000"),
    Case("Arabic-Indic digits in a query", "GET", "/api/v5/trade/orders-history?instType=SWAP&after=%D9%A1%D9%A2",
         code="51000"),
    Case("emoji bar", "GET", "/api/v5/market/candles?instId=BTC-USDT-SWAP&bar=%F0%9F%92%A5", code="51000",
         signed=False),
    Case("35-digit cursor", "GET", "/api/v5/market/history-candles?instId=BTC-USDT-SWAP&after=" + "9" * 35,
         code="51000", signed=False),
    Case("book depth -1", "GET", "/api/v5/market/books?instId=BTC-USDT-SWAP&sz=-1", code="51000", signed=False),
    Case("invalid UTF-8 in a query", "GET", "/api/v5/market/ticker?instId=%FF%FE", code="51001", signed=False),
], "admin API": [
    Case("admin: 50k-deep body without the token", "POST", "/admin/worlds", "[" * DEEP + "]" * DEEP, admin="",
         status=401),
    Case("admin: non-ASCII token", "POST", "/admin/worlds/default/clock", '{"ts": 0}', admin="jeton-\u00e9\u2603",
         status=401),
    Case("admin: 50k-deep body with the token", "POST", "/admin/worlds", "[" * DEEP + "]" * DEEP, admin="token",
         status=400),
    Case("admin: clock at 1e308", "POST", "/admin/worlds/default/clock", '{"ts": 1e308}', admin="token", status=400),
    Case("admin: clock at NaN", "POST", "/admin/worlds/default/clock", '{"ts": NaN}', admin="token", status=400),
    Case("admin: world at speed 1e308", "POST", "/admin/worlds",
         '{"name": "fast", "clock": "realtime", "speed": 1e308}', admin="token", status=400),
    Case("admin: latency of 1e308 ms", "POST", "/admin/worlds/default/faults", '{"latency_ms": 1e308}',
         admin="token", status=400),
    Case("admin: equity 1e308", "POST", "/admin/worlds/default/accounts",
         '{"api_key": "k", "secret": "s", "passphrase": "p", "equity": 1e308}', admin="token", status=400),
    Case("admin: world named ../../etc", "POST", "/admin/worlds", '{"name": "../../etc"}', admin="token",
         status=400),
]}
CASES = [case for cases in FAMILIES.values() for case in cases]


def _ts() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def send(sim: SimProcess, ctx: Ctx, case: Case) -> requests.Response:
    body = case.body(ctx) if callable(case.body) else case.body
    if not isinstance(body, str | bytes):
        body = json.dumps(body)
    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
    if case.admin is not None:
        if case.admin:
            headers[TOKEN_HEADER] = sim.token if case.admin == "token" else case.admin.encode()
    elif case.signed:
        ts = _ts()
        text = body.decode("utf-8", "surrogateescape") if isinstance(body, bytes) else body
        headers.update({"OK-ACCESS-KEY": KEY, "OK-ACCESS-PASSPHRASE": PASSPHRASE, "OK-ACCESS-TIMESTAMP": ts,
                        "OK-ACCESS-SIGN": sign(SECRET, ts, case.method, case.path, text), "x-simulated-trading": "1"})
    headers.update(case.headers)
    data = body.encode() if isinstance(body, str) else body
    return requests.request(case.method, sim.url + case.path, data=data or None, headers=headers, timeout=60)


def okx_code(payload: dict[str, Any]) -> str:
    """The code that says why: an order row's sCode when the request itself went through (code 1 or 2)."""
    rows = payload.get("data") or []
    if payload.get("code") in ("1", "2") and rows and isinstance(rows[0], dict) and "sCode" in rows[0]:
        return rows[0]["sCode"]
    return payload.get("code", "")


@dataclass
class Tally:
    requests: int = 0
    http_500: int = 0
    not_json: int = 0
    tracebacks_in_answers: int = 0
    accepted_when_should_refuse: int = 0
    wrong_code: list[str] = field(default_factory=list)
    changed_state: list[str] = field(default_factory=list)
    codes: Counter = field(default_factory=Counter)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimProcess, Ctx, Tally]]:
    home = tmp_path_factory.mktemp("sim-hostile") / "home"
    sim = SimProcess(home, free_port(), "--no-agents", "--account", f"{KEY}:{SECRET}:{PASSPHRASE}",
                     "--clock", "replay", "--start", iso(START)).start()
    try:
        ex = sim.client(KEY, SECRET, PASSPHRASE)
        ex.create_order("BTC/USDT:USDT", "market", "buy", 2)
        last = float(ex.fetch_ticker("BTC/USDT:USDT")["last"])
        resting = ex.create_order("BTC/USDT:USDT", "limit", "buy", 1, round(last * 0.97, 1))["id"]
        yield sim, Ctx(last=last, resting=resting), Tally()
    finally:
        sim.stop()


def state(sim: SimProcess) -> dict[str, Any]:
    """The account, its orders and stops, the worlds and their settings (refused requests are listed apart)."""
    admin = sim.admin()
    orders = admin.orders("default")
    return {"world": admin.world("default"), "worlds": admin.health()["worlds"], "faults": admin.faults("default"),
            "orders": orders["orders"], "algos": orders["algos"], "fills": admin.fills("default")}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_request_gets_a_clear_refusal_and_changes_nothing(hostile, case: Case) -> None:
    sim, ctx, tally = hostile
    before = state(sim)
    resp = send(sim, ctx, case)
    tally.requests += 1
    tally.http_500 += resp.status_code >= 500
    tally.tracebacks_in_answers += "Traceback" in resp.text
    try:
        payload = resp.json()
    except ValueError:
        tally.not_json += 1
        raise AssertionError(f"not JSON (HTTP {resp.status_code}): {resp.text[:200]}") from None
    if case.admin is not None:
        got = f"HTTP {resp.status_code}"
        expected = f"HTTP {case.status}"
        assert set(payload) == {"error"}, payload
    else:
        assert set(payload) == {"code", "msg", "data"} and isinstance(payload["msg"], str), payload
        got, expected = okx_code(payload), case.code
        tally.accepted_when_should_refuse += got == "0"
    tally.codes[got] += 1
    if got != expected:
        tally.wrong_code.append(f"{case.name}: {got} (expected {expected})")
    after = state(sim)
    if after != before:
        tally.changed_state.append(case.name)
    assert resp.status_code < 500 and "Traceback" not in resp.text
    assert got == expected, payload
    assert after == before


def test_the_simulator_printed_no_traceback(hostile, results: Results) -> None:
    sim, _, tally = hostile
    assert sim.client(KEY, SECRET, PASSPHRASE).fetch_balance()["USDT"]["total"] > 0  # still serving
    sim.stop()
    output = "".join(sim.output)
    tracebacks = output.count("Traceback (most recent call last)")
    results.record("sim_hostile", requests=tally.requests, http_500=tally.http_500, not_json=tally.not_json,
                   tracebacks=tracebacks + tally.tracebacks_in_answers,
                   accepted_when_should_refuse=tally.accepted_when_should_refuse,
                   wrong_code=tally.wrong_code, changed_state=tally.changed_state,
                   codes=dict(sorted(tally.codes.items())),
                   families={name: len(cases) for name, cases in FAMILIES.items()})
    assert tracebacks == 0, output[-3000:]
