"""Throughput: completed runs per second with many agents and symbols, 1 and 2 worker processes per queue group.

    python bench/throughput.py [--agents 40] [--ticks 25] [--procs 1,2] [--json out.json]

The real pipeline (bench/_pipeline.py). `--agents` rule-based agents (a mix of the builtin strategies, half of
them on two symbols: BTC-USDT-SWAP and ETH-USDT-SWAP, 4H candles from 2022-09 to 2022-12, where both have
data), replayed tick by tick with `replay range`: at each tick every agent's run is dispatched at once and the
tick ends when all of them have. Completed runs per second = runs that reached a terminal state / wall time,
after two warm-up ticks (each worker process loads its ccxt markets once).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import load, say, write_json  # noqa: E402
from bench._pipeline import running, stage_shares  # noqa: E402

STRATEGIES = ["builtin:sma_cross", "builtin:ema_trend", "builtin:ema_cross", "builtin:macd_trend",
              "builtin:rsi_bollinger", "builtin:bollinger_breakout", "builtin:buy_and_hold", "builtin:cash"]
START = datetime(2022, 10, 1, tzinfo=UTC)
WARMUP_TICKS = 2


def config(agents: int) -> str:
    parts = ["[pipeline]\ncandles = 150\n"]
    for i in range(agents):
        symbols = '"BTC-USDT-SWAP", "ETH-USDT-SWAP"' if i % 2 else '"BTC-USDT-SWAP"'
        parts.append(f'[[agents]]\nname = "a{i:03d}"\nplanner = "strategy"\nstrategy = "{STRATEGIES[i % len(STRATEGIES)]}"\n'
                     f'symbols = [{symbols}]\nbar = "4H"\n')
    return "\n".join(parts)


def measure(agents: int, ticks: int, procs: int) -> dict[str, Any]:
    from sqlalchemy import select

    from okxlab.db.models import Run
    from okxlab.replay.range import create_replay, run_range
    from okxlab.simulator.admin import AdminClient

    names = [f"a{i:03d}" for i in range(agents)]
    with running(config(agents), procs_per_group=procs) as p:
        from workers.tasks import start_run

        admin = AdminClient(p.sim_url, timeout=10)
        marks: list[tuple[int, float]] = []

        def progress(done: int, total: int, statuses: dict[str, int]) -> None:
            marks.append((done, time.perf_counter()))

        end = START + timedelta(hours=4 * (ticks + WARMUP_TICKS - 1))
        replay = create_replay(p.env, kind="range", agents=names, start=START, end=end, bar="4H",
                               offline_planners=True, fresh_llm=False)
        run_range(p.env, replay, admin, lambda w: f"{p.sim_url}/w/{w}", start_run, progress=progress,
                  tick_timeout=300)
        t_start = dict(marks)[WARMUP_TICKS]
        t_end = marks[-1][1]
        with p.env.sessions() as s:
            rows = s.execute(select(Run.id, Run.status, Run.scheduled_for).where(Run.replay_id == replay.id)).all()
        first_measured = START + timedelta(hours=4 * WARMUP_TICKS)
        measured = [r for r in rows if r.scheduled_for >= first_measured]
        statuses: dict[str, int] = {}
        for r in measured:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        shares = stage_shares(p.env, [r.id for r in measured])
    seconds = t_end - t_start
    return {"procs_per_group": procs, "agents": agents, "ticks": ticks, "runs": len(measured), "statuses": statuses,
            "seconds": seconds, "runs_per_second": len(measured) / seconds, "stages": shares}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--ticks", type=int, default=25)
    ap.add_argument("--procs", default="1,2", help="worker processes per queue group, comma separated")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    out: dict[str, Any] = {"load_before": load(), "results": []}
    for procs in [int(x) for x in args.procs.split(",")]:
        say(f"throughput with {procs} worker process(es) per queue group ...")
        out["results"].append(measure(args.agents, args.ticks, procs))
    out["load_after"] = load()
    print(f"throughput: {args.agents} agents, {args.ticks} ticks (load {out['load_before'][0]:.2f} before, "
          f"{out['load_after'][0]:.2f} after)")
    for r in out["results"]:
        print(f"  {r['procs_per_group']} process(es) per group ({3 * r['procs_per_group']} workers): "
              f"{r['runs']} runs in {r['seconds']:.1f} s = {r['runs_per_second']:.1f} runs/s {r['statuses']}; "
              f"target >= 50: {'met' if r['runs_per_second'] >= 50 else 'missed'}")
        busiest = sorted(r["stages"].items(), key=lambda kv: -kv[1]["work_ms"])[:3]
        print("    heaviest stages (median work ms): " + ", ".join(f"{k} {v['work_ms']:.1f}" for k, v in busiest))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
