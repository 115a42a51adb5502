"""LLM providers: their OpenAI-compatible defaults, per-agent settings, API keys and the price table.

Every provider is spoken to through the `openai` SDK's chat completions; only the base URL, the model names,
the environment variable holding the key and JSON-mode support differ. Sources (checked when written):
- DeepSeek: https://api-docs.deepseek.com/ (base URL https://api.deepseek.com; models deepseek-chat,
  deepseek-reasoner, deepseek-v4-flash, deepseek-v4-pro) and its JSON Output guide
  (response_format {"type": "json_object"}; the prompt must contain the word "json").
- Qwen: Alibaba Cloud Model Studio, "OpenAI compatibility" and "structured output" pages (base URL
  https://dashscope.aliyuncs.com/compatible-mode/v1, -intl for Singapore, -us for Virginia; key in
  DASHSCOPE_API_KEY; JSON Object mode on most Qwen models in non-thinking mode, prompt must contain "JSON").
- Anything else speaking the chat completions API (Ollama, vLLM, OpenRouter): `openai_compatible`, with an
  explicit base_url; JSON mode is off unless the config turns it on, since support varies by server/model.

The API key itself never lives on any of these objects: settings carry the NAME of the variable, and
`require_api_key` reads the value only when a client is about to be built.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from okxlab.errors import ConfigError


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str | None  # None: the config must give one
    api_key_env: str | None  # conventional variable; None: the config must name one (or the server needs none)
    json_mode: bool  # default for `json_mode` when the config does not say
    models: tuple[str, ...]  # documented model names (others are allowed: providers add models often)
    regions: Mapping[str, str] | None = None  # region name -> base URL
    docs: str = ""


DEEPSEEK = Provider(
    name="deepseek",
    base_url="https://api.deepseek.com",
    api_key_env="DEEPSEEK_API_KEY",
    json_mode=True,
    models=("deepseek-flash", "deepseek-v4-pro", "deepseek-chat", "deepseek-reasoner"),  # the last two: legacy aliases
    docs="https://api-docs.deepseek.com/",
)

QWEN = Provider(
    name="qwen",
    base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
    api_key_env="DASHSCOPE_API_KEY",
    json_mode=True,
    models=("qwen-plus", "qwen-max", "qwen-turbo", "qwen-flash", "qwen3-max"),
    # Keys are region-specific: a Beijing key does not work in Singapore.
    regions={
        "cn": "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "intl": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        "us": "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
    },
    docs="https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope",
)

OPENAI_COMPATIBLE = Provider(
    name="openai_compatible",
    base_url=None,
    api_key_env=None,
    json_mode=False,
    models=(),
    docs="any server implementing POST {base_url}/chat/completions",
)

PROVIDERS: dict[str, Provider] = {p.name: p for p in (DEEPSEEK, QWEN, OPENAI_COMPATIBLE)}

# Sent when an openai_compatible server needs no key (a local Ollama or vLLM): the SDK insists on one.
NO_KEY = "no-key"

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_KEYS = {"provider", "model", "base_url", "api_key_env", "temperature", "max_tokens", "timeout", "max_retries",
         "json_mode", "region"}


@dataclass(frozen=True)
class LlmSettings:
    """How one agent talks to its model. Holds the key's variable NAME, never the key."""

    agent: str
    provider: str
    model: str
    base_url: str
    api_key_env: str | None  # None only for openai_compatible servers that need no key
    temperature: float = 0.2
    max_tokens: int = 1200
    timeout: float = 60.0  # seconds per HTTP attempt
    max_retries: int = 2  # the SDK's own retries (429, 408, 409, 5xx, timeouts, connection errors)
    json_mode: bool = False

    @property
    def label(self) -> str:
        """The price-table and planner key, e.g. "deepseek/deepseek-chat"."""
        return f"{self.provider}/{self.model}"


def _number(agent: str, key: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> Any:
    where = f"agent {agent}: [agents.llm] {key}"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        kind = "a whole number" if integer else "a number"
        raise ConfigError(f"{where} must be {kind} between {lo:g} and {hi:g}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ConfigError(f"{where} must be between {lo:g} and {hi:g} (got {value:g})")
    return int(value) if integer else float(value)


def parse_llm_settings(agent_name: str, table: Mapping[str, Any]) -> LlmSettings:
    """Validate an agent's `[agents.llm]` table; any problem is one ConfigError line naming the agent and key."""
    where = f"agent {agent_name}: [agents.llm]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    provider_name = table.get("provider")
    provider = PROVIDERS.get(provider_name) if isinstance(provider_name, str) else None
    if provider is None:
        raise ConfigError(f"{where} provider must be one of {', '.join(PROVIDERS)}, not {provider_name!r}")
    model = table.get("model")
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        hint = f" (e.g. {', '.join(provider.models[:2])})" if provider.models else ""
        raise ConfigError(f"{where} model must be the provider's model name{hint}")

    base_url = table.get("base_url")
    region = table.get("region")
    if region is not None:
        if provider.regions is None:
            raise ConfigError(f"{where} region applies only to provider qwen")
        if region not in provider.regions:
            raise ConfigError(f"{where} region must be one of {', '.join(provider.regions)}, not {region!r}")
        if base_url is not None:
            raise ConfigError(f"{where} give either region or base_url, not both")
        base_url = provider.regions[region]
    if base_url is None:
        base_url = provider.base_url
    if base_url is None:
        raise ConfigError(f"{where} base_url is required for provider {provider.name} (e.g. http://127.0.0.1:11434/v1)")
    if not isinstance(base_url, str) or not re.match(r"^https?://[^\s/]+", base_url):
        raise ConfigError(f"{where} base_url must be an http(s) URL")
    if "@" in base_url.split("/")[2]:
        # Credentials in the URL would end up in logs and the audit trail; keys belong in the environment.
        raise ConfigError(f"{where} base_url must not contain credentials; name the key's variable in api_key_env")

    api_key_env = table.get("api_key_env", provider.api_key_env)
    if api_key_env is not None and (not isinstance(api_key_env, str) or not _ENV_NAME.match(api_key_env)):
        # Never echo the value: a common mistake is pasting the key itself here.
        raise ConfigError(
            f"{where} api_key_env must be the NAME of an environment variable (letters, digits, _), not the key itself"
        )

    json_mode = table.get("json_mode", provider.json_mode)
    if not isinstance(json_mode, bool):
        raise ConfigError(f"{where} json_mode must be true or false")
    return LlmSettings(
        agent=agent_name,
        provider=provider.name,
        model=model.strip(),
        base_url=base_url.rstrip("/"),
        api_key_env=api_key_env,
        temperature=_number(agent_name, "temperature", table.get("temperature", 0.2), 0, 2),
        max_tokens=_number(agent_name, "max_tokens", table.get("max_tokens", 1200), 16, 65536, integer=True),
        timeout=_number(agent_name, "timeout", table.get("timeout", 60), 0.01, 3600),
        max_retries=_number(agent_name, "max_retries", table.get("max_retries", 2), 0, 10, integer=True),
        json_mode=json_mode,
    )


def require_api_key(settings: LlmSettings) -> str:
    """The agent's API key from the environment, or a ConfigError saying which variable to set."""
    if settings.api_key_env is None:
        return NO_KEY
    key = os.environ.get(settings.api_key_env, "").strip()
    if not key:
        raise ConfigError(
            f"agent {settings.agent}: {settings.api_key_env} is not set; export it where the workers run "
            "(a replay can use the agent's offline_fallback with --offline-planners)"
        )
    return key


# ---- price table ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Price:
    input: float  # USD per million prompt tokens
    output: float  # USD per million completion tokens


def parse_prices(table: Mapping[str, Any] | None) -> dict[str, Price]:
    """`[llm.prices]`: "provider/model" -> {input, output} in USD per million tokens."""
    prices: dict[str, Price] = {}
    for label, entry in (table or {}).items():
        where = f"[llm.prices] {label!r}"
        if not isinstance(label, str) or label.count("/") < 1:
            raise ConfigError(f"{where}: keys are \"provider/model\", e.g. \"deepseek/deepseek-chat\"")
        if not isinstance(entry, Mapping) or set(entry) != {"input", "output"}:
            raise ConfigError(f"{where} must be {{ input = USD per 1M tokens, output = USD per 1M tokens }}")
        values = []
        for side in ("input", "output"):
            v = entry[side]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{where}: {side} must be a non-negative number (USD per million tokens)")
            values.append(float(v))
        prices[label] = Price(*values)
    return prices


def estimate_cost(prices: Mapping[str, Price], label: str, tokens_in: int | None, tokens_out: int | None) -> float | None:
    """USD for one call, or None when the model is not in the price table or usage is unknown."""
    price = prices.get(label)
    if price is None or tokens_in is None or tokens_out is None:
        return None
    return round((tokens_in * price.input + tokens_out * price.output) / 1_000_000, 8)
