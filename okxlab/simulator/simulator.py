"""The Simulator: shared market data plus named worlds, each with its own clock, accounts and orders."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from okxlab.config import Config, load_config
from okxlab.simulator.clock import RealtimeClock, ReplayClock, parse_time
from okxlab.simulator.faults import Faults
from okxlab.simulator.market import MarketData
from okxlab.simulator.state import StateStore
from okxlab.simulator.world import World

DEFAULT_WORLD = "default"
_HOUR = 3_600_000
_WORLD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_SPEED = 1_000_000.0  # market seconds per wall second; more would overflow nothing useful
MAX_EQUITY = 1e12


@dataclass(frozen=True)
class AccountSpec:
    api_key: str
    secret: str
    passphrase: str
    equity: float = 10_000.0
    label: str = ""

    @classmethod
    def parse(cls, text: str, equity: float = 10_000.0) -> AccountSpec:
        """From the CLI form KEY:SECRET:PASSPHRASE."""
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):  # the text holds secrets: never echoed
            raise ValueError(f"an --account must be KEY:SECRET:PASSPHRASE, three non-empty parts separated by ':' "
                             f"(got {len(parts)} part(s))")
        return cls(parts[0], parts[1], parts[2], equity)  # no label: it would show the key in full

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AccountSpec:
        try:
            key, secret, passphrase = (str(data[k]) for k in ("api_key", "secret", "passphrase"))
        except (KeyError, TypeError):
            raise ValueError("an account needs api_key, secret and passphrase") from None
        equity = data.get("equity", 10_000.0)
        if isinstance(equity, bool) or not isinstance(equity, int | float) or not 0 < equity <= MAX_EQUITY:
            raise ValueError(f"equity must be a number above 0 and at most {MAX_EQUITY:,.0f}")
        if not (key and secret and passphrase):
            raise ValueError("api_key, secret and passphrase must not be empty")
        label = str(data.get("label", ""))
        if max(len(key), len(secret), len(passphrase)) > 256 or len(label) > 64:
            raise ValueError("api_key, secret and passphrase are at most 256 characters, a label at most 64")
        return cls(key, secret, passphrase, float(equity), label)


def default_start(market: MarketData, symbols: Iterable[str] = (), warmup_ms: int = 0) -> tuple[int, str]:
    """(start, why) of a world when none is given: the first time every one of `symbols` (those with data;
    default every perpetual with data) has data, plus `warmup_ms` of history when their common stretch is that
    long, on the hour. Computed from the data, so new or given candles move it."""
    ranges = market.ranges()
    chosen = sorted({s for s in symbols if s in ranges}) or \
        sorted(k for k in ranges if market.specs[k].is_swap) or sorted(ranges)
    if not chosen:
        return 0, "no instrument has data"
    first = max(ranges[s]["start"] for s in chosen)
    last = min(ranges[s]["end"] for s in chosen)
    why = f"the first time {', '.join(chosen)} all have data"
    start = first
    if warmup_ms and first + warmup_ms <= last:
        start, why = first + warmup_ms, f"{why}, after {warmup_ms / 86_400_000:g} days of history"
    elif first > last:
        why = f"{', '.join(chosen)} have no stretch of data in common; the last of them begins here"
    return -(-start // _HOUR) * _HOUR, why


def _needs(config: Config) -> tuple[list[str], int]:
    """The instruments the configured agents trade, and the history their runs read (candles x the longest bar)."""
    from okxlab.marketdata.bars import bar_ms

    symbols = sorted({s for a in config.agents for s in a.symbols})
    longest = max((bar_ms(a.bar) for a in config.agents), default=0)
    return symbols, config.candles_per_symbol * longest


def agent_accounts(config: Config | None = None) -> list[AccountSpec]:
    """One account per configured agent, with the credentials the pipeline will use in sim mode."""
    config = config or load_config()
    out = []
    for agent in config.agents:
        creds = agent.credentials("sim")
        out.append(AccountSpec(creds.api_key, creds.secret, creds.passphrase, agent.initial_equity, agent.name))
    return out


class Simulator:
    """Market data (read-only, shared) and worlds. Not thread-safe by itself: hold `lock` when touching
    worlds from another thread while a SimServer serves them."""

    def __init__(self, market: MarketData | None = None, *, data_paths: Iterable[str | Path] = (),
                 instrument_paths: Iterable[str | Path] = (),
                 agents: bool | Config = True, accounts: Iterable[AccountSpec] = (),
                 default_clock: str = "realtime", start: str | int | None = None, speed: float = 1.0,
                 faults: Faults | None = None, state: str | Path | None = None, fresh: bool = False):
        """`state`: a file to keep every world in (okxlab/simulator/state.py), resumed when it holds some:
        then `default_clock`, `start`, `speed` and `faults` apply only to a default world made anew; `fresh`
        starts that file over. Without it (tests, `okxlab demo`, replays) nothing is written anywhere."""
        self.market = market or MarketData.load(tuple(data_paths), instrument_paths=tuple(instrument_paths))
        config = load_config() if agents is True else agents if agents is not False else None
        self.agent_specs = agent_accounts(config) if config is not None else []
        self.extra_specs = list(accounts)  # added to every world (the CLI's --account)
        symbols, warmup = _needs(config) if config is not None and config.agents else ([], 0)
        self.default_start, self.default_start_why = default_start(self.market, symbols, warmup)
        self.worlds: dict[str, World] = {}
        self.lock = threading.RLock()
        self.store: StateStore | None = None
        self.resumed = False
        if state is not None:
            self.store = StateStore(Path(state), fresh=fresh)
            self.store.config_credentials = {s.api_key: (s.secret, s.passphrase)
                                             for s in [*self.agent_specs, *self.extra_specs]}
            self.worlds = self.store.load(self.market)
            self.resumed = bool(self.worlds)
            for world in self.worlds.values():
                self._provision(world)
                self.store.save(world)  # accounts added since (a new agent, another --account)
        if DEFAULT_WORLD not in self.worlds:
            self.create_world(DEFAULT_WORLD, clock=default_clock, start=start, speed=speed, faults=faults)

    def _provision(self, world: World, accounts: Iterable[AccountSpec] = ()) -> None:
        for spec in [*(self.agent_specs if world.agents else []), *self.extra_specs, *accounts]:
            if spec.api_key not in world.accounts:
                world.add_account(spec.api_key, spec.secret, spec.passphrase, spec.equity, spec.label)

    def _id_base(self) -> int:
        """Where a new world's ids start when the simulator keeps its state: above every id this state (and the
        one it replaced, --fresh) handed out, and above wall-clock ms x 1000, so even a state deleted by hand
        and started again does not repeat an id (unless it had handed out 1000 ids per ms since)."""
        if self.store is None:
            return 0
        used = max((w.max_id() + 1 for w in self.worlds.values()), default=0)
        return max(int(time.time() * 1000) * 1000, self.store.id_floor, used)

    def save(self, names: Iterable[str] | None = None, *, force: bool = False) -> None:
        """Write the worlds' changes to the state file (nothing without one). The server calls it after every
        request, before answering; `force` for requests that changed something the revision does not show."""
        if self.store is None:
            return
        for name in list(self.worlds) if names is None else names:
            world = self.worlds.get(name)
            if world is not None:
                self.store.save(world, force=force)

    def close(self) -> None:
        """Release the state file (another Simulator may then open it)."""
        if self.store is not None:
            self.store.close()
            self.store = None

    def create_world(self, name: str, clock: str = "replay", start: str | int | None = None, speed: float = 1.0,
                     accounts: Iterable[AccountSpec] = (), agents: bool = True,
                     faults: Faults | None = None) -> World:
        """A new world. Its accounts: the configured agents' (unless agents=False), the simulator's
        extra accounts, and `accounts`. Raises ValueError for a bad name, clock or start."""
        if not isinstance(name, str) or not _WORLD_NAME.fullmatch(name):
            raise ValueError("a world name is 1-64 letters, digits, '.', '-' or '_'")
        if name in self.worlds:
            raise ValueError(f"world {name!r} already exists")
        start_ms = parse_time(start) if start is not None else self.default_start
        if clock == "replay":
            world_clock: ReplayClock | RealtimeClock = ReplayClock(start_ms)
        elif clock == "realtime":
            if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0 < speed <= MAX_SPEED:
                raise ValueError(f"speed must be a number above 0 and at most {MAX_SPEED:,.0f}")
            world_clock = RealtimeClock(start_ms, float(speed))
        else:
            raise ValueError(f"clock must be 'replay' or 'realtime', not {clock!r}")
        world = World(name, self.market, world_clock, faults, id_base=self._id_base())
        world.agents = agents
        self._provision(world, accounts)
        self.worlds[name] = world
        if self.store is not None:
            self.store.save(world, force=True)
        return world

    def world(self, name: str = DEFAULT_WORLD) -> World:
        try:
            return self.worlds[name]
        except KeyError:
            raise KeyError(f"no world named {name!r}") from None

    def delete_world(self, name: str) -> None:
        if name == DEFAULT_WORLD:
            raise ValueError("the default world cannot be deleted")
        self.world(name)
        del self.worlds[name]
        if self.store is not None:
            self.store.delete(name)

