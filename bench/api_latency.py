"""HTTP API latency: GET /leaderboard and GET /agents/{name} with 10 agents x 30 days of 15-minute runs.

    python bench/api_latency.py [--requests 50] [--days 30] [--json out.json]

The history is made by okxlab itself: an inline replay (every stage record written, as the pipeline writes
them) of 10 rule-based agents on the shipped BTC-USDT-SWAP 15m candles, 96 runs per agent per day. Then a real
`okxlab api` process (uvicorn) serves that database and each endpoint is called over HTTP, one request at a
time, after a few warm-up calls; p50 and p95 are of the wall time as the client sees it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import load, percentile, say, scratch_database, strategy_agents_toml, write_json  # noqa: E402

START = datetime(2026, 2, 1, tzinfo=UTC)  # the shipped 15m candles cover 2026-01-01 .. 2026-04-18
AGENTS = [("sma", "builtin:sma_cross", {"fast": 5, "slow": 20}), ("sma2", "builtin:sma_cross", {}),
          ("ema", "builtin:ema_cross", {}), ("trend", "builtin:ema_trend", {}), ("macd", "builtin:macd_trend", {}),
          ("meanrev", "builtin:rsi_bollinger", {}), ("breakout", "builtin:bollinger_breakout", {}),
          ("buyhold", "builtin:buy_and_hold", {}), ("cash", "builtin:cash", {}),
          ("sma3", "builtin:sma_cross", {"fast": 10, "slow": 30})]
TARGET_MS = 100


def config_text() -> str:
    return strategy_agents_toml(AGENTS, "BTC-USDT-SWAP", "15m")


@contextmanager
def history(days: int, prefix: str = "okxlab_bench") -> Iterator[tuple[str, dict[str, Any]]]:
    """A scratch database holding `days` of AGENTS' 15-minute runs, made by an inline replay (every stage record
    written, as the pipeline writes them). Yields its URL and what was made (runs, rows per table, the book,
    setup_seconds); the environment points at it (OKXLAB_CONFIG, OKXLAB_DATABASE_URL, OKXLAB_HOME) meanwhile."""
    from sqlalchemy import func, select

    from okxlab.bootstrap import prepare
    from okxlab.config import load_config
    from okxlab.db import models as m
    from okxlab.pipeline.env import build_env
    from okxlab.replay.inprocess import replay_in_process
    from okxlab.simulator.simulator import Simulator

    with tempfile.TemporaryDirectory() as tmp_, scratch_database(prefix) as url:
        tmp = Path(tmp_)
        (tmp / "okxlab.toml").write_text(config_text())
        os.environ.update(OKXLAB_CONFIG=str(tmp / "okxlab.toml"), OKXLAB_DATABASE_URL=url,
                          OKXLAB_HOME=str(tmp / "home"))
        config = load_config()
        prepare(config, url, seed=False)
        env = build_env(config, url)
        say(f"making the history: {len(AGENTS)} agents x {days} days of 15-minute runs (inline replay) ...")
        t0 = time.perf_counter()
        result = replay_in_process(env, agents=[a[0] for a in AGENTS], start=START,
                                   end=START + timedelta(days=days) - timedelta(minutes=15), bar="15m",
                                   mode="inline", simulator=Simulator(agents=config))
        with env.sessions() as s:
            counts = {name: s.scalar(select(func.count()).select_from(model)) for name, model in (
                ("runs", m.Run), ("stage_records", m.StageRecord), ("equity_snapshots", m.EquitySnapshot),
                ("fills", m.Fill), ("positions", m.PositionRecord))}
        facts = {"runs": result.runs, "rows": counts, "book": f"replay:{result.replay_id}",
                 "setup_seconds": time.perf_counter() - t0}
        say(f"  {result.runs:,} runs in {facts['book']}, rows {counts}, in {facts['setup_seconds']:.1f} s")
        yield url, facts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(client: Any, path: str, n: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        client.get(path).raise_for_status()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.get(path).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--cold", type=int, default=10, help="computed (uncached) leaderboard requests")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import httpx

    from okxlab.db.session import session_factory
    from okxlab.service import tokens

    out: dict[str, Any] = {"load_before": load(), "agents": len(AGENTS), "days": args.days}
    with history(args.days) as (url, facts):
        out.update(facts)
        token = tokens.create(session_factory(url), "bench", "read", actor="bench")
        port = _free_port()
        server = subprocess.Popen([str(Path(sys.executable).with_name("okxlab")), "api", "--port", str(port)],
                                  env=dict(os.environ), stderr=subprocess.DEVNULL)
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Token": token}, timeout=60)
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/openapi.json")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("okxlab api did not start") from None
                    time.sleep(0.2)
            figures = {}
            # Cold: a board computed from the database (each request a different fixed window end, past the
            # data, so nothing is cached and every board covers the same runs). Warm: the same board again,
            # answered from the cache while the book has not changed.
            end = START + timedelta(days=args.days + 1)
            cold = [f"/leaderboard?until={(end + timedelta(seconds=i)).strftime('%Y-%m-%dT%H:%M:%S')}"
                    for i in range(args.cold + 1)]
            ms_cold = []
            client.get(cold[0]).raise_for_status()  # warm the process (imports, connections)
            for path in cold[1:]:
                t0 = time.perf_counter()
                client.get(path).raise_for_status()
                ms_cold.append((time.perf_counter() - t0) * 1000)
            figures["GET /leaderboard (computed)"] = {"p50_ms": percentile(ms_cold, 50), "p95_ms": percentile(ms_cold, 95),
                                                     "max_ms": max(ms_cold), "requests": len(ms_cold)}
            for label, path in (("GET /leaderboard (book unchanged)", "/leaderboard"),
                                ("GET /agents/{name}", "/agents/trend")):
                ms = timed(client, path, args.requests)
                figures[label] = {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "max_ms": max(ms),
                                  "requests": len(ms)}
            for label, f in figures.items():
                say(f"  {label}: p50 {f['p50_ms']:.1f} ms, p95 {f['p95_ms']:.1f} ms")
        finally:
            server.terminate()
            server.wait(timeout=10)
    out.update(figures=figures, load_after=load(), target_p95_ms=TARGET_MS)
    for label, f in figures.items():
        print(f"{label}: {len(AGENTS)} agents x {args.days} days ({out['runs']:,} runs): p50 {f['p50_ms']:.1f} ms, "
              f"p95 {f['p95_ms']:.1f} ms over {f['requests']} requests; target p95 <= {TARGET_MS} ms: "
              f"{'met' if f['p95_ms'] <= TARGET_MS else 'missed'} (load {out['load_before'][0]:.2f} before)")
    write_json(args.json, out)


if __name__ == "__main__":
    main()
