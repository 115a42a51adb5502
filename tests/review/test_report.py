"""The daily report: its files, and its email through a real SMTP server (aiosmtpd on loopback), once per day."""

from __future__ import annotations

import email
import json
import re
import threading
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import select

from okxlab.db.models import AuditEvent, Report
from okxlab.db.session import session_factory, session_scope
from okxlab.review import mailer
from okxlab.review.report import build_report, deliver, nightly_report
from tests.review.builders import DAY, Ledger, at, build_day
from tests.review.conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer

PNG = b"\x89PNG\r\n\x1a\n"


def use_smtp(monkeypatch: pytest.MonkeyPatch, server: SmtpServer, **extra: str) -> None:
    env = {"OKXLAB_SMTP_HOST": server.host, "OKXLAB_SMTP_PORT": str(server.port), "OKXLAB_SMTP_SECURITY": "none",
           "OKXLAB_SMTP_FROM": "okxlab@example.test", "OKXLAB_REPORT_TO": "ops@example.test, quant@example.test",
           "OKXLAB_SMTP_TIMEOUT": "10", **extra}
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=default_policy)  # type: ignore[return-value]


def check_message(msg: EmailMessage) -> None:
    """Subject with the date; text and HTML alternatives; every cid: in the HTML is an inline PNG part."""
    assert DAY.isoformat() in msg["Subject"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert "Leaderboard" in text.get_content() and "(buy & hold BTC-USDT-SWAP)" in text.get_content()
    related = [p for p in msg.iter_parts() if p.get_content_type() == "multipart/related"]
    assert len(related) == 1
    images = {p["Content-ID"].strip("<>"): p for p in related[0].iter_parts() if p.get_content_maintype() == "image"}
    cids = set(re.findall(r'src="cid:([^"]+)"', html.get_content()))
    assert cids and cids == set(images)
    for part in images.values():
        assert part.get_content_type() == "image/png" and part.get_content_disposition() == "inline"
        assert part.get_content().startswith(PNG)


def test_report_files_on_disk(sqlite_db: str, review_env: Path) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    built = build_report(DAY, sessions=session_factory(sqlite_db))
    directory = review_env / DAY.isoformat()
    assert built.html_path == directory / "report.html"
    names = sorted(p.name for p in directory.iterdir())
    assert names == ["drawdown-sim.png", "equity-sim.png", "report.html", "report.json", "report.txt"]
    page = built.html_path.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == ["drawdown-sim.png", "equity-sim.png"]
    assert all((directory / src).read_bytes().startswith(PNG) for src in sources)
    text = built.text_path.read_text()
    for heading in ("Leaderboard", "Trades", "Risk events", "Invalid plans", "LLM cost", "Pipeline health"):
        assert heading in text and heading in page
    assert "take_profit" in text and "stop_loss" in text and "signal" in text  # exit reasons
    assert "risk.drawdown_halt" in text and "risk.global_pause" in text
    assert "DOGE-USDT-SWAP is not traded" in text
    assert "$0.0011" in text
    assert "failed 1" in text and "skipped 1" in text
    data = json.loads((directory / "report.json").read_text())
    assert data["version"] == 1 and data["day"] == DAY.isoformat()
    assert [a["agent"] for a in data["books"][0]["leaderboard"]["agents"]] == ["alpha", "beta", "flat"]
    with session_scope(sqlite_db) as s:
        row = s.get(Report, DAY)
        assert row.path == str(built.html_path) and row.sent_at is None and row.send_count == 0


def test_replay_books_are_covered_whole(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as s:
        replay = Ledger(s, "replay:9")
        replay.agent("alpha")
        replay.run("alpha", at(-24 * 30), equity=10_000.0, btc=90_000.0, created_at=at(3))
        replay.run("alpha", at(-24 * 30 + 4), equity=10_500.0, btc=91_000.0, created_at=at(3))
    built = build_report(DAY, sessions=session_factory(sqlite_db))
    assert "Book replay:9 — the whole replay" in built.text and "+5.00%" in built.text


def test_a_book_on_its_own_clock_reports_the_day_s_activity(sqlite_db: str) -> None:
    # The simulator trades 2022 prices today: its runs are scheduled on DAY but its equity, fills and positions
    # stand in 2022. The report covers the market time those runs stood at, and says so; the figures are
    # those of the same day on a book that follows the wall clock.
    shift = datetime(2022, 10, 3, tzinfo=UTC) - at(0)
    with session_scope(sqlite_db) as s:
        build_day(s, "demo")
        build_day(s, "sim", market_shift=shift)
    built = build_report(DAY, sessions=session_factory(sqlite_db))
    data = json.loads((built.directory / "report.json").read_text())
    demo, sim = data["books"]
    assert (demo["book"], sim["book"]) == ("demo", "sim")
    assert sim["window"] == {"start": "2022-10-03T00:00:00+00:00", "end": None}
    assert sim["scheduled"] == demo["window"] == {"start": "2025-03-10T00:00:00+00:00",
                                                  "end": "2025-03-11T00:00:00+00:00"}
    figures = [(a["agent"], a["return"], a["trades"], a["fees"]) for a in sim["leaderboard"]["agents"]]
    assert figures == [(a["agent"], a["return"], a["trades"], a["fees"]) for a in demo["leaderboard"]["agents"]]
    assert figures[0][0] == "alpha" and figures[0][1] == pytest.approx(0.07)
    assert len(sim["trades"]) == len(demo["trades"]) == 4
    assert sim["runs_by_status"] == demo["runs_by_status"]
    assert [e["message"] for e in sim["risk_events"]] == [e["message"] for e in demo["risk_events"]] != []
    assert ("Book sim — market time 2022-10-03 00:00 → its latest run UTC, the book's own clock, for its runs "
            "scheduled 2025-03-10 00:00 → 2025-03-11 00:00 UTC") in built.text


def test_a_book_on_its_own_clock_tiles_its_days(sqlite_db: str) -> None:
    # A fill between the last tick of one day and the first of the next belongs to exactly one report.
    shift = datetime(2022, 10, 3, tzinfo=UTC) - at(0)
    with session_scope(sqlite_db) as s:
        ledger = Ledger(s, "sim", market_shift=shift)
        ledger.agent("alpha")
        for hour, equity in [(-4, 10_000.0), (20, 10_000.0), (24, 10_300.0)]:
            ledger.run("alpha", at(hour), equity=equity, btc=100_000.0)
        ledger.fill("alpha", at(22), fee=3.0, slippage_bps=1.0, trade_id="between")
    def book_of(day: date) -> dict:
        built = build_report(day, sessions=session_factory(sqlite_db))
        return json.loads((built.directory / "report.json").read_text())["books"][0]

    day, after = book_of(DAY), book_of(DAY + timedelta(days=1))
    assert day["window"] == {"start": "2022-10-03T20:00:00+00:00", "end": "2022-10-04T00:00:00+00:00"}
    assert after["window"] == {"start": "2022-10-04T00:00:00+00:00", "end": None}
    assert [a["fees"] for a in day["leaderboard"]["agents"]] == [3.0]
    assert [a["fees"] for a in after["leaderboard"]["agents"]] == [0.0]
    assert after["leaderboard"]["agents"][0]["return"] == pytest.approx(0.03)


def test_empty_day(sqlite_db: str) -> None:
    built = build_report(DAY, sessions=session_factory(sqlite_db))
    assert built.subject.endswith(": no runs") and "No runs were scheduled that day." in built.text
    assert built.images == {}


def test_sent_once_per_day_and_resent_on_request(any_db: str, smtp_server: SmtpServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(any_db) as s:
        build_day(s)
    use_smtp(monkeypatch, smtp_server)
    first = deliver(DAY, send=True, url=any_db)
    assert first.sent and "emailed to ops@example.test, quant@example.test" in first.message
    assert len(smtp_server.inbox.messages) == 1
    received = smtp_server.inbox.messages[0]
    assert received.mail_from == "okxlab@example.test"
    assert received.rcpt_tos == ["ops@example.test", "quant@example.test"]
    check_message(parse(received.data))

    again = deliver(DAY, send=True, url=any_db)
    assert not again.sent and "already emailed" in again.message and "--resend" in again.message
    assert len(smtp_server.inbox.messages) == 1

    forced = deliver(DAY, send=True, resend=True, url=any_db)
    assert forced.sent and "(resend)" in forced.message
    assert len(smtp_server.inbox.messages) == 2
    check_message(parse(smtp_server.inbox.messages[1].data))
    with session_scope(any_db) as s:
        row = s.get(Report, DAY)
        assert row.send_count == 2 and row.sent_at is not None
        assert row.recipients == ["ops@example.test", "quant@example.test"]
        sent = s.scalars(select(AuditEvent).where(AuditEvent.kind == "report.sent")).all()
        assert len(sent) == 2


def test_nightly_report_sends_yesterday_once(sqlite_db: str, smtp_server: SmtpServer,
                                             monkeypatch: pytest.MonkeyPatch, review_env: Path) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    use_smtp(monkeypatch, smtp_server)
    now = datetime(2025, 3, 11, 0, 5, tzinfo=UTC)
    first = nightly_report(now, url=sqlite_db)
    assert first.day == DAY and first.sent and first.path == review_env / "2025-03-10" / "report.html"
    second = nightly_report(now + timedelta(minutes=1), url=sqlite_db)
    assert not second.sent and "already sent" in second.message and second.path is None
    assert len(smtp_server.inbox.messages) == 1


def test_nightly_report_without_smtp_only_writes(sqlite_db: str, review_env: Path) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    outcome = nightly_report(datetime(2025, 3, 11, 0, 5, tzinfo=UTC), url=sqlite_db)
    assert not outcome.sent and outcome.path is not None and outcome.path.exists()
    assert str(outcome.path) in outcome.message


def test_starttls_with_login_never_leaks_the_password(sqlite_db: str, starttls_server: SmtpServer,
                                                      monkeypatch: pytest.MonkeyPatch, review_env: Path) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    use_smtp(monkeypatch, starttls_server, OKXLAB_SMTP_SECURITY="starttls", OKXLAB_SMTP_USER=SMTP_USER,
             OKXLAB_SMTP_PASSWORD=SMTP_PASSWORD, OKXLAB_SMTP_CA_FILE=starttls_server.ca_file or "")
    monkeypatch.delenv("OKXLAB_SMTP_FROM")  # the login is an address: it becomes the sender
    outcome = deliver(DAY, send=True, url=sqlite_db)
    assert outcome.sent
    [received] = starttls_server.inbox.messages
    assert received.login == SMTP_USER and received.mail_from == SMTP_USER
    check_message(parse(received.data))
    assert SMTP_PASSWORD.encode() not in received.data
    for path in (review_env / DAY.isoformat()).iterdir():
        assert SMTP_PASSWORD.encode() not in path.read_bytes()
    assert SMTP_PASSWORD not in outcome.message


def test_a_failed_send_is_one_line_without_the_password_and_can_be_retried(
        sqlite_db: str, starttls_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    wrong = "not-the-password-7731"
    use_smtp(monkeypatch, starttls_server, OKXLAB_SMTP_SECURITY="starttls", OKXLAB_SMTP_USER=SMTP_USER,
             OKXLAB_SMTP_PASSWORD=wrong, OKXLAB_SMTP_CA_FILE=starttls_server.ca_file or "")
    with pytest.raises(mailer.MailError) as failure:
        deliver(DAY, send=True, url=sqlite_db)
    message = str(failure.value)
    assert "\n" not in message and wrong not in message and "SMTPAuthenticationError" in message
    with session_scope(sqlite_db) as s:
        row = s.get(Report, DAY)
        assert row.sent_at is None and row.send_count == 0  # the claim was released
    monkeypatch.setenv("OKXLAB_SMTP_PASSWORD", SMTP_PASSWORD)
    assert deliver(DAY, send=True, url=sqlite_db).sent
    assert len(starttls_server.inbox.messages) == 1


def test_an_untrusted_certificate_is_refused(sqlite_db: str, starttls_server: SmtpServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    use_smtp(monkeypatch, starttls_server, OKXLAB_SMTP_SECURITY="starttls", OKXLAB_SMTP_USER=SMTP_USER,
             OKXLAB_SMTP_PASSWORD=SMTP_PASSWORD)
    with pytest.raises(mailer.MailError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        deliver(DAY, send=True, url=sqlite_db)
    assert starttls_server.inbox.messages == []


def test_only_one_of_two_racing_senders_wins_the_claim(pg_db: str) -> None:
    build_report(DAY, sessions=session_factory(pg_db))
    sessions = session_factory(pg_db)
    barrier = threading.Barrier(2)
    results: list[object] = []

    def race() -> None:
        barrier.wait()
        results.append(mailer.claim(sessions, DAY))

    threads = [threading.Thread(target=race) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1
    with session_scope(pg_db) as s:
        assert s.get(Report, DAY).send_count == 1


@pytest.mark.parametrize(("env", "needle"), [
    ({"OKXLAB_SMTP_SECURITY": "tls13"}, "OKXLAB_SMTP_SECURITY"),
    ({"OKXLAB_SMTP_PORT": "smtp"}, "OKXLAB_SMTP_PORT"),
    ({"OKXLAB_REPORT_TO": " , "}, "OKXLAB_REPORT_TO"),
    ({"OKXLAB_SMTP_USER": "me@example.test", "OKXLAB_SMTP_PASSWORD": ""}, "OKXLAB_SMTP_PASSWORD"),
    ({"OKXLAB_SMTP_FROM": ""}, "OKXLAB_SMTP_FROM"),
    ({"OKXLAB_SMTP_SECURITY": "none", "OKXLAB_SMTP_USER": "u@x.test", "OKXLAB_SMTP_PASSWORD": "pw-123"}, "in clear"),
])
def test_bad_smtp_settings_are_named(env: dict[str, str], needle: str) -> None:
    base = {"OKXLAB_SMTP_HOST": "127.0.0.1", "OKXLAB_SMTP_FROM": "a@b.test", "OKXLAB_REPORT_TO": "c@d.test"}
    with pytest.raises(mailer.ConfigError, match=needle) as failure:
        mailer.smtp_settings({**base, **env})
    assert "pw-123" not in str(failure.value)


def test_smtp_defaults() -> None:
    assert mailer.smtp_settings({}) is None
    s = mailer.smtp_settings({"OKXLAB_SMTP_HOST": "mail.example.test", "OKXLAB_SMTP_FROM": "a@b.test",
                              "OKXLAB_REPORT_TO": "c@d.test,e@f.test"})
    assert (s.port, s.security, s.recipients, s.user) == (587, "starttls", ("c@d.test", "e@f.test"), None)
    ssl_port = mailer.smtp_settings({"OKXLAB_SMTP_HOST": "h", "OKXLAB_SMTP_SECURITY": "ssl", "OKXLAB_SMTP_FROM": "a@b",
                                     "OKXLAB_REPORT_TO": "c@d"}).port
    assert ssl_port == 465
