"""Nightly report: build the review report for 10 agents over one day of 1-minute runs.

    python bench/nightly_report.py [--repeat 3] [--agents 10] [--json out.json]

The day is made by okxlab itself, not faked: an inline replay (every stage record written, as the pipeline
writes them) of 10 rule-based agents on ETH-USDT-SWAP 5m candles, one run per agent per minute, over
2022-11-10 (UTC): 14,400 runs. Then `okxlab.review.report.build_report` for that day is timed: gathering
from Postgres, the leaderboard with its baselines and noise test, charts, HTML/text/JSON written to disk.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import load, median, say, scratch_database, strategy_agents_toml, write_json  # noqa: E402

DAY = date(2022, 11, 10)
STRATEGIES = [("sma", "builtin:sma_cross", {"fast": 5, "slow": 20}), ("sma2", "builtin:sma_cross", {}),
              ("ema", "builtin:ema_cross", {}), ("trend", "builtin:ema_trend", {}), ("macd", "builtin:macd_trend", {}),
              ("meanrev", "builtin:rsi_bollinger", {}), ("breakout", "builtin:bollinger_breakout", {}),
              ("buyhold", "builtin:buy_and_hold", {}), ("cash", "builtin:cash", {}),
              ("sma3", "builtin:sma_cross", {"fast": 10, "slow": 30})]


def config_text(n: int) -> str:
    return strategy_agents_toml((STRATEGIES * 3)[:n], "ETH-USDT-SWAP", "5m")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from sqlalchemy import func, select

    from okxlab.bootstrap import prepare
    from okxlab.config import load_config
    from okxlab.db import models as m
    from okxlab.pipeline.env import build_env
    from okxlab.replay.inprocess import replay_in_process
    from okxlab.review.report import build_report
    from okxlab.simulator.simulator import Simulator

    names = [s[0] for s in (STRATEGIES * 3)[:args.agents]]
    if len(set(names)) != len(names):
        raise SystemExit("at most 10 distinct agents in this benchmark")
    out: dict[str, Any] = {"load_before": load(), "day": DAY.isoformat(), "agents": args.agents}
    with tempfile.TemporaryDirectory() as tmp_, scratch_database() as url:
        tmp = Path(tmp_)
        (tmp / "okxlab.toml").write_text(config_text(args.agents))
        os.environ["OKXLAB_CONFIG"] = str(tmp / "okxlab.toml")
        os.environ["OKXLAB_REPORTS_DIR"] = str(tmp / "reports")
        config = load_config()
        prepare(config, url, seed=False)
        env = build_env(config, url)
        start = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
        t0 = time.perf_counter()
        say(f"making the day: {args.agents} agents x 1,440 one-minute runs (inline replay) ...")
        result = replay_in_process(env, agents=names, start=start, end=start + timedelta(days=1) - timedelta(minutes=1),
                                   bar="1m", mode="inline", simulator=Simulator(agents=config))
        made = time.perf_counter() - t0
        with env.sessions() as s:
            counts = {name: s.scalar(select(func.count()).select_from(model)) for name, model in (
                ("runs", m.Run), ("stage_records", m.StageRecord), ("equity_snapshots", m.EquitySnapshot),
                ("fills", m.Fill), ("positions", m.PositionRecord), ("audit_events", m.AuditEvent))}
        say(f"  {result.runs:,} runs ({result.statuses}) and {result.records:,} records in {made:.1f} s")
        out.update(runs=result.runs, statuses=result.statuses, rows=counts, setup_seconds=made)
        times = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            built = build_report(DAY, sessions=env.sessions, config=config, directory=tmp / f"report-{i}")
            seconds = time.perf_counter() - t0
            times.append(seconds)
            say(f"report run {i + 1}: {seconds:.2f} s -> {built.html_path}")
        out.update(seconds=median(times), runs_seconds=times,
                   files=sorted(p.name for p in (tmp / "report-0").iterdir()))
    out["load_after"] = load()
    out["target_s"] = 10
    print(f"nightly report: {args.agents} agents, {out['runs']:,} one-minute runs on {DAY}: median {out['seconds']:.2f} s "
          f"over {args.repeat} builds ({', '.join(f'{t:.2f}' for t in times)}); target <= 10 s: "
          f"{'met' if out['seconds'] <= 10 else 'missed'} (load {out['load_before'][0]:.2f} before)")
    write_json(args.json, out)


if __name__ == "__main__":
    main()
