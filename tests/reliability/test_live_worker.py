"""A worker that would send orders live without the switch refuses to start (`celery -A workers worker` as processes).

Only the order stage sends orders. A worker whose queues include `order` (named with -Q, or all queues when -Q
is not given) must stop at start, in one line and with a non-zero exit, when an agent is in live mode and
LIVE_TRADING_ENABLED is not `true`, instead of starting and failing every order stage it is given. A worker on
the market-data queues starts in live mode, and so does an order worker once the switch is on.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import REDIS_URL
from tests.reliability.harness import CELERY, REPO, Results, Worker, buy_and_hold_config, worker_env
from tests.reliability.test_operator_input import error_lines

LIVE = "live trading is disabled"


def _env(tmp_path: Path, pg_url: str, **extra: str) -> dict[str, str]:
    config = tmp_path / "okxlab.toml"
    if not config.exists():
        config.write_text(buy_and_hold_config("livebot"))
    return worker_env(config=config, db_url=pg_url, broker_url=REDIS_URL, prefix=f"okxlab-live-{tmp_path.name}:",
                      sim_url="http://127.0.0.1:1", home=tmp_path / "home", extra=extra)


def _refused(env: dict[str, str], queues: list[str]) -> dict[str, object]:
    argv = [CELERY, "-A", "workers", "worker", *queues, "--pool", "threads", "-c", "1", "--without-mingle",
            "--without-gossip", "--without-heartbeat"]
    try:
        proc = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:  # it started: what the fix is for
        return {"queues": " ".join(queues) or "(all)", "exit": None, "lines": ["still running after 60 s"]}
    return {"queues": " ".join(queues) or "(all)", "exit": proc.returncode, "lines": error_lines(proc.stderr),
            "traceback": "Traceback" in proc.stderr}


def _starts(name: str, env: dict[str, str], tmp_path: Path, queues: tuple[str, ...]) -> bool:
    worker = Worker(name, env, tmp_path / "logs", concurrency=1, queues=queues)
    try:
        worker.start()
        return worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()


def test_an_order_worker_refuses_live_mode_without_the_switch(pg_url: str, tmp_path: Path, results: Results) -> None:
    live = _env(tmp_path, pg_url, OKX_MODE="live")
    switched = _env(tmp_path, pg_url, OKX_MODE="live", LIVE_TRADING_ENABLED="true")
    with ThreadPoolExecutor(2) as pool:
        refusals = list(pool.map(lambda q: _refused(live, q), [["-Q", "order"], ["-Q", "risk,order"], []]))
        starts = {
            "snapshot,plan in live mode": pool.submit(_starts, "live-market", live, tmp_path, ("snapshot", "plan")),
            "order in live mode, switch on": pool.submit(_starts, "live-order", switched, tmp_path, ("order",)),
        }
        started = {label: f.result() for label, f in starts.items()}
    results.record("live_worker", refusals=refusals, refused=sum(r["exit"] not in (None, 0) for r in refusals),
                   one_line=sum(len(r["lines"]) == 1 for r in refusals), started=started)
    for r in refusals:
        assert r["exit"] not in (None, 0), r
        assert len(r["lines"]) == 1 and r["lines"][0].startswith("okxlab: error: "), r
        assert LIVE in r["lines"][0] and "livebot" in r["lines"][0] and "LIVE_TRADING_ENABLED=true" in r["lines"][0]
        assert not r["traceback"]
    assert started == {"snapshot,plan in live mode": True, "order in live mode, switch on": True}
