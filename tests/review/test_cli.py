"""`okxlab leaderboard` and `okxlab report` through click's CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from okxlab.cli.review import leaderboard, parse_when, report
from okxlab.db.session import session_scope
from okxlab.errors import UserError
from tests.review.builders import DAY, Ledger, build_day
from tests.review.conftest import SmtpServer
from tests.review.test_report import use_smtp


@pytest.fixture
def day_db(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with session_scope(sqlite_db) as s:
        build_day(s)
    monkeypatch.setenv("OKXLAB_DATABASE_URL", sqlite_db)
    return sqlite_db


def error_line(result) -> str:  # noqa: ANN001
    """The one error line (progress lines may come before it), and nothing after it."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("okxlab: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.output
    return errors[0]


def test_leaderboard_json(day_db: str) -> None:
    result = CliRunner().invoke(leaderboard, ["--since", "2025-03-10", "--until", "2025-03-11", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["book"] == "sim" and data["window"] == {"start": "2025-03-10T00:00:00+00:00",
                                                        "end": "2025-03-11T00:00:00+00:00"}
    assert [a["agent"] for a in data["agents"]] == ["alpha", "beta", "flat"]
    assert [b["name"] for b in data["baselines"]] == ["cash", "buy_and_hold"]
    assert set(data["agents"][0]) >= {"rank", "agent", "return", "sharpe", "sortino", "max_drawdown", "trades",
                                      "win_rate", "profit_factor", "fees", "vs_cash", "vs_buy_and_hold", "vs_next",
                                      "performance", "activity"}
    alpha = data["agents"][0]
    assert alpha["performance"]["max_drawdown"]["trough_at"] == "2025-03-10T08:00:00+00:00"
    assert alpha["activity"]["latency"]["plan"] == {"count": 6, "p50_ms": 135.0, "p95_ms": 157.5,
                                                    "queue_wait_p50_ms": 5.0, "queue_wait_p95_ms": 5.0}
    assert alpha["activity"]["llm"]["tokens_in"] == 3200 and alpha["activity"]["invalid_plans"] == 1


def test_leaderboard_span_counts_back_on_the_book_s_clock(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs of the last day on the wall clock, standing at 2022 market time (the simulator's world): `--since 1d`
    # takes the book's last day, not a 2026 window where the book has nothing.
    now = datetime.now(UTC).replace(microsecond=0)
    shift = datetime(2022, 10, 3, tzinfo=UTC) - now
    with session_scope(sqlite_db) as s:
        ledger = Ledger(s, "sim", market_shift=shift)
        ledger.agent("alpha")
        for hours_ago, equity in [(40, 10_000.0), (20, 10_000.0), (12, 10_100.0), (4, 10_500.0)]:
            ledger.run("alpha", now - timedelta(hours=hours_ago), equity=equity, btc=100_000.0)
    monkeypatch.setenv("OKXLAB_DATABASE_URL", sqlite_db)
    result = CliRunner().invoke(leaderboard, ["--book", "sim", "--since", "1d", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    start = datetime.fromisoformat(data["window"]["start"])
    assert abs(start - (now + shift - timedelta(days=1))) < timedelta(minutes=5)
    assert data["agents"][0]["return"] == pytest.approx(0.05)  # from 10,000 (20 h ago) to 10,500


def test_leaderboard_text(day_db: str) -> None:
    result = CliRunner().invoke(leaderboard, ["--book", "sim", "--since", "2025-03-10", "--until", "2025-03-11"])
    assert result.exit_code == 0, result.output
    assert "book sim" in result.stdout and "(cash)" in result.stdout
    assert "(buy & hold BTC-USDT-SWAP)" in result.stdout and "alpha" in result.stdout


@pytest.mark.parametrize(("args", "needle"), [
    (["--book", "live"], "no runs in book 'live'; books with runs: sim"),
    (["--since", "last tuesday"], "--since 'last tuesday' is not a time"),
    (["--since", "2025-03-11", "--until", "2025-03-10"], "must be before --until"),
])
def test_leaderboard_bad_input(day_db: str, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(leaderboard, args)
    assert result.exit_code == 2
    assert needle in error_line(result)


def test_leaderboard_without_runs(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_DATABASE_URL", sqlite_db)
    result = CliRunner().invoke(leaderboard, [])
    assert result.exit_code == 0 and "no runs yet" in result.stdout
    empty = json.loads(CliRunner().invoke(leaderboard, ["--json"]).stdout)
    assert empty["book"] is None and empty["agents"] == []


def test_leaderboard_without_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_DATABASE_URL", f"sqlite:///{tmp_path / 'absent.sqlite'}")
    result = CliRunner().invoke(leaderboard, [])
    assert result.exit_code == 2 and "no okxlab database" in error_line(result)


def test_bad_review_config_is_one_line(day_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import resources

    text = resources.files("okxlab.data").joinpath("okxlab.default.toml").read_text()
    config = tmp_path / "okxlab.toml"
    config.write_text("[review]\nbootstrap_samples = 3\n" + text)
    monkeypatch.setenv("OKXLAB_CONFIG", str(config))
    result = CliRunner().invoke(leaderboard, [])
    assert result.exit_code == 2 and "bootstrap_samples" in error_line(result)


@pytest.mark.parametrize("bad", ["2025-13-01", "yesterday", "10/03/2025"])
def test_report_bad_date(day_db: str, bad: str) -> None:
    result = CliRunner().invoke(report, ["--date", bad])
    assert result.exit_code == 2
    assert f"--date {bad!r} is not a date; give it as YYYY-MM-DD" in error_line(result)


def test_report_without_smtp_writes_and_says_where(day_db: str, review_env: Path) -> None:
    result = CliRunner().invoke(report, ["--date", "2025-03-10", "--send"])
    assert result.exit_code == 0, result.output
    path = review_env / "2025-03-10" / "report.html"
    assert path.exists()
    assert f"report for 2025-03-10 written to {path}" in result.stdout
    assert "SMTP is not configured" in result.stdout
    assert "okxlab: book sim: charts" in result.stderr  # progress goes to stderr


def test_report_send_then_again_then_resend(day_db: str, smtp_server: SmtpServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    use_smtp(monkeypatch, smtp_server)
    runner = CliRunner()
    first = runner.invoke(report, ["--date", DAY.isoformat(), "--send"])
    assert first.exit_code == 0, first.output
    assert "emailed to ops@example.test, quant@example.test" in first.stdout
    second = runner.invoke(report, ["--date", DAY.isoformat(), "--send"])
    assert second.exit_code == 0 and "already emailed" in second.stdout
    assert len(smtp_server.inbox.messages) == 1
    third = runner.invoke(report, ["--date", DAY.isoformat(), "--resend"])
    assert third.exit_code == 0 and "(resend)" in third.stdout
    assert len(smtp_server.inbox.messages) == 2


def test_report_unreachable_server_is_one_line(day_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.review.conftest import free_port

    port = free_port()  # nothing listens there
    use_smtp(monkeypatch, SmtpServer("127.0.0.1", port, None), OKXLAB_SMTP_PASSWORD="pw-never-shown",  # type: ignore[arg-type]
             OKXLAB_SMTP_USER="u@example.test", OKXLAB_SMTP_SECURITY="ssl")
    result = CliRunner().invoke(report, ["--date", DAY.isoformat(), "--send"])
    assert result.exit_code == 4
    line = error_line(result)
    assert f"could not email the report via 127.0.0.1:{port} (ssl)" in line and "pw-never-shown" not in line


def test_report_bad_smtp_settings_fail_before_any_work(day_db: str, review_env: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OKXLAB_SMTP_SECURITY", "tls")
    result = CliRunner().invoke(report, ["--date", DAY.isoformat(), "--send"])
    assert result.exit_code == 2 and "OKXLAB_SMTP_SECURITY='tls'" in error_line(result)
    assert not (review_env / DAY.isoformat()).exists()


def test_parse_when() -> None:
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert parse_when("2025-03-01", "--since") == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_when("2025-03-01T06:30", "--since") == datetime(2025, 3, 1, 6, 30, tzinfo=UTC)
    assert parse_when("2025-03-01T06:30+02:00", "--since") == datetime(2025, 3, 1, 4, 30, tzinfo=UTC)
    assert parse_when("12h", "--since", now) == datetime(2025, 3, 10, tzinfo=UTC)
    assert parse_when("2w", "--since", now) == datetime(2025, 2, 24, 12, tzinfo=UTC)
    with pytest.raises(UserError):
        parse_when("soon", "--since", now)
