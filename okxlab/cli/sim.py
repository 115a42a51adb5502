"""`okxlab sim`: run the local OKX v5 simulator (see docs/simulator.md)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click

from okxlab.errors import UserError

STATE_FILE = "sim-state.sqlite"


def _rate(name: str):
    def check(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 1:
            raise UserError(f"{name} must be between 0 and 1, not {value}")
        return value
    return check


@click.command("sim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 = any free port).")
@click.option("--data", "data_paths", multiple=True, type=click.Path(),
              help="Extra candle CSV file or directory (<instId>_<bar>.csv[.gz]), or a funding-rate history CSV "
              "(instId,fundingTime,fundingRate,realizedRate); repeatable.")
@click.option("--instruments", "instrument_paths", multiple=True, type=click.Path(),
              help="An OKX public/instruments answer saved as JSON: lists its spot and linear swap instruments "
                   "(with OKX's specs) beside the shipped ones, so --data can give candles for them; repeatable.")
@click.option("--start", default=None, help="Market time a new default world starts at (ISO-8601) "
              "[default: the first time every configured agent's instruments have data and their history].")
@click.option("--speed", default=1.0, show_default=True, type=float,
              help="Market seconds per wall-clock second for the realtime clock.")
@click.option("--clock", type=click.Choice(["realtime", "replay"]), default="realtime", show_default=True,
              help="Default world's clock: realtime plays history onto the wall clock; replay moves only "
                   "through the admin API.")
@click.option("--account", "accounts", multiple=True, metavar="KEY:SECRET:PASSPHRASE",
              help="Add an account with 10,000 USDT (besides the configured agents'); repeatable.")
@click.option("--no-agents", is_flag=True, help="Do not provision the configured agents' accounts.")
@click.option("--state", "state_path", default=None, metavar="PATH",
              help=f"File the simulator keeps its worlds in, resumed at the next start [default: "
                   f"$OKXLAB_HOME/{STATE_FILE}].")
@click.option("--fresh", is_flag=True, help="Start over: forget the worlds in the state file (ids never repeat).")
@click.option("--no-state", is_flag=True, help="Keep nothing on disk: everything is lost when the simulator stops.")
@click.option("--latency-ms", type=float, default=None, help="Fault: added latency per request.")
@click.option("--error-5xx-rate", type=float, default=None, callback=_rate("--error-5xx-rate"),
              help="Fault: share of requests answered HTTP 500 (code 50026).")
@click.option("--rate-limit-rate", type=float, default=None, callback=_rate("--rate-limit-rate"),
              help="Fault: share of requests answered HTTP 429 (code 50011).")
@click.option("--lost-response-rate", type=float, default=None, callback=_rate("--lost-response-rate"),
              help="Fault: share of order placements executed but answered by a dropped connection.")
@click.option("--fault-seed", type=int, default=0, show_default=True, help="Seed of the fault RNG.")
def sim(host: str, port: int, data_paths: tuple[str, ...], instrument_paths: tuple[str, ...], start: str | None, speed: float, clock: str,
        accounts: tuple[str, ...], no_agents: bool, state_path: str | None, fresh: bool, no_state: bool,
        latency_ms: float | None, error_5xx_rate: float | None, rate_limit_rate: float | None,
        lost_response_rate: float | None, fault_seed: int) -> None:
    """Run the local OKX v5 REST simulator that ccxt trades against as it trades against OKX demo.

    Point ccxt at it with set_sandbox_mode(True) and then urls['api'] = {'rest': 'http://HOST:PORT'}.
    Each configured agent gets an account of its initial equity; --account adds more. Everything (accounts,
    orders, positions, fills, clocks) is kept in the state file and resumed at the next start.
    """
    from okxlab.config import home_dir
    from okxlab.simulator import AccountSpec, Faults, SimServer, Simulator
    from okxlab.simulator.clock import parse_time
    from okxlab.simulator.simulator import MAX_SPEED
    from okxlab.simulator.token import server_token

    if not 0 < speed <= MAX_SPEED:
        raise UserError(f"--speed must be above 0 and at most {MAX_SPEED:,.0f}, not {speed}")
    if no_state and (state_path or fresh):
        raise UserError("--no-state keeps no state file: it cannot be given with --state or --fresh")
    try:
        extra = [AccountSpec.parse(a) for a in accounts]
        start_ms = parse_time(start) if start else None
        faults = Faults(latency_ms=latency_ms or 0.0, error_5xx_rate=error_5xx_rate or 0.0,
                        rate_limit_rate=rate_limit_rate or 0.0, lost_response_rate=lost_response_rate or 0.0,
                        seed=fault_seed)
        faults.validate()
    except ValueError as exc:
        raise UserError(str(exc).replace("latency_ms", "--latency-ms")) from None
    state = None if no_state else Path(state_path) if state_path else home_dir() / STATE_FILE
    simulator = Simulator(data_paths=data_paths, instrument_paths=instrument_paths, agents=not no_agents, accounts=extra, default_clock=clock,
                          start=start_ms, speed=speed, faults=faults, state=state, fresh=fresh)
    if simulator.resumed and any(v is not None for v in (latency_ms, error_5xx_rate, rate_limit_rate,
                                                         lost_response_rate)):
        simulator.world().faults = faults  # settings, not state: the flags given now apply
        simulator.save(force=True)
    try:
        try:
            token, token_where = server_token()
        except OSError as exc:
            raise UserError(f"cannot keep the admin token in the data directory: {exc.strerror or exc} "
                            "(set OKXLAB_HOME to a writable directory, or OKXLAB_SIM_ADMIN_TOKEN)") from None
        server = SimServer(simulator, host=host, port=port, admin_token=token).start()
        try:
            _announce(simulator, server, state, token_where, given=(start, clock, speed))
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())  # docker stop: close the state file cleanly
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
            click.echo("okxlab sim: stopped")
        finally:
            server.stop()
    finally:
        simulator.close()


def _announce(simulator, server, state: Path | None, token_where: str,  # noqa: ANN001
              given: tuple[str | None, str, float]) -> None:
    from okxlab.simulator.accounts import mask_key
    from okxlab.simulator.clock import iso
    from okxlab.simulator.token import TOKEN_HEADER

    world = simulator.world()
    with simulator.lock:
        world.sync()  # a resumed realtime world: where its market time is now
    c = world.clock
    if c.kind == "realtime":
        clock_text = f"realtime from {iso(c.start_ms)} at {c.speed:g}x, market time now {iso(world.now)}"
    else:
        clock_text = f"replay at {iso(world.now)} (move it with POST /admin/worlds/default/clock)"
    click.echo(f"okxlab sim: OKX v5 simulator on {server.url} - default world: {clock_text}")
    if simulator.resumed:
        worlds = ", ".join(sorted(simulator.worlds))
        click.echo(f"  resumed from {state}: worlds {worlds}; "
                   f"{sum(len(w.orders) for w in simulator.worlds.values())} orders, "
                   f"{sum(len(w.fills) for w in simulator.worlds.values())} fills (--fresh starts over)")
        start, clock, speed = given
        if start or clock != c.kind or (c.kind == "realtime" and speed != c.speed):
            click.echo("  note: --start, --clock and --speed apply to a new default world only; this one is resumed")
    else:
        if world.clock.start_ms == simulator.default_start:
            click.echo(f"  default world starts at {iso(simulator.default_start)}: {simulator.default_start_why}")
        click.echo(f"  state: {state} (kept after every request; resumed at the next start)" if state else
                   "  state: none (--no-state): everything is lost when the simulator stops")
    click.echo(f"  ccxt: ex.set_sandbox_mode(True); ex.urls['api'] = {{'rest': '{server.url}'}}")
    click.echo(f"  other worlds: POST /admin/worlds, then use {server.url}/w/<world> as the REST URL")
    click.echo(f"  admin API: {server.url}/admin/... with the header {TOKEN_HEADER}; its token is {token_where}")
    for acct in world.accounts.values():  # keys are masked: they can be real ones (docker-compose passes .env)
        click.echo(f"  account {acct.name}: api key {mask_key(acct.api_key)}, {acct.initial_equity:,.0f} USDT")
    for inst_id, rng in simulator.market.ranges().items():
        click.echo(f"  data {inst_id}: {iso(rng['start'])[:16]} -> {iso(rng['end'])[:16]} UTC")
    for inst_id, rates in simulator.market.funding_history.items():
        click.echo(f"  funding {inst_id}: {len(rates)} given rate(s), {iso(min(rates))[:16]} -> "
                   f"{iso(max(rates))[:16]} UTC (the model elsewhere)")
    if world.faults.active:
        click.echo(f"  faults: {world.faults.to_dict()}")
    click.echo("Press Ctrl-C to stop.", nl=True)
