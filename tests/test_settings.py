"""The environment's settings (okxlab/settings.py): types, defaults, one error style, secrets never shown, re-read
when the environment changes, and the README's table kept true."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from okxlab import settings
from okxlab.config import database_url, live_trading_enabled, load_config
from okxlab.errors import ConfigError
from okxlab.execution.orders import claim_ttl, resend_settle
from okxlab.review import mailer

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OKXLAB_HOME")
    monkeypatch.chdir(tmp_path)
    s = settings.current()
    assert s.database == f"sqlite:///{tmp_path / 'okxlab-data' / 'okxlab.sqlite'}"
    assert s.broker == "memory://localhost/"
    assert s.reports == tmp_path / "okxlab-data" / "reports"
    assert (s.db_pool_size, s.exchange_timeout_ms, s.broker_visibility_timeout) == (5, 10_000, 3600.0)
    assert s.report_hour_minute == (0, 5) and s.live is False and s.okx_mode is None
    assert claim_ttl() == timedelta(seconds=60) and resend_settle() == timedelta(seconds=20)


def test_values_are_typed_and_re_read_when_the_environment_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_DATABASE_URL", "postgresql://u:pw@h/db")
    assert database_url() == "postgresql://u:pw@h/db"
    monkeypatch.setenv("OKXLAB_DATABASE_URL", "sqlite:////tmp/other.sqlite")
    assert database_url() == "sqlite:////tmp/other.sqlite"  # no stale cached object
    monkeypatch.setenv("OKXLAB_EXCHANGE_TIMEOUT_MS", "800")
    monkeypatch.setenv("OKXLAB_ORDER_CLAIM_TTL", "2.5")
    monkeypatch.setenv("OKXLAB_REPORT_TIME", "23:59")
    assert settings.current().exchange_timeout_ms == 800
    assert claim_ttl() == timedelta(seconds=2.5) and resend_settle() == timedelta(milliseconds=1600)
    assert settings.current().report_hour_minute == (23, 59)
    monkeypatch.setenv("OKXLAB_REPORT_TIME", "")  # empty is unset
    assert settings.current().report_hour_minute == (0, 5)


@pytest.mark.parametrize(("name", "value", "line"), [
    ("OKXLAB_SMTP_PORT", "smtp", "OKXLAB_SMTP_PORT='smtp' must be a port number (1-65535)"),
    ("OKXLAB_DB_POOL_SIZE", "0", "OKXLAB_DB_POOL_SIZE='0' must be a whole number >= 1"),
    ("OKXLAB_EXCHANGE_TIMEOUT_MS", "50", "OKXLAB_EXCHANGE_TIMEOUT_MS='50' must be a whole number of milliseconds >= 100"),
    ("OKXLAB_ORDER_RESEND_SETTLE", "nan", "OKXLAB_ORDER_RESEND_SETTLE='nan' must be a number of seconds >= 0"),
    ("OKXLAB_BROKER_VISIBILITY_TIMEOUT", "-1", "OKXLAB_BROKER_VISIBILITY_TIMEOUT='-1' must be a number of seconds > 0"),
    ("OKXLAB_REPORT_TIME", "24:00", "OKXLAB_REPORT_TIME='24:00' must be HH:MM (UTC), e.g. 00:05"),
    ("OKX_MODE", "paper", "OKX_MODE='paper' must be one of sim, demo, live"),
    ("OKXLAB_SMTP_SECURITY", "tls13", "OKXLAB_SMTP_SECURITY='tls13' must be one of starttls, ssl, none"),
])
def test_a_bad_value_is_one_line_naming_variable_value_and_rule(name: str, value: str, line: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as failure:
        settings.current()
    assert str(failure.value).startswith(line) and "\n" not in str(failure.value)


def test_a_url_password_is_masked_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_SIM_URL", "http://trader:hunter2-secret@127.0.0.1:8765/x")
    with pytest.raises(ConfigError) as failure:
        settings.current()
    assert "hunter2-secret" not in str(failure.value)
    assert str(failure.value).startswith("OKXLAB_SIM_URL='http://trader:***@127.0.0.1:8765/x' must be")


def test_secret_settings_never_show_their_value(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(settings.SECRET_VARIABLES) == {"OKXLAB_DATABASE_URL", "OKXLAB_BROKER_URL", "OKXLAB_SIM_ADMIN_TOKEN",
                                              "OKXLAB_SMTP_PASSWORD"}
    assert settings.shown("OKXLAB_SMTP_PASSWORD", "pw-123456") == "(hidden)"
    monkeypatch.setenv("OKXLAB_SMTP_PASSWORD", "pw-123456")
    monkeypatch.setenv("OKXLAB_SIM_ADMIN_TOKEN", "  tok-abcdef  ")
    s = settings.current()
    assert "pw-123456" not in repr(s) and "tok-abcdef" not in repr(s)
    assert s.sim_admin_token.get_secret_value() == "tok-abcdef"  # stripped, as it always was


def test_the_live_switch_keeps_its_exact_value_semantics(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, on in (("", False), ("false", False), ("true", True)):
        monkeypatch.setenv("LIVE_TRADING_ENABLED", value)
        assert live_trading_enabled() is on
    for value in (" true", "TRUE", "1", "yes"):
        monkeypatch.setenv("LIVE_TRADING_ENABLED", value)
        with pytest.raises(ConfigError, match="live trading is disabled until it is exactly 'true'"):
            live_trading_enabled()


def test_config_reads_the_exchange_overrides_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config()
    assert (config.exchange_mode(), config.broker_tag) == ("sim", "c314b0aecb5bBCDE")
    monkeypatch.setenv("OKX_MODE", "demo")
    monkeypatch.setenv("OKX_BROKER_TAG", "Abc123")
    monkeypatch.setenv("OKXLAB_SIM_URL", "http://127.0.0.1:9/")
    assert (config.exchange_mode(), config.broker_tag, config.sim_url) == ("demo", "Abc123", "http://127.0.0.1:9")


def test_smtp_settings_from_a_given_mapping_ignore_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_SMTP_HOST", "from-the-process")
    smtp = mailer.smtp_settings({"OKXLAB_SMTP_HOST": " mail.test ", "OKXLAB_SMTP_FROM": "a@b.test",
                                 "OKXLAB_REPORT_TO": "c@d.test", "OKXLAB_SMTP_SECURITY": "SSL"})
    assert (smtp.host, smtp.port, smtp.security) == ("mail.test", 465, "ssl")


def test_a_bad_setting_stops_a_celery_process_with_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "OKXLAB_HOME": str(tmp_path), "OKXLAB_ORDER_CLAIM_TTL": "0"}
    proc = subprocess.run([sys.executable, "-c", "import celeryconfig"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == \
        "okxlab: error: OKXLAB_ORDER_CLAIM_TTL='0' must be a number of seconds >= 1 (default 60)"


def test_the_readme_table_lists_every_setting_as_it_is() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings table[^\n]*-->\n(.*?)<!-- end of settings table -->", text, re.S)
    assert block, "README.md has no settings table markers"
    rows = [line for line in block.group(1).splitlines() if line.startswith("| `")]
    expected = ["| " + " | ".join(row) + " |" for row in settings.table()]
    assert rows == expected, "README.md's settings table differs from okxlab/settings.py; it should read:\n" + \
        "\n".join(expected)
    assert {row[0].strip("`") for row in settings.table()} == set(settings.VARIABLES)


def test_a_resend_settle_of_zero_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0 means "believe a lookup's not-found at once"; it was read as unset and became twice the request timeout.
    from datetime import timedelta

    from okxlab.execution.orders import resend_settle

    monkeypatch.setenv("OKXLAB_ORDER_RESEND_SETTLE", "0")
    assert resend_settle() == timedelta(0)
