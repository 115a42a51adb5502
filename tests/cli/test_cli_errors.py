"""Bad input gets one clear line, a non-zero exit, and nothing written; passwords never show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from okxlab.bootstrap import prepare
from okxlab.cli.main import main
from okxlab.config import load_config
from okxlab.db.models import AuditEvent, Schedule
from okxlab.db.session import session_scope


def _run(args: list[str], env: dict[str, str] | None = None):  # noqa: ANN202
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def _one_error_line(result) -> str:  # noqa: ANN001
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("okxlab: error: ")
    assert "Traceback" not in result.output + result.stderr
    return lines[0]


@pytest.fixture
def prepared_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    prepare(load_config(), db_url)
    monkeypatch.setenv("OKXLAB_DATABASE_URL", db_url)
    return db_url


def _schedule_count(url: str) -> tuple[int, int]:
    with session_scope(url) as s:
        return (s.scalar(select(func.count()).select_from(Schedule)),
                s.scalar(select(func.count()).select_from(AuditEvent)))


@pytest.mark.parametrize(("args", "expected"), [
    (["schedules", "add", "x", "--cron", "99 * * * *"], "crontab '99 * * * *' is not valid"),
    (["schedules", "add", "x", "--every", "3 hours"], "is not a number and a unit"),
    (["schedules", "add", "x", "--every", "1h", "--cron", "* * * * *"], "give exactly one of"),
    (["schedules", "add", "x", "--every", "1h", "--agent", "nobody"], "unknown agent 'nobody'"),
    (["schedules", "add", "every-4h", "--every", "1h"], "already exists"),
    (["schedules", "disable", "nope"], "no schedule named 'nope'"),
])
def test_bad_schedule_input_is_refused_and_nothing_is_written(prepared_db: str, args: list[str], expected: str) -> None:
    before = _schedule_count(prepared_db)
    line = _one_error_line(_run(args))
    assert expected in line
    assert _schedule_count(prepared_db) == before


def test_schedule_changes_are_written_and_audited(prepared_db: str) -> None:
    assert _run(["schedules", "add", "fast", "--every", "15m", "--agent", "trend"]).exit_code == 0
    assert _run(["schedules", "disable", "fast"]).exit_code == 0
    listed = _run(["schedules", "list", "--json"])
    assert '"name": "fast"' in listed.output and '"enabled": false' in listed.output
    assert _run(["schedules", "remove", "fast"]).exit_code == 0
    with session_scope(prepared_db) as s:
        kinds = s.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("schedule.%")).order_by(AuditEvent.id)).all()
    assert kinds[-3:] == ["schedule.added", "schedule.disabled", "schedule.removed"]


def test_unknown_agent_and_unknown_run(prepared_db: str) -> None:
    assert "unknown agent 'ghost'" in _one_error_line(_run(["agents", "halt", "ghost", "--reason", "x"]))
    assert "no run 'nope'" in _one_error_line(_run(["runs", "show", "nope"]))


def test_unreachable_database_names_it_without_the_password() -> None:
    url = "postgresql://trader:s3cr3t-Pa55@127.0.0.1:1/okxlab"
    result = _run(["runs", "list"], env={"OKXLAB_DATABASE_URL": url})
    line = _one_error_line(result)
    assert "cannot reach the database" in line and "127.0.0.1:1" in line
    assert "s3cr3t-Pa55" not in result.output + result.stderr


def test_missing_embedded_database_says_what_to_do(tmp_path: Path) -> None:
    line = _one_error_line(_run(["runs", "list"], env={"OKXLAB_HOME": str(tmp_path / "empty")}))
    assert "okxlab demo" in line
    assert not (tmp_path / "empty" / "okxlab.sqlite").exists()  # a read never creates a database


def test_malformed_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "okxlab.toml"
    bad.write_text("[[agents]]\nname = 'a'\nsymbols = 'BTC'\nplanner = 'strategy'\n")
    line = _one_error_line(_run(["agents", "list"], env={"OKXLAB_CONFIG": str(bad)}))
    assert "symbols must be a non-empty list" in line


def test_the_console_script_exits_nonzero_with_one_line() -> None:
    # Through a real process, as a user runs it.
    proc = subprocess.run([sys.executable, "-m", "okxlab.cli.main", "schedules", "add", "x", "--every", "0s"],
                          capture_output=True, text=True, env={"PATH": "", "OKXLAB_HOME": "/nonexistent-okxlab"})
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("okxlab: error: ")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_spot_symbol_in_an_agent_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "okxlab.toml"
    cfg.write_text('[[agents]]\nname = "spotty"\nplanner = "strategy"\nstrategy = "builtin:cash"\n'
                   'symbols = ["BTC-USDT"]\n')
    line = _one_error_line(_run(["agents", "list"], env={"OKXLAB_CONFIG": str(cfg)}))
    assert "'BTC-USDT' is not a USDT-margined perpetual swap" in line


# ---- schedules that run the same agent ------------------------------------------------------------------------

def _warnings(result) -> list[str]:  # noqa: ANN001
    return [line for line in result.stderr.splitlines() if line.startswith("okxlab: warning: ")]


def test_a_schedule_overlapping_an_enabled_one_is_added_with_one_warning(prepared_db: str) -> None:
    # The seeded `every-4h` runs every agent, so a schedule for trend overlaps it.
    result = _run(["schedules", "add", "fast", "--every", "15m", "--agent", "trend"])
    assert result.exit_code == 0
    (warning,) = _warnings(result)
    assert result.stderr.strip() == warning  # the warning is the only thing on stderr
    assert "schedule fast (trend) overlaps enabled schedule(s) every-4h (interval 4h, every agent)" in warning
    with session_scope(prepared_db) as s:
        assert s.scalar(select(Schedule).where(Schedule.name == "fast")).enabled  # added all the same
    # A schedule for every agent overlaps both; the listing names each with the agent it runs.
    result = _run(["schedules", "add", "daily", "--cron", "5 0 * * *"])
    assert result.exit_code == 0
    assert "every-4h (interval 4h, every agent), fast (interval 15m, trend)" in _warnings(result)[0]


def test_no_warning_without_overlap_and_enable_warns_too(prepared_db: str) -> None:
    assert _run(["schedules", "disable", "every-4h"]).exit_code == 0
    quiet = [_run(["schedules", "add", "t", "--every", "1h", "--agent", "trend"]),
             _run(["schedules", "add", "m", "--every", "1h", "--agent", "meanrev"])]  # different agents
    assert [r.exit_code for r in quiet] == [0, 0] and all(r.stderr == "" for r in quiet)
    # A disabled schedule overlaps nothing; enabling it again is when it starts to.
    enabled = _run(["schedules", "enable", "every-4h"])
    assert enabled.exit_code == 0
    (warning,) = _warnings(enabled)
    assert "schedule every-4h (every agent) overlaps enabled schedule(s) m (interval 1h, meanrev), t (interval 1h, " \
           "trend)" in warning


# ---- database URLs and their passwords ------------------------------------------------------------------------

SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize("url", [
    f"postgresql://trader:{SECRET}@127.0.0.1:1/okxlab",  # nothing listens there
    f"postgresql://postgres:{SECRET}@127.0.0.1:5432/okxlab_no_such_database",  # a server, no such database
    f"postgresql://postgres@127.0.0.1:5432/okxlab_no_such_database?password={SECRET}",
    f"postgresql://postgres@127.0.0.1:1/okxlab?sslmode=disable&password={SECRET}",
    f"postgresql://postgres@127.0.0.1:5432/x?password={SECRET}&no_such_option=1",  # refused by the driver
    f"postgresql://trader:{SECRET}@db-host:port/okxlab",  # a port that is no number
    f"mysql://trader:{SECRET}@db-host/okxlab",  # not a database okxlab runs on
    f"postgresql+asyncpg://trader:{SECRET}@db-host/okxlab",  # a driver that is not installed
    f"not a url {SECRET}",
])
@pytest.mark.parametrize("command", [["runs", "list"], ["db", "current"], ["db", "upgrade"]])
def test_a_database_password_is_never_shown(url: str, command: list[str]) -> None:
    result = _run(command, env={"OKXLAB_DATABASE_URL": url})
    line = _one_error_line(result)
    assert SECRET not in result.output + result.stderr
    assert "OKXLAB_DATABASE_URL" in line  # and the line says which setting to fix


def test_redact_masks_the_userinfo_and_query_passwords() -> None:
    from okxlab.db.session import redact, scrub

    assert redact(f"postgresql://u:{SECRET}@h/db") == "postgresql://u:***@h/db"
    assert redact(f"postgresql://u@h/db?application_name=x&password={SECRET}&sslpassword={SECRET}") == \
        "postgresql://u@h/db?application_name=x&password=***&sslpassword=***"
    assert redact(f"nonsense {SECRET}") == "<unparseable database URL>"
    assert scrub(f"auth failed for {SECRET}", f"postgresql://u@h/db?password={SECRET}") == "auth failed for ***"


def test_a_database_url_okxlab_can_use(tmp_path: Path, pg_url: str) -> None:
    from okxlab.db.session import parse_database_url

    # postgres:// and postgresql:// both mean psycopg2, the driver okxlab installs.
    assert parse_database_url(pg_url.replace("postgresql://", "postgres://")).drivername == "postgresql+psycopg2"
    assert parse_database_url(f"sqlite:///{tmp_path / 'x.sqlite'}").get_backend_name() == "sqlite"
    # And such a URL works end to end (postgres:// is how Heroku-style hosts hand it out).
    result = _run(["db", "current"], env={"OKXLAB_DATABASE_URL": pg_url.replace("postgresql://", "postgres://")})
    assert result.exit_code == 0 and "schema" in result.output


def test_a_sqlite_database_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = _one_error_line(_run(["db", "upgrade"], env={"OKXLAB_DATABASE_URL": f"sqlite:///{blocker}/db/okxlab.sqlite"}))
    assert f"cannot create {blocker}/db for the SQLite database" in line


def test_commands_load_when_used_and_list_their_own_help() -> None:
    # `okxlab --help` imports no command module (they pull in SQLAlchemy, pandas, ccxt: seconds of start-up),
    # and the line it lists for each command starts as that command's own help does.
    import subprocess
    import sys

    from okxlab.cli.main import COMMANDS, load_command

    probe = ("import sys; from click.testing import CliRunner; from okxlab.cli.main import main; "
             "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('sqlalchemy', 'pandas', 'ccxt', 'numpy', 'matplotlib', 'celery') or m.startswith('okxlab.cli.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['okxlab.cli.main']"
    for name, (_, short) in COMMANDS.items():
        command = load_command(name)
        own = " ".join((command.help or "").split())
        assert command.name == name and own.split()[:3] == short.split()[:3], (name, short, own[:80])


def test_db_upgrade_says_what_it_registered_and_seeded(sqlite_url: str) -> None:
    env = {"OKXLAB_DATABASE_URL": sqlite_url}
    names = [a.name for a in load_config().agents]
    first = _run(["db", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert f"registered {len(names)} agent(s): {', '.join(names)}" in first.stdout
    assert "seeded 1 default schedule(s)" in first.stdout
    again = _run(["db", "upgrade"], env=env)  # nothing new: only the schema line
    assert again.exit_code == 0 and again.stdout.strip().splitlines() == [first.stdout.splitlines()[0]]
