"""What `runs list`, `runs show` and `agents list` print: whole reasons, the book, validated filters, the pause."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from okxlab.bootstrap import prepare
from okxlab.cli.main import main
from okxlab.config import load_config
from okxlab.db.session import session_scope
from okxlab.risk.switches import set_pause
from tests.review.builders import Ledger, at

LONG = ("skipped: stale data: no closed ETH-USDT-SWAP candles at 2022-09-26T04:00Z (the simulator's data starts "
        "later); start the world where every instrument has data")


@pytest.fixture
def runs_db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    prepare(load_config(), sqlite_url)
    monkeypatch.setenv("OKXLAB_DATABASE_URL", sqlite_url)
    with session_scope(sqlite_url) as s:
        sim, demo = Ledger(s, "sim"), Ledger(s, "demo")
        ids = {"skipped": sim.run("trend", at(4), status="skipped", stage="quality", reason=LONG),
               "completed": sim.run("trend", at(8), equity=10_000.0, btc=100_000.0),
               "demo": demo.run("trend", at(12), status="failed", stage="order", reason="failed: order: exchange down")}
    return ids


def test_cells_are_text_not_markup(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A reason quoting a model ("[/INST]") or a scrubbed key ("sk-[redacted]") prints as it is.
    prepare(load_config(), sqlite_url)
    monkeypatch.setenv("OKXLAB_DATABASE_URL", sqlite_url)
    reason = "invalid_plan: the model said [/INST] and sk-[redacted] under [agents.llm]"
    with session_scope(sqlite_url) as s:
        run_id = Ledger(s, "sim").run("trend", at(4), status="invalid_plan", stage="validate", reason=reason)
    listed = run("runs", "list")
    assert listed.exit_code == 0 and "the model said [/INST] and sk-[redacted] under [agents.llm]" in listed.stdout
    shown = run("runs", "show", run_id)
    assert shown.exit_code == 0 and "[/INST]" in shown.stdout


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, list(args))


def test_runs_list_shows_the_book_and_whole_reasons_once(runs_db: dict[str, str]) -> None:
    out = run("runs", "list").stdout
    header = out.splitlines()[0].split()
    assert header[:4] == ["RUN", "AGENT", "BOOK", "SCHEDULED"]
    assert LONG.removeprefix("skipped: ") in out and "…" not in out  # whole, not cut
    assert "skipped: stale" not in out  # the status is not said twice
    line = next(x for x in out.splitlines() if x.startswith(runs_db["demo"]))
    assert " demo " in line and "failed" in line and "order: exchange down" in line


def test_runs_list_filters_by_book_and_validates_the_status(runs_db: dict[str, str]) -> None:
    demo = run("runs", "list", "--book", "demo").stdout
    assert runs_db["demo"] in demo and runs_db["skipped"] not in demo and runs_db["completed"] not in demo
    bad = run("runs", "list", "--status", "bogus")
    assert bad.exit_code == 2 and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("okxlab: error: ") and "'invalid_plan'" in lines[0]
    none = run("runs", "list", "--agent", "nobody", "--status", "failed")
    assert none.exit_code == 0 and none.stdout.strip() == "no runs match agent nobody, status failed"


def test_runs_show_says_the_status_once(runs_db: dict[str, str]) -> None:
    out = run("runs", "show", runs_db["skipped"]).stdout
    assert f"status skipped: {LONG.removeprefix('skipped: ')}" in out and "skipped: skipped" not in out


def test_agents_list_shows_the_global_pause(runs_db: dict[str, str], sqlite_url: str) -> None:
    assert "PAUSED" not in run("agents", "list").stdout
    with session_scope(sqlite_url) as s:
        set_pause(s, True, by="test", reason="maintenance")
    out = run("agents", "list").stdout
    rows = [x for x in out.splitlines()[1:] if x.strip() and not set(x.strip()) <= {"-", "─", " "}]
    assert rows and all("PAUSED (global: maintenance; own state ACTIVE" in x for x in rows), out
    data = run("agents", "list", "--json").stdout
    assert '"effective_state": "PAUSED"' in data and '"trading_state": "ACTIVE"' in data


def test_replay_progress_is_a_bar_at_a_terminal_and_lines_when_piped(capsys: pytest.CaptureFixture) -> None:
    import io

    from rich.console import Console

    from okxlab.cli.view import TickProgress

    screen = io.StringIO()
    with TickProgress(Console(file=screen, force_terminal=True, width=100)) as progress:
        for done in (1, 2, 3):
            progress(done, 3, {"completed": done})
    assert "3/3" in screen.getvalue() and "completed 3" in screen.getvalue()
    assert "tick 1/3" not in capsys.readouterr().err  # no line per update at a terminal
    with TickProgress(Console(file=io.StringIO(), force_terminal=False)) as progress:
        progress(1, 3, {"completed": 1, "skipped": 2})
    assert capsys.readouterr().err == "  tick 1/3  completed 1 skipped 2\n"


def test_the_status_choices_are_the_run_statuses() -> None:
    from okxlab.cli.runs import STATUSES
    from okxlab.domain import RunStatus

    assert STATUSES == tuple(s.value for s in RunStatus)
