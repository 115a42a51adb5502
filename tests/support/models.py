"""Scripted model behaviour for pipeline tests: a deterministic 'trader' that reads the prompt it is sent."""

from __future__ import annotations

import json
import re

from tests.support.llm_server import Reply, Request, answer

KEY_ENV = "OKXLAB_TEST_LLM_KEY"
CANARY_KEY = "sk-okxlab-CANARY-7d1f0c9a2b3e4d5f"  # recognisable: searched for in everything the pipeline writes


def llm_agent_config(base_url: str, name: str = "scripted") -> str:
    return f"""
[[agents]]
name = "{name}"
planner = "llm"
symbols = ["BTC-USDT-SWAP"]
[agents.llm]
provider = "openai_compatible"
base_url = "{base_url}"
model = "test-model"
api_key_env = "{KEY_ENV}"
timeout = 5
max_retries = 0
"""


def _last_price(prompt: str, symbol: str) -> float:
    block = prompt.split(f"### {symbol}", 1)[1]
    return float(re.search(r"last: ([0-9.]+)", block).group(1))


def trader(request: Request) -> Reply:
    """Open long every 4th invocation (stop 3% below), close two runs later, hold otherwise."""
    prompt = request.last_user_message
    invocation = int(re.search(r"invocation: (\d+)", prompt).group(1))
    last = _last_price(prompt, "BTC-USDT-SWAP")
    decision = {"symbol": "BTC-USDT-SWAP", "action": "hold", "confidence": 0.5, "rationale": "waiting"}
    if invocation % 4 == 0:
        decision = {"symbol": "BTC-USDT-SWAP", "action": "open_long", "size": {"mode": "risk_usdt", "value": 50},
                    "leverage": 3, "order_type": "market", "stop_loss": round(last * 0.97, 1),
                    "take_profit": round(last * 1.06, 1), "confidence": 0.6, "rationale": "scripted entry"}
    elif invocation % 4 == 2:
        decision = {"symbol": "BTC-USDT-SWAP", "action": "close", "confidence": 0.6, "rationale": "scripted exit"}
    return answer(json.dumps({"schema_version": "okxlab.plan.v1", "decisions": [decision]}))
