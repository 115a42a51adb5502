"""The admin API needs the simulator's token and never answers with key material; `okxlab sim` masks keys."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import ccxt
import pytest
import requests

from okxlab.simulator import AdminClient, SimAdminAuthError, SimServer, Simulator, ccxt_okx
from okxlab.simulator.accounts import mask_key
from okxlab.simulator.token import TOKEN_HEADER

KEY, SECRET, PASSPHRASE = "k-3f9a1c7e5b2d4a60e1", "s-8b1d6f0a2c4e7392d5", "p-Q7wX2mZ9rT4vB6nL"
ADMIN_KEY, ADMIN_SECRET, ADMIN_PASS = "k-a0d27c91e6b34f58aa", "s-5e2b9d07c3a1f6486b", "p-H3kJ8sD1fG6hJ2kL"

ADMIN_ROUTES = [("GET", "worlds"), ("POST", "worlds"), ("GET", "data"), ("GET", "worlds/w"), ("DELETE", "worlds/w"),
                ("POST", "worlds/w/clock"), ("POST", "worlds/w/accounts"), ("GET", "worlds/w/faults"),
                ("POST", "worlds/w/faults"), ("GET", "worlds/w/orders"), ("GET", "worlds/w/fills")]


@pytest.fixture(scope="module")
def served(market):
    sim = Simulator(market, agents=False, default_clock="replay")
    with SimServer(sim).start() as server:
        server.admin.create_world("w", start="2022-09-13T08:00:00Z", agents=False,
                                  accounts=[{"api_key": KEY, "secret": SECRET, "passphrase": PASSPHRASE,
                                             "label": "alice"}])
        yield server


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
@pytest.mark.parametrize("token", [None, "wrong", "n\u00f6n-\u00e4scii \u2603", "x" * 5000])
def test_every_admin_route_refuses_a_missing_or_wrong_token(served, method, path, token) -> None:
    headers = {TOKEN_HEADER: token.encode()} if token is not None else {}
    before = served.admin.world("w")
    resp = requests.request(method, f"{served.url}/admin/{path}", headers=headers, timeout=10,
                            data=b'{"name": "intruder", "ts": "2022-09-14T00:00:00Z", "api_key": "x", '
                                 b'"secret": "y", "passphrase": "z", "error_5xx_rate": 1}')
    assert resp.status_code == 401
    assert "token" in resp.json()["error"]
    assert served.admin.world("w") == before and "intruder" not in served.admin.health()["worlds"]


def test_health_is_open_but_names_worlds_only_with_the_token(served) -> None:
    assert requests.get(f"{served.url}/admin/health", timeout=10).json() == {"ok": True}
    assert "w" in served.admin.health()["worlds"]


def test_the_okx_endpoints_do_not_need_the_admin_token(served) -> None:
    ex = ccxt_okx(served.world_url("w"), KEY, SECRET, PASSPHRASE, enableRateLimit=False)
    assert ex.fetch_balance()["USDT"]["total"] == 10_000


def test_no_admin_answer_holds_key_material(served) -> None:
    admin = served.admin
    ex = ccxt_okx(served.world_url("w"), KEY, SECRET, PASSPHRASE, enableRateLimit=False)
    ex.create_order("ETH/USDT:USDT", "market", "buy", 1, None, {"stopLoss": {"triggerPrice": 1500}})
    ex.create_order("ETH/USDT:USDT", "limit", "buy", 1, 1600)
    with pytest.raises(ccxt.ExchangeError, match="51170"):  # a refused request is listed too
        ex.create_order("ETH/USDT:USDT", "market", "buy", 1, None, {"reduceOnly": True})
    answers = [
        requests.post(f"{served.url}/admin/worlds/w/accounts", headers={TOKEN_HEADER: served.admin_token},
                      json={"api_key": ADMIN_KEY, "secret": ADMIN_SECRET, "passphrase": ADMIN_PASS}, timeout=10),
        requests.post(f"{served.url}/admin/worlds", headers={TOKEN_HEADER: served.admin_token}, timeout=10,
                      json={"name": "w2", "agents": False,
                            "accounts": [{"api_key": KEY, "secret": SECRET, "passphrase": PASSPHRASE}]}),
        *(requests.get(f"{served.url}/admin/{path}", headers={TOKEN_HEADER: served.admin_token},
                       params=params, timeout=10)
          for path, params in (("worlds", None), ("worlds/w", None), ("worlds/w/orders", None),
                               ("worlds/w/orders", {"api_key": KEY}), ("worlds/w/fills", {"api_key": KEY}),
                               ("worlds/w/fills", None), ("health", None))),
    ]
    for resp in answers:
        assert resp.status_code < 300, resp.text
        for secret in (KEY, SECRET, PASSPHRASE, ADMIN_KEY, ADMIN_SECRET, ADMIN_PASS):
            assert secret not in resp.text, (resp.url, secret)
    orders = admin.orders("w", api_key=KEY)
    assert {o["account"] for o in orders["orders"] + orders["algos"] + orders["rejections"]} == {"alice"}
    assert len(orders["orders"]) == 2 and orders["rejections"][0]["sCode"] == "51170"
    assert {f["account"] for f in admin.fills("w", api_key=KEY)} == {"alice"}
    unlabelled = next(a for a in admin.world("w")["accounts"] if not a["label"])
    assert unlabelled["account"] == unlabelled["key"] == mask_key(ADMIN_KEY) == ADMIN_KEY[:4] + "\u2026"
    admin.delete_world("w2")


def test_a_client_without_the_token_is_told_what_to_do(served, monkeypatch) -> None:
    monkeypatch.delenv("OKXLAB_SIM_ADMIN_TOKEN", raising=False)
    with pytest.raises(SimAdminAuthError, match="OKXLAB_SIM_ADMIN_TOKEN") as caught:
        AdminClient(served.url).worlds()  # no token in the environment nor in OKXLAB_HOME
    assert caught.value.status == 401 and caught.value.exit_code == 2
    assert AdminClient(served.url).health() == {"ok": True}


def _start_cli(env: dict[str, str]) -> tuple[subprocess.Popen, str, list[str]]:
    cmd = [sys.executable, "-m", "okxlab.simulator", "--port", "0", "--no-agents", "--clock", "replay",
           "--account", f"{KEY}:{SECRET}:{PASSPHRASE}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    while not lines or not lines[-1].startswith("Press Ctrl-C"):
        line = proc.stdout.readline()
        assert line, "okxlab sim exited: " + "".join(lines)
        lines.append(line.rstrip("\n"))
    return proc, lines[0].split(" on ")[1].split(" ")[0], lines


def test_okxlab_sim_masks_keys_and_keeps_its_token_in_a_private_file(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("OKXLAB_HOME", str(home))
    monkeypatch.delenv("OKXLAB_SIM_ADMIN_TOKEN", raising=False)
    proc, url, lines = _start_cli({**os.environ})
    try:
        out = "\n".join(lines)
        assert KEY not in out and SECRET not in out and PASSPHRASE not in out
        assert f"api key {KEY[:4]}\u2026" in out and "sim-admin-token" in out
        token_file = home / "sim-admin-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert token_file.read_text().strip() not in out  # the token is not printed either
        assert AdminClient(url).world("default")["accounts"][0]["key"] == mask_key(KEY)  # found in OKXLAB_HOME
        with pytest.raises(SimAdminAuthError):
            AdminClient(url, token="guess").worlds()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # A token others could read is replaced at the next start; one from the environment is used as it is.
    token_file.chmod(0o644)
    old = token_file.read_text()
    proc, url, _ = _start_cli({**os.environ, "OKXLAB_SIM_ADMIN_TOKEN": "from-the-env"})
    try:
        assert AdminClient(url, token="from-the-env").health()["worlds"] == ["default"]
        with pytest.raises(SimAdminAuthError):
            AdminClient(url, token=old.strip()).worlds()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc, url, _ = _start_cli({**os.environ})
    try:
        assert token_file.read_text() != old and stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert AdminClient(url).health()["worlds"] == ["default"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
