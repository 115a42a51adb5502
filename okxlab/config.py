"""Settings: one TOML file for agents and limits, environment variables for URLs and secrets.

Where things are found (documented in the README):
- config file: `$OKXLAB_CONFIG`, else `./okxlab.toml`, else the packaged default (okxlab/data/okxlab.default.toml)
- data directory: `$OKXLAB_HOME`, else `./okxlab-data` (the embedded SQLite database and the reports live here)
- database: `$OKXLAB_DATABASE_URL`, else `sqlite:///<data directory>/okxlab.sqlite`
- broker: `$OKXLAB_BROKER_URL`, else the in-process broker (`memory://`)

Secrets (exchange keys, LLM keys, SMTP password) are read from the environment variables the config names,
at the moment they are needed, and are never stored in any structure that is logged or written.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from okxlab.errors import ConfigError
from okxlab.risk.limits import LimitsError, RiskLimits, build_limits

DEFAULT_BROKER_TAG = "c314b0aecb5bBCDE"
EXCHANGE_MODES = ("sim", "demo", "live")
PLANNER_KINDS = ("llm", "strategy")
DEFAULT_SIM_URL = "http://127.0.0.1:8765"
SWAP_SYMBOL = re.compile(r"^[A-Z0-9]{2,12}-USDT-SWAP$")
OKX_BARS = ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H", "1D")


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
        mode = (agent.mode if agent and agent.mode else None) or os.environ.get("OKX_MODE") or self.exchange.get("mode", "sim")
        if mode not in EXCHANGE_MODES:
            raise ConfigError(f"exchange mode {mode!r} is not one of {', '.join(EXCHANGE_MODES)} (set OKX_MODE or [exchange] mode)")
        return mode

    @property
    def sim_url(self) -> str:
        return os.environ.get("OKXLAB_SIM_URL") or self.exchange.get("sim_url", DEFAULT_SIM_URL)

    @property
    def broker_tag(self) -> str:
        tag = os.environ.get("OKX_BROKER_TAG") or self.exchange.get("broker_tag") or DEFAULT_BROKER_TAG
        if not tag.isalnum() or len(tag) > 16:
            raise ConfigError(f"broker tag {tag!r} must be at most 16 letters and digits (OKX's limit for 'tag')")
        return tag

    # ---- pipeline -------------------------------------------------------------------------------------
    @property
    def candles_per_symbol(self) -> int:
        return int(self.pipeline.get("candles", 150))


def _packaged_default() -> str:
    return resources.files("okxlab.data").joinpath("okxlab.default.toml").read_text()


def config_path() -> str | None:
    """The user's config file, or None for the packaged default."""
    env = os.environ.get("OKXLAB_CONFIG")
    if env:
        return env
    return "okxlab.toml" if Path("okxlab.toml").is_file() else None


def _table(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] must be a table")
    return value


_AGENT_KEYS = {"name", "symbols", "planner", "description", "bar", "llm", "strategy", "params", "offline_fallback",
               "okx", "mode", "risk", "initial_equity"}


def _agent(entry: Any, index: int, global_risk: dict[str, Any], where: str) -> AgentConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: agents[{index}] must be a table")
    name = entry.get("name")
    label = f"{where}: agents[{index}]" + (f" ({name})" if name else "")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum() or len(name) > 40:
        raise ConfigError(f"{label}: name must be 1-40 letters, digits, '-' or '_'")
    unknown = set(entry) - _AGENT_KEYS
    if unknown:
        raise ConfigError(f"{label}: unknown key(s) {', '.join(sorted(unknown))}")
    symbols = entry.get("symbols")
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise ConfigError(f"{label}: symbols must be a non-empty list of OKX instrument ids, e.g. [\"BTC-USDT-SWAP\"]")
    for symbol in symbols:
        # The ledger books USDT-margined swaps (cash = equity + realised PnL − fees, fees in USDT); spot fees are
        # charged in the currency received, which it does not book, so spot agents are refused, not half-served.
        if not SWAP_SYMBOL.match(symbol):
            raise ConfigError(f"{label}: {symbol} is not a USDT-margined perpetual swap (e.g. BTC-USDT-SWAP); okxlab "
                              "agents trade swaps only")
    planner = entry.get("planner")
    if planner not in PLANNER_KINDS:
        raise ConfigError(f"{label}: planner must be one of {', '.join(PLANNER_KINDS)}, not {planner!r}")
    if planner == "llm":
        if not isinstance(entry.get("llm"), dict):
            raise ConfigError(f"{label}: an llm agent needs an [agents.llm] table (provider, model, api_key_env)")
        # Settings are checked when the config is read; API keys only when a planner is built.
        from okxlab.planning.providers import parse_llm_settings

        parse_llm_settings(name, entry["llm"])
    if planner == "strategy" and not isinstance(entry.get("strategy"), str):
        raise ConfigError(f"{label}: a strategy agent needs strategy = \"builtin:NAME\" or a path to a strategy file")
    bar = entry.get("bar", "4H")
    if bar not in OKX_BARS:
        raise ConfigError(f"{label}: bar {bar!r} is not an OKX bar ({', '.join(OKX_BARS)})")
    mode = entry.get("mode")
    if mode is not None and mode not in EXCHANGE_MODES:
        raise ConfigError(f"{label}: mode {mode!r} is not one of {', '.join(EXCHANGE_MODES)}")
    okx = entry.get("okx", {})
    if not isinstance(okx, dict) or set(okx) - {"api_key_env", "secret_env", "passphrase_env"}:
        raise ConfigError(f"{label}: [agents.okx] takes only api_key_env, secret_env, passphrase_env (names of env vars)")
    try:
        limits = build_limits(global_risk, entry.get("risk"))
    except LimitsError as exc:
        raise ConfigError(f"{label}: {exc}") from None
    equity = entry.get("initial_equity", 10_000.0)
    if isinstance(equity, bool) or not isinstance(equity, int | float) or equity <= 0:
        raise ConfigError(f"{label}: initial_equity must be a positive number")
    return AgentConfig(
        name=name,
        symbols=tuple(symbols),
        planner=planner,
        description=str(entry.get("description", "")),
        bar=bar,
        llm=dict(entry.get("llm", {})),
        strategy=entry.get("strategy"),
        params=dict(entry.get("params", {})),
        offline_fallback=entry.get("offline_fallback"),
        okx=dict(okx),
        mode=mode,
        limits=limits,
        initial_equity=float(equity),
    )


def parse_config(text: str, where: str) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None
    unknown = set(raw) - {"exchange", "pipeline", "risk", "llm", "review", "agents"}
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(sorted(unknown))}")
    global_risk = _table(raw, "risk", where)
    try:
        build_limits(global_risk)
    except LimitsError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    entries = raw.get("agents", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{where}: declare at least one [[agents]] entry")
    agents = tuple(_agent(e, i, global_risk, where) for i, e in enumerate(entries))
    names = [a.name for a in agents]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: agent name(s) declared twice: {', '.join(dupes)}")
    config = Config(
        path=where,
        agents=agents,
        exchange=_table(raw, "exchange", where),
        pipeline=_table(raw, "pipeline", where),
        risk=global_risk,
        llm=_table(raw, "llm", where),
        review=_table(raw, "review", where),
        raw=raw,
    )
    mode = config.exchange.get("mode", "sim")
    if mode not in EXCHANGE_MODES:
        raise ConfigError(f"{where}: [exchange] mode {mode!r} is not one of {', '.join(EXCHANGE_MODES)}")
    return config


def load_config(path: str | None = None) -> Config:
    path = path or config_path()
    if path is None:
        return parse_config(_packaged_default(), "<packaged default config>")
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (set OKXLAB_CONFIG or create ./okxlab.toml)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    return parse_config(text, path)


# ---- locations --------------------------------------------------------------------------------------------

def home_dir() -> Path:
    return Path(os.environ.get("OKXLAB_HOME") or "okxlab-data").resolve()


def database_url() -> str:
    return os.environ.get("OKXLAB_DATABASE_URL") or f"sqlite:///{home_dir() / 'okxlab.sqlite'}"


def broker_url() -> str:
    return os.environ.get("OKXLAB_BROKER_URL") or "memory://localhost/"


def reports_dir() -> Path:
    return Path(os.environ.get("OKXLAB_REPORTS_DIR") or home_dir() / "reports").resolve()


def live_trading_enabled() -> bool:
    return os.environ.get("LIVE_TRADING_ENABLED", "").strip().lower() == "true"
