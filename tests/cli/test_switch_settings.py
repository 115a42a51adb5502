"""A kill switch can always be pulled: a bad value of a variable it does not need is warned about, not fatal."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from okxlab import settings
from okxlab.bootstrap import prepare
from okxlab.cli.main import main
from okxlab.config import load_config
from okxlab.db.session import session_scope
from okxlab.risk.switches import global_pause


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    prepare(load_config(), sqlite_url)
    monkeypatch.setenv("OKXLAB_DATABASE_URL", sqlite_url)
    monkeypatch.setattr(settings, "_warned", set())  # each test sees its warnings
    return sqlite_url


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, list(args))


def test_a_bad_smtp_port_does_not_block_the_switches(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_SMTP_PORT", "smtp")
    listed = run("runs", "list")  # not a switch: refused in one line, as before
    assert listed.exit_code == 2 and "OKXLAB_SMTP_PORT='smtp' must be" in listed.stderr
    paused = run("risk", "pause", "--reason", "incident")
    assert paused.exit_code == 0, paused.output
    assert paused.stderr.strip().splitlines() == [
        "okxlab: warning: OKXLAB_SMTP_PORT='smtp' must be a port number (1-65535); ignored by this kill-switch command"]
    halted = run("agents", "halt", "trend", "--reason", "incident")
    assert halted.exit_code == 0 and "HALTED" in halted.stdout
    with session_scope(db) as s:
        assert global_pause(s)["reason"] == "incident"
    assert run("runs", "list").exit_code == 2  # the leniency ended with the switch command


def test_a_bad_value_a_switch_needs_still_stops_it(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "TRUE")
    paused = run("risk", "pause")
    assert paused.exit_code == 2 and "LIVE_TRADING_ENABLED='TRUE'" in paused.stderr
    with session_scope(db) as s:
        assert global_pause(s) is None  # nothing written
