"""Simulator fixtures: one HTTP server per session (ephemeral port), a fresh replay world per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import ccxt
import pytest

from okxlab.simulator import AdminClient, MarketData, SimServer, Simulator, World, ccxt_okx

_names = itertools.count(1)


@pytest.fixture(scope="session")
def market() -> MarketData:
    return MarketData.load()


@pytest.fixture(scope="session")
def server(market: MarketData) -> Iterator[SimServer]:
    sim = Simulator(market, agents=False, default_clock="replay")
    with SimServer(sim).start() as srv:
        yield srv


@pytest.fixture(scope="session")
def admin(server: SimServer) -> AdminClient:
    return server.admin


@dataclass
class SimWorld:
    """A replay world made for one test, with one account, reachable over HTTP."""

    name: str
    url: str
    key: str
    secret: str
    passphrase: str
    server: SimServer
    admin: AdminClient

    @property
    def engine(self) -> World:
        return self.server.simulator.world(self.name)

    def exchange(self, **options) -> ccxt.okx:
        return ccxt_okx(self.url, self.key, self.secret, self.passphrase, enableRateLimit=False, **options)

    def set_clock(self, ts: str | int) -> dict:
        return self.admin.set_clock(self.name, ts)


def make_world(server: SimServer, admin: AdminClient, start: str, **kwargs) -> SimWorld:
    n = next(_names)
    name, key, secret, passphrase = f"t{n}", f"key{n}", f"secret{n}", f"Pass{n}"
    admin.create_world(name, clock="replay", start=start, agents=False,
                       accounts=[{"api_key": key, "secret": secret, "passphrase": passphrase}], **kwargs)
    return SimWorld(name, server.world_url(name), key, secret, passphrase, server, admin)


@pytest.fixture
def new_world(server: SimServer, admin: AdminClient):
    """Factory: new_world(start_iso, **create_world kwargs) -> SimWorld."""
    created: list[str] = []

    def factory(start: str = "2022-09-13T08:00:00Z", **kwargs) -> SimWorld:
        w = make_world(server, admin, start, **kwargs)
        created.append(w.name)
        return w

    yield factory
    for name in created:
        admin.delete_world(name)
