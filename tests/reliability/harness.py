"""What the fault suite breaks things with: real processes it owns, started and killed on purpose.

- `RedisServer`: a redis-server of its own on a free loopback port, without persistence, that can be killed
  and started again on the same port (everything queued is lost, as with a real crash).
- `PgCluster`: a Postgres cluster of its own (initdb in a temporary directory, as the `postgres` user when
  the tests run as root), migrated, that can be stopped (immediate mode: a crash) and started again.
- `Worker`: `celery -A workers worker` as a subprocess with okxlab's environment, its log in a file; it can be
  SIGKILLed whole, or have its pool processes killed.
- `Sender`: a Celery app of the test's own, pointed at a given broker, that sends run chains by task name
  exactly as `workers.tasks.start_run` does (the process-wide app is left alone).
- `world_run`: one run in a simulator world of its own (a one-tick replay), so faults can be set per run.
- `orders_check`: for a set of runs, accepted decisions against what the simulator received.

Every number a test measures goes through `Results.record`, which writes one JSON file per fault; the report
(tests/reliability/report.py) builds docs/reliability.md from them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from celery import Celery, chain
from sqlalchemy import select

from okxlab.db.models import Order, Replay, RiskVerdictRecord, Run, StageRecord, utcnow
from okxlab.pipeline.dispatch import create_runs
from okxlab.pipeline.env import StageEnv
from okxlab.pipeline.stages import STAGES, TERMINAL
from okxlab.replay.range import create_replay
from okxlab.simulator.admin import AdminClient

REPO = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))
PG_BIN = Path(os.environ.get("OKXLAB_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
RESULTS_ENV = "OKXLAB_RELIABILITY_RESULTS"


def buy_and_hold_config(*names: str) -> str:
    """An okxlab config whose agents each buy and hold BTC with 5% risk at 1x: every run trades, predictably."""
    return "[pipeline]\ncandles = 100\n" + "".join(f"""
[[agents]]
name = "{name}"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
[agents.risk]
risk_budget_pct = 5.0
max_leverage = 1
""" for name in names)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


# ---- results ----------------------------------------------------------------------------------------------

class Results:
    """One JSON file per fault under `directory` (figures for docs/reliability.md)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def record(self, fault: str, **figures: Any) -> Path:
        path = self.directory / f"{fault}.json"
        figures = {"fault": fault, "measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **figures}
        path.write_text(json.dumps(figures, indent=2, sort_keys=False, default=str) + "\n")
        return path


# ---- Redis ------------------------------------------------------------------------------------------------

class RedisServer:
    """A redis-server on its own port, no persistence: a kill loses every queued message."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.log = directory / f"redis-{self.port}.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.directory), "--daemonize", "no", "--protected-mode", "yes"],
                stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited: {self.log.read_text()[-500:]}") from None
                return False

        wait_until(up, timeout, f"redis-server on port {self.port}")
        client.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    stop = kill


# ---- Postgres ---------------------------------------------------------------------------------------------

def _as_postgres_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` system user then."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


class PgCluster:
    """A Postgres cluster of the test's own, on a free port, that can crash and come back."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="okxlab-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*_as_postgres_user(), *args], capture_output=True, text=True, timeout=timeout,
                              check=True, cwd=self.root)

    def init(self) -> PgCluster:
        self.data.mkdir()
        self.sockets.mkdir()
        self.log.touch()
        if os.geteuid() == 0:
            for path in (self.data, self.sockets, self.log):
                shutil.chown(path, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
                  "-E", "UTF8", "--locale", "C")
        return self

    def start(self) -> PgCluster:
        # fsync off: a crash of the server process (not of the machine) loses nothing. synchronous_commit stays
        # on: with it off, a commit okxlab was told about (an order's claim) can vanish in a crash.
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.sockets} -c fsync=off " \
               "-c full_page_writes=off -c max_connections=200"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
                  "start")
        return self

    def crash(self) -> None:
        """Immediate shutdown: every connection is cut, as when the server dies."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        subprocess.run([*_as_postgres_user(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60, cwd=self.root)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.url())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# ---- workers ----------------------------------------------------------------------------------------------

def worker_env(*, config: Path, db_url: str, broker_url: str, prefix: str, sim_url: str, home: Path,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKXLAB_", "OKX_", "LIVE_TRADING"))}
    env.update({"OKXLAB_CONFIG": str(config), "OKXLAB_DATABASE_URL": db_url, "OKXLAB_BROKER_URL": broker_url,
                "OKXLAB_BROKER_PREFIX": prefix, "OKXLAB_SIM_URL": sim_url, "OKXLAB_HOME": str(home),
                "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


class Worker:
    """`celery -A workers worker` consuming every stage queue (and dispatch), as a separate process."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, *, pool: str = "threads",
                 concurrency: int = 8, queues: Iterable[str] = (*STAGES, "dispatch"), loglevel: str = "INFO") -> None:
        self.name = name
        self.loglevel = loglevel
        self.env = env
        self.pool = pool
        self.concurrency = concurrency
        self.queues = list(queues)
        self.log = log_dir / f"worker-{name}.log"
        self.proc: subprocess.Popen | None = None
        self.started_at: float | None = None
        self.ready_at: float | None = None

    @property
    def hostname(self) -> str:
        return f"{self.name}@{socket.gethostname()}"

    def start(self, timeout: float = 60.0) -> Worker:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [CELERY, "-A", "workers", "worker", "-Q", ",".join(self.queues), "--pool", self.pool,
                 "-c", str(self.concurrency), "--hostname", f"{self.name}@%h", "--loglevel", self.loglevel,
                 "--without-mingle", "--without-gossip", "--without-heartbeat"],
                env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.started_at = time.monotonic()

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited ({self.proc.returncode}): {self.tail()}")
            return f"{self.hostname} ready." in self.log.read_text(errors="replace")

        wait_until(ready, timeout, f"worker {self.name} to be ready", poll=0.05)
        self.ready_at = time.monotonic()
        return self

    def tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def children(self) -> list[int]:
        """The pool's processes (prefork)."""
        if self.proc is None:
            return []
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                out.append(int(stat.parent.name))
        return out

    def kill(self) -> None:
        """SIGKILL the worker (and, under prefork, its pool processes with it): no shutdown, no acks."""
        if self.proc is None:
            return
        kids = self.children()
        self.proc.send_signal(signal.SIGKILL)
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.proc = None

    def kill_pool_processes(self) -> list[int]:
        """SIGKILL the prefork pool's processes only; the main process stays and replaces them."""
        kids = self.children()
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
        return kids

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None


class Sender:
    """Sends run chains to a broker by task name, with okxlab's routes, from an app of its own."""

    def __init__(self, broker_url: str, prefix: str) -> None:
        self.app = Celery("okxlab-reliability", set_as_current=False)
        self.app.config_from_object("celeryconfig")
        self.app.conf.broker_url = broker_url
        self.app.conf.broker_transport_options = {**self.app.conf.broker_transport_options, "global_keyprefix": prefix}
        self.app.conf.broker_connection_retry_on_startup = False

    def start_run(self, run_id: str, from_stage: str = "snapshot") -> None:
        i = STAGES.index(from_stage)
        # One quick retry (on a fresh connection): a broker that is away fails the send within a second.
        chain(*(self.app.signature(f"okxlab.{stage}", args=(run_id,), immutable=True) for stage in STAGES[i:]),
              app=self.app).apply_async(retry=True, retry_policy={"max_retries": 1, "interval_start": 0.2,
                                                                  "interval_step": 0.2, "interval_max": 0.5})

    def close(self) -> None:
        self.app.close()


# ---- runs in worlds of their own ---------------------------------------------------------------------------

def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@dataclass
class WorldRun:
    run_id: str
    replay_id: int
    world: str
    agent: str
    notes: dict[str, Any] = field(default_factory=dict)


def world_run(env: StageEnv, admin: AdminClient, world_url: Callable[[str], str], agent: str, tick: datetime, *,
              faults: dict[str, Any] | None = None, offline_planners: bool = False) -> WorldRun:
    """One run of `agent` at `tick`, in a simulator world of its own (a one-tick replay), not yet started."""
    replay = create_replay(env, kind="range", agents=[agent], start=tick, end=tick, bar=env.config.agent(agent).bar,
                           offline_planners=offline_planners, fresh_llm=False)
    world = f"replay-{replay.id}"
    admin.create_world(world, clock="replay", start=ms(tick), faults=faults)
    book = f"replay:{replay.id}"
    with env.sessions.begin() as s:
        s.get(Replay, replay.id).exchange_url = world_url(world)
        (run_id,) = create_runs(s, book, [(agent, book)], tick, replay_id=replay.id, now=utcnow())
    return WorldRun(run_id=run_id, replay_id=replay.id, world=world, agent=agent)


def stage_status(env: StageEnv, run_id: str, stage: str) -> str | None:
    with env.sessions() as s:
        return s.scalar(select(StageRecord.status).where(StageRecord.run_id == run_id, StageRecord.stage == stage))


def run_rows(env: StageEnv, run_ids: Iterable[str]) -> dict[str, Run]:
    with env.sessions() as s:
        return {r.id: r for r in s.scalars(select(Run).where(Run.id.in_(list(run_ids))))}


def wait_ended(env: StageEnv, run_ids: list[str], timeout: float, poll: float = 0.1) -> dict[str, Run]:
    """Every run in a terminal state (or an AssertionError naming those that are not)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = run_rows(env, run_ids)
        if len(rows) == len(run_ids) and all(r.status in TERMINAL for r in rows.values()):
            return rows
        if time.monotonic() > deadline:
            moving = [f"{r.id} {r.status} in {r.stage}" for r in rows.values() if r.status not in TERMINAL]
            raise AssertionError(f"runs not finished after {timeout:.0f} s: {', '.join(moving)}")
        time.sleep(poll)


@dataclass
class OrdersCheck:
    accepted: int = 0  # decisions the risk engine let trade
    orders_at_exchange: int = 0  # okxlab's orders the simulator holds
    duplicates: int = 0  # extra orders at the simulator for one decision
    duplicate_sends_refused: int = 0  # a second placement of one clOrdId, refused by the exchange (51016)
    missing: int = 0  # accepted decisions with no order at the simulator
    unresolved: list[str] = field(default_factory=list)  # okxlab orders not in a final, known state
    send_attempts: dict[str, int] = field(default_factory=dict)


def orders_check(env: StageEnv, admin: AdminClient, runs: Iterable[WorldRun]) -> OrdersCheck:
    out = OrdersCheck()
    for wr in runs:
        with env.sessions() as s:
            verdicts = s.scalars(select(RiskVerdictRecord).where(RiskVerdictRecord.run_id == wr.run_id)).all()
            orders = {o.cl_ord_id: o for o in s.scalars(select(Order).where(Order.run_id == wr.run_id))}
        at_sim = admin.orders(wr.world)
        placed = [o["clOrdId"] for o in at_sim["orders"] if o.get("clOrdId")]
        refused = [r for r in at_sim["rejections"] if r.get("sCode") == "51016"]
        accepted = [v for v in verdicts if v.order]
        out.accepted += len(accepted)
        for cl_ord_id, order in orders.items():
            n = placed.count(cl_ord_id)
            out.orders_at_exchange += n
            out.duplicates += max(0, n - 1)
            out.missing += n == 0
            out.send_attempts[cl_ord_id] = order.send_attempts
            if order.state not in ("filled", "cancelled", "rejected", "submitted", "partially_filled"):
                out.unresolved.append(f"{wr.run_id}: {cl_ord_id} {order.state}")
        out.missing += max(0, len(accepted) - len(orders))
        out.duplicate_sends_refused += len(refused)
        out.duplicates += len([c for c in placed if c not in orders])  # orders at the exchange okxlab never made
    return out
