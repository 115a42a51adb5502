"""Tick to order: time from the dispatch of a run to the exchange's acknowledgement of its order.

    python bench/tick_to_order.py [--runs 500] [--warmup 20] [--procs 1] [--json out.json]

The real pipeline (bench/_pipeline.py): Postgres, Redis, `celery worker` processes (solo pool) for the queue
groups market / decide / order, the simulator over HTTP in its own process, ccxt unmodified. One rule-based
agent whose every run trades (`flip`: open when flat, close when long), on BTC-USDT-SWAP 4H candles, driven
by `replay range` (okxlab.replay.range.run_range): one run per tick, each run waited for before the next, so
the figure is latency, not queueing behind other runs.

Dispatch: the moment the run's chain is handed to Celery (start_run). Acknowledgement: the moment the
simulator has matched the order and answers ccxt (noted inside the simulator process). Stage shares come from
the stage records the pipeline writes (queue wait: from the previous stage's end to this one's start; work:
the stage's own duration). The order stage is split at the acknowledgement.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import load, median, percentile, say, write_json  # noqa: E402
from bench._pipeline import FLIP_STRATEGY, running, stage_shares  # noqa: E402

CONFIG = """
[pipeline]
candles = 150

[[agents]]
name = "flip"
planner = "strategy"
strategy = "flip.json"
symbols = ["BTC-USDT-SWAP"]
bar = "4H"
"""
START = datetime(2023, 1, 2, tzinfo=UTC)


def measure(runs: int, warmup: int, procs: int, repeat: int = 1) -> dict[str, Any]:
    """`repeat` measurements on one running pipeline; the percentiles reported are the medians over them."""
    with running(CONFIG, procs_per_group=procs, extra_files={"flip.json": json.dumps(FLIP_STRATEGY)}) as p:
        rounds = [_one(p, runs, warmup, START + timedelta(days=200 * k)) for k in range(repeat)]
        acks = p.acks()  # the simulator writes them when it stops
    per, all_lat, to_ack = [], [], []
    for r in rounds:
        lat = [(acks[r["orders"][i]] - r["dispatched"][i]) * 1000.0 for i in r["run_ids"] if r["orders"].get(i) in acks]
        to_ack += [(acks[r["orders"][i]] - r["order_starts"][i].timestamp()) * 1000.0
                   for i in r["run_ids"] if r["orders"].get(i) in acks and i in r["order_starts"]]
        all_lat += lat
        per.append({"p50_ms": percentile(lat, 50), "p95_ms": percentile(lat, 95), "p99_ms": percentile(lat, 99),
                    "max_ms": max(lat) if lat else float("nan"), "runs": len(lat)})
    stages = rounds[len(rounds) // 2]["stages"]
    stages["order"]["work_to_ack_ms"] = median(to_ack)
    out: dict[str, Any] = {key: median([x[key] for x in per]) for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}
    out.update(rounds=per, runs=len(all_lat), mean_ms=sum(all_lat) / len(all_lat) if all_lat else None,
               missing_orders=sum(len(r["run_ids"]) for r in rounds) - len(all_lat), stages=stages,
               statuses=[r["statuses"] for r in rounds])
    return out


def _one(p: Any, runs: int, warmup: int, start: datetime) -> dict[str, Any]:
    """One replay of warmup + runs ticks; what is needed to match dispatches with acknowledgements."""
    from sqlalchemy import select

    from okxlab.db.models import Order, Run, StageRecord
    from okxlab.replay.range import create_replay, run_range
    from okxlab.simulator.admin import AdminClient
    from workers.tasks import start_run

    dispatched: dict[str, float] = {}

    def timed_start(run_id: str, from_stage: str = "snapshot") -> None:
        dispatched[run_id] = time.time()
        start_run(run_id, from_stage)

    admin = AdminClient(p.sim_url, timeout=10)
    total = warmup + runs
    end = start + timedelta(hours=4 * (total - 1))
    replay = create_replay(p.env, kind="range", agents=["flip"], start=start, end=end, bar="4H",
                           offline_planners=True, fresh_llm=False)
    t0 = time.perf_counter()

    def progress(done: int, all_: int, statuses: dict[str, int]) -> None:
        if done % 100 == 0:
            say(f"  tick {done}/{all_} {statuses}")

    result = run_range(p.env, replay, admin, lambda w: f"{p.sim_url}/w/{w}", timed_start, progress=progress,
                       tick_timeout=120)
    wall = time.perf_counter() - t0
    with p.env.sessions() as s:
        runs_rows = s.execute(select(Run.id).where(Run.replay_id == replay.id).order_by(Run.scheduled_for)).all()
        measured = [r.id for r in runs_rows[warmup:]]
        orders = dict(s.execute(select(Order.run_id, Order.cl_ord_id).where(Order.run_id.in_(measured))).all())
        order_starts = dict(s.execute(select(StageRecord.run_id, StageRecord.started_at)
                                      .where(StageRecord.stage == "order", StageRecord.run_id.in_(measured))).all())
    return {"procs_per_group": 1, "statuses": result.statuses, "wall_s": wall, "run_ids": measured,
            "orders": orders, "dispatched": dispatched, "order_starts": order_starts,
            "missing_orders": sum(1 for i in measured if i not in orders), "stages": stage_shares(p.env, measured),
            "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "max_ms": 0.0, "runs": len(measured)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--procs", type=int, default=1, help="worker processes per queue group")
    ap.add_argument("--repeat", type=int, default=3, help="measurements (medians of their percentiles)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    before = load()
    out = measure(args.runs, args.warmup, args.procs, args.repeat)
    out["procs_per_group"] = args.procs
    out["load_before"], out["load_after"] = before, load()
    print_summary(out)
    write_json(args.json, out)


def print_summary(out: dict[str, Any]) -> None:
    rounds = "; ".join(f"p50 {r['p50_ms']:.1f} / p99 {r['p99_ms']:.1f}" for r in out["rounds"])
    print(f"tick to order: {out['runs']} runs in {len(out['rounds'])} round(s) ({rounds}; medians below), "
          f"{out['missing_orders']} without an acknowledged order, "
          f"load {out['load_before'][0]:.2f} before / {out['load_after'][0]:.2f} after")
    print(f"  p50 {out['p50_ms']:.1f} ms  p95 {out['p95_ms']:.1f} ms  p99 {out['p99_ms']:.1f} ms  "
          f"(mean {out['mean_ms']:.1f}, max {out['max_ms']:.1f})")
    print(f"  targets: p50 <= 40 ms {'met' if out['p50_ms'] <= 40 else 'missed'}; "
          f"p99 <= 150 ms {'met' if out['p99_ms'] <= 150 else 'missed'}; KPI < 500 ms "
          f"{'met' if out['p99_ms'] < 500 else 'missed'}")
    total = sum(v["queue_wait_ms"] + v["work_ms"] for k, v in out["stages"].items() if k != "order")
    total += out["stages"]["order"]["queue_wait_ms"] + out["stages"]["order"]["work_to_ack_ms"]
    print(f"  {'stage':<10}{'queue wait':>12}{'work':>10}{'share':>8}   (medians, ms; order: work up to the ack)")
    for stage, v in out["stages"].items():
        work = v["work_to_ack_ms"] if stage == "order" else v["work_ms"]
        share = (v["queue_wait_ms"] + work) / total * 100 if total else 0
        extra = f"  (whole stage {v['work_ms']:.1f})" if stage == "order" else ""
        print(f"  {stage:<10}{v['queue_wait_ms']:>12.1f}{work:>10.1f}{share:>7.0f}%{extra}")


if __name__ == "__main__":
    main()
