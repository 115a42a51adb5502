"""A ccxt `okx` exchange pointed at the simulator, configured exactly as for OKX demo trading."""

from __future__ import annotations

from typing import Any

import ccxt


def ccxt_okx(base_url: str, api_key: str, secret: str, passphrase: str, **options: Any) -> ccxt.okx:
    """Unmodified ccxt.okx in sandbox mode (x-simulated-trading: 1) with its REST URL set to `base_url`
    (a SimServer's `.url` or `.world_url(name)`). Extra keyword arguments go into ccxt's config."""
    exchange = ccxt.okx({"apiKey": api_key, "secret": secret, "password": passphrase, **options})
    exchange.set_sandbox_mode(True)  # first: it replaces urls['api']
    exchange.urls["api"] = {"rest": base_url.rstrip("/")}
    return exchange
