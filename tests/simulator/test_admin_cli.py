"""The admin API, account provisioning from the config, and `okxlab sim` / `python -m okxlab.simulator`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from okxlab.config import load_config, sim_credentials
from okxlab.simulator import SimAdminError, Simulator, ccxt_okx
from okxlab.simulator.accounts import mask_key
from okxlab.simulator.clock import parse_time


def test_admin_world_lifecycle_and_state(new_world, admin, server) -> None:
    w = new_world("2022-09-13T08:00:00Z")
    with pytest.raises(SimAdminError, match="already exists"):
        admin.create_world(w.name)
    for bad, match in (({"clock": "sundial"}, "clock"), ({"start": "whenever"}, "ISO-8601"),
                       ({"speed": -1, "clock": "realtime"}, "speed")):
        with pytest.raises(SimAdminError, match=match):
            admin.create_world("fresh", **bad)
    with pytest.raises(SimAdminError, match="name"):
        admin.create_world("bad name")
    with pytest.raises(SimAdminError) as missing:
        admin.set_clock("no-such-world", 0)
    assert missing.value.status == 404
    with pytest.raises(SimAdminError, match="cannot be deleted"):
        admin.delete_world("default")

    w.exchange().create_order("ETH/USDT:USDT", "limit", "buy", 1, 1600)
    state = admin.world(w.name)
    assert state["clock"] == "replay" and state["now"] == parse_time("2022-09-13T08:00:00Z")
    assert state["open_orders"] == 1 and state["accounts"][0]["key"] == mask_key(w.key)
    assert w.key not in str(state) and w.secret not in str(state) and w.passphrase not in str(state)
    assert state["instruments"] == {"BTC-USDT": "suspend", "ETH-USDT": "suspend", "BTC-USDT-SWAP": "live",
                                    "ETH-USDT-SWAP": "live"}
    assert admin.data()["instruments"]["ETH-USDT-SWAP"]["start"] == parse_time("2022-09-01T00:00:00Z")
    assert w.name in admin.health()["worlds"]
    resp = requests.get(f"{server.url}/w/nowhere/api/v5/public/time", timeout=10)
    assert resp.status_code == 404 and resp.json()["code"] == "404"


def test_every_configured_agent_gets_an_account(market) -> None:
    config = load_config()
    sim = Simulator(market, agents=config, default_clock="replay")
    world = sim.create_world("agents-too")
    keys = {sim_credentials(a.name).api_key: a for a in config.agents}
    assert set(world.accounts) == set(keys)
    for key, agent in keys.items():
        assert world.accounts[key].balances == {"USDT": agent.initial_equity}
        assert world.call("GET", "account/balance", api_key=key)["data"][0]["totalEq"] == "10000"
    assert sim.create_world("no-agents", agents=False).accounts == {}


def test_python_m_okxlab_simulator_serves_ccxt() -> None:
    cmd = [sys.executable, "-m", "okxlab.simulator", "--port", "0", "--no-agents", "--account", "cli:sec:pass",
           "--clock", "replay", "--start", "2022-09-13T08:00:00Z"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        url = first.split(" on ")[1].split(" ")[0]
        ex = ccxt_okx(url, "cli", "sec", "pass", enableRateLimit=False)
        assert ex.fetch_time() == parse_time("2022-09-13T08:00:00Z")
        assert ex.fetch_balance()["USDT"]["total"] == 10_000
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("args, message", [
    (["--account", "only-a-key"], "must be KEY:SECRET:PASSPHRASE"),
    (["--start", "tomorrow"], "not an ISO-8601 time"),
    (["--rate-limit-rate", "1.5"], "between 0 and 1"),
    (["--data", "/no/such/candles"], "does not exist"),
    (["--speed", "1e308"], "--speed must be above 0 and at most"),
    (["--latency-ms", "1e308"], "--latency-ms must be a number from 0 to"),
    (["--no-state", "--fresh"], "--no-state keeps no state file"),
    (["--state", "/proc/no-such/state.sqlite"], "cannot use the simulator state"),
    (["--state", "/"], "is a directory"),
    (["--account", "key:secret"], "KEY:SECRET:PASSPHRASE"),
])
def test_cli_mistakes_print_one_line(args, message) -> None:
    proc = subprocess.run([sys.executable, "-m", "okxlab.simulator", "--port", "0", "--no-agents", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert "secret" not in proc.stderr  # an --account's text holds secrets: never echoed
