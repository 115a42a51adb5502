"""Run every benchmark once, in one go, and write the figures into docs/benchmarks.md.

    python bench/run_all.py [--quick] [--no-write]

Each benchmark runs as its own process (bench/<name>.py --json ...) one after the other, so they never compete
with each other; the machine's load is noted before and after each. The figures replace the block between
`<!-- figures:begin -->` and `<!-- figures:end -->` in docs/benchmarks.md; the rest of that page (what was
changed and why) is kept as written. `--quick` runs small sizes to check the scripts, not to measure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, load, machine, say  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

FULL = {
    "replay_speed": ["--repeat", "3", "--inline-repeat", "1"],
    "tick_to_order": ["--runs", "500", "--warmup", "20", "--repeat", "3"],
    "throughput": ["--agents", "40", "--ticks", "25", "--procs", "1,2"],
    "nightly_report": ["--repeat", "3"],
}
QUICK = {
    "replay_speed": ["--repeat", "1", "--bars", "5000"],
    "tick_to_order": ["--runs", "30", "--warmup", "5", "--repeat", "1"],
    "throughput": ["--agents", "10", "--ticks", "3", "--procs", "1"],
    "nightly_report": ["--repeat", "1", "--agents", "3"],
}


def run(name: str, args: list[str], tmp: Path) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    say(f"== {name} {' '.join(args)}")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{name}.py"), *args, "--json", str(out)],
                          cwd=str(ROOT), text=True, capture_output=True)
    sys.stderr.write(proc.stderr[-3000:])
    print(proc.stdout, end="")
    if proc.returncode != 0 or not out.exists():
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}"}
    data = json.loads(out.read_text())
    data["bench_seconds"] = time.perf_counter() - t0
    data["stdout"] = proc.stdout
    return data


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def render(results: dict[str, Any], info: dict[str, Any], quick: bool) -> str:
    v = info["versions"]
    lines = [BEGIN, "",
             f"Measured {info['when']} on this machine: {info['cpu']}, {info['cores']} cores, {info['memory']}; "
             f"{info['os']}. " + ("**Quick run (small sizes): not a measurement.** " if quick else ""),
             "",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
             "", f"Load average when the run started: {info['load_before'][0]:.2f} (other engineers run tests "
             "on this machine; each benchmark notes the load before and after it).", ""]
    lines += ["| benchmark | figure | target | |", "|---|---|---|---|"]
    r = results.get("tick_to_order", {})
    if "p50_ms" in r:
        lines.append(f"| tick to order, {r['runs']} runs ({len(r.get('rounds', [1]))} rounds, medians) | p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                     f"p99 {r['p99_ms']:.1f} ms | p50 ≤ 40 ms, p99 ≤ 150 ms (KPI < 500 ms) | "
                     f"{_met(r['p50_ms'] <= 40)} / {_met(r['p99_ms'] <= 150)} / KPI {_met(r['p99_ms'] < 500)} |")
    r = results.get("throughput", {})
    for x in r.get("results", []):
        lines.append(f"| throughput, {x['agents']} agents, {x['procs_per_group']} process(es) per queue group | "
                     f"{x['runs_per_second']:.1f} completed runs/s ({x['runs']} runs) | ≥ 50 runs/s | "
                     f"{_met(x['runs_per_second'] >= 50)} |")
    r = results.get("replay_speed", {})
    if "results" in r:
        res = r["results"]
        inline = res.get("okxlab inline")
        if inline:
            lines.append(f"| replay (a) inline, every record in Postgres, {r['bars']:,} bars | {inline['seconds']:.1f} s "
                         f"({inline['bars_per_second']:,.0f} bars/s, {inline['records']:,} rows) | whole file ≤ 60 s | "
                         f"{_met(inline['seconds'] <= 60)} |")
        fast = res["okxlab fast"]
        x = r["targets"]["fast_vs_backtrader_x"]
        lines.append(f"| replay (b) fast, {r['bars']:,} bars | {fast['bars_per_second']:,.0f} bars/s = {x:.2f}× "
                     f"backtrader | ≥ 3× backtrader | {_met(x >= 3)} |")
    r = results.get("nightly_report", {})
    if "seconds" in r:
        lines.append(f"| nightly report, {r['agents']} agents, {r['runs']:,} one-minute runs | {r['seconds']:.2f} s | "
                     f"≤ 10 s | {_met(r['seconds'] <= 10)} |")
    lines.append("")
    r = results.get("tick_to_order", {})
    if "stages" in r:
        lines += ["### Tick to order: where the time goes", "",
                  "Medians per stage, from the stage records (queue wait: previous stage finished → this stage "
                  "started, which includes the stage runner's own bookkeeping transaction; work: the stage's "
                  "duration; the order stage up to the exchange's acknowledgement).", "",
                  "| stage | queue wait (ms) | work (ms) | share |", "|---|---|---|---|"]
        total = sum(s["queue_wait_ms"] + (s.get("work_to_ack_ms") if k == "order" else s["work_ms"])
                    for k, s in r["stages"].items())
        for k, s in r["stages"].items():
            work = s.get("work_to_ack_ms") if k == "order" else s["work_ms"]
            note = f" (whole stage {s['work_ms']:.1f})" if k == "order" else ""
            lines.append(f"| {k} | {s['queue_wait_ms']:.1f} | {work:.1f}{note} | "
                         f"{(s['queue_wait_ms'] + work) / total * 100:.0f}% |")
        waits = sum(s["queue_wait_ms"] for s in r["stages"].values())
        lines += ["", f"Queue waits add up to {waits:.0f} ms of the {total:.0f} ms (medians, summed).", ""]
    r = results.get("replay_speed", {})
    if "results" in r:
        lines += ["### Replay speed", "", f"Data: `{r['source']}`, {r['bars']:,} bars of 15m BTC-USDT-SWAP. "
                  "Same strategy (SMA 20/50 cross, long only), next bar's open, 0.05 % fee. Medians of the repeats.",
                  "", "| engine | seconds | bars/s | |", "|---|---|---|---|"]
        for name, x in r["results"].items():
            note = (f"{x['executed']:,} runs executed, {x['records']:,} rows written" if name.startswith("okxlab")
                    else "")
            lines.append(f"| {name} | {x['seconds']:.2f} | {x['bars_per_second']:,.0f} | {note} |")
        lines += ["", "Trades (okxlab closed round trips against each reference's):", ""]
        for name in ("okxlab fast", "okxlab inline"):
            for ref, c in (r["results"].get(name, {}).get("vs_backtrader") or {}).items():
                lines.append(f"- {name} vs {ref}: {c['same_bars']} of {c['reference']} on the same entry and exit "
                             f"bars, {c['bar_mismatch_count']} differ, {c['okxlab_only']} only in okxlab, "
                             f"{c['reference_only']} only in the reference, {c['okxlab_open']} still open at the end; "
                             f"{c['stop_exits']} stop-loss exits; okxlab's fill vs the bar's open: median "
                             f"{c['price_diff_bps_median']:.2f} bps, max {c['price_diff_bps_max']:.2f} bps (the "
                             "simulator's half spread, at least one tick).")
        if "fast_equals_inline" in r:
            lines.append(f"- okxlab fast and inline: {'identical' if r['fast_equals_inline'] else 'DIFFERENT'} trades.")
        lines.append("")
    lines += ["### Raw output", "", "```"]
    for name in FULL:
        lines.append((results.get(name, {}).get("stdout") or results.get(name, {}).get("error", "")).rstrip())
    lines += ["```", "", END]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated benchmark names")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    names = args.only.split(",") if args.only else list(plan)
    info = machine()
    info["when"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    info["load_before"] = load()
    results: dict[str, Any] = {}
    if not args.no_write and DOC.exists() and args.only:  # keep the other benchmarks' last figures
        pass
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            results[name] = run(name, plan[name], Path(tmp))
    block = render(results, info, args.quick)
    if args.no_write:
        print(block)
        return
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text += "\n" + block + "\n"
    DOC.write_text(text)
    say(f"figures written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
