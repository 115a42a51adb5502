"""`okxlab sim`: run the local OKX v5 simulator (see docs/simulator.md)."""

from __future__ import annotations

import threading

import click

from okxlab.errors import UserError


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
              help="Extra candle CSV file or directory (<instId>_<bar>.csv[.gz]); repeatable.")
@click.option("--start", default=None, help="Market time the default world starts at (ISO-8601) "
              "[default: 2022-09-01T00:00:00Z].")
@click.option("--speed", default=1.0, show_default=True, type=float,
              help="Market seconds per wall-clock second for the realtime clock.")
@click.option("--clock", type=click.Choice(["realtime", "replay"]), default="realtime", show_default=True,
              help="Default world's clock: realtime plays history onto the wall clock; replay moves only "
                   "through the admin API.")
@click.option("--account", "accounts", multiple=True, metavar="KEY:SECRET:PASSPHRASE",
              help="Add an account with 10,000 USDT (besides the configured agents'); repeatable.")
@click.option("--no-agents", is_flag=True, help="Do not provision the configured agents' accounts.")
@click.option("--latency-ms", type=float, default=None, help="Fault: added latency per request.")
@click.option("--error-5xx-rate", type=float, default=None, callback=_rate("--error-5xx-rate"),
              help="Fault: share of requests answered HTTP 500 (code 50026).")
@click.option("--rate-limit-rate", type=float, default=None, callback=_rate("--rate-limit-rate"),
              help="Fault: share of requests answered HTTP 429 (code 50011).")
@click.option("--lost-response-rate", type=float, default=None, callback=_rate("--lost-response-rate"),
              help="Fault: share of order placements executed but answered by a dropped connection.")
@click.option("--fault-seed", type=int, default=0, show_default=True, help="Seed of the fault RNG.")
def sim(host: str, port: int, data_paths: tuple[str, ...], start: str | None, speed: float, clock: str,
        accounts: tuple[str, ...], no_agents: bool, latency_ms: float | None, error_5xx_rate: float | None,
        rate_limit_rate: float | None, lost_response_rate: float | None, fault_seed: int) -> None:
    """Run the local OKX v5 REST simulator that ccxt trades against as it trades against OKX demo.

    Point ccxt at it with set_sandbox_mode(True) and then urls['api'] = {'rest': 'http://HOST:PORT'}.
    Each configured agent gets an account of its initial equity; --account adds more.
    """
    from okxlab.simulator import AccountSpec, Faults, SimServer, Simulator
    from okxlab.simulator.accounts import mask_key
    from okxlab.simulator.clock import iso, parse_time
    from okxlab.simulator.token import TOKEN_HEADER, server_token

    if speed <= 0:
        raise UserError(f"--speed must be positive, not {speed}")
    try:
        extra = [AccountSpec.parse(a) for a in accounts]
        start_ms = parse_time(start) if start else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    faults = Faults(latency_ms=latency_ms or 0.0, error_5xx_rate=error_5xx_rate or 0.0,
                    rate_limit_rate=rate_limit_rate or 0.0, lost_response_rate=lost_response_rate or 0.0,
                    seed=fault_seed)
    if faults.latency_ms < 0:
        raise UserError("--latency-ms must be >= 0")
    simulator = Simulator(data_paths=data_paths, agents=not no_agents, accounts=extra, default_clock=clock,
                          start=start_ms, speed=speed, faults=faults)
    try:
        token, token_where = server_token()
    except OSError as exc:
        raise UserError(f"cannot keep the admin token in the data directory: {exc.strerror or exc} "
                        "(set OKXLAB_HOME to a writable directory, or OKXLAB_SIM_ADMIN_TOKEN)") from None
    server = SimServer(simulator, host=host, port=port, admin_token=token).start()
    world = simulator.world()
    clock_text = (f"realtime from {iso(world.clock.start_ms)} at {speed:g}x" if clock == "realtime"
                  else f"replay at {iso(world.clock.start_ms)} (move it with POST /admin/worlds/default/clock)")
    click.echo(f"okxlab sim: OKX v5 simulator on {server.url} - default world: {clock_text}")
    click.echo(f"  ccxt: ex.set_sandbox_mode(True); ex.urls['api'] = {{'rest': '{server.url}'}}")
    click.echo(f"  other worlds: POST /admin/worlds, then use {server.url}/w/<world> as the REST URL")
    click.echo(f"  admin API: {server.url}/admin/... with the header {TOKEN_HEADER}; its token is {token_where}")
    for acct in world.accounts.values():  # keys are masked: they can be real ones (docker-compose passes .env)
        click.echo(f"  account {acct.name}: api key {mask_key(acct.api_key)}, {acct.initial_equity:,.0f} USDT")
    for inst_id, rng in simulator.market.ranges().items():
        click.echo(f"  data {inst_id}: {iso(rng['start'])[:16]} -> {iso(rng['end'])[:16]} UTC")
    if faults.active:
        click.echo(f"  faults: {faults.to_dict()}")
    click.echo("Press Ctrl-C to stop.", nl=True)
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        click.echo("okxlab sim: stopped")
    finally:
        server.stop()
