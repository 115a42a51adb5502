"""Secrets never leave, and live trading needs its switch.

Recognisable secrets are configured everywhere okxlab takes one: the OKX API key, secret and passphrase of
two agents, an LLM API key, the SMTP password, the database password (in OKXLAB_DATABASE_URL). The pipeline
then runs end to end with a worker process logging at INFO, including failures that tempt a leak (a model
server that echoes the key in its 401, an agent whose OKX passphrase the exchange refuses, an unreachable
database, a report emailed over STARTTLS with a login). Everything okxlab wrote is searched for each secret
and for pieces of it: the worker's log, this process's log, every row of every table, the report files and
the email, `runs list`, `runs show` (text and JSON), the leaderboard, and every command's error output.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from okxlab.cli.main import main
from okxlab.config import load_config
from okxlab.db import models as m
from okxlab.db.models import utcnow
from okxlab.errors import ConfigError
from okxlab.execution.exchange import new_client, venue_for_book
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.stages import execute_stage
from okxlab.replay.range import create_replay, run_range
from tests.reliability.conftest import open_lab
from tests.reliability.harness import Results, wait_ended
from tests.review.conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, starttls_server  # noqa: F401 (a fixture)
from tests.support.llm_server import LlmServer, Reply, Request, error
from tests.support.models import trader

BIN = Path(sys.executable).parent
START = datetime(2022, 11, 1, tzinfo=UTC)
SECRETS = {  # no two share a piece of 10 characters, so a find names the right one
    "OKX API key": "AK3f9c1e7b2d4a6081",
    "OKX secret": "SC8e2b7d1c9a3f5e60",
    "OKX passphrase": "PP-Zq7Lm2Xv9Wn4",
    "LLM API key": "sk-LLMx5r8t1y3u6i9o2p",
    "SMTP password": SMTP_PASSWORD,
    "database password": "DBpw4h7j0k3l6m9n",
}
WRONG_PASSPHRASE = "PP-Wr0ngWr0ng77"
ENV = {"SEC_OKX_KEY": SECRETS["OKX API key"], "SEC_OKX_SECRET": SECRETS["OKX secret"],
       "SEC_OKX_PASS": SECRETS["OKX passphrase"], "SEC_BAD_PASS": SECRETS["OKX passphrase"],
       "SEC_LLM_KEY": SECRETS["LLM API key"]}


def config_text(llm_url: str) -> str:
    okx = '[agents.okx]\napi_key_env = "SEC_OKX_KEY"\nsecret_env = "SEC_OKX_SECRET"\npassphrase_env = "{}"\n'
    return f"""
[pipeline]
candles = 60

[[agents]]
name = "keyed-llm"
planner = "llm"
symbols = ["BTC-USDT-SWAP"]
[agents.llm]
provider = "openai_compatible"
base_url = "{llm_url}"
model = "test-model"
api_key_env = "SEC_LLM_KEY"
timeout = 10
max_retries = 0
{okx.format("SEC_OKX_PASS")}
[[agents]]
name = "keyed-rules"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
{okx.format("SEC_OKX_PASS")}
[[agents]]
name = "wrong-pass"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
{okx.format("SEC_BAD_PASS")}
"""


class LeakyModel:
    """The scripted trader, except that its first answer is a 401 quoting the key it was sent, as some
    providers do."""

    def __init__(self) -> None:
        self.leaked = False

    def __call__(self, request: Request) -> Reply:
        if not self.leaked:
            self.leaked = True
            return error(401, f"Incorrect API key provided: {SECRETS['LLM API key']}. You can find your key at ...")
        return trader(request)


def pieces(secret: str) -> list[str]:
    """The secret and every 10-character piece of it (a truncated or masked echo still leaks)."""
    return [secret] + [secret[i:i + 10] for i in range(0, len(secret) - 9)]


def leaks(where: str, blob: str) -> list[str]:
    return [f"{name} in {where}" for name, secret in SECRETS.items()
            if any(piece in blob for piece in pieces(secret))]


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=120)


def test_configured_secrets_appear_nowhere_okxlab_writes(pg_url: str, tmp_path: Path, starttls_server: SmtpServer,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture, results: Results) -> None:
    caplog.set_level(logging.DEBUG)
    db_url = make_url(pg_url).set(password=SECRETS["database password"]).render_as_string(hide_password=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    reports = tmp_path / "reports"
    smtp = {"OKXLAB_SMTP_HOST": starttls_server.host, "OKXLAB_SMTP_PORT": str(starttls_server.port),
            "OKXLAB_SMTP_SECURITY": "starttls", "OKXLAB_SMTP_USER": SMTP_USER, "OKXLAB_SMTP_PASSWORD": SMTP_PASSWORD,
            "OKXLAB_SMTP_CA_FILE": starttls_server.ca_file or "", "OKXLAB_REPORT_TO": "ops@example.test",
            "OKXLAB_REPORTS_DIR": str(reports)}
    outputs: dict[str, str] = {}
    with LlmServer(responder=LeakyModel()) as llm, \
            open_lab(db_url, tmp_path, config_text(llm.base_url), extra_env={**ENV, **smtp}) as lab:
        # The exchange knows this passphrase for every account: the worker is given another one for wrong-pass.
        monkeypatch.setenv("SEC_BAD_PASS", WRONG_PASSPHRASE)
        worker = lab.worker("secrets", concurrency=4, loglevel="DEBUG", SEC_BAD_PASS=WRONG_PASSPHRASE)
        sender = lab.sender()
        replay = create_replay(lab.env, kind="range", agents=["keyed-llm", "keyed-rules", "wrong-pass"], start=START,
                               end=START + timedelta(hours=4), bar="4H", offline_planners=False, fresh_llm=False)
        result = run_range(lab.env, replay, lab.admin, lab.sim.world_url, sender.start_run, tick_timeout=120)
        with lab.env.sessions() as s:
            runs = s.scalars(select(m.Run).where(m.Run.replay_id == replay.id)).all()
            dump = "\n".join(repr(tuple(row)) for table in m.Base.metadata.sorted_tables
                             for row in s.execute(text(f'SELECT * FROM "{table.name}"')))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OKXLAB_")}
        env.update(lab.worker_env(), OKXLAB_DATABASE_URL=db_url, **smtp)
        # The read commands in this process (as a user runs them, minus the start-up time of one process each).
        runner = CliRunner()
        for args in (["runs", "list", "--limit", "50"], ["runs", "list", "--json"],
                     ["leaderboard", "--book", f"replay:{replay.id}"],
                     *(["runs", "show", run.id, *extra] for run in runs for extra in ([], ["--json", "--full"]))):
            shown = runner.invoke(main, args, env=env)
            outputs[" ".join(args[:3])] = shown.output + (shown.stderr or "")
        sent = cli(["okxlab", "report", "--date", utcnow().date().isoformat(), "--send"], env)
        outputs["report command"] = sent.stdout + sent.stderr
        bad_smtp = cli(["okxlab", "report", "--date", utcnow().date().isoformat(), "--resend"],
                       {**env, "OKXLAB_SMTP_PASSWORD": SMTP_PASSWORD + "-wrong"})
        outputs["report with a refused login"] = bad_smtp.stdout + bad_smtp.stderr
        unreachable = make_url(db_url).set(port=1).render_as_string(hide_password=False)
        no_db = cli(["okxlab", "runs", "list"], {**env, "OKXLAB_DATABASE_URL": unreachable})
        outputs["unreachable database"] = no_db.stdout + no_db.stderr
        worker.stop()
        outputs["worker log"] = lab.logs()
    statuses = {agent: dict(Counter(r.status for r in runs if r.agent == agent)) for agent in sorted({r.agent for r in runs})}
    files = {str(p.relative_to(reports)): p.read_bytes().decode("utf-8", "replace") for p in reports.rglob("*")
             if p.is_file()}
    mails = [msg.data.decode("utf-8", "replace") for msg in starttls_server.inbox.messages]
    found = leaks("the database", dump) + leaks("this process's log", caplog.text)
    for where, blob in [*outputs.items(), *(("report file " + k, v) for k, v in files.items()),
                        *((f"email {i}", mail) for i, mail in enumerate(mails))]:
        found += leaks(where, blob)
    failed_reasons = sorted({(r.agent, (r.reason or "")[:120]) for r in runs if r.status == "failed"})
    results.record("secrets", secrets=list(SECRETS), runs=len(runs), statuses=statuses,
                   completed=sum(r.status == "completed" for r in runs),
                   places_searched=2 + len(outputs) + len(files) + len(mails), report_files=len(files),
                   emails=len(mails), failed_runs_reasons=failed_reasons, leaks=found)
    assert found == [], found
    # The run was real: every agent ran, the key-echoing model and the refused passphrase made runs fail with a
    # reason, the report went out by email, and the failed login and the lost database each said so in a line.
    assert result.runs == 6 and statuses["keyed-rules"] == {"completed": 2}
    assert any("llm_error" in reason for _, reason in failed_reasons)
    assert any(agent == "wrong-pass" and "50105" in reason for agent, reason in failed_reasons)
    assert sent.returncode == 0 and len(mails) == 1 and files
    assert bad_smtp.returncode != 0 and "SMTPAuthenticationError" in bad_smtp.stderr
    assert no_db.returncode != 0 and "cannot reach the database" in no_db.stderr and "***" in no_db.stderr


def test_live_trading_needs_its_switch_and_real_okx_means_demo(pg_url: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config()
    agent = config.agent("trend")
    for name in ("OKX_MODE", "LIVE_TRADING_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    assert config.exchange_mode(agent) == "sim"  # the packaged default never reaches OKX
    monkeypatch.setenv("OKX_TREND_KEY", "k")
    monkeypatch.setenv("OKX_TREND_SECRET", "s")
    monkeypatch.setenv("OKX_TREND_PASS", "p")
    keyed = dataclasses.replace(agent, okx={"api_key_env": "OKX_TREND_KEY", "secret_env": "OKX_TREND_SECRET",
                                            "passphrase_env": "OKX_TREND_PASS"})
    # OKX demo: ccxt's sandbox mode, every request marked x-simulated-trading: 1, aimed at OKX itself.
    monkeypatch.setenv("OKX_MODE", "demo")
    demo = new_client(config, keyed, venue_for_book(config, config.exchange_mode(keyed)))
    assert demo.headers.get("x-simulated-trading") == "1" and demo.urls["api"]["rest"] == "https://{hostname}"
    assert demo.hostname.endswith("okx.com")
    # Live: refused unless LIVE_TRADING_ENABLED is exactly true; then, and only then, not marked simulated.
    monkeypatch.setenv("OKX_MODE", "live")
    for value in (None, "", "1", "yes", "on", "enabled", "false", "tru"):
        if value is None:
            monkeypatch.delenv("LIVE_TRADING_ENABLED", raising=False)
        else:
            monkeypatch.setenv("LIVE_TRADING_ENABLED", value)
        with pytest.raises(ConfigError, match="live trading is disabled"):
            venue_for_book(config, config.exchange_mode(keyed))
    monkeypatch.setenv("LIVE_TRADING_ENABLED", "true")
    live = new_client(config, keyed, venue_for_book(config, config.exchange_mode(keyed)))
    assert "x-simulated-trading" not in (live.headers or {})
    # In the pipeline: an agent set to live without the switch fails its first stage with that reason, and
    # nothing reaches any exchange (the venue is refused before a client exists).
    monkeypatch.delenv("LIVE_TRADING_ENABLED")
    (tmp_path / "live.toml").write_text('[exchange]\nmode = "live"\n' + "".join(
        f'[[agents]]\nname = "{n}"\nplanner = "strategy"\nstrategy = "builtin:buy_and_hold"\nsymbols = ["BTC-USDT-SWAP"]\n'
        for n in ("livebot",)))
    monkeypatch.delenv("OKX_MODE")
    with open_lab(pg_url, tmp_path, (tmp_path / "live.toml").read_text()) as lab:
        with lab.env.sessions.begin() as s:
            (run_id,) = create_runs(s, "schedule:live", [("livebot", "live")], START, now=utcnow())
        assert execute_stage("snapshot", run_id, lab.env) is False
        (run,) = wait_ended(lab.env, [run_id], 5).values()
    assert run.status == "failed" and "live trading is disabled" in run.reason and "LIVE_TRADING_ENABLED=true" in run.reason
