"""`okxlab demo` on a machine with no services, then the other commands in the same directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _okxlab(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKXLAB_", "OKX_"))}
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "okxlab.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_demo_needs_no_services_and_leaves_results_for_the_other_commands(tmp_path: Path) -> None:
    # Service settings pointing nowhere: had the demo used a database or broker server, it would fail.
    unreachable = {"OKXLAB_DATABASE_URL": "postgresql://nobody:pw@127.0.0.1:1/none",
                   "OKXLAB_BROKER_URL": "redis://127.0.0.1:1/0"}
    demo = _okxlab(["demo", "--ticks", "6"], tmp_path, unreachable)
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    assert "AGENT" in out and "EQUITY" in out and "MAX DRAWDOWN" in out  # the leaderboard
    for agent in ("deepseek", "qwen", "trend", "meanrev", "buyhold", "cash"):
        assert agent in out
    assert "offline stand-in" in out  # the LLM agents' stand-ins are said plainly
    assert "36 runs" in out
    database = tmp_path / "okxlab-data" / "okxlab.sqlite"
    assert f"database: {database}" in out and database.exists()

    # The same directory, no settings: every command finds the demo's database.
    runs = _okxlab(["runs", "list", "--json", "--limit", "100"], tmp_path)
    assert runs.returncode == 0, runs.stderr
    rows = json.loads(runs.stdout)
    assert len(rows) == 36 and {r["status"] for r in rows} <= {"completed", "rejected", "skipped"}
    agents = _okxlab(["agents", "list", "--json"], tmp_path)
    assert {a["name"] for a in json.loads(agents.stdout)} == {"deepseek", "qwen", "trend", "meanrev", "buyhold", "cash"}
    shown = _okxlab(["runs", "show", rows[0]["id"], "--json"], tmp_path)
    trail = json.loads(shown.stdout)
    assert [s["stage"] for s in trail["stages"]] == ["snapshot", "quality", "features", "plan", "validate", "risk", "order"]
    assert {s["queue"] for s in trail["stages"] if s["status"] == "done"} <= {s["stage"] for s in trail["stages"]}

    # A second demo replaces the first one's database, and says so.
    again = _okxlab(["demo", "--ticks", "2"], tmp_path)
    assert again.returncode == 0 and "replaced the previous demo database" in again.stdout


def test_demo_refuses_to_touch_a_database_it_did_not_make(tmp_path: Path) -> None:
    home = tmp_path / "okxlab-data"
    home.mkdir()
    (home / "okxlab.sqlite").write_bytes(b"someone else's data")
    result = _okxlab(["demo", "--ticks", "2"], tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("okxlab: error: ") and "did not make" in result.stderr
    assert (home / "okxlab.sqlite").read_bytes() == b"someone else's data"


def test_demo_serve_shows_the_results_in_the_dashboard_read_only(tmp_path: Path) -> None:
    import signal

    import httpx

    from tests.support.browser import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKXLAB_", "OKX_"))}
    proc = subprocess.Popen([sys.executable, "-m", "okxlab.cli.main", "demo", "--ticks", "3", "--serve", "--port",
                             str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:  # the demo's own output, then the line naming the dashboard
            if line.startswith("dashboard: "):
                break
        assert line.strip() == f"dashboard: http://127.0.0.1:{port} (read-only; Ctrl-C stops it)"
        base = f"http://127.0.0.1:{port}"
        arena = httpx.get(f"{base}/", timeout=30)
        assert arena.status_code == 200
        for agent in ("deepseek", "qwen", "trend", "meanrev", "buyhold", "cash"):
            assert f'data-agent="{agent}"' in arena.text
        assert httpx.get(f"{base}/ui/agents/trend", timeout=30).status_code == 200
        assert httpx.post(f"{base}/ui/risk/pause", timeout=30).status_code == 401  # nobody operates a demo
        assert 'id="controls"' not in httpx.get(f"{base}/ui/agents/trend", timeout=30).text
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
