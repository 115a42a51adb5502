"""OKX authentication: each failure answered with OKX's code and message, HTTP 401, and ccxt's exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import ccxt
import pytest
import requests

from okxlab.simulator.auth import sign


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def call(w, method: str = "GET", path: str = "/api/v5/account/balance", body: str = "", *, key: str | None = None,
         secret: str | None = None, passphrase: str | None = None, ts: str | None = None, demo: bool = True,
         signed_path: str | None = None, drop: tuple[str, ...] = ()) -> requests.Response:
    ts = ts or _iso(datetime.now(UTC))
    headers = {
        "OK-ACCESS-KEY": key or w.key,
        "OK-ACCESS-PASSPHRASE": passphrase or w.passphrase,
        "OK-ACCESS-TIMESTAMP": ts,
        "OK-ACCESS-SIGN": sign(secret or w.secret, ts, method, signed_path or path, body),
        "Content-Type": "application/json",
    }
    if demo:
        headers["x-simulated-trading"] = "1"
    for name in drop:
        headers.pop(name)
    return requests.request(method, w.url + path, data=body or None, headers=headers, timeout=10)


@pytest.mark.parametrize("kwargs, code, message", [
    ({"key": "no-such-key"}, "50111", "Invalid OK-ACCESS-KEY."),
    ({"secret": "wrong-secret"}, "50113", "Invalid signature."),
    ({"passphrase": "wrong"}, "50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.'),
    ({"ts": _iso(datetime.now(UTC) - timedelta(seconds=45))}, "50102", "Timestamp request expired."),
    ({"ts": "yesterday"}, "50112", "Invalid OK-ACCESS-TIMESTAMP."),
    ({"demo": False}, "50101", "APIKey does not match current environment."),
    ({"drop": ("OK-ACCESS-KEY",)}, "50103", 'Request header "OK-ACCESS-KEY" cannot be empty.'),
    ({"drop": ("OK-ACCESS-SIGN",)}, "50106", 'Request header "OK-ACCESS-SIGN" cannot be empty.'),
    ({"drop": ("OK-ACCESS-TIMESTAMP",)}, "50107", 'Request header "OK-ACCESS-TIMESTAMP" cannot be empty.'),
    ({"drop": ("OK-ACCESS-PASSPHRASE",)}, "50104", 'Request header "OK-ACCESS-PASSPHRASE" cannot be empty.'),
    # Signatures cover /api/v5/... only, as ccxt signs them: signing the world prefix is wrong.
    ({"signed_path": "/w/PREFIX/api/v5/account/balance"}, "50113", "Invalid signature."),
])
def test_auth_failures_get_okx_codes(new_world, kwargs, code, message) -> None:
    w = new_world()
    if "signed_path" in kwargs:
        kwargs["signed_path"] = kwargs["signed_path"].replace("PREFIX", w.name)
    resp = call(w, **kwargs)
    assert resp.status_code == 401
    assert resp.json() == {"code": code, "msg": message, "data": []}


def test_correctly_signed_get_and_post_are_accepted(new_world) -> None:
    w = new_world()
    assert call(w).json()["code"] == "0"
    body = json.dumps({"lever": "5", "mgnMode": "cross", "instId": "BTC-USDT-SWAP"})
    resp = call(w, "POST", "/api/v5/account/set-leverage", body)
    assert resp.status_code == 200 and resp.json()["data"][0]["lever"] == "5"
    # The body is part of the signature: the same signature over another body is refused.
    ts = _iso(datetime.now(UTC))
    headers = {"OK-ACCESS-KEY": w.key, "OK-ACCESS-PASSPHRASE": w.passphrase, "OK-ACCESS-TIMESTAMP": ts,
               "OK-ACCESS-SIGN": sign(w.secret, ts, "POST", "/api/v5/account/set-leverage", body),
               "x-simulated-trading": "1", "Content-Type": "application/json"}
    tampered = body.replace('"5"', '"50"')
    resp = requests.post(w.url + "/api/v5/account/set-leverage", data=tampered, headers=headers, timeout=10)
    assert resp.json()["code"] == "50113"


def test_ccxt_sees_authentication_errors(new_world) -> None:
    w = new_world()
    bad = w.exchange()
    bad.secret = "not-the-secret"
    with pytest.raises(ccxt.AuthenticationError, match="50113"):
        bad.fetch_balance()
    # A client that forgot sandbox mode sends no x-simulated-trading header: refused like a demo key on live.
    live = ccxt.okx({"apiKey": w.key, "secret": w.secret, "password": w.passphrase, "enableRateLimit": False})
    live.urls["api"] = {"rest": w.url}
    with pytest.raises(ccxt.AuthenticationError, match="50101"):
        live.fetch_balance()


def test_accounts_are_per_key(new_world, admin) -> None:
    w = new_world()
    admin.add_account(w.name, "second", "s2", "p2", equity=2500)
    other = w.exchange()
    other.apiKey, other.secret, other.password = "second", "s2", "p2"
    assert other.fetch_balance()["USDT"]["total"] == 2500
    assert w.exchange().fetch_balance()["USDT"]["total"] == 10_000
