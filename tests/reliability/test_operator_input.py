"""Bad operator input, through the real commands (`okxlab ...`, `celery -A workers ...` as processes).

Malformed config files and wrong types in them, unknown agents, invalid schedules, out-of-range spans and dates,
a wrong exchange mode or live switch, missing keys, bad worker settings, bad database and simulator URLs, an
unwritable reports directory, a simulator that is down: each must end with one clear line on stderr
(`okxlab: error: ...` naming what is wrong), a non-zero exit, no traceback, no password shown, and nothing
written: the database's rows are the same before and after every command, and the okxlab home directory is
never created.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from okxlab.bootstrap import prepare
from okxlab.config import load_config
from okxlab.db import models as m
from okxlab.db.session import session_scope
from okxlab.simulator.server import SimServer
from okxlab.simulator.simulator import Simulator
from tests.reliability.harness import Results

BIN = Path(sys.executable).parent
VALID_AGENT = '[[agents]]\nname = "a"\nplanner = "strategy"\nstrategy = "builtin:buy_and_hold"\nsymbols = ["BTC-USDT-SWAP"]\n'
CONFIGS = {
    "not_toml": '[[agents]\nname = "a"\n',
    "unknown_section": "[exchnage]\nmode = 'sim'\n" + VALID_AGENT,
    "no_symbols": '[[agents]]\nname = "a"\nplanner = "strategy"\nstrategy = "builtin:buy_and_hold"\n',
    "unknown_agent_key": VALID_AGENT + 'levrage = 3\n',
    "unknown_risk_key": "[risk]\nmax_lev = 3\n" + VALID_AGENT,
    "llm_without_settings": '[[agents]]\nname = "a"\nplanner = "llm"\nsymbols = ["BTC-USDT-SWAP"]\n',
    "duplicate_agents": VALID_AGENT + VALID_AGENT,
    "paper_mode": "[exchange]\nmode = 'paper'\n" + VALID_AGENT,
    # Wrong types: each loaded before, and some then passed the worker's start check and failed every run.
    "params_string": VALID_AGENT + 'params = "x"\n',
    "llm_number": VALID_AGENT + "llm = 5\n",
    "binary": b"\xff\xfe[[agents]]\nname = \"a\"\n",
    "candles_lots": '[pipeline]\ncandles = "lots"\n' + VALID_AGENT,
    "broker_tag_number": "[exchange]\nbroker_tag = 123\n" + VALID_AGENT,
    "equity_inf": VALID_AGENT + "initial_equity = inf\n",
    "quality_number": "[pipeline]\nquality = 5\n" + VALID_AGENT,
    "cyrillic_name": VALID_AGENT.replace('"a"', '"трейдер"'),
    "accented_name": VALID_AGENT.replace('"a"', '"zoë"'),
}
SECRET = "s3cr3t-Pa55"  # a database password that must never be shown
ADD = ["okxlab", "schedules", "add", "nightly", "--every", "1h"]  # a command that writes, if let through
REPLAY = ["celery", "-A", "workers", "replay", "range", "--start", "2022-11-01T00:00Z", "--end", "2022-11-01T08:00Z"]
WORKER = ["celery", "-A", "workers", "worker", "-Q", "snapshot", "--pool", "threads", "-c", "1"]


@dataclass(frozen=True)
class Case:
    kind: str
    label: str
    argv: list[str]
    expected: str
    env: dict[str, str] = field(default_factory=dict)  # "{tmp}" stands for the test's directory
    config: str | None = None  # a key of CONFIGS, or "missing"
    secret: str | None = None  # must appear nowhere in the output


CASES = [
    Case("malformed config", "not TOML", ADD, "is not valid TOML", config="not_toml"),
    Case("malformed config", "unknown section", ADD, "unknown section(s) exchnage", config="unknown_section"),
    Case("malformed config", "agent without symbols", ADD, "symbols is missing; it must be a non-empty list",
         config="no_symbols"),
    Case("malformed config", "unknown agent key", ADD, "unknown key(s) levrage", config="unknown_agent_key"),
    Case("malformed config", "unknown risk limit", ADD, "max_lev", config="unknown_risk_key"),
    Case("malformed config", "LLM agent without [agents.llm]", ADD, "needs an [agents.llm] table",
         config="llm_without_settings"),
    Case("malformed config", "agent declared twice", ADD, "declared twice: a", config="duplicate_agents"),
    Case("malformed config", "config file missing", ADD, "does not exist", config="missing"),
    Case("malformed config", "worker on a malformed config", WORKER, "is not valid TOML", config="not_toml"),
    Case("unknown agent", "agents halt", ["okxlab", "agents", "halt", "ghost", "--reason", "test"],
         "unknown agent 'ghost'"),
    Case("unknown agent", "schedule for an unknown agent", [*ADD, "--agent", "ghost"], "unknown agent 'ghost'"),
    Case("unknown agent", "replay range", [*REPLAY, "--agent", "ghost"], "unknown agent 'ghost'"),
    Case("invalid schedule", "crontab minute 61", ["okxlab", "schedules", "add", "x", "--cron", "61 * * * *"],
         "crontab '61 * * * *' is not valid"),
    Case("invalid schedule", "crontab with 3 fields", ["okxlab", "schedules", "add", "x", "--cron", "* * *"],
         "must have 5 fields"),
    Case("invalid schedule", "interval not dividing a day", ["okxlab", "schedules", "add", "x", "--every", "7m"],
         "does not divide a day evenly"),
    Case("invalid schedule", "interval too short", ["okxlab", "schedules", "add", "x", "--every", "5s"],
         "shorter than the minimum"),
    Case("wrong exchange mode", "[exchange] mode = paper", ADD, "exchange.mode must be one of sim, demo, live, not 'paper'",
         config="paper_mode"),
    Case("wrong exchange mode", "OKX_MODE=paper", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "OKX_MODE='paper' must be one of sim, demo, live", env={"OKX_MODE": "paper"}),
    Case("wrong exchange mode", "OKX_MODE=live without the switch", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "live trading is disabled", env={"OKX_MODE": "live"}),
    Case("missing keys", "OKX demo without credentials", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "OKX demo trading needs credentials", env={"OKX_MODE": "demo"}),
    Case("missing keys", "LLM agent without its API key", [*REPLAY, "--agent", "deepseek"],
         "DEEPSEEK_API_KEY is not set"),
    Case("bad setting", "visibility timeout 'never'", WORKER, "OKXLAB_BROKER_VISIBILITY_TIMEOUT='never'",
         env={"OKXLAB_BROKER_VISIBILITY_TIMEOUT": "never"}),
    Case("bad setting", "order claim TTL 0", WORKER, "OKXLAB_ORDER_CLAIM_TTL='0'", env={"OKXLAB_ORDER_CLAIM_TTL": "0"}),
    Case("bad setting", "report time 25:00", ["celery", "-A", "workers", "beat"], "OKXLAB_REPORT_TIME='25:00'",
         env={"OKXLAB_REPORT_TIME": "25:00"}),
    Case("wrong type in config", "params = \"x\"", ADD, "agents[0] (a): params must be a table", config="params_string"),
    Case("wrong type in config", "llm = 5 on a strategy agent", ADD, "agents[0] (a): llm must be a table",
         config="llm_number"),
    Case("wrong type in config", "binary (not UTF-8) file", ADD, "is not UTF-8 text", config="binary"),
    Case("wrong type in config", "[pipeline] candles = \"lots\"", ADD,
         "pipeline.candles must be a whole number between 20 and 300, not 'lots'", config="candles_lots"),
    Case("wrong type in config", "worker on candles = \"lots\"", WORKER, "pipeline.candles must be a whole number",
         config="candles_lots"),
    Case("wrong type in config", "[exchange] broker_tag = 123", ADD, "exchange.broker_tag must be 1-16 ASCII letters",
         config="broker_tag_number"),
    Case("wrong type in config", "initial_equity = inf", ADD, "initial_equity must be a positive number of USDT (at most 1e12), not inf",
         config="equity_inf"),
    Case("wrong type in config", "[pipeline] quality = 5", ADD, "pipeline.quality must be a table", config="quality_number"),
    Case("wrong type in config", "agent named трейдер", ADD, "name must be 1-40 ASCII letters", config="cyrillic_name"),
    Case("wrong type in config", "worker on an agent named трейдер", WORKER, "name must be 1-40 ASCII letters",
         config="cyrillic_name"),
    Case("wrong type in config", "agent named zoë", ADD, "name must be 1-40 ASCII letters", config="accented_name"),
    Case("bad URL", "OKXLAB_DATABASE_URL=foo://bar", ADD, "foo://bar is not a PostgreSQL or SQLite database",
         env={"OKXLAB_DATABASE_URL": "foo://bar"}),
    Case("bad URL", "OKXLAB_DATABASE_URL='not a url'", ADD, "OKXLAB_DATABASE_URL is not a database URL",
         env={"OKXLAB_DATABASE_URL": "not a url"}),
    Case("bad URL", "database URL with a password and a port that is no number", ADD,
         "OKXLAB_DATABASE_URL is not a database URL",
         env={"OKXLAB_DATABASE_URL": f"postgresql://trader:{SECRET}@db-host:port/okxlab"}, secret=SECRET),
    Case("bad URL", "database password in ?password=", ADD, "cannot reach the database at postgresql://",
         env={"OKXLAB_DATABASE_URL": f"postgresql://trader@127.0.0.1:1/okxlab?password={SECRET}"}, secret=SECRET),
    Case("bad URL", "OKXLAB_SIM_URL=garbage", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "OKXLAB_SIM_URL='garbage' must be the simulator's http(s)://host[:port] URL",
         env={"OKXLAB_SIM_URL": "garbage"}),
    Case("bad URL", "OKXLAB_SIM_URL=file://", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "OKXLAB_SIM_URL='file:///etc/passwd' must be the simulator's http(s)://host[:port] URL",
         env={"OKXLAB_SIM_URL": "file:///etc/passwd"}),
    Case("exchange down", "simulator not running", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "flatten trend [sim]: the exchange did not answer", env={"OKXLAB_SIM_URL": "http://127.0.0.1:1"}),
    Case("out of range", "schedules add --every 999999999999d",
         ["okxlab", "schedules", "add", "x", "--every", "999999999999d"], "interval '999999999999d' is too long"),
    Case("out of range", "report --date 9999-12-31", ["okxlab", "report", "--date", "9999-12-31"],
         "--date 9999-12-31 is in the future"),
    Case("out of range", "leaderboard --since 999999999999d", ["okxlab", "leaderboard", "--since", "999999999999d"],
         "--since '999999999999d' reaches back before the year 1"),
    Case("unwritable directory", "OKXLAB_REPORTS_DIR under a file", ["okxlab", "report", "--date", "2022-12-30"],
         "cannot write the report to", env={"OKXLAB_REPORTS_DIR": "{tmp}/a-file/reports"}),
    Case("live switch", "LIVE_TRADING_ENABLED=TRUE", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "LIVE_TRADING_ENABLED='TRUE' must be exactly 'true' or 'false'",
         env={"OKX_MODE": "live", "LIVE_TRADING_ENABLED": "TRUE"}),
    Case("live switch", "LIVE_TRADING_ENABLED=' true '", ["okxlab", "agents", "flatten", "trend", "--yes"],
         "LIVE_TRADING_ENABLED=' true ' must be exactly 'true' or 'false'",
         env={"OKX_MODE": "live", "LIVE_TRADING_ENABLED": " true "}),
]


def error_lines(stderr: str) -> list[str]:
    """stderr's lines, without the warning celery prints when a worker runs as root (as in some CI boxes)."""
    out, skipping = [], False
    for line in stderr.splitlines():
        if "SecurityWarning: You're running the worker with superuser privileges" in line:
            skipping = True
        if not skipping and line.strip():
            out.append(line)
        if skipping and "_warn_or_raise_security_error" in line:
            skipping = False
    return out


def rows(db_url: str) -> dict[str, int]:
    with session_scope(db_url) as s:
        return {model.__tablename__: s.scalar(select(func.count()).select_from(model))
                for model in m.Base.__subclasses__() if hasattr(model, "__tablename__")}


@pytest.fixture
def setting(pg_url: str, tmp_path: Path):  # noqa: ANN201
    """A migrated database with the packaged config's agents and schedules, and a simulator answering."""
    prepare(load_config(), pg_url)
    (tmp_path / "a-file").write_text("a file, so nothing can be created beneath it, not even by root\n")
    with SimServer(Simulator(agents=load_config())) as sim:
        yield pg_url, sim.url, tmp_path


def run_case(case: Case, db_url: str, sim_url: str, tmp: Path) -> tuple[Case, subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKXLAB_", "OKX_", "LIVE_TRADING", "DEEPSEEK",
                                                                    "DASHSCOPE"))}
    env.update({"OKXLAB_DATABASE_URL": db_url, "OKXLAB_HOME": str(tmp / "home"), "OKXLAB_SIM_URL": sim_url,
                "OKXLAB_BROKER_URL": "redis://127.0.0.1:1/0",
                **{k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()}})
    if case.config == "missing":
        env["OKXLAB_CONFIG"] = str(tmp / "no-such-okxlab.toml")
    elif case.config:
        path = tmp / f"{case.config}.toml"
        text = CONFIGS[case.config]
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        env["OKXLAB_CONFIG"] = str(path)
    started = time.monotonic()
    argv = [str(BIN / case.argv[0]), *case.argv[1:]]
    try:
        proc = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=45)
    except subprocess.TimeoutExpired as exc:  # e.g. a worker that keeps running on a config it cannot read
        proc = subprocess.CompletedProcess(argv, -9, str(exc.stdout or ""), f"still running after {exc.timeout} s")
    return case, proc, time.monotonic() - started


# Some 50 processes, each importing okxlab (several seconds apiece on a loaded 2-core machine): a deadline for a
# hung command, not a speed check (each command has its own 45 s limit).
@pytest.mark.timeout(1200)
def test_bad_operator_input_gets_one_line_a_nonzero_exit_and_writes_nothing(setting, results: Results) -> None:  # noqa: ANN001
    db_url, sim_url, tmp = setting
    before = rows(db_url)
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda c: run_case(c, db_url, sim_url, tmp), CASES))
    after = rows(db_url)
    report, problems = [], []
    for case, proc, _seconds in done:
        lines = error_lines(proc.stderr)
        ok = (proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("okxlab: error: ")
              and case.expected in lines[0] and "Traceback" not in proc.stderr + proc.stdout
              and (case.secret is None or case.secret not in proc.stderr + proc.stdout))
        shown = (lines[-1] if lines else "").replace(str(tmp), "<tmp>")  # the test's own directory, for the report
        report.append({"kind": case.kind, "case": case.label, "exit": proc.returncode, "line": shown, "ok": ok})
        if not ok:
            problems.append(f"{case.label}: exit {proc.returncode}, stderr: {proc.stderr[-600:]!r}")
    results.record("operator_input", cases=len(CASES), one_clear_line=sum(r["ok"] for r in report),
                   nonzero_exit=sum(r["exit"] != 0 for r in report), rows_changed=before != after,
                   home_created=(tmp / "home").exists(), kinds=sorted({c.kind for c in CASES}), results=report)
    assert problems == [], "\n".join(problems)
    assert after == before  # nothing written
    assert not (tmp / "home").exists()
