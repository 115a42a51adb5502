"""docs/reliability.md from the fault suite's measured figures.

    python -m tests.reliability.report --run   # run tests/reliability, keep its figures, write the document
    python -m tests.reliability.report         # write the document from the figures already kept

--run runs pytest on tests/reliability with OKXLAB_RELIABILITY_RESULTS pointing at tests/reliability/results,
so every figure in the document comes from that run; the suite's wall time and outcome are kept beside them
(suite.json). Without --run the document is rebuilt from the JSON files there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = HERE / "results"
DOC = REPO / "docs" / "reliability.md"


def run_suite(results: Path) -> dict[str, Any]:
    results.mkdir(parents=True, exist_ok=True)
    for old in results.glob("*.json"):
        old.unlink()
    env = {**os.environ, "OKXLAB_RELIABILITY_RESULTS": str(results)}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"],
                          cwd=REPO, env=env, capture_output=True, text=True)
    summary = (proc.stdout.strip().splitlines() or [""])[-1]
    suite = {"fault": "suite", "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "seconds": round(time.monotonic() - started, 1), "exit_code": proc.returncode, "pytest": summary,
             "cpus": os.cpu_count(), "python": platform.python_version(), "versions": _versions()}
    (results / "suite.json").write_text(json.dumps(suite, indent=2) + "\n")
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
    return suite


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("celery", "kombu", "redis", "sqlalchemy", "psycopg2-binary", "ccxt")}


def load(results: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))}


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _retries(count: int) -> str:
    return f"{count} retry" if count == 1 else f"{count} retries"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(r: dict[str, dict[str, Any]]) -> str:
    kill = [r[k] for k in ("worker_kill_redelivery", "worker_kill_reconciler", "worker_kill_pool") if k in r]
    redis, pg, ex, hm = r.get("redis_restart"), r.get("postgres_outage"), r.get("exchange_faults"), r.get("hostile_model")
    ops, sec, suite = r.get("operator_input"), r.get("secrets"), r.get("suite", {})
    sim_restart, sim_hostile = r.get("sim_restart"), r.get("sim_hostile")
    fl, lw, dr = r.get("flower_exposure"), r.get("live_worker"), r.get("dispatch_race")
    out = ["# Reliability: the fault suite and its figures", "",
           "okxlab promises that a run completes (or ends with a recorded reason), that an accepted decision becomes "
           "exactly one order at the exchange, and that nothing it writes holds a secret. `tests/reliability/` breaks "
           "those promises on purpose: it kills workers inside each stage, restarts Redis, crashes Postgres, makes the "
           "exchange fail, feeds the planner hostile model output and the commands bad input, and searches everything "
           "written for configured secrets. Every figure below was measured by the suite's last run "
           f"({suite.get('measured_at', '?')}, {suite.get('cpus', '?')} CPUs, `{suite.get('pytest', '?')}` in "
           f"{_s(suite.get('seconds'))}) and is read from `tests/reliability/results/*.json` by "
           "`tests/reliability/report.py`, which wrote this file.", "",
           "## Summary", "",
           _row("fault", "trials", "runs completed", "duplicates", "lost data", "recovery time"),
           _row("---", "---", "---", "---", "---", "---")]
    for k in kill:
        lost = k["missing"] + (k["trials"] - k["completed"])
        out.append(_row(f"worker SIGKILL inside a stage: {k['mode']}", f"{k['trials']} (one in each of the 7 stages)",
                        f"{k['completed']}/{k['trials']}",
                        f"{k['duplicates']} orders ({k['duplicate_sends_refused']} sent twice)",
                        f"{lost} runs, {k['missing']} orders",
                        f"max {_s(k['recovery_s_max'])} after the kill" + (
                            " (its pass came at once here; in production it notices a stage stuck for its time limit "
                            "+ 30 s)" if "detection_s" in k else "")))
    if redis:
        out.append(_row("Redis SIGKILLed, restarted empty", f"{redis['runs']} runs ({redis['in_flight_at_kill']} in flight, "
                        f"{redis['sends_refused_while_down']} sends refused)", f"{redis['completed']}/{redis['runs']}",
                        f"{redis['duplicates']} orders ({redis['duplicate_sends_refused']} sent twice)",
                        f"0 runs ({redis['resumed_by_reconciler']} driven on by the reconciler), {redis['missing']} orders",
                        f"workers back within {_s(redis['reconnected_within_s'])}; all done "
                        f"{_s(redis['recovery_s'])} after Redis was back (the reconciler's pass at once)"))
    if pg:
        out.append(_row(f"Postgres crashed for {pg['down_s']:.0f} s", f"{pg['runs']} runs ({pg['in_flight_at_crash']} in flight)",
                        f"{pg['completed']}/{pg['runs']}",
                        f"{pg['duplicates']} orders ({pg['duplicate_sends_refused']} sent twice)",
                        f"{pg['records_not_done']} partial records, {pg['missing']} orders",
                        f"all done {_s(pg['recovery_s'])} after it was back"))
    if ex:
        sc = ex["scenarios"]
        runs = sum(v["runs"] for v in sc.values())
        out.append(_row("exchange faults: " + ", ".join(sc), f"{runs} runs, {sum(v['orders'] for v in sc.values())} orders",
                        f"{sum(v['completed'] for v in sc.values())}/{runs}",
                        f"{sum(v['duplicates'] for v in sc.values())} orders "
                        f"({sum(v['duplicate_sends_refused'] for v in sc.values())} sent twice)",
                        f"{sum(v['unresolved'] for v in sc.values())} unresolved orders",
                        f"{sum(v['unknown_outcomes'] for v in sc.values())} unknown outcomes, each known again within "
                        + _retries(max(v["max_retries_to_know_outcome"] for v in sc.values()))))
    if hm:
        out.append(_row("hostile model output", f"{hm['corpus']} bad answers in {hm['runs']} runs",
                        f"{hm['ended_as_expected']}/{hm['runs']} ended as expected, with their reason",
                        f"{hm['orders']} orders (0 wanted)", "-", "-"))
    if ops:
        out.append(_row("bad operator input", f"{ops['cases']} commands", f"{ops['one_clear_line']}/{ops['cases']} one "
                        f"line, {ops['nonzero_exit']}/{ops['cases']} non-zero exit", "-",
                        "nothing written" if not ops["rows_changed"] and not ops["home_created"] else "WRITTEN", "-"))
    ks, turns, skew, fr, venue = (r.get(k) for k in ("kill_switches", "trading_turns", "clock_skew", "fill_race",
                                                      "venue_by_book"))
    if ks:
        race = ks["cases"].get("race", {})
        switched = [c for c in ks["cases"] if c != "race"]
        out.append(_row("kill switch pulled after the risk verdict (pause, halt, reduce-only, halt + flatten, pause "
                        "during an outage) and pause racing the claim",
                        f"{len(switched)} cases + {race.get('trials', 0)} races", "-", "-",
                        f"{_orders_after_switch(ks)} opening orders after a switch",
                        f"{race.get('crossed', '?')} races crossed"))
    if turns:
        out.append(_row(f"{turns['runs_at_one_tick']} runs of one agent at one tick (real worker)",
                        f"{turns['runs_at_one_tick']} runs", f"{turns['completed']} traded, the others skipped with "
                        "their reason", f"{turns['orders_at_exchange'] - 1} orders",
                        f"exposure {turns['contracts']:g} contracts = one run's {turns['one_run_contracts']:g}", "-"))
    if skew:
        out.append(_row(f"worker clock {skew['worker_clock_ahead_s']} s ahead (claim TTL {skew['claim_ttl_s']} s)",
                        "1 live claim", "-", f"{skew['second_placements']} second placements", "-", "-"))
    if fr:
        out.append(_row("an order stage and a flatten booking the same fill", f"{fr['bookers']} bookers",
                        f"{fr['bookers'] - fr['runs_left_running']}/{fr['bookers']} finished",
                        f"{fr['duplicates']} fills booked twice", "0", "-"))
    if venue:
        out.append(_row(f"book `{venue['book']}` with OKX_MODE={venue['mode']}", f"{venue['stages']} stages, "
                        f"{venue['commands']} commands", "all at the simulator", "-", "-", "-"))
    if sec:
        out.append(_row("secrets", f"{len(sec['secrets'])} secrets, {sec['places_searched']} places searched",
                        f"{sec['completed']}/{sec['runs']} (the others failed on purpose, with their reason)", "-",
                        f"{len(sec['leaks'])} leaks", "-"))
    if sim_restart:
        parts = sim_restart["survived"]
        kept = all(v == f"{sim_restart['trials']}/{sim_restart['trials']}" for v in parts.values())
        out.append(_row("simulator SIGKILLed with positions open, restarted", f"{sim_restart['trials']} kills, then "
                        "a fresh start", "-", f"{sim_restart['ids_reused']} ids reused "
                        f"({sim_restart['fresh_start_ids_reused']} after the fresh start)",
                        f"nothing ({len(parts)} views, each identical after every kill)" if kept else
                        "LOST: " + ", ".join(k for k, v in parts.items()
                                             if v != f"{sim_restart['trials']}/{sim_restart['trials']}"),
                        "at once: the next request after the restart"))
    if sim_hostile:
        out.append(_row("hostile requests to the simulator", f"{sim_hostile['requests']} requests",
                        f"{sim_hostile['requests'] - len(sim_hostile['wrong_code'])}/{sim_hostile['requests']} "
                        "refused with OKX's code", "-",
                        f"{len(sim_hostile['changed_state'])} changed an account, "
                        f"{sim_hostile['accepted_when_should_refuse']} accepted",
                        f"{sim_hostile['http_500']} HTTP 500, {sim_hostile['tracebacks']} tracebacks"))
    if fl:
        out.append(_row("Flower reached without its password", f"{fl['requests_without_password']} requests to "
                        f"{fl['paths']} paths, {fl['unsafe_settings']} unsafe settings",
                        f"{fl['answered_401']} answered 401; 2xx only on "
                        f"{', '.join(fl['unauthenticated_2xx']) or 'none'}; {fl['refused_at_start']}/"
                        f"{fl['unsafe_settings']} settings refused at start", "-",
                        f"listens on {', '.join(fl['listening'])}; "
                        f"{sum(fl['non_loopback_connects'].values())}/{len(fl['non_loopback_connects'])} "
                        "other addresses answered", "-"))
    if lw:
        out.append(_row("order worker in live mode without the switch", f"{len(lw['refusals'])} refused, "
                        f"{len(lw['started'])} allowed worker starts",
                        f"{lw['refused']}/{len(lw['refusals'])} refused ({lw['one_line']} in one line); "
                        f"{sum(lw['started'].values())}/{len(lw['started'])} allowed ones started", "-",
                        "-", "-"))
    if dr:
        out.append(_row(f"{dr['dispatchers']} beats dispatching the same ticks at once",
                        f"{dr['ticks']} ticks, {dr['runs_expected']} runs due",
                        f"{dr['runs_created']}/{dr['runs_expected']} created, {dr['failed_dispatches']} "
                        "dispatches failed", f"{dr['duplicates']} runs ({dr['started_twice']} started twice)",
                        f"{dr['not_started']} runs not started", "-"))
    out += ["", "*Duplicates*: okxlab orders the simulator holds more than once, and (in brackets) second placements of "
            "one clOrdId that reached the exchange at all (the simulator refuses them with 51016 and counts them). "
            "*Lost data*: runs that did not complete, orders accepted by the risk engine but missing at the exchange, "
            "stage records left unfinished. Recovery times are wall-clock seconds on the suite's settings (below); "
            "production settings are slower to notice a fault and are given with each fault.", ""]
    out += _worker_kill(kill) + _redis(redis) + _postgres(pg) + _exchange(ex) + _hostile(hm) + _operator(ops) + \
        _secrets(sec) + _moment_of_the_order(ks, turns, skew, fr, venue) + \
        _sim_restart(sim_restart, r.get("sim_restart_realtime")) + _sim_hostile(sim_hostile) + _flower(fl) + \
        _live_worker(lw) + _dispatch_race(dr) + _fixes() + _rerun(suite)
    return "\n".join(out) + "\n"


def _worker_kill(kill: list[dict[str, Any]]) -> list[str]:
    if not kill:
        return []
    out = ["## Worker killed inside each stage", "",
           "`tests/reliability/test_worker_kill.py`. Each round holds seven runs at once, one inside each stage, "
           "each in a simulator world of its own, with no test-only code in okxlab: snapshot waits on slow candle "
           "requests (simulator latency), quality, features, validate and risk wait on Postgres (the test holds an "
           "uncommitted row with the key the stage is about to insert), plan waits on a model that does not answer, "
           "and order waits on one delayed exchange call. The worker (`celery -A workers worker`, a separate process) "
           "is then SIGKILLed, the holds released, and the runs must complete with one order per accepted decision.",
           "", _row("recovery path", "stage", "held", "stage attempts", "recovery (s after the kill)"),
           _row("---", "---", "---", "---", "---")]
    for k in kill:
        for t in k["rounds"][0]["trials"]:
            out.append(_row(k["mode"], t["stage"], t["held"], t["attempts"], f"{t['recovery_s']:.1f}"))
    rec = next((k for k in kill if "detection_s" in k), None)
    out += ["", "- Redelivery: the visibility timeout is lowered to 15 s for this round "
            "(`OKXLAB_BROKER_VISIBILITY_TIMEOUT`); in production it is 3600 s, so a killed worker's runs are driven on "
            "by the reconciler first.",
            "- Reconciler: production's visibility timeout, and one reconciler pass with a clock past every stage's "
            "limit. The recovery shown starts at that pass; in production the reconciler (every 60 s on beat) notices "
            "a stage stuck after its time limit plus 30 s: " + (", ".join(f"{st} {s} s" for st, s in rec["detection_s"].items())
                                                                if rec else "-") + ".",
            "- Prefork pool processes killed (an OOM kill): the main process requeues their messages at once "
            "(`task_reject_on_worker_lost`) and forks new ones. Here the order was in flight when its process died: "
            "the requeued stage found the claim fresh, was retried when it expired (10 s in the suite, "
            "`OKXLAB_ORDER_CLAIM_TTL`; 60 s in production) and found the order by clOrdId.", ""]
    return out


def _redis(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    return ["## Redis restarted during a stream of runs", "",
            f"`tests/reliability/test_redis_restart.py`. A redis-server of the test's own (no persistence) is the "
            f"broker of {x['workers']} worker processes. {x['runs']} runs are sent; Redis is SIGKILLed with "
            f"{_n(x['in_flight_at_kill'], 'run')} in flight, {x['sends_refused_while_down']} sends fail while it is down "
            f"({x['redis_down_s']:.0f} s), and it starts again empty. The runs sent afterwards completed on their own "
            f"within {_s(x['reconnected_within_s'])} ({x['workers_consuming_after_restart']} of {x['workers']} workers "
            f"took tasks from the new Redis). {_n(x['stuck_after_restart'], 'run')} whose messages died with Redis were "
            f"driven on by one reconciler pass ({x['resumed_by_reconciler']} resumed); all {x['completed']} completed, "
            f"the last {_s(x['recovery_s'])} after Redis was back. Rows per run afterwards (the most any run has): "
            + ", ".join(f"{k} {v}" for k, v in x["max_rows_per_run"].items()) + ". In production the reconciler "
            "notices runs whose message was lost after the queue grace (120 s) or the stage's limit plus 30 s.", ""]


def _postgres(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    return ["## Postgres unavailable mid-run", "",
            f"`tests/reliability/test_postgres_outage.py`. A Postgres cluster of the test's own (initdb, pg_ctl) is "
            f"stopped in immediate mode (every connection cut, as in a crash) with {x['in_flight_at_crash']} of "
            f"{x['runs']} runs in flight (in {', '.join(x['stages_at_crash'])}: waiting on candles, an order in "
            f"flight, fills being read), kept down {x['down_s']:.0f} s and started again. Stage tasks were retried "
            f"({x['stage_attempts_retried']} stages needed more than one attempt); all {x['completed']} runs completed "
            f"without the reconciler, the last {_s(x['recovery_s'])} after the database was back; "
            f"{x['records_not_done']} stage records were left unfinished, and every stage table holds exactly one row "
            f"per run. The cluster keeps `synchronous_commit` on: with it off, a crash lost an order's acknowledged "
            f"claim and the order was sent a second time (refused by the simulator as a duplicate clOrdId). Do not "
            f"run okxlab's database with `synchronous_commit = off`.", ""]


def _exchange(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    out = ["## Exchange faults", "",
           f"`tests/reliability/test_exchange_faults.py`. Five replays side by side, each in a simulator world with one "
           f"fault set (seeded), of an agent that trades every tick ({x['ticks']} ticks), through Redis, a worker and "
           "ccxt. *Unknown outcomes*: placements that failed or whose answer was lost; *retries to know*: order-stage "
           "retries until okxlab knew again whether the order was at the exchange (found it, or found it absent and "
           "sent it again); *sends per order*: placements okxlab made per order (a 5xx or 429 on a placement means "
           "the order was not placed, so it is sent again after the lookup).", "",
           _row("scenario", "faults", "runs completed", "orders / at exchange", "duplicates", "unknown outcomes",
                "retries to know", "sends per order", "seconds"),
           _row(*["---"] * 9)]
    for name, v in x["scenarios"].items():
        faults = ", ".join(f"{k} {val}" for k, val in v["faults"].items() if k != "seed")
        out.append(_row(name, faults, f"{v['completed']}/{v['runs']}", f"{v['orders']} / {v['orders_at_exchange']}",
                        f"{v['duplicates']} ({v['duplicate_sends_refused']} sent twice)", v["unknown_outcomes"],
                        ", ".join(f"{k}: {n}" for k, n in v["retries_to_know_outcome"].items()) or "-",
                        ", ".join(f"{k}: {n}" for k, n in v["sends_per_order"].items()), f"{v['seconds']:.1f}"))
    out += ["", "Reads answered 5xx or 429 are asked again by urllib3 (three times, GET only); placements never are: "
            "their fate is settled by looking the order up by clOrdId at the next attempt. With a fault rate p on "
            "placements, an order needs more than three sends with probability p⁴ (0.8 % at 30 %).", ""]
    return out


def _hostile(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    out = ["## Hostile model output", "",
           f"`tests/reliability/test_hostile_model.py` with `hostile_corpus.py`: {x['corpus']} bad answers given by a "
           f"local OpenAI-compatible server (to the plan request and to the repair request) to twelve LLM agents over "
           f"ten ticks ({x['runs']} runs, {x['llm_requests']} model requests, all recorded). Orders: {x['orders']} in "
           f"okxlab, {x['orders_at_exchange']} at the simulator. Outcomes: "
           + ", ".join(f"{k} {v}" for k, v in x["statuses"].items()) + ".", "",
           _row("family", "runs", "ended as expected"), _row("---", "---", "---")]
    out += [_row(f, v["runs"], v["as_expected"]) for f, v in x["families"].items()]
    out += ["", "Some recorded reasons:", ""]
    out += [f"- {label}: `{reason}`" for label, reason in x["examples"].items()]
    return out + [""]


def _operator(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    out = ["## Bad operator input", "",
           f"`tests/reliability/test_operator_input.py`: {x['cases']} commands run as processes (`okxlab ...`, "
           "`celery -A workers ...`), each expected to print one `okxlab: error:` line, exit non-zero and write "
           f"nothing (database rows changed: {'yes' if x['rows_changed'] else 'no'}; home directory created: "
           f"{'yes' if x['home_created'] else 'no'}).", "", _row("kind", "case", "exit", "the line"),
           _row("---", "---", "---", "---")]
    out += [_row(c["kind"], c["case"], c["exit"], "`" + c["line"].replace("|", "\\|") + "`") for c in x["results"]]
    return out + [""]


def _secrets(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    return ["## Secrets", "",
            "`tests/reliability/test_secrets.py` configures recognisable values for " + ", ".join(x["secrets"]) + ", "
            f"runs the pipeline end to end ({x['runs']} runs; a worker logging at DEBUG; a model that quotes the key in "
            "its 401, an agent whose passphrase the exchange refuses, a refused SMTP login, an unreachable database) "
            f"and searches {x['places_searched']} places for each secret and every 10-character piece of it: the worker "
            f"log, the test process's log, every table, the {x['report_files']} report files and {x['emails']} email, "
            f"`runs list`, `runs show` (text and JSON), the leaderboard and the commands' error output. Leaks found: "
            f"{len(x['leaks'])}. Failed runs' reasons, as recorded: "
            + "; ".join(f"{a}: `{reason}`" for a, reason in x["failed_runs_reasons"]) + ".", "",
            "The same file checks that live trading is refused unless `LIVE_TRADING_ENABLED` is exactly `true` (also "
            "as a run's recorded reason, before any exchange client exists) and that real OKX means demo: clients "
            "in `demo` mode send `x-simulated-trading: 1`. Flower's authentication is covered by its own tests.", ""]


def _orders_after_switch(ks: dict[str, Any]) -> int:
    c = ks["cases"]
    return (sum(v.get("orders_after_switch", 0) for k, v in c.items() if k.startswith("after_verdict_"))
            + int(bool(c.get("halt_flatten_then_order", {}).get("reopened_contracts")))
            + c.get("closing_under_switches", {}).get("opens_sent", 0)
            + c.get("pause_during_outage", {}).get("orders_after_pause", 0))


def _moment_of_the_order(ks: dict[str, Any] | None, turns: dict[str, Any] | None, skew: dict[str, Any] | None,
                         fr: dict[str, Any] | None, venue: dict[str, Any] | None) -> list[str]:
    if not any((ks, turns, skew, fr, venue)):
        return []
    out = ["## Guarantees at the moment of the order", ""]
    if ks:
        c = ks["cases"]
        race = c.get("race", {})
        out += [f"`tests/reliability/test_kill_switches.py`. A run is taken through its risk verdict, then a switch is "
                "pulled with the real commands, then its order stage runs: after `risk pause`, `agents halt` and "
                "`agents halt --reduce-only` its opening order ended `not_sent` (reason `paused`, `halted`, "
                f"`reduce_only`), {_orders_after_switch(ks)} reached the exchange; after halt + flatten the pending "
                f"order ({c.get('halt_flatten_then_order', {}).get('pending_contracts', '?')} contracts) did not "
                "reopen the position; a pause pulled while the exchange was failing held the order once it was back "
                "(looked up by clOrdId, never placed, then not sent); under reduce-only and a pause, a closing order and "
                f"a flatten still went ({c.get('closing_under_switches', {}).get('closes_sent', '?')} closes). The order "
                "claim reads the pause and the agent's state under share locks in its own transaction, so a pause "
                f"pulled at a random moment during an order stage ({race.get('trials', '?')} times: "
                f"{race.get('sent_before_the_pause', 0)} orders claimed before it, {race.get('held_by_the_pause', 0)} "
                f"held by it) was crossed {race.get('crossed', '?')} times: every order sent was claimed before the "
                "pause was recorded, and every one held came after.", ""]
    if turns:
        out += [f"`tests/reliability/test_trading_turns.py`. {turns['runs_at_one_tick']} runs of one agent at one tick "
                "(overlapping schedules) sent at once through a worker process: one traded, the others ended "
                + ", ".join(f"`{k}` ×{v}" for k, v in turns["skipped"].items()) + f"; the position is "
                f"{turns['contracts']:g} contracts, one run's size. The risk stage takes the book's turn only if no "
                "other unfinished run holds it and the account snapshot is from the current epoch; the order stage "
                "gives it back.", ""]
    if skew:
        out += [f"A worker whose clock runs {skew['worker_clock_ahead_s']} s ahead met an order whose claim another "
                f"attempt held: it waited (`OrderBusy`) and made {skew['second_placements']} placements. Claims and "
                "their expiry are timed on the database's clock.", ""]
    if fr:
        out += ["An order stage and a flatten fetched the same fill at once: the flatten waited for the booking "
                f"(one booking per agent and book at a time), both finished, {fr['fills']} fills booked once each, the "
                "position attributed to the run whose order opened it, and the ledger reconciled with the exchange.", ""]
    if venue:
        out += [f"`tests/reliability/test_venue_by_book.py`. With OKX_MODE={venue['mode']} and the live switch on, a run "
                f"of the `{venue['book']}` book, `agents flatten --book {venue['book']}` and `reconcile --book "
                f"{venue['book']}` all went to the simulator: the book, not the mode, names the venue.", ""]
    return out


def _sim_restart(x: dict[str, Any] | None, realtime: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    out = ["## Simulator killed and restarted", "",
           f"`tests/reliability/test_sim_restart.py`. `okxlab sim` runs as a process of its own (its state file "
           f"and admin token in a temporary data directory); unmodified ccxt trades against it. Each of {x['trials']} "
           "trials sets leverage, opens positions with attached stop loss and take profit, rests, amends and cancels "
           "limit orders, places a stop, has an order refused and moves the clock (fills, triggers, a closed "
           "position); then everything the account and the admin API show is read as raw payloads, the process is "
           "SIGKILLed right after the last answer and started again on the same port, and everything is read again. "
           f"At the last kill the world held {x['orders_at_last_kill']} orders and {x['fills_at_last_kill']} fills.",
           "", _row("view", "identical after the restart"), _row("---", "---")]
    out += [_row(k, v) for k, v in x["survived"].items()]
    out += ["", f"The next fill after each restart got new ids ({x['new_ids_after_restarts']} of kinds "
            f"{', '.join(x['id_kinds'])}); of the {x['ids_checked']} ids handed out, {x['ids_reused']} were handed "
            f"out again. `--fresh` then started over (10,000 USDT, no position, the clock at its start) and still "
            f"reused {x['fresh_start_ids_reused']}: a new world's ids start above every id the state (and the one it "
            "replaced) gave. Before this, a restart lost everything and the first fill was trade id 1 again, which "
            "okxlab's ledger (fills de-duplicated by trade id) skipped without a word."]
    if realtime:
        out += ["", f"A realtime world (3600x) read {realtime['market_time_before_kill']} just before its kill and "
                f"{realtime['market_time_after_restart']} after the restart: its market time "
                f"{'went back' if realtime['went_back'] else 'went on from where it was'} (it follows its wall-clock "
                "anchor), where it used to start again from its start."]
    return out + [""]


def _sim_hostile(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    fam = ", ".join(f"{k} {v}" for k, v in x["families"].items())
    codes = ", ".join(f"{k} x{v}" for k, v in x["codes"].items())
    return ["## Hostile requests to the simulator", "",
            f"`tests/reliability/test_sim_hostile.py`: {x['requests']} requests to a running `okxlab sim` over raw "
            f"HTTP ({fam}), signed with OKX's scheme where it takes one: 50,000-deep JSON, NaN, bodies over 1 MB or "
            "not UTF-8, non-ASCII and 60 kB authentication headers, sizes and prices of 1e308, 1e-300, NaN and "
            "Arabic-Indic digits, prices beyond OKX's price limit, admin requests without or with the token. Each "
            "must get OKX's `{code, msg, data}` (the admin API's `{error}`) with the expected code and leave the "
            f"account, its orders and the worlds as they were. HTTP 500s: {x['http_500']}; answers not JSON: "
            f"{x['not_json']}; tracebacks (answers and the process's output): {x['tracebacks']}; accepted when they "
            f"should have been refused: {x['accepted_when_should_refuse']}; wrong code: {len(x['wrong_code'])}; "
            f"changed something: {len(x['changed_state'])}. Codes answered: {codes}.", "",
            "Before: a deeply nested body, a non-ASCII passphrase or signature and a body that is not UTF-8 got a "
            "plain-text 500 (a traceback in the log); a size or price of 1e308 got 50026 with a traceback; a price "
            "of 1e-300 rested as an order; a header line over 8 kB got aiohttp's 400 and a logged traceback. Header "
            "lines over 64 kB still get aiohttp's plain 400 (logged in one line): its HTTP parser refuses them before "
            "the simulator sees a request.", ""]


def _flower(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    out = ["## Flower without its password", "",
           "`tests/reliability/test_flower_exposure.py` starts Flower with the README's command "
           "(`FLOWER_BASIC_AUTH=user:password celery -A workers flower`) and requests every path in Flower's own URL "
           f"table without credentials: {x['requests_without_password']} requests to {x['paths']} paths (GET, and "
           f"POST on the API), {x['answered_401']} answered 401. Answered 2xx: "
           f"{', '.join(x['unauthenticated_2xx']) or 'none'}; open by design are {', '.join(x['open_by_design'])} "
           "(`OK` for probes; a static signed-out page). `/metrics` is behind the password too (Flower serves it "
           "open; okxlab does not), and with the password every page answers 200: "
           + ", ".join(f"{p} {c}" for p, c in x["pages_with_password"].items()) + ". "
           f"Flower listens on {', '.join(x['listening'])} only (read from /proc/net/tcp*); connections to this "
           "machine's other addresses: " + (", ".join(f"{a} {'answered' if ok else 'refused'}"
                                                       for a, ok in x["non_loopback_connects"].items()) or "none")
           + f"; with FLOWER_ADDRESS=127.0.0.2 it listens on {', '.join(x['flower_address_override'])}.", "",
           f"Settings that look like authentication but are not, refused at start ({x['refused_at_start']}/"
           f"{x['unsafe_settings']}, each with one line and exit 2). okxlab's earlier check looked for flag names "
           "and a non-empty FLOWER_BASIC_AUTH or FLOWER_AUTH: `--auth=`, a bare `--auth_provider=`, "
           "`--auth_provider` alone and a flowerconfig.py emptying the password all started a Flower that served "
           "every page to anyone; a credential with an empty part let in whoever sent only a user name (or only a "
           "password); the OAuth cases started a Flower nobody could sign in to.", "",
           _row("setting", "exit", "the line"), _row("---", "---", "---")]
    out += [_row(c["case"], c["exit"], "`" + c["line"].replace("|", "\\|") + "`") for c in x["refusals"]]
    return out + [""]


def _live_worker(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    out = ["## A worker that would send orders live without the switch", "",
           "`tests/reliability/test_live_worker.py` starts `celery -A workers worker` processes with an agent in "
           "live mode (`OKX_MODE=live`). Workers whose queues include `order` refuse to start, in one line, "
           "unless `LIVE_TRADING_ENABLED=true`; before, they started and failed every order stage they took.", "",
           _row("queues", "exit", "the line"), _row("---", "---", "---")]
    out += [_row(c["queues"], c["exit"], "`" + (c["lines"][-1] if c["lines"] else "") + "`") for c in x["refusals"]]
    out += ["", "Allowed to start: " + ", ".join(f"{k} ({'started' if v else 'DID NOT START'})"
                                                 for k, v in x["started"].items()) + ".", ""]
    return out


def _dispatch_race(x: dict[str, Any] | None) -> list[str]:
    if not x:
        return []
    return ["## Two beats dispatching at once", "",
            f"`tests/reliability/test_dispatch_race.py`: {x['dispatchers']} dispatchers (what the `okxlab.dispatch` "
            f"task runs, each in its own thread and connection) dispatch the same {x['ticks']} ticks of "
            f"{x['schedules']} schedules on real Postgres. A test-only trigger in the test's database holds every "
            "dispatcher's INSERT of runs just before its conflict check until all of them are there, so they "
            f"collide at every tick ({x['held_together']} of {x['ticks']}). Runs due: {x['runs_expected']}; "
            f"created: {x['runs_created']} ({x['duplicates']} duplicates); started: {x['runs_started']} "
            f"({x['started_twice']} twice, {x['not_started']} never; by dispatcher: "
            + ", ".join(f"{k}: {v}" for k, v in x["starts_by_dispatcher"].items()) + "); dispatches failed: "
            f"{x['failed_dispatches']}. Before the fix, 11 to 30 of the 180 dispatches failed with an IntegrityError "
            "on `uq_runs_source_agent_scheduled_for`: the insert skipped clashes on the run id only, and the loser "
            "of the race clashed on the other unique key first. Now a clash on any unique key means the run is "
            "already dispatched.", ""]


def _fixes() -> list[str]:
    return ["## What the suite found and fixed", "",
            "Each fix is its own commit, with a test that failed before it.", "",
            "- A worker killed while sending an order left it `submitting`; the redelivered stage took that for an "
            "answer and completed the run with the order unresolved (never sent, or sent without okxlab knowing). "
            "Now such an order raises `OrderBusy` and the stage is retried when the claim expires (`retry_after` as "
            "the countdown), then looks the order up by clOrdId.",
            "- Winning an order's claim and marking it `submitting` were two transactions: two deliveries at once "
            "could both claim a new order and both send it. Now one transaction (row lock).",
            "- A set-leverage or lookup the exchange did not answer left the order under a live claim, and the retry "
            "waited a minute for it; set-leverage now comes before the claim, and a failed lookup leaves the order "
            "`unknown`, free to claim.",
            "- Every failed exchange read failed its whole stage; GETs answered 5xx/429 are now asked again by "
            "urllib3 (never POSTs).",
            "- Workers exited (\"Unrecoverable error: AttributeError ... 'hostname'\") when Redis went away while "
            "they held unacknowledged messages (celery 5.7/kombu 5.7); `workers/consumer.py` lets that clean-up fail "
            "and reconnects.",
            "- `{\"decisions\": null}` from a model crashed the plan stage (TypeError) instead of ending invalid_plan; "
            "reasons no longer say `invalid_plan: invalid_plan:`.",
            "- `schedules add` wrote a schedule under a malformed config file; a worker ran on a config it could not "
            "read, failing every task; `replay range` for an LLM agent without its key wrote the replay and failed "
            "every run. All three now stop with one line, having written nothing.",
            "- At `--loglevel DEBUG`, ccxt's request log wrote the OKX API key and passphrase into the worker log; "
            "they are masked.",
            "- Nothing under okxlab/execution read the kill switches: a pause or halt pulled after a run's verdict "
            "still sent its order, and a halt + flatten was undone by the pending order. The order claim now reads "
            "them (locked), as does every resend after an unknown outcome; the in-process replays apply the same "
            "rule.",
            "- Two runs of one agent at one tick both sized against the same account (58.8 contracts instead of "
            "29.4). The risk stage now takes the book's trading turn; the second run ends `agent_busy` or "
            "`stale_account`.",
            "- Claims expired on the worker's clock: a worker 61 s ahead placed a claimed order a second time. "
            "Claims now use the database's clock.",
            "- Two bookings of one fill collided on its key; the loser took the error for \"already done\" and its run "
            "hung until the reconciler, and the position named the wrong run. Booking is one at a time per agent "
            "and book, a fill belongs to its order's run, and a collision is retried, never read as done.",
            "- `agents flatten --book sim` traded live when OKX_MODE=live: the venue fell through to the configured "
            "mode. The book names the venue now.",
            "- A model answer that repeated the API key (or any configured secret) inside a normal 200 reply was "
            "stored verbatim and quoted back in the repair request; answers are scrubbed first.", "",
            "Knobs added for tests, production defaults unchanged: `OKXLAB_BROKER_VISIBILITY_TIMEOUT` (3600 s; kombu "
            "sweeps for overdue messages every quarter of it) and `OKXLAB_ORDER_CLAIM_TTL` (60 s).", ""]


def _rerun(suite: dict[str, Any]) -> list[str]:
    versions = ", ".join(f"{k} {v}" for k, v in suite.get("versions", {}).items())
    return ["## Rerunning it", "",
            "```console",
            "$ python -m pytest tests/reliability -q           # the suite alone; figures go to a temporary directory",
            "$ python -m tests.reliability.report --run        # the suite, its figures kept in tests/reliability/results,",
            "                                                  # and this document written from them",
            "$ python -m tests.reliability.report              # the document again from the kept figures",
            "```", "",
            "It needs what the other tests need (Postgres on 127.0.0.1:5432, `OKXLAB_TEST_PG`; Redis on 6379, "
            "`OKXLAB_TEST_REDIS`) plus the `redis-server` binary and the Postgres binaries (`initdb`, `pg_ctl`; "
            "`OKXLAB_TEST_PG_BIN`, default /usr/lib/postgresql/15/bin), run as the `postgres` user when the tests run "
            "as root. Everything listens on loopback only; every wait is bounded.",
            f"Last run: {suite.get('cpus', '?')} CPUs, Python {suite.get('python', '?')}, {versions}, "
            f"{_s(suite.get('seconds'))} in all.", ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run the suite first (about 3-4 minutes on 2 CPUs)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the figures are kept")
    parser.add_argument("--out", type=Path, default=DOC, help="the document to write")
    args = parser.parse_args(argv)
    if args.run:
        suite = run_suite(args.results)
        print(f"suite: {suite['pytest']} in {suite['seconds']} s", file=sys.stderr)
        if suite["exit_code"] != 0:
            print("okxlab: error: the fault suite failed; the document was not written", file=sys.stderr)
            return 1
    figures = load(args.results)
    if not figures:
        print(f"okxlab: error: no figures in {args.results}; run with --run", file=sys.stderr)
        return 2
    args.out.write_text(render(figures))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
