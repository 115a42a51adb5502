"""The venue is a function of the book, whatever mode new runs are dispatched in.

With OKX_MODE=live (and even with the live switch on), everything about the `sim` book — its stages, a
flatten, a reconciliation — goes to the simulator; `demo` is OKX demo trading (marked simulated); `live` is
refused without the switch. Before, every book but `replay:N` fell through to the configured mode, so a
flatten of the sim book traded live.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from okxlab.cli.main import main
from okxlab.errors import ConfigError, NotFound
from okxlab.execution.exchange import new_client
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.stages import STAGES, execute_stage
from tests.reliability.conftest import Lab, open_lab
from tests.reliability.harness import Results, buy_and_hold_config
from tests.reliability.test_kill_switches import open_contracts, placed

CONFIG = buy_and_hold_config("buyhold")


@pytest.fixture
def lab(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    with open_lab(pg_url, tmp_path, CONFIG) as lab:
        monkeypatch.setenv("OKXLAB_SIM_URL", lab.sim.url)
        yield lab


def test_the_sim_book_goes_to_the_simulator_when_the_mode_is_live(lab: Lab, monkeypatch: pytest.MonkeyPatch,
                                                                   results: Results) -> None:
    tick = datetime.now(UTC).replace(microsecond=0)
    with lab.env.sessions.begin() as s:
        (run_id,) = create_runs(s, "schedule:1", [("buyhold", "sim")], tick, now=tick)
    # From here on new runs would be dispatched live; the sim book's account is still the simulator's.
    monkeypatch.setenv("OKX_MODE", "live")
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "true")
    assert lab.env.config.exchange_mode(lab.config.agent("buyhold")) == "live"
    for stage in STAGES:
        execute_stage(stage, run_id, lab.env)
    assert len(placed(lab, "buyhold")) == 1 and open_contracts(lab, "buyhold") > 0
    commands = {"flatten": ["agents", "flatten", "buyhold", "--book", "sim", "--yes"],
                "reconcile": ["reconcile", "--book", "sim"]}
    outputs = {}
    for name, args in commands.items():
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, f"{name}: {result.output}{result.stderr}"
        outputs[name] = result.output
    assert "1 position(s) closed" in outputs["flatten"] and "ok — cash" in outputs["reconcile"]
    assert open_contracts(lab, "buyhold") == 0 and len(placed(lab, "buyhold")) == 2  # both at the simulator
    results.record("venue_by_book", mode="live", book="sim", stages=len(STAGES), commands=len(commands),
                   requests_outside_the_simulator=0)


def test_each_book_names_its_venue(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = lab.config.agent("buyhold")
    monkeypatch.setenv("OKX_MODE", "sim")
    demo = lab.env.venue("demo")
    assert demo.mode == "demo" and demo.url is None
    monkeypatch.setenv("OKX_DEMO_KEY", "k")
    monkeypatch.setenv("OKX_DEMO_SECRET", "s")
    monkeypatch.setenv("OKX_DEMO_PASS", "p")
    import dataclasses

    keyed = dataclasses.replace(agent, okx={"api_key_env": "OKX_DEMO_KEY", "secret_env": "OKX_DEMO_SECRET",
                                            "passphrase_env": "OKX_DEMO_PASS"})
    client = new_client(lab.config, keyed, demo)
    assert client.headers.get("x-simulated-trading") == "1" and client.hostname.endswith("okx.com")
    assert lab.env.venue("sim").url == lab.sim.url.rstrip("/")
    monkeypatch.delenv("LIVE_TRADING_ENABLED", raising=False)
    with pytest.raises(ConfigError, match="live trading is disabled"):
        lab.env.venue("live")
    for bad in ("paper", "replay:x", "replay:999"):
        with pytest.raises((ConfigError, NotFound)):
            lab.env.venue(bad)
