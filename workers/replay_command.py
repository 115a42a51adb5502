"""`celery -A workers replay ...`: re-run history through the running workers (registered via the
`celery.commands` entry point).

    celery -A workers replay run RUN_ID [--from-stage STAGE] [--fresh-llm]
    celery -A workers replay range --agent A --start ISO --end ISO [--bar 15m] [--fresh-llm] [--speed max]
                                   [--mode pipeline|inline|fast] [--data CSV]

`--mode pipeline` (the default) goes through the workers and the simulator over HTTP. `inline` and `fast`
run the same stage logic in this process against an in-process simulator world (okxlab/replay/inprocess.py):
inline writes every record of every run, fast executes only the runs that can change something.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import click

from okxlab.errors import UserError


def require_broker() -> None:
    """Replays through the workers reach them through the broker: check it answers before anything is written,
    so an unreachable broker is one line and no half-started replay."""
    from kombu.exceptions import OperationalError

    from okxlab.config import broker_url
    from okxlab.db.session import redact
    from workers.app import app

    url = broker_url()
    if url.startswith("memory://"):
        raise UserError("OKXLAB_BROKER_URL is not set: a replay through the workers needs the broker they consume "
                        "(Redis or RabbitMQ); set it, or use `replay range --mode inline|fast` without workers")
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=5)
    except (OperationalError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"cannot reach the broker at {redact(url)} ({reason}); start it or fix OKXLAB_BROKER_URL, "
                        "then run the command again") from None


def _fail(exc: Exception) -> None:
    click.echo(f"okxlab: error: {exc}", err=True)
    sys.exit(getattr(exc, "exit_code", 2))


def _when(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{name} {text!r} is not an ISO-8601 time, e.g. 2022-12-01T00:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@click.group()
@click.pass_context
def replay(ctx: click.Context) -> None:
    """Replay okxlab runs through the workers: one past run, or a window of history."""


@replay.command("run")
@click.argument("run_id")
@click.option("--from-stage", default="plan", show_default=True,
              help="Re-execute from this stage on; earlier stages keep the original's records.")
@click.option("--fresh-llm", is_flag=True, help="Ask the model again instead of reusing the recorded answer.")
@click.option("--fresh-market", is_flag=True,
              help="With --from-stage snapshot: take a new snapshot of the market now, not the original's.")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds to wait for the workers.")
@click.pass_context
def replay_run(ctx: click.Context, run_id: str, from_stage: str, fresh_llm: bool, fresh_market: bool,
               timeout: float) -> None:
    """Re-execute RUN_ID from a stage into a new run linked to it, and show both side by side."""
    from okxlab.cli.common import open_db, table
    from okxlab.pipeline.env import build_env
    from okxlab.replay.range import wait_for
    from okxlab.replay.rerun import check_rerun, create_rerun, finish, side_by_side
    from workers.tasks import start_run

    try:
        open_db()
        env = build_env()
        check_rerun(env, run_id, from_stage, fresh_market=fresh_market)
        require_broker()
        replay_row, new_id = create_rerun(env, run_id, from_stage, fresh_llm=fresh_llm)
        click.echo(f"replaying {run_id} from {from_stage} as {new_id} …", err=True)
        start_run(new_id, from_stage)
        wait_for(env, [new_id], timeout)
        finish(env, replay_row, new_id)
        with env.sessions() as s:
            rows = side_by_side(s, run_id, new_id)
    except UserError as exc:
        _fail(exc)
    click.echo(table(["", "ORIGINAL " + run_id, "REPLAY " + new_id],
                     [[r["aspect"], r["original"], r["replay"]] for r in rows]))


@replay.command("range")
@click.option("--agent", "agents", multiple=True, required=True, help="An agent to replay (repeatable).")
@click.option("--start", required=True, help="ISO-8601 start (UTC), e.g. 2022-11-01T00:00Z.")
@click.option("--end", required=True, help="ISO-8601 end (UTC), inclusive.")
@click.option("--bar", default=None, help="Tick spacing as an OKX bar (default: the agent's bar).")
@click.option("--fresh-llm", is_flag=True, help="Ask the models again instead of reusing recorded answers.")
@click.option("--offline-planners", is_flag=True, help="LLM agents use their offline rule-based stand-ins.")
@click.option("--speed", default="max", show_default=True,
              help="'max' (as fast as the workers go) or a multiple of real time, e.g. 3600.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for one tick's runs.")
@click.option("--mode", type=click.Choice(["pipeline", "inline", "fast"]), default="pipeline", show_default=True,
              help="pipeline: through the workers; inline: in this process, every record written; fast: in this "
                   "process, only runs that act are executed and recorded.")
@click.option("--data", "data_paths", multiple=True,
              help="inline/fast: candle CSV files or folders for the in-process simulator (as `okxlab sim --data`).")
@click.pass_context
def replay_range(ctx: click.Context, agents: tuple[str, ...], start: str, end: str, bar: str | None, fresh_llm: bool,
                 offline_planners: bool, speed: str, timeout: float, mode: str, data_paths: tuple[str, ...]) -> None:
    """Run AGENT through history on the simulator's replay clock, with the same stage code as live trading."""
    from okxlab.cli.common import open_db
    from okxlab.cli.view import TickProgress
    from okxlab.config import load_config
    from okxlab.marketdata.bars import bar_ms
    from okxlab.pipeline.env import build_env
    from okxlab.replay.range import create_replay, run_range
    from okxlab.simulator.admin import AdminClient, SimAdminError
    from workers.tasks import start_run

    try:
        config = load_config()
        cfgs = [config.agent(a) for a in agents]
        bar = bar or cfgs[0].bar
        bar_ms(bar)
        pace = None if speed == "max" else _speed(speed)
        begin, finish_at = _when(start, "--start"), _when(end, "--end")
        open_db()
        env = build_env(config)
        if mode != "pipeline":
            _in_process(env, list(agents), begin, finish_at, bar, mode, data_paths, offline_planners, fresh_llm)
            return
        for cfg in cfgs:  # before anything is written: an agent that cannot plan would fail every run
            problem = None if offline_planners else env.planners.check(cfg)
            if problem:
                raise UserError(problem)
        require_broker()
        admin = AdminClient(config.sim_url, timeout=10)
        try:
            admin.health()
        except (SimAdminError, OSError) as exc:
            raise UserError(f"no OKX simulator answering at {config.sim_url} ({type(exc).__name__}); start one with "
                            "`okxlab sim` or set OKXLAB_SIM_URL") from None
        row = create_replay(env, kind="range", agents=list(agents), start=begin, end=finish_at, bar=bar,
                            offline_planners=offline_planners, fresh_llm=fresh_llm)
        last = [time.monotonic()]
        with TickProgress() as shown:
            def progress(done: int, total: int, statuses: dict[str, int]) -> None:
                if pace:  # hold each tick for (bar length / speed) of wall time
                    wait = bar_ms(bar) / 1000 / pace - (time.monotonic() - last[0])
                    if wait > 0:
                        time.sleep(wait)
                    last[0] = time.monotonic()
                shown(done, total, statuses)

            result = run_range(env, row, admin, lambda w: f"{config.sim_url.rstrip('/')}/w/{w}", start_run,
                               progress=progress, tick_timeout=timeout)
    except UserError as exc:
        _fail(exc)
    click.echo(f"replay {result.replay_id}: {result.runs} runs over {result.ticks} ticks in {result.seconds:.1f} s "
               f"({', '.join(f'{v} {k}' for k, v in sorted(result.statuses.items()))})")
    _summary(result, list(agents))


def _summary(result, agents: list[str]) -> None:  # noqa: ANN001
    """The same table and baseline line for every mode (RangeResult.agents and .baseline)."""
    from okxlab.cli.common import table

    click.echo(table(["AGENT", "EQUITY", "RETURN", "MAX DRAWDOWN", "TRADES", "OPEN"],
                     [[a["agent"], f"{a['equity']:.2f}", f"{a['return_pct']:+.2f}%",
                       "-" if a["max_drawdown_pct"] is None else f"{a['max_drawdown_pct']:.2f}%", a["trades"],
                       a["open"]] for a in result.agents]))
    bh = result.baseline
    click.echo(f"baselines over the same window: cash +0.00%, buy-and-hold {bh['symbol']} "
               + (f"{bh['return_pct']:+.2f}% ({bh['first']:,.1f} → {bh['last']:,.1f}; {bh['note']})"
                  if bh["return_pct"] is not None else f"unknown: {bh['note']}"))
    if any(a["max_drawdown_pct"] is None for a in result.agents):
        click.echo("fast mode records only the runs that act, so drawdowns are not measured; --mode inline "
                   "records every run")
    book = f"replay:{result.replay_id}"
    click.echo(f"runs written to book {book}: okxlab runs list --agent {agents[0]} · okxlab leaderboard --book {book}")


def _in_process(env, agents: list[str], begin: datetime, finish_at: datetime, bar: str, mode: str,  # noqa: ANN001
                data_paths: tuple[str, ...], offline_planners: bool, fresh_llm: bool) -> None:
    """--mode inline|fast: no workers, no simulator server; progress on stderr, the summary on stdout."""
    from okxlab.cli.view import TickProgress
    from okxlab.replay.inprocess import replay_in_process

    if fresh_llm:
        raise UserError(f"--fresh-llm asks models; --mode {mode} replays rule-based planners only")

    with TickProgress() as progress:
        result = replay_in_process(env, agents=agents, start=begin, end=finish_at, bar=bar, mode=mode,
                                   data_paths=data_paths, offline_planners=offline_planners, progress=progress)
    click.echo(f"replay {result.replay_id} ({mode}): {result.runs} runs over {result.ticks} ticks in "
               f"{result.seconds:.1f} s ({', '.join(f'{v} {k}' for k, v in sorted(result.statuses.items()))}); "
               f"{result.executed} runs executed, {result.records} records written")
    _summary(result, agents)


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--speed {text!r} must be 'max' or a positive number") from None
    if value <= 0:
        raise UserError(f"--speed {text!r} must be 'max' or a positive number")
    return value
