"""The config file's schema: every key of okxlab.toml with its type and range, and how a mistake is told.

`okxlab.config.parse_config` validates the parsed TOML against `ConfigFile` and turns pydantic's errors into
one line naming the file, the key path and what is wrong:

    okxlab.toml: pipeline.candles must be a whole number between 20 and 300, not 'lots'

Types are strict (a string is never read as a number, nor a number as a string) and unknown keys are refused,
so a typo fails at load instead of in every run. Tables with their own rules are checked where those rules
live, right after this schema: `[risk]` and `[agents.risk]` (okxlab.risk.limits), `[agents.llm]` and
`[llm.prices]` (okxlab.planning.providers), `[review]` (ReviewSettings, at the end of this module).

It sits below okxlab.config (which imports it when a file is read, so importing okxlab.config stays light)
and above the rules it uses (okxlab.settings, the quality limits): the config's layer has no cycle.
"""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import date, datetime, time
from typing import Annotated, Any, Literal, Protocol, get_args, get_type_hints

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from okxlab.errors import ConfigError
from okxlab.marketdata.quality import QualityLimits
from okxlab.settings import BROKER_TAG, DEFAULT_BROKER_TAG, DEFAULT_SIM_URL, EXCHANGE_MODES, http_root

PLANNER_KINDS = ("llm", "strategy")
SWAP_SYMBOL = re.compile(r"^[A-Z0-9]{2,12}-USDT-SWAP$")
OKX_BARS = ("1m", "3m", "5m", "15m", "30m", "1H", "2H", "4H", "6H", "12H", "1D")
# ASCII only: an agent's name is part of its simulator API key, sent as an HTTP header, and names its runs.
AGENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

MIN_CANDLES, MAX_CANDLES = 20, 300  # OKX serves at most 300 bars per request; the snapshot makes one


def _own(message: str) -> PydanticCustomError:
    """An error whose message is said as is (after the key path), not as "must be <description>"."""
    return PydanticCustomError("okxlab", message)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class ExchangeTable(_Table):
    mode: Literal[EXCHANGE_MODES] = Field("sim", description=f"one of {', '.join(EXCHANGE_MODES)}")
    sim_url: str = Field(DEFAULT_SIM_URL, description="an http(s)://host[:port] URL")
    broker_tag: str = Field(DEFAULT_BROKER_TAG, description="1-16 ASCII letters and digits (OKX's limit for tag)")

    @field_validator("sim_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if http_root(value) is None:
            raise ValueError("not an http(s)://host[:port] URL")
        return value

    @field_validator("broker_tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        if not BROKER_TAG.fullmatch(value):
            raise ValueError("not an OKX tag")
        return value


def _quality_table() -> type[_Table]:
    """[pipeline.quality], derived from QualityLimits so a threshold added there is a key here at once."""
    hints = get_type_hints(QualityLimits)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(QualityLimits):
        whole = hints[f.name] is int
        kind: Any = Annotated[int if whole else float, Field(ge=0, description=(
            "a whole number, 0 or more" if whole else "a number, 0 or more"))]
        if type(None) in get_args(hints[f.name]):
            kind = kind | None
        fields[f.name] = (kind, f.default)
    return create_model("QualityTable", __base__=_Table, **fields)


QualityTable = _quality_table()


class PipelineTable(_Table):
    candles: int = Field(150, ge=MIN_CANDLES, le=MAX_CANDLES,
                         description=f"a whole number between {MIN_CANDLES} and {MAX_CANDLES}")
    quality: QualityTable = Field(default_factory=QualityTable, description="a table of data-quality thresholds")  # type: ignore[valid-type]


class LlmTable(_Table):
    prices: dict[str, Any] = Field(default_factory=dict, description="a table of \"provider/model\" = "
                                   "{ input = USD, output = USD } per million tokens")


class OkxKeysTable(_Table):
    # Names of environment variables. A value is never echoed: a common mistake is pasting the key itself.
    api_key_env: str | None = Field(None, description="the NAME of an environment variable (letters, digits, _)",
                                    json_schema_extra={"echo": False})
    secret_env: str | None = Field(None, description="the NAME of an environment variable (letters, digits, _)",
                                   json_schema_extra={"echo": False})
    passphrase_env: str | None = Field(None, description="the NAME of an environment variable (letters, digits, _)",
                                       json_schema_extra={"echo": False})

    @field_validator("api_key_env", "secret_env", "passphrase_env")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.fullmatch(value):
            raise ValueError("not a variable name")
        return value


def _plain(value: Any) -> bool:
    """Values that survive the trip to the database (JSON): TOML dates and times do not."""
    if isinstance(value, datetime | date | time):
        return False
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return True


class AgentTable(_Table):
    name: str = Field(description="1-40 ASCII letters, digits, '-' or '_', starting with a letter")
    symbols: list[str] = Field(min_length=1, description="a non-empty list of OKX instrument ids, e.g. "
                               "[\"BTC-USDT-SWAP\"]")
    planner: Literal[PLANNER_KINDS] = Field(description=f"one of {', '.join(PLANNER_KINDS)}")
    description: str = Field("", description="a string")
    bar: Literal[OKX_BARS] = Field("4H", description=f"an OKX bar ({', '.join(OKX_BARS)})")
    llm: dict[str, Any] | None = Field(None, description="a table ([agents.llm]: provider, model, api_key_env)")
    strategy: str | None = Field(None, description="\"builtin:NAME\" or the path of a strategy file")
    params: dict[str, Any] = Field(default_factory=dict, description="a table of the strategy's parameters "
                                   "(numbers, strings, true/false, lists)")
    offline_fallback: str | None = Field(None, description="\"builtin:NAME\" or the path of a strategy file")
    okx: OkxKeysTable = Field(default_factory=OkxKeysTable,
                              description="a table (api_key_env, secret_env, passphrase_env)")
    mode: Literal[EXCHANGE_MODES] | None = Field(None, description=f"one of {', '.join(EXCHANGE_MODES)}")
    risk: dict[str, Any] | None = Field(None, description="a table of risk limits (docs/risk.md)")
    initial_equity: float = Field(10_000.0, gt=0, le=1e12, description="a positive number of USDT (at most 1e12)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        # The name reaches OKX inside the simulator's API key (an HTTP header: ASCII only) and names runs.
        if not AGENT_NAME.fullmatch(value):
            raise ValueError("not an agent name")
        return value

    @field_validator("symbols")
    @classmethod
    def _swaps(cls, value: list[str]) -> list[str]:
        for symbol in value:
            # The ledger books USDT-margined swaps (cash = equity + realised PnL − fees, fees in USDT); spot fees
            # are charged in the currency received, which it does not book, so spot agents are refused.
            if not SWAP_SYMBOL.fullmatch(symbol):  # fullmatch: `$` alone lets a trailing newline through
                raise _own(f"{symbol!r} is not a USDT-margined perpetual swap (e.g. BTC-USDT-SWAP); okxlab agents "
                           "trade swaps only")
        return value

    @field_validator("llm", "params")
    @classmethod
    def _json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not _plain(value):
            raise _own("a TOML date or time is not a value okxlab reads; write it as a string")
        return value

    @model_validator(mode="after")
    def _planner_needs(self) -> AgentTable:
        if self.planner == "llm" and self.llm is None:
            raise _own("an llm agent needs an [agents.llm] table (provider, model, api_key_env)")
        if self.planner == "strategy" and self.strategy is None:
            raise _own("a strategy agent needs strategy = \"builtin:NAME\" or a path to a strategy file")
        return self


class ConfigFile(_Table):
    exchange: ExchangeTable = Field(default_factory=ExchangeTable, description="a table ([exchange])")
    pipeline: PipelineTable = Field(default_factory=PipelineTable, description="a table ([pipeline])")
    risk: dict[str, Any] = Field(default_factory=dict, description="a table of risk limits ([risk], docs/risk.md)")
    llm: LlmTable = Field(default_factory=LlmTable, description="a table ([llm])")
    review: dict[str, Any] = Field(default_factory=dict, description="a table ([review], docs/review.md)")
    agents: list[AgentTable] = Field(min_length=1, description="a list of [[agents]] tables, at least one",
                                     json_schema_extra={"missing": "declare at least one [[agents]] entry"})

    @model_validator(mode="after")
    def _unique_names(self) -> ConfigFile:
        names = [a.name for a in self.agents]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _own(f"agent name(s) declared twice: {', '.join(dupes)}")
        needed = self.pipeline.quality.min_candles  # type: ignore[attr-defined]
        if self.pipeline.candles < needed:
            raise _own(f"pipeline.candles ({self.pipeline.candles}) is fewer than pipeline.quality.min_candles "
                       f"({needed}): every run would fail its data-quality check")
        return self


# ---- one line per mistake -------------------------------------------------------------------------------------

def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The table model inside a field's type (X, X | None, list[X])."""
    for t in (annotation, *get_args(annotation)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
        for inner in get_args(t):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    return None


def _field(loc: tuple[Any, ...]) -> tuple[Any, int, type[BaseModel] | None]:
    """The deepest declared field on `loc`: its FieldInfo, how many parts of loc lead to it, and the model that
    declares the next level (None below a free-form table)."""
    model: type[BaseModel] | None = ConfigFile
    info, depth = None, 0
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            break
        info, depth = model.model_fields[part], i + 1
        model = _model_of(info.annotation)
    return info, depth, model


def _value(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _key(part: Any) -> str:
    text = str(part)
    return text if text.isprintable() else repr(text)  # a quoted TOML key may hold a newline


def _path(loc: tuple[Any, ...], data: Any) -> tuple[str, str]:
    """(prefix, key path): `agents[0] (trend)` and `risk.max_leverage`; a section's keys have no prefix."""
    prefix, parts = "", []
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "agents" and isinstance(rest[1], int):
        name = _value(data, ("agents", rest[1], "name"))
        if isinstance(name, str) and name:
            prefix = f"agents[{rest[1]}] ({name if name.isprintable() else repr(name)})"  # one line, always
        else:
            prefix = f"agents[{rest[1]}]"
        rest = rest[2:]
    for part in rest:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        else:
            parts.append(_key(part))
    return prefix, ".".join(parts)


def _join(prefix: str, path: str, text: str) -> str:
    if path:
        text = f"{path} {text}"
    return f"{prefix}: {text}" if prefix else text


def _describe(error: Any, data: Any) -> str:
    loc = tuple(error["loc"])
    info, depth, _ = _field(loc)
    if error["type"] == "okxlab":
        prefix, path = _path(loc, data)
        return _join(prefix, "", f"{path}: {error['msg']}" if path else error["msg"])
    if info is None or not info.description:
        prefix, path = _path(loc, data)
        return _join(prefix, path, error["msg"][0].lower() + error["msg"][1:])
    prefix, path = _path(loc[:depth], data)  # items of a list are told as the list
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if error["type"] == "missing":
        missing = extra.get("missing")
        return _join(prefix, "", str(missing)) if missing else _join(prefix, path, f"is missing; it must be "
                                                                                    f"{info.description}")
    if extra.get("echo", True) is False:
        return _join(prefix, path, f"must be {info.description}")
    return _join(prefix, path, f"must be {info.description}, not {_shown(_value(data, loc[:depth]))}")


def _unknown(parent: tuple[Any, ...], keys: list[str], data: Any) -> str:
    _, _, model = _field(parent) if parent else (None, 0, ConfigFile)
    known = f" (known: {', '.join(model.model_fields)})" if model is not None else ""
    if not parent:
        return f"unknown section(s) {', '.join(keys)}{known}"
    prefix, path = _path(parent, data)
    return _join(prefix, path, f"{'has ' if path else ''}unknown key(s) {', '.join(keys)}{known}")


def explain(exc: ValidationError, data: Any, limit: int = 3) -> str:
    """pydantic's errors as one line: each mistake with its key path; unknown keys of one table together."""
    told: list[str | tuple[Any, ...]] = []  # a message, or the table whose unknown keys are told in its place
    unknown: dict[tuple[Any, ...], list[str]] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] == "extra_forbidden":
            if loc[:-1] not in unknown:
                told.append(loc[:-1])
            unknown.setdefault(loc[:-1], []).append(_key(loc[-1]))
        else:
            told.append(_describe(error, data))
    lines = [_unknown(item, unknown[item], data) if isinstance(item, tuple) else item for item in told]
    lines = list(dict.fromkeys(lines))  # the items of one list are told as the list, once
    more = f" (and {len(lines) - limit} more)" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more


def validate(raw: dict[str, Any]) -> ConfigFile:
    return ConfigFile.model_validate(raw)


# ---- [review]: how leaderboards judge noise, what the benchmark is, chart size ---------------------------
# Mail settings are not here: they come from the environment (okxlab/settings.py), so the password never sits
# in a file next to the rest. okxlab.review.settings is where the review code imports it from.

class _HasReview(Protocol):  # a Config, without importing okxlab.config (it imports this module)
    path: str
    review: dict[str, Any]


_KINDS = {int: "a whole number", float: "a number", str: "a string"}


@dataclasses.dataclass(frozen=True)
class ReviewSettings:
    benchmark: str = "BTC-USDT-SWAP"  # the instrument of the buy-and-hold baseline
    bootstrap_samples: int = 2000
    confidence: float = 0.95
    seed: int = 7  # fixed, so the same data always gives the same interval
    min_periods: int = 20  # fewer paired periods than this: a lead is never called more than noise
    chart_width: float = 9.0  # inches
    chart_height: float = 3.6
    chart_dpi: int = 100
    subject_prefix: str = "okxlab review"

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str = "config") -> ReviewSettings:
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(table) - set(known)
        if unknown:
            raise ConfigError(f"{where}: [review] has unknown key(s) {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(known)}")
        values: dict[str, Any] = {}
        for name, value in table.items():
            default = getattr(cls, name)
            kind = type(default)
            wrong = (isinstance(value, bool) or not isinstance(value, int | float | str)
                     or (kind is str) != isinstance(value, str) or (kind is int and not isinstance(value, int)))
            if wrong:
                raise ConfigError(f"{where}: [review] {name} must be {_KINDS[kind]}, not {value!r}")
            values[name] = kind(value)
        settings = cls(**values)
        settings.check(where)
        return settings

    @classmethod
    def from_config(cls, config: _HasReview) -> ReviewSettings:
        return cls.from_table(config.review, config.path)

    def check(self, where: str = "config") -> None:
        if not 100 <= self.bootstrap_samples <= 100_000:
            raise ConfigError(f"{where}: [review] bootstrap_samples must be between 100 and 100000")
        if not 2 <= self.min_periods <= 10_000:
            raise ConfigError(f"{where}: [review] min_periods must be between 2 and 10000")
        if not 0.5 < self.confidence < 1.0:
            raise ConfigError(f"{where}: [review] confidence must be between 0.5 and 1 (e.g. 0.95)")
        if not (1.0 <= self.chart_width <= 30.0 and 1.0 <= self.chart_height <= 30.0 and 50 <= self.chart_dpi <= 300):
            raise ConfigError(f"{where}: [review] chart_width/chart_height must be 1-30 inches, chart_dpi 50-300")
        if not self.benchmark:
            raise ConfigError(f"{where}: [review] benchmark must name an instrument, e.g. \"BTC-USDT-SWAP\"")
