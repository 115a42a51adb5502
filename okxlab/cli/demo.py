"""okxlab demo — the whole pipeline on a fresh machine, with no services.

Embedded parts, all real: a SQLite database in the data directory, the in-process Celery broker with a real
worker consuming the seven stage queues, and the local OKX simulator replaying real OKX candles shipped with
the package. Every configured agent runs; LLM agents (no API keys here) run their offline rule-based
stand-ins, which is said plainly and recorded as such.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from okxlab.bootstrap import prepare
from okxlab.cli.common import table
from okxlab.config import home_dir, load_config
from okxlab.db.models import Control
from okxlab.db.ops import set_control
from okxlab.db.session import dispose_engines, session_scope
from okxlab.errors import UserError

DEMO_KEY = "demo_database"


def _demo_db(home: Path) -> tuple[Path, str]:
    path = home / "okxlab.sqlite"
    return path, f"sqlite:///{path}"


def _is_demo_database(url: str) -> bool:
    try:
        with session_scope(url) as s:
            return s.get(Control, DEMO_KEY) is not None
    except Exception:  # an unreadable or foreign file is not ours to delete
        return False
    finally:
        dispose_engines()


def _fresh_database(path: Path, url: str) -> bool:
    """Start from an empty database; only ever deletes a database an earlier demo made. Returns True if it did."""
    if not path.exists():
        return False
    if not _is_demo_database(url):
        raise UserError(f"{path} holds data that `okxlab demo` did not make; move it away or set OKXLAB_HOME "
                        "to another directory")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return True


class _Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, statuses: dict[str, int]) -> None:
        if not self.tty and done not in (1, total) and done % max(total // 10, 1):
            return
        width = 30
        filled = int(width * done / total)
        counts = " ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        line = (f"  [{'#' * filled}{'.' * (width - filled)}] tick {done}/{total}  {counts}  "
                f"{time.monotonic() - self.started:5.1f} s")
        click.echo(("\r" if self.tty else "") + line, err=True, nl=not self.tty or done == total)


@click.command()
@click.option("--ticks", default=50, show_default=True, type=click.IntRange(2, 5000),
              help="How many 4-hour bars to replay (each runs every agent once).")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 32),
              help="Worker threads consuming the stage queues.")
@click.option("--serve", is_flag=True, help="Then serve the results in the web dashboard until Ctrl-C.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="The dashboard's port on 127.0.0.1 (with --serve).")
def demo(ticks: int, workers: int, serve: bool, port: int) -> None:
    """Run every agent through the real pipeline over recent history, offline, and show the leaderboard."""
    from okxlab.pipeline.embedded import EmbeddedWorker
    from okxlab.pipeline.env import build_env, reset_default_env
    from okxlab.pipeline.stages import STAGES
    from okxlab.replay.range import create_replay, latest_window, run_range
    from okxlab.simulator.server import SimServer
    from okxlab.simulator.simulator import Simulator

    config = load_config()
    home = home_dir()
    path, url = _demo_db(home)
    if os.environ.get("OKXLAB_DATABASE_URL") and os.environ["OKXLAB_DATABASE_URL"] != url:
        click.echo(f"note: the demo always uses its own embedded database ({path}), not OKXLAB_DATABASE_URL", err=True)
    replaced = _fresh_database(path, url)
    # Everything in this process, the worker's tasks included, uses the demo database and broker.
    os.environ["OKXLAB_DATABASE_URL"] = url
    os.environ["OKXLAB_BROKER_URL"] = "memory://localhost/"
    reset_default_env()
    prepare(config, url)
    with session_scope(url) as s:
        set_control(s, DEMO_KEY, {"made_by": "okxlab demo"})

    llm_agents = [a for a in config.agents if a.planner == "llm"]
    click.echo(f"okxlab demo: {len(config.agents)} agents, {ticks} ticks of 4H bars, offline.")
    if replaced:
        click.echo(f"  replaced the previous demo database at {path}")
    for a in llm_agents:
        click.echo(f"  {a.name}: no {a.llm.get('provider')} API key is used in the demo; it runs the offline stand-in "
                   f"{a.offline_fallback} instead (labelled 'offline:' in every record)")

    from workers.app import app
    from workers.tasks import start_run

    app.conf.broker_url = "memory://localhost/"
    server = SimServer(Simulator(agents=config), port=0).start()
    worker = EmbeddedWorker(app, list(STAGES), concurrency=workers).start()
    try:
        env = build_env(config, url)
        symbols = sorted({s for a in config.agents for s in a.symbols})
        start, end = latest_window(server.admin, symbols, "4H", ticks, warmup_bars=config.candles_per_symbol + 5)
        click.echo(f"  window {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC on the local OKX simulator "
                   f"({', '.join(symbols)})")
        replay = create_replay(env, kind="demo", agents=[a.name for a in config.agents], start=start, end=end, bar="4H",
                               offline_planners=True, fresh_llm=False)
        result = run_range(env, replay, server.admin, server.world_url, start_run, progress=_Progress())
    finally:
        worker.stop()
        server.stop()
    from okxlab.review.report import deliver

    planners = {a.name: (a.strategy if a.planner == "strategy" else f"offline:{a.offline_fallback}") for a in config.agents}
    click.echo("")
    click.echo(table(["AGENT", "PLANNER", "EQUITY", "RETURN", "TRADES", "OPEN", "MAX DRAWDOWN"],
                     [[r["agent"], planners[r["agent"]], r["equity"], f"{r['return_pct']:+.2f}%", r["trades"],
                       r["open"], f"{r['max_drawdown_pct']:.2f}%"] for r in result.agents]))
    bh = result.baseline
    click.echo(f"baselines over the same window: cash +0.00%, buy-and-hold {bh['symbol']} "
               + (f"{bh['return_pct']:+.2f}%" if bh["return_pct"] is not None else f"n/a ({bh['note']})"))
    statuses = ", ".join(f"{v} {k}" for k, v in sorted(result.statuses.items()))
    click.echo(f"\n{result.runs} runs in {result.seconds:.1f} s ({statuses}).")
    outcome = deliver(datetime.now(UTC).date(), send=False, url=url, config=config)
    click.echo(f"database: {path}")
    click.echo(f"report:   {outcome.path}")
    if not serve:
        click.echo("next: okxlab runs list · okxlab runs show RUN_ID · okxlab agents list · okxlab leaderboard · "
                   "okxlab demo --serve")
        return
    _serve(port)


def _serve(port: int) -> None:
    """The dashboard over the demo's database: read-only (a public arena, no token to make), nothing live to push
    (SQLite has no NOTIFY, and the demo has finished), no workers or broker to ask about."""
    import socket

    from okxlab.api.app import create_app
    from okxlab.api.server import serve_until_stopped

    with socket.socket() as probe:  # a taken port is one line, before anything starts
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise UserError(f"port {port} is taken on 127.0.0.1; choose another with --port")
    app = create_app(public=True, ping_workers=lambda _timeout: {}, queue_depths=dict)
    serve_until_stopped(app, "127.0.0.1", port, ready=lambda: click.echo(
        f"dashboard: http://127.0.0.1:{port} (read-only; Ctrl-C stops it)"))
    click.echo("dashboard stopped")
