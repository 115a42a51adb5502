"""Data for the planner tests: run contexts, markets, a fake key, a valid plan."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from okxlab.domain import Account, Instrument, Position, SymbolMarket
from okxlab.planning.base import PlanContext
from okxlab.planning.providers import LlmSettings, Price, parse_llm_settings
from okxlab.risk.limits import RiskLimits
from tests.support.llm_server import LlmServer

KEY_ENV = "OKXLAB_TEST_LLM_KEY"
# Recognisable, and long enough that any 8-character piece of it is unmistakable in a search.
FAKE_KEY = "sk-okxlabFAKEKEY-7d41c0e9b2a35f68-DoNotLeakMe"
SYMBOLS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP")
AS_OF = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
PRICES = {"openai_compatible/test-model": Price(input=0.5, output=2.0)}

INSTRUMENTS = {
    "BTC-USDT-SWAP": Instrument("BTC-USDT-SWAP", "SWAP", "BTC", "USDT", 0.01, 0.01, 0.01, 0.1, 100),
    "ETH-USDT-SWAP": Instrument("ETH-USDT-SWAP", "SWAP", "ETH", "USDT", 0.1, 0.01, 0.01, 0.01, 100),
}


def make_market(symbol: str, as_of: datetime = AS_OF, bars: int = 60) -> SymbolMarket:
    base = 60_000.0 if symbol.startswith("BTC") else 3_000.0
    step = timedelta(hours=4)
    first_open = as_of - step * bars
    candles = []
    for i in range(bars):
        ts = int((first_open + step * i).timestamp() * 1000)
        close = base * (1 + 0.01 * math.sin(i / 5)) + i * 0.1
        candles.append((ts, close * 0.999, close * 1.004, close * 0.995, close, 1234.5 + i))
    last = candles[-1][4]
    return SymbolMarket(
        symbol=symbol, instrument=INSTRUMENTS[symbol], as_of=as_of, last=last, bid=last - 0.1, ask=last + 0.1,
        bar="4H", candles=tuple(candles),
        features={"ema_fast": last * 1.001, "ema_slow": last * 0.998, "rsi": 56.123456789, "atr": last * 0.012,
                  "macd": 12.5, "macd_signal": 10.25, "macd_hist": 2.25, "bb_upper": last * 1.03,
                  "bb_mid": last, "bb_lower": last * 0.97},
        funding_rate=0.0001,
    )


MARKETS = {s: make_market(s) for s in SYMBOLS}


def make_account(equity: float = 10_000.0, positions: tuple[Position, ...] = ()) -> Account:
    return Account(equity=equity, cash=equity, available=equity * 0.9, positions=positions,
                   invocations=12, minutes_since_start=2880.0)


def make_ctx(agent: str = "tester", *, account: Account | None = None, limits: RiskLimits | None = None,
             fresh_llm: bool = False, markets: dict[str, SymbolMarket] | None = None,
             symbols: tuple[str, ...] = SYMBOLS) -> PlanContext:
    return PlanContext(agent=agent, run_id=f"run-{agent}", as_of=AS_OF, symbols=symbols,
                       account=account or make_account(), markets=markets if markets is not None else MARKETS,
                       limits=limits or RiskLimits(), fresh_llm=fresh_llm)


VALID_PLAN: dict[str, Any] = {
    "schema_version": "okxlab.plan.v1",
    "decisions": [
        {"symbol": "BTC-USDT-SWAP", "action": "open_long", "confidence": 0.6, "rationale": "trend up",
         "size": {"mode": "risk_usdt", "value": 50}, "leverage": 3, "order_type": "market",
         "stop_loss": 59000, "take_profit": 63000},
        {"symbol": "ETH-USDT-SWAP", "action": "hold", "confidence": 0.5, "rationale": "no edge"},
    ],
}
VALID_JSON = json.dumps(VALID_PLAN)


def settings_for(server: LlmServer, agent: str = "tester", **overrides: Any) -> LlmSettings:
    table: dict[str, Any] = {"provider": "openai_compatible", "base_url": server.base_url, "model": "test-model",
                             "api_key_env": KEY_ENV, "timeout": 5, "max_retries": 2, "json_mode": True}
    table.update(overrides)
    return parse_llm_settings(agent, table)
