"""Shared by the benchmarks: the machine, its load, a scratch Postgres database, the data file, figures.

Benchmarks print figures; they never assert on time. Each writes its figures as JSON (--json PATH) so
bench/run_all.py can put them into docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("OKXLAB_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("OKXLAB_BENCH_REDIS", "redis://127.0.0.1:6379/0")
SHARED_15M = ROOT.parent / "shared" / "data" / "okx" / "okx_BTC-USDT-SWAP_15m.csv"
SHIPPED_15M = ROOT / "okxlab" / "data" / "candles" / "BTC-USDT-SWAP_15m.csv.gz"
CELERY = str(Path(sys.executable).with_name("celery"))

if str(ROOT) not in sys.path:  # `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import ccxt
    import celery
    import numpy
    import pandas
    import sqlalchemy

    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    versions = {"python": platform.python_version(), "celery": celery.__version__, "ccxt": ccxt.__version__,
                "sqlalchemy": sqlalchemy.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}
    for name, module in (("backtrader", "backtrader"), ("backtesting.py", "backtesting"), ("TA-Lib", "talib"),
                         ("psycopg2", "psycopg2"), ("redis-py", "redis")):
        with contextlib.suppress(Exception):
            versions[name] = __import__(module).__version__
    versions["postgres"] = _cmd(["psql", f"{PG_SERVER}/postgres", "-Atc", "SHOW server_version"])
    versions["redis"] = _cmd(["redis-cli", "-u", REDIS_URL, "INFO", "server"], grep="redis_version:")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "os": platform.platform(), "versions": versions}


def _cmd(args: list[str], grep: str | None = None) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    if grep:
        for line in out.splitlines():
            if line.startswith(grep):
                return line.split(":", 1)[1].strip()
        return "?"
    return out.strip() or "?"


@contextlib.contextmanager
def scratch_database(prefix: str = "okxlab_bench") -> Iterator[str]:
    """A fresh, migrated Postgres database, dropped afterwards."""
    import psycopg2

    from okxlab.db.migrate import upgrade
    from okxlab.db.session import dispose_engines

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with closing(psycopg2.connect(f"{PG_SERVER}/postgres")) as conn:
        conn.autocommit = True
        conn.cursor().execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        dispose_engines()
        with closing(psycopg2.connect(f"{PG_SERVER}/postgres")) as conn:
            conn.autocommit = True
            conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def candle_dir() -> Iterator[tuple[Path, str]]:
    """A folder holding the benchmark's 15m BTC swap candles under the name the simulator reads
    (`BTC-USDT-SWAP_15m.csv`), and a note of where they came from."""
    tmp = Path(tempfile.mkdtemp(prefix="okxlab-bench-"))
    try:
        if SHARED_15M.exists():
            (tmp / "BTC-USDT-SWAP_15m.csv").symlink_to(SHARED_15M)
            yield tmp, str(SHARED_15M.relative_to(ROOT.parent))
        else:
            say(f"note: {SHARED_15M} is absent; using the shipped slice {SHIPPED_15M.relative_to(ROOT)}")
            shutil.copy(SHIPPED_15M, tmp / "BTC-USDT-SWAP_15m.csv.gz")
            yield tmp, str(SHIPPED_15M.relative_to(ROOT))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(data, indent=2, default=str))


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def strategy_agents_toml(agents: list[tuple[str, str, dict[str, Any]]], symbol: str, bar: str) -> str:
    """A config of rule-based agents (name, strategy, params) on one symbol and bar, 150 candles per run."""
    parts = ["[pipeline]\ncandles = 150\n"]
    for name, strategy, params in agents:
        parts.append(f'[[agents]]\nname = "{name}"\nplanner = "strategy"\nstrategy = "{strategy}"\n'
                     f'symbols = ["{symbol}"]\nbar = "{bar}"\n')
        if params:
            parts.append("[agents.params]\n" + "".join(f"{k} = {v}\n" for k, v in params.items()))
    return "\n".join(parts)
