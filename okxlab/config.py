"""Settings: one TOML file for agents and limits, environment variables for URLs and secrets.

Where things are found (documented in the README):
- config file: `$OKXLAB_CONFIG`, else `./okxlab.toml`, else the packaged default (okxlab/data/okxlab.default.toml)
- data directory: `$OKXLAB_HOME`, else `./okxlab-data` (the embedded SQLite database and the reports live here)
- database: `$OKXLAB_DATABASE_URL`, else `sqlite:///<data directory>/okxlab.sqlite`
- broker: `$OKXLAB_BROKER_URL`, else the in-process broker (`memory://`)

Every key of the file is typed in okxlab/config_schema.py and checked when the file is read: a mistake is one
ConfigError line naming the file, the key and what is wrong, never a failure later in every run.

Environment variables (locations, URLs, switches, timeouts) are typed and checked in okxlab/settings.py; the
location functions below read them from there. Secrets the config names by variable (exchange and LLM keys)
are read from the environment at the moment they are needed, and are never stored in any structure that is
logged or written.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from okxlab.errors import ConfigError
from okxlab.risk.limits import LimitsError, RiskLimits, build_limits
from okxlab.settings import DEFAULT_BROKER_TAG, DEFAULT_SIM_URL
from okxlab.settings import current as settings


@dataclass(frozen=True)
class Credentials:
    api_key: str
    secret: str
    passphrase: str

    def __repr__(self) -> str:  # never print secrets by accident
        return f"Credentials(api_key={self.api_key[:4]}…)"


def sim_credentials(agent: str) -> Credentials:
    """Credentials for an agent's account on the local simulator when none are configured.

    Derived from the agent's name so the simulator and the pipeline agree without any shared state. They
    protect nothing (the simulator holds paper money on loopback) and are refused by real OKX.
    """
    digest = hashlib.sha256(f"okxlab-sim:{agent}".encode()).hexdigest()
    return Credentials(api_key=f"sim-{agent}-{digest[:8]}", secret=digest[8:40], passphrase="okxlab-sim")


@dataclass(frozen=True)
class AgentConfig:
    name: str
    symbols: tuple[str, ...]
    planner: str  # "llm" | "strategy"
    description: str = ""
    bar: str = "4H"
    llm: dict[str, Any] = field(default_factory=dict)  # provider, model, base_url, api_key_env, ...
    strategy: str | None = None  # "builtin:NAME" or a path to a strategy JSON document
    params: dict[str, Any] = field(default_factory=dict)  # overrides for the strategy's parameters
    offline_fallback: str | None = None  # strategy used by LLM agents when offline planners are requested
    okx: dict[str, str] = field(default_factory=dict)  # api_key_env, secret_env, passphrase_env
    mode: str | None = None  # per-agent exchange mode override
    limits: RiskLimits = field(default_factory=RiskLimits)
    initial_equity: float = 10_000.0

    def credentials(self, mode: str) -> Credentials:
        """The agent's exchange credentials for `mode`, from the environment variables the config names."""
        names = [self.okx.get(k) for k in ("api_key_env", "secret_env", "passphrase_env")]
        values = [os.environ.get(n) if n else None for n in names]
        if all(values):
            return Credentials(*values)  # type: ignore[arg-type]
        if mode == "sim":
            return sim_credentials(self.name)
        missing = [n or f"agents.okx.{k}" for n, v, k in zip(names, values, ("api_key_env", "secret_env", "passphrase_env"), strict=True) if not v]
        raise ConfigError(
            f"agent {self.name}: OKX {mode} trading needs credentials; set {', '.join(missing)} "
            f"(names come from [agents.okx] in the config file)"
        )


@dataclass(frozen=True)
class Config:
    path: str  # where it was read from ("<packaged default>" for the built-in one)
    agents: tuple[AgentConfig, ...]
    exchange: dict[str, Any]
    pipeline: dict[str, Any]
    risk: dict[str, Any]
    llm: dict[str, Any]
    review: dict[str, Any]
    raw: dict[str, Any]

    def agent(self, name: str) -> AgentConfig:
        for a in self.agents:
            if a.name == name:
                return a
        from okxlab.errors import NotFound

        raise NotFound(f"unknown agent {name!r}; configured agents: {', '.join(a.name for a in self.agents)}")

    @cached_property
    def agent_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.agents)

    # ---- exchange -------------------------------------------------------------------------------------
    def exchange_mode(self, agent: AgentConfig | None = None) -> str:
        # The file's and the agent's modes were checked when the file was read; OKX_MODE by the settings.
        return (agent.mode if agent and agent.mode else None) or settings().okx_mode or self.exchange.get("mode", "sim")

    @property
    def sim_url(self) -> str:
        return settings().sim_url or self.exchange.get("sim_url", DEFAULT_SIM_URL)

    @property
    def broker_tag(self) -> str:
        return settings().broker_tag or self.exchange.get("broker_tag") or DEFAULT_BROKER_TAG

    # ---- pipeline -------------------------------------------------------------------------------------
    @property
    def candles_per_symbol(self) -> int:
        return int(self.pipeline.get("candles", 150))


def _packaged_default() -> str:
    return resources.files("okxlab.data").joinpath("okxlab.default.toml").read_text()


def config_path() -> str | None:
    """The user's config file, or None for the packaged default."""
    env = settings().config
    if env:
        return str(env)
    return "okxlab.toml" if Path("okxlab.toml").is_file() else None


def parse_config(text: str, where: str) -> Config:
    """Read and check a whole config; any mistake is one ConfigError line naming `where`, the key and the problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    from pydantic import ValidationError

    from okxlab import config_schema

    try:
        checked = config_schema.validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {config_schema.explain(exc, raw)}") from None
    # Tables with their own rules, checked where those rules live.
    from okxlab.config_schema import ReviewSettings
    from okxlab.planning.providers import parse_llm_settings, parse_prices

    try:
        build_limits(checked.risk)
    except LimitsError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        parse_prices(checked.llm.prices)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    ReviewSettings.from_table(checked.review, where)
    agents = []
    for index, entry in enumerate(checked.agents):
        label = f"{where}: agents[{index}] ({entry.name})"
        if entry.planner == "llm":
            # Settings are checked when the config is read; API keys only when a planner is built.
            try:
                parse_llm_settings(entry.name, entry.llm or {})
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        try:
            limits = build_limits(checked.risk, entry.risk)
        except LimitsError as exc:
            raise ConfigError(f"{label}: {exc}") from None
        agents.append(AgentConfig(
            name=entry.name,
            symbols=tuple(entry.symbols),
            planner=entry.planner,
            description=entry.description,
            bar=entry.bar,
            llm=dict(entry.llm or {}),
            strategy=entry.strategy,
            params=dict(entry.params),
            offline_fallback=entry.offline_fallback,
            okx=entry.okx.model_dump(exclude_none=True),
            mode=entry.mode,
            limits=limits,
            initial_equity=float(entry.initial_equity),
        ))
    return Config(
        path=where,
        agents=tuple(agents),
        exchange=dict(raw.get("exchange", {})),
        pipeline=dict(raw.get("pipeline", {})),
        risk=dict(checked.risk),
        llm=dict(raw.get("llm", {})),
        review=dict(checked.review),
        raw=raw,
    )


def load_config(path: str | None = None) -> Config:
    path = path or config_path()
    if path is None:
        return parse_config(_packaged_default(), "<packaged default config>")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (set OKXLAB_CONFIG or create ./okxlab.toml)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                          f"{exc.start}); a TOML file must be UTF-8") from None
    return parse_config(text, path)


# ---- locations (typed and checked in okxlab/settings.py) ----------------------------------------------------

def home_dir() -> Path:
    return settings().home_dir


def database_url() -> str:
    return settings().database


def broker_url() -> str:
    return settings().broker


def reports_dir() -> Path:
    return settings().reports


def live_trading_enabled() -> bool:
    """The live switch: exactly `true` turns it on; unset, empty or `false` leave it off. Anything else is refused
    (ConfigError) rather than guessed at, so a near-miss ("TRUE", "1", "yes") never decides whether real money
    trades."""
    return settings().live
