"""Replay speed: SMA(20/50) cross, long only, over the 15m BTC swap file, in okxlab and in the references.

    python bench/replay_speed.py [--repeat 3] [--inline-repeat 1] [--bars N] [--json out.json]

- okxlab `replay range --mode inline`: every run's every stage record written to Postgres;
- okxlab `replay range --mode fast`: the fastest mode (only runs that act are executed and recorded);
- backtrader and backtesting.py (bench/references.py), same data, next-bar-open fills, 0.05 % fee.

Timing: from the candles in memory to the finished result (okxlab: the replay call, which builds its world,
evaluates signals, runs and writes records; references: building and running the backtest). Reading the CSV
is not timed for anyone. Figures are medians of the repeats. Trades are compared bar by bar and price by price:
okxlab's fills are the simulator's (the ask or bid at the next bar's open: half a basis point, at least one
tick, away), the references fill at the open itself, so prices differ by that spread and nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import candle_dir, load, median, say, scratch_database, write_json  # noqa: E402

AGENT_CONFIG = """
[pipeline]
candles = 150

[[agents]]
name = "sma"
planner = "strategy"
strategy = "builtin:sma_cross"
symbols = ["BTC-USDT-SWAP"]
bar = "15m"
"""


def okxlab_run(data_dir: Path, mode: str, bars: int | None, tmp: Path) -> dict[str, Any]:
    """One okxlab replay in a fresh database; its timing and trades."""
    import numpy as np
    from sqlalchemy import select

    from okxlab.bootstrap import prepare
    from okxlab.config import load_config
    from okxlab.db import models as m
    from okxlab.pipeline.env import build_env
    from okxlab.replay.inprocess import replay_in_process
    from okxlab.simulator.market import MarketData
    from okxlab.simulator.simulator import Simulator

    cfg = tmp / "okxlab.toml"
    cfg.write_text(AGENT_CONFIG)
    os.environ["OKXLAB_CONFIG"] = str(cfg)
    with scratch_database() as url:
        config = load_config()
        prepare(config, url, seed=False)
        env = build_env(config, url)
        market = MarketData.load((str(data_dir),), shipped=False)  # reading the candles: not timed
        sim = Simulator(market, agents=config, default_clock="replay")
        path = market.path("BTC-USDT-SWAP")
        ts = path.ts
        last = len(ts) - 1 if not bars else min(bars, len(ts)) - 1
        start = datetime.fromtimestamp(int(ts[0]) / 1000, UTC)
        end = datetime.fromtimestamp(int(ts[last]) / 1000, UTC)  # the last tick: the open of the last bar
        import time

        t0 = time.perf_counter()
        result = replay_in_process(env, agents=["sma"], start=start, end=end, bar="15m", mode=mode, simulator=sim)
        seconds = time.perf_counter() - t0
        with env.sessions() as s:
            book = f"replay:{result.replay_id}"
            positions = s.scalars(select(m.PositionRecord).where(m.PositionRecord.book == book)
                                  .order_by(m.PositionRecord.opened_at)).all()
            rows = {name: s.query(model).count() for name, model in (
                ("runs", m.Run), ("stage_records", m.StageRecord), ("market_snapshots", m.MarketSnapshot),
                ("equity_snapshots", m.EquitySnapshot), ("risk_verdicts", m.RiskVerdictRecord))}
        index = {int(t): i for i, t in enumerate(np.asarray(ts).tolist())}
        trades = []
        for p in positions:
            entry_i = index.get(int(p.opened_at.timestamp() * 1000))
            exit_i = index.get(int(p.closed_at.timestamp() * 1000)) if p.closed_at else None
            trades.append({"entry_bar": entry_i, "exit_bar": exit_i, "entry_price": p.entry_price,
                           "exit_price": p.exit_price, "exit_reason": p.exit_reason, "status": p.status})
    return {"seconds": seconds, "ticks": result.ticks, "runs": result.runs, "executed": result.executed,
            "records": result.records, "statuses": result.statuses, "trades": trades, "rows": rows,
            "equity": result.agents[0]["equity"] if result.agents else None}


def compare(okx: list[dict[str, Any]], ref: list[dict[str, Any]], opens: list[float]) -> dict[str, Any]:
    """okxlab's closed trades against a reference's, bar by bar; price differences in basis points of the open."""
    closed = [t for t in okx if t["status"] == "closed"]
    by_entry = {t["entry_bar"]: t for t in ref}
    bar_mismatch, diffs, unmatched = [], [], []
    for t in closed:
        r = by_entry.get(t["entry_bar"])
        if r is None:
            unmatched.append(t)
            continue
        if r["exit_bar"] != t["exit_bar"]:
            bar_mismatch.append({"okxlab": t, "reference": r})
            continue
        for side in ("entry", "exit"):
            o = opens[t[f"{side}_bar"]]
            diffs.append(abs(t[f"{side}_price"] - o) / o * 1e4)
            if abs(round(r[f"{side}_price"], 1) - o) > 1e-6:
                bar_mismatch.append({"okxlab": t, "reference": r, "why": f"reference {side} not at the open"})
    only_ref = sorted(set(by_entry) - {t["entry_bar"] for t in closed} - {t["entry_bar"] for t in okx})
    return {"okxlab_closed": len(closed), "okxlab_open": len(okx) - len(closed), "reference": len(ref),
            "same_bars": len(closed) - len(unmatched) - len(bar_mismatch), "bar_mismatches": bar_mismatch[:5],
            "okxlab_only_trades": [{k: t[k] for k in ("entry_bar", "exit_bar", "entry_price", "exit_price")}
                                   for t in unmatched[:5]],
            "reference_only_trades": [by_entry[b] for b in only_ref[:5]],
            "bar_mismatch_count": len(bar_mismatch), "okxlab_only": len(unmatched), "reference_only": len(only_ref),
            "stop_exits": sum(t["exit_reason"] == "stop_loss" for t in closed),
            "price_diff_bps_median": median(diffs), "price_diff_bps_max": max(diffs) if diffs else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of fast mode and each reference (median)")
    ap.add_argument("--inline-repeat", type=int, default=1, help="runs of inline mode (it takes minutes)")
    ap.add_argument("--bars", type=int, default=None, help="only the first N bars (a quick look)")
    ap.add_argument("--skip-inline", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import tempfile

    from bench.references import frame, run_backtesting, run_backtrader

    out: dict[str, Any] = {"load_before": load()}
    with candle_dir() as (data_dir, source), tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        csv = next(data_dir.iterdir())
        data = frame(str(csv))
        if args.bars:
            data = data.iloc[:args.bars]
        bars = len(data)
        out.update(source=source, bars=bars)
        say(f"data: {source}, {bars:,} bars")
        opens = data["Open"].tolist()
        results: dict[str, dict[str, Any]] = {}
        for name, fn in (("backtrader", run_backtrader), ("backtesting.py", run_backtesting)):
            runs = []
            for i in range(args.repeat):
                trades, final, seconds = fn(data)
                runs.append(seconds)
                say(f"{name}: run {i + 1}: {seconds:.2f} s ({bars / seconds:,.0f} bars/s), {len(trades)} trades")
            results[name] = {"seconds": median(runs), "runs": runs, "trades": trades, "final": final}
        modes = [("okxlab fast", "fast", args.repeat)] + ([] if args.skip_inline else
                                                           [("okxlab inline", "inline", args.inline_repeat)])
        for name, mode, n in modes:
            runs = []
            for i in range(n):
                r = okxlab_run(data_dir, mode, args.bars, tmp)
                runs.append(r["seconds"])
                say(f"{name}: run {i + 1}: {r['seconds']:.2f} s ({r['ticks'] / r['seconds']:,.0f} bars/s), "
                    f"{r['executed']:,} runs executed, {r['records']:,} records, {len(r['trades'])} trades")
            results[name] = {**r, "seconds": median(runs), "runs": runs}
        for r in results.values():
            r["bars_per_second"] = bars / r["seconds"]
        for name in ("okxlab fast", "okxlab inline"):
            if name in results:
                results[name]["vs_backtrader"] = {ref: compare(results[name]["trades"], results[ref]["trades"], opens)
                                                  for ref in ("backtrader", "backtesting.py")}
        out["results"] = {k: {kk: vv for kk, vv in v.items() if kk != "trades"} for k, v in results.items()}
        if "okxlab fast" in results and "okxlab inline" in results:
            a, b = results["okxlab fast"]["trades"], results["okxlab inline"]["trades"]
            out["fast_equals_inline"] = a == b
        bt = results["backtrader"]["bars_per_second"]
        out["targets"] = {
            "inline_whole_file_s": results.get("okxlab inline", {}).get("seconds"),
            "inline_target_s": 60,
            "fast_vs_backtrader_x": results["okxlab fast"]["bars_per_second"] / bt,
            "fast_target_x": 3,
        }
    out["load_after"] = load()
    print_summary(out)
    write_json(args.json, out)


def print_summary(out: dict[str, Any]) -> None:
    print(f"replay speed: {out['bars']:,} bars of {out['source']} (load {out['load_before'][0]:.2f} before, "
          f"{out['load_after'][0]:.2f} after)")
    print(f"{'engine':<16}{'seconds':>10}{'bars/s':>12}  notes")
    for name, r in out["results"].items():
        note = ""
        if name.startswith("okxlab"):
            note = f"{r['executed']:,} runs executed, {r['records']:,} records written"
        print(f"{name:<16}{r['seconds']:>10.2f}{r['bars_per_second']:>12,.0f}  {note}")
    for name in ("okxlab fast", "okxlab inline"):
        cmp = out["results"].get(name, {}).get("vs_backtrader")
        if not cmp:
            continue
        for ref, c in cmp.items():
            print(f"{name} vs {ref}: {c['same_bars']}/{c['reference']} trades on the same entry and exit bars; "
                  f"{c['bar_mismatch_count']} differ, {c['okxlab_only']} okxlab-only, {c['reference_only']} "
                  f"reference-only, {c['okxlab_open']} still open at the end; stop exits {c['stop_exits']}; "
                  f"fill vs open: median {c['price_diff_bps_median']:.2f} bps, max {c['price_diff_bps_max']:.2f} bps")
            for t in c["okxlab_only_trades"]:
                print(f"    only in okxlab: entry bar {t['entry_bar']}, exit bar {t['exit_bar']}")
            for t in c["reference_only_trades"]:
                print(f"    only in {ref}: entry bar {t['entry_bar']}, exit bar {t['exit_bar']}")
    t = out["targets"]
    if t["inline_whole_file_s"] is not None:
        print(f"target (a) inline whole file <= 60 s: {t['inline_whole_file_s']:.1f} s "
              f"({'met' if t['inline_whole_file_s'] <= 60 else 'missed'})")
    print(f"target (b) fast >= 3x backtrader: {t['fast_vs_backtrader_x']:.2f}x "
          f"({'met' if t['fast_vs_backtrader_x'] >= 3 else 'missed'})")


if __name__ == "__main__":
    main()
