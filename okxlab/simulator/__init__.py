"""The local OKX v5 REST simulator: a product feature that unmodified ccxt trades against.

In-process:  Simulator (data + worlds), World (clock, accounts, matching; `World.call` serves an endpoint)
Over HTTP:   SimServer(Simulator(...)).start() -> .url / .world_url(name) / .admin / .stop()
Admin:       AdminClient(url) for /admin/... ; ccxt_okx(url, key, secret, passphrase) for a ready client.
See docs/simulator.md.
"""

from okxlab.simulator.admin import AdminClient, SimAdminAuthError, SimAdminError
from okxlab.simulator.client import ccxt_okx
from okxlab.simulator.errors import OkxError
from okxlab.simulator.faults import Faults
from okxlab.simulator.market import BookModel, MarketData
from okxlab.simulator.server import SimServer
from okxlab.simulator.simulator import DEFAULT_WORLD, AccountSpec, Simulator, default_start
from okxlab.simulator.world import World

__all__ = [
    "DEFAULT_WORLD", "AccountSpec", "AdminClient", "BookModel", "Faults", "MarketData",
    "OkxError", "SimAdminAuthError", "SimAdminError", "SimServer", "Simulator", "World", "ccxt_okx", "default_start",
]
