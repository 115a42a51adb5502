"""The Simulator: shared market data plus named worlds, each with its own clock, accounts and orders."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from okxlab.config import Config, load_config
from okxlab.simulator.clock import RealtimeClock, ReplayClock, parse_time
from okxlab.simulator.faults import Faults
from okxlab.simulator.market import MarketData
from okxlab.simulator.world import World

DEFAULT_WORLD = "default"
DEFAULT_START = "2022-09-01T00:00:00Z"  # both perpetuals have data from here (see okxlab/data/candles)
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
                 agents: bool | Config = True, accounts: Iterable[AccountSpec] = (),
                 default_clock: str = "realtime", start: str | int | None = None, speed: float = 1.0,
                 faults: Faults | None = None):
        self.market = market or MarketData.load(tuple(data_paths))
        if agents is True:
            self.agent_specs = agent_accounts()
        elif agents is False:
            self.agent_specs = []
        else:
            self.agent_specs = agent_accounts(agents)
        self.extra_specs = list(accounts)  # added to every world (the CLI's --account)
        self.worlds: dict[str, World] = {}
        self.lock = threading.RLock()
        self.create_world(DEFAULT_WORLD, clock=default_clock, start=start, speed=speed, faults=faults)

    def create_world(self, name: str, clock: str = "replay", start: str | int | None = None, speed: float = 1.0,
                     accounts: Iterable[AccountSpec] = (), agents: bool = True,
                     faults: Faults | None = None) -> World:
        """A new world. Its accounts: the configured agents' (unless agents=False), the simulator's
        extra accounts, and `accounts`. Raises ValueError for a bad name, clock or start."""
        if not isinstance(name, str) or not _WORLD_NAME.fullmatch(name):
            raise ValueError("a world name is 1-64 letters, digits, '.', '-' or '_'")
        if name in self.worlds:
            raise ValueError(f"world {name!r} already exists")
        start_ms = parse_time(start if start is not None else DEFAULT_START)
        if clock == "replay":
            world_clock: ReplayClock | RealtimeClock = ReplayClock(start_ms)
        elif clock == "realtime":
            if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0 < speed <= MAX_SPEED:
                raise ValueError(f"speed must be a number above 0 and at most {MAX_SPEED:,.0f}")
            world_clock = RealtimeClock(start_ms, float(speed))
        else:
            raise ValueError(f"clock must be 'replay' or 'realtime', not {clock!r}")
        world = World(name, self.market, world_clock, faults)
        for spec in [*(self.agent_specs if agents else []), *self.extra_specs, *accounts]:
            if spec.api_key not in world.accounts:
                world.add_account(spec.api_key, spec.secret, spec.passphrase, spec.equity, spec.label)
        self.worlds[name] = world
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

