"""ccxt clients for OKX: the local simulator, OKX demo trading, or (behind a switch) live.

The venue is a function of the book an account belongs to (`venue_for_book`):
- `sim` (and `replay:N`): ccxt's okx class, unmodified, in sandbox mode and pointed at the simulator's URL.
- `demo`: OKX demo trading — sandbox mode, which sends `x-simulated-trading: 1` on every request.
- `live`: refused unless LIVE_TRADING_ENABLED=true is set in the environment.

Clients are cached per thread (a ccxt instance is not safe to share between threads) and per
(agent, mode, URL), so markets are loaded once per worker thread rather than once per run.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import ccxt
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import Session, sessionmaker
from urllib3.util.retry import Retry

from okxlab.config import AgentConfig, Config, live_trading_enabled
from okxlab.domain import Instrument
from okxlab.errors import ConfigError
from okxlab.settings import current as settings

ENV_MISMATCH_CODE = "50101"  # OKX: "APIKey does not match current environment."

# Reads (GET: market data, balances, the order lookups by clOrdId, fills) that OKX answers with a 5xx or a
# rate limit (429) are asked again by urllib3, up to three times with a short backoff (or OKX's Retry-After):
# they change nothing at the exchange, and a transient error would otherwise fail the whole stage and redo
# all its calls. Writes (POST: orders, leverage) are never repeated here: the fate of an order whose POST
# failed is settled by looking it up (orders.py).
SECRET_HEADERS = frozenset({"OK-ACCESS-KEY", "OK-ACCESS-PASSPHRASE", "OK-ACCESS-SIGN"})


class _MaskSecretHeaders(logging.Filter):
    """ccxt logs every request's headers at DEBUG, the API key and passphrase among them: those are masked, so
    a worker run with --loglevel DEBUG writes no credential to its log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, dict) for a in record.args):
            record.args = tuple({k: "***" if str(k).upper() in SECRET_HEADERS else v for k, v in a.items()}
                                if isinstance(a, dict) else a for a in record.args)
        return True


logging.getLogger("ccxt.base.exchange").addFilter(_MaskSecretHeaders())

READ_RETRY = Retry(total=3, connect=2, read=0, status=3, backoff_factor=0.2,
                   status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                   respect_retry_after_header=True, raise_on_status=False)


@dataclass(frozen=True)
class Venue:
    mode: str  # sim | demo | live
    url: str | None  # REST base URL for sim (a simulator world); None for OKX itself

    @property
    def label(self) -> str:
        return f"{self.mode} ({self.url})" if self.url else self.mode


BOOKS = ("sim", "demo", "live")


def venue_for_book(config: Config, book: str, replay_url: str | None = None) -> Venue:
    """Where a book's account lives. The book decides, always: `sim` → the simulator, `demo` → OKX demo
    trading, `live` → OKX live (only with the switch), `replay:N` → that replay's simulator world (its
    `replay_url`). The configured mode only chooses which book new runs are dispatched to, never where an
    existing book's orders go."""
    if book.startswith("replay:"):
        if not replay_url:
            from okxlab.errors import NotFound

            raise NotFound(f"book {book} has no simulator world (the replay is unknown or never had one)")
        return Venue("sim", replay_url.rstrip("/"))
    if book not in BOOKS:
        raise ConfigError(f"book {book!r} is not one of {', '.join(BOOKS)} or replay:<id>")
    if book == "live" and not live_trading_enabled():
        raise ConfigError(
            "book live: live trading is disabled; okxlab trades live only when LIVE_TRADING_ENABLED=true "
            "is set (use OKX_MODE=demo for OKX demo trading)"
        )
    return Venue(book, config.sim_url.rstrip("/") if book == "sim" else None)


def request_timeout_ms() -> int:
    """ccxt's timeout per request: 10 s, or OKXLAB_EXCHANGE_TIMEOUT_MS."""
    return settings().exchange_timeout_ms


def new_client(config: Config, agent: AgentConfig, venue: Venue, *, timeout_ms: int | None = None) -> ccxt.okx:
    creds = agent.credentials(venue.mode)
    tag = config.broker_tag
    client = ccxt.okx({
        "apiKey": creds.api_key,
        "secret": creds.secret,
        "password": creds.passphrase,
        "timeout": timeout_ms or request_timeout_ms(),
        # The simulator applies its own limits; against OKX, ccxt's limiter keeps us polite.
        "enableRateLimit": venue.mode != "sim",
        "options": {
            "brokerId": tag,  # what ccxt would inject on raw calls; okxlab always sends its own clOrdId and tag
            "defaultType": "swap",
            "fetchMarkets": {"types": ["spot", "swap"]},
        },
    })
    if venue.mode in ("sim", "demo"):
        client.set_sandbox_mode(True)  # demo header x-simulated-trading: 1
    if venue.mode == "sim":
        client.urls["api"] = {"rest": venue.url}  # after set_sandbox_mode, which resets urls['api']
    reads = HTTPAdapter(max_retries=READ_RETRY)
    client.session.mount("https://", reads)
    client.session.mount("http://", reads)
    return client


class Accounts(Protocol):
    """What an operation on an agent's account needs: the config, the database, and the exchange client of a
    book (okxlab.pipeline.env.StageEnv is one)."""

    config: Config
    sessions: sessionmaker[Session]

    def venue(self, book: str) -> Venue: ...

    def client(self, agent: AgentConfig, book: str) -> ccxt.okx: ...


class ExchangeProvider:
    """Per-thread cache of loaded ccxt clients."""

    def __init__(self, config: Config):
        self.config = config
        self._local = threading.local()

    def client(self, agent: AgentConfig, venue: Venue) -> ccxt.okx:
        cache: dict[tuple[str, str, str | None], ccxt.okx] = self._local.__dict__.setdefault("clients", {})
        key = (agent.name, venue.mode, venue.url)
        client = cache.get(key)
        if client is None:
            client = new_client(self.config, agent, venue)
            try:
                client.load_markets()
            except ccxt.AuthenticationError as exc:
                raise explain_auth_error(exc, agent, venue) from None
            cache[key] = client
        return client


def explain_auth_error(exc: Exception, agent: AgentConfig, venue: Venue) -> Exception:
    """OKX's environment-mismatch error, in words an operator can act on."""
    if ENV_MISMATCH_CODE in str(exc):
        return ConfigError(
            f"agent {agent.name}: OKX says the API key does not match the environment — a demo-trading key "
            f"must be used with OKX_MODE=demo and a live key with OKX_MODE=live (now: {venue.mode})"
        )
    return exc


def market_for(client: ccxt.okx, inst_id: str) -> dict[str, Any]:
    markets = client.markets_by_id.get(inst_id) if client.markets_by_id else None
    if not markets:
        raise ConfigError(f"instrument {inst_id} is not listed by the exchange")
    return markets[0]


def instrument_from_market(market: dict[str, Any]) -> Instrument:
    info = market.get("info") or {}
    is_swap = bool(market.get("swap"))
    return Instrument(
        inst_id=market["id"],
        inst_type="SWAP" if is_swap else "SPOT",
        base_ccy=market["base"],
        quote_ccy=market["quote"],
        ct_val=float(market.get("contractSize") or 1.0) if is_swap else 1.0,
        lot_sz=float(market["precision"]["amount"]),
        min_sz=float(market["limits"]["amount"]["min"] or market["precision"]["amount"]),
        tick_sz=float(market["precision"]["price"]),
        max_lever=float(info.get("lever") or 1) if is_swap else 1.0,
    )


def instrument_to_json(inst: Instrument) -> dict[str, Any]:
    return {"inst_id": inst.inst_id, "inst_type": inst.inst_type, "base_ccy": inst.base_ccy, "quote_ccy": inst.quote_ccy,
            "ct_val": inst.ct_val, "lot_sz": inst.lot_sz, "min_sz": inst.min_sz, "tick_sz": inst.tick_sz,
            "max_lever": inst.max_lever}


def instrument_from_json(data: dict[str, Any]) -> Instrument:
    return Instrument(**data)


def to_float(value: Any, default: float = 0.0) -> float:
    """A number from an exchange field: OKX sends strings, and empty ones for nothing."""
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def account_from_exchange(balance: dict[str, Any], positions: list[dict[str, Any]]) -> dict[str, Any]:
    """The agent's account in okxlab's terms, from ccxt's balance and positions (raw OKX fields)."""
    data = (balance.get("info") or {}).get("data") or [{}]
    info = data[0]
    usdt = next((d for d in info.get("details", []) if d.get("ccy") == "USDT"), {})
    out_positions = []
    for p in positions:
        contracts = to_float(p.get("contracts"))
        if contracts == 0:
            continue
        pinfo = p.get("info") or {}
        out_positions.append({
            "symbol": pinfo.get("instId") or p.get("symbol"),
            "side": p.get("side"),
            "contracts": abs(contracts),
            "entry_price": to_float(p.get("entryPrice")),
            "mark_price": to_float(p.get("markPrice")),
            "unrealized_pnl": to_float(p.get("unrealizedPnl")),
            "leverage": to_float(p.get("leverage"), 1.0),
            "ct_val": to_float(p.get("contractSize"), 1.0),
            "opened_at": int(pinfo["cTime"]) if str(pinfo.get("cTime", "")).isdigit() else None,
        })
    return {
        "equity": to_float(info.get("totalEq"), to_float(usdt.get("eq"))),
        "cash": to_float(usdt.get("cashBal")),
        "available": to_float(usdt.get("availEq"), to_float(usdt.get("availBal"))),
        "positions": out_positions,
    }


OKX_BAR_TO_CCXT = {"1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1H": "1h", "2H": "2h",
                   "4H": "4h", "6H": "6h", "12H": "12h", "1D": "1d"}
