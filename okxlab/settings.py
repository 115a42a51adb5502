"""Every environment variable okxlab reads, in one typed object: `current()` (the README lists them).

Each field has its variable's exact name, a type, a default and the rule a value must follow. A bad value is
one ConfigError line naming the variable, the value (masked when it could hold a password; a secret is never
shown) and what it must be, e.g. `OKXLAB_SMTP_PORT='smtp' must be a port number (1-65535)`. An empty
variable counts as unset.

Settings are read from the environment when asked for, not at import: tests, `okxlab demo` and the replay
command change variables inside one process. `current()` caches one Settings per distinct set of values, so
a hot path pays a dict lookup, not a validation.

This module is the bottom layer: it imports nothing from okxlab but errors, so every package may read it.
Secrets that the config file names by variable (LLM and OKX keys) are read where they are used, by name.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

from okxlab.errors import ConfigError

EXCHANGE_MODES = ("sim", "demo", "live")
BROKER_TAG = re.compile(r"[A-Za-z0-9]{1,16}")  # OKX's rule for an order's `tag`
DEFAULT_SIM_URL = "http://127.0.0.1:8765"  # [exchange] sim_url's default; OKXLAB_SIM_URL overrides both
DEFAULT_BROKER_TAG = "c314b0aecb5bBCDE"  # [exchange] broker_tag's default; OKX_BROKER_TAG overrides both
DEFAULT_BROKER_URL = "memory://localhost/"  # the in-process broker of the embedded quick start
SMTP_SECURITY = ("starttls", "ssl", "none")
SMTP_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def http_root(value: str) -> str | None:
    """`value` as an http(s)://host[:port] URL without a trailing slash, or None if it is not one."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    if (parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc
            or parts.path not in ("", "/") or parts.query or parts.fragment or value != value.strip()):
        return None
    return value.rstrip("/")


def var(name: str, default: Any, meaning: str, rule: str, shown_default: str) -> Any:
    """A field read from the variable `name`. `rule` completes "<name>=<value> must be ..."; `meaning` and
    `shown_default` are the README's table (tests/test_settings.py keeps the two the same)."""
    return Field(default, validation_alias=name, description=meaning,
                 json_schema_extra={"rule": rule, "default": shown_default})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=True, env_ignore_empty=True, extra="ignore", frozen=True,
                                      allow_inf_nan=False)

    # ---- locations ------------------------------------------------------------------------------------
    config: Path | None = var("OKXLAB_CONFIG", None, "the config file", "a file path",
                              "`./okxlab.toml`, else the packaged default")
    home: Path = var("OKXLAB_HOME", Path("okxlab-data"),
                     "data directory: the embedded database, `reports/`, the simulator's state and token",
                     "a directory path", "`./okxlab-data`")
    database_url: SecretStr | None = var(
        "OKXLAB_DATABASE_URL", None, "`postgresql://...` in production. Any other kind is refused in one line; "
        "its password (in `user:password@` or `?password=`) is shown as `***` wherever the URL appears",
        "a database URL", "`sqlite:///$OKXLAB_HOME/okxlab.sqlite`")
    db_pool_size: int = var("OKXLAB_DB_POOL_SIZE", 5, "PostgreSQL connections each process keeps open",
                            "a whole number >= 1", "`5`")
    reports_dir: Path | None = var("OKXLAB_REPORTS_DIR", None, "where review reports are written; checked "
                                   "writable before a report is built", "a directory path", "`$OKXLAB_HOME/reports`")
    # ---- broker and beat ------------------------------------------------------------------------------
    broker_url: SecretStr | None = var("OKXLAB_BROKER_URL", None, "`redis://...` or `amqp://...`; the default is "
                                       "the in-process broker (one process only)", "a broker URL",
                                       f"`{DEFAULT_BROKER_URL}`")
    broker_prefix: str | None = var("OKXLAB_BROKER_PREFIX", None, "a key prefix, so several deployments can share "
                                    "one Redis", "a string", "none")
    broker_visibility_timeout: float = var(
        "OKXLAB_BROKER_VISIBILITY_TIMEOUT", 3600.0, "seconds before Redis redelivers a task whose worker died; "
        "longer than the longest task", "a number of seconds > 0, e.g. 3600", "`3600`")
    report_time: str = var("OKXLAB_REPORT_TIME", "00:05", "when beat builds the previous UTC day's report (UTC)",
                           "HH:MM (UTC), e.g. 00:05", "`00:05`")
    # ---- exchange and orders --------------------------------------------------------------------------
    okx_mode: Literal["sim", "demo", "live"] | None = var(
        "OKX_MODE", None, "`sim` (the local simulator), `demo` (OKX demo trading, header "
        "`x-simulated-trading: 1`) or `live`, for every agent", "one of sim, demo, live", "`[exchange] mode`")
    live_trading_enabled: Literal["true", "false"] = var(
        "LIVE_TRADING_ENABLED", "false", "exactly `true` allows `live`; unset, empty or `false` means off, and "
        "okxlab refuses live, says so, and sends nothing. Any other value (`TRUE`, `1`, ` true `) is refused "
        "with one line, never taken as on",
        "exactly 'true' or 'false'; live trading is disabled until it is exactly 'true'", "`false`")
    broker_tag: str | None = var("OKX_BROKER_TAG", None, "the broker tag on every order (below)",
                                 "1-16 ASCII letters and digits (OKX's limit for 'tag')", "`[exchange] broker_tag`")
    sim_url: str | None = var("OKXLAB_SIM_URL", None, "the simulator's URL, `http(s)://host[:port]`",
                              "the simulator's http(s)://host[:port] URL",
                              f"`[exchange] sim_url`, else `{DEFAULT_SIM_URL}`")
    sim_admin_token: SecretStr | None = var(
        "OKXLAB_SIM_ADMIN_TOKEN", None, "the simulator's admin token; unset, `okxlab sim` keeps one in "
        "`$OKXLAB_HOME/sim-admin-token` and clients read it there", "a token", "the token file")
    exchange_timeout_ms: int = var("OKXLAB_EXCHANGE_TIMEOUT_MS", 10_000, "ccxt's timeout per request, in ms",
                                   "a whole number of milliseconds >= 100", "`10000`")
    order_claim_ttl: float | None = var(
        "OKXLAB_ORDER_CLAIM_TTL", None, "seconds an order's claim protects a send that may be in flight",
        "a number of seconds >= 1 (default 60)", "`60`")
    order_resend_settle: float | None = var(
        "OKXLAB_ORDER_RESEND_SETTLE", None, "seconds after an unanswered send before a lookup's \"not found\" "
        "is believed", "a number of seconds >= 0", "twice the exchange timeout")
    # ---- the HTTP API -----------------------------------------------------------------------------------
    api_public: bool = var("OKXLAB_API_PUBLIC", False, "`true`: `okxlab api` answers GETs of read scope without "
                           "a token (a public arena); every other call still needs one",
                           "true or false (also 1/0, yes/no)", "`false`")
    flower_url: str = var("OKXLAB_FLOWER_URL", "http://127.0.0.1:5555", "where the dashboard's pipeline page "
                          "links into Flower", "an http(s) URL", "`http://127.0.0.1:5555`")
    # ---- the nightly report's email (docs/review.md; review/mailer.py checks how they fit together) ------
    smtp_host: str | None = var("OKXLAB_SMTP_HOST", None, "the SMTP server; unset, the report is only written "
                                "to disk", "a host name", "none")
    smtp_port: int | None = var("OKXLAB_SMTP_PORT", None, "the SMTP port", "a port number (1-65535)",
                                "`587` starttls, `465` ssl, `25` none")
    smtp_security: Literal["starttls", "ssl", "none"] = var(
        "OKXLAB_SMTP_SECURITY", "starttls", "how the connection is secured", f"one of {', '.join(SMTP_SECURITY)}",
        "`starttls`")
    smtp_user: str | None = var("OKXLAB_SMTP_USER", None, "login name, if the server wants one", "a login name",
                                "none")
    smtp_password: SecretStr | None = var("OKXLAB_SMTP_PASSWORD", None, "read when sending; never stored, "
                                          "logged or shown", "a password", "none")
    smtp_from: str | None = var("OKXLAB_SMTP_FROM", None, "the sender address", "an address",
                                "the user, when it is an address")
    smtp_ca_file: Path | None = var("OKXLAB_SMTP_CA_FILE", None, "extra CA bundle to trust (a private relay)",
                                    "a file path", "the system's store")
    smtp_timeout: float = var("OKXLAB_SMTP_TIMEOUT", 30.0, "SMTP timeout in seconds",
                              "a positive number of seconds", "`30`")
    report_to: str | None = var("OKXLAB_REPORT_TO", None, "the report's recipients, comma-separated",
                                "addresses, comma-separated", "none")

    @field_validator("smtp_host", "smtp_port", "smtp_security", "smtp_user", "smtp_from", "smtp_ca_file",
                     "smtp_timeout", "report_to", "sim_admin_token", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        # These were always read without the spaces around them, and blank as unset. Other values are taken as
        # given: " http://h" or " true" is refused, not guessed at (a password is never altered).
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise PydanticUseDefault()
        return value

    @field_validator("smtp_security", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("db_pool_size")
    @classmethod
    def _pool(cls, value: int) -> int:
        return _at_least(value, 1)

    @field_validator("exchange_timeout_ms")
    @classmethod
    def _timeout_ms(cls, value: int) -> int:
        return _at_least(value, 100)

    @field_validator("order_claim_ttl")
    @classmethod
    def _claim(cls, value: float | None) -> float | None:
        return None if value is None else _at_least(value, 1)

    @field_validator("order_resend_settle")
    @classmethod
    def _settle(cls, value: float | None) -> float | None:
        return None if value is None else _at_least(value, 0)

    @field_validator("broker_visibility_timeout", "smtp_timeout")
    @classmethod
    def _positive(cls, value: float) -> float:
        if not value > 0:
            raise ValueError("not positive")
        return value

    @field_validator("smtp_port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value < 65536:
            raise ValueError("not a port")
        return value

    @field_validator("report_time")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        hour, minute = (int(x) for x in value.split(":"))  # a ValueError is the rule's message
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError("not a time")
        return value

    @field_validator("broker_tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not BROKER_TAG.fullmatch(value):
            raise ValueError("not an OKX tag")
        return value

    @field_validator("flower_url")
    @classmethod
    def _flower_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s\"'<>]+", value):
            raise ValueError("not an http(s) URL")
        return value.rstrip("/")

    @field_validator("sim_url")
    @classmethod
    def _sim_url(cls, value: str | None) -> str | None:
        if value is not None and http_root(value) is None:
            raise ValueError("not an http(s) root URL")
        return None if value is None else http_root(value)

    # ---- derived values -------------------------------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return self.home.resolve()

    @property
    def database(self) -> str:
        return self.database_url.get_secret_value() if self.database_url else \
            f"sqlite:///{self.home_dir / 'okxlab.sqlite'}"

    @property
    def broker(self) -> str:
        return self.broker_url.get_secret_value() if self.broker_url else DEFAULT_BROKER_URL

    @property
    def reports(self) -> Path:
        return (self.reports_dir or self.home_dir / "reports").resolve()

    @property
    def report_hour_minute(self) -> tuple[int, int]:
        hour, minute = self.report_time.split(":")
        return int(hour), int(minute)

    @property
    def live(self) -> bool:
        return self.live_trading_enabled == "true"

    @property
    def claim_ttl(self) -> timedelta | None:
        return None if self.order_claim_ttl is None else timedelta(seconds=self.order_claim_ttl)

    @property
    def resend_settle(self) -> timedelta | None:
        return None if self.order_resend_settle is None else timedelta(seconds=self.order_resend_settle)


def _at_least(value: float, minimum: float) -> Any:
    if not value >= minimum:
        raise ValueError("too small")
    return value


VARIABLES = {f.validation_alias: name for name, f in Settings.model_fields.items()}  # env name -> field
SECRET_VARIABLES = tuple(f.validation_alias for f in Settings.model_fields.values()
                         if SecretStr in (f.annotation, *get_args(f.annotation)))
_URL_PASSWORD = re.compile(r"(//[^/:@]*:)[^/@]*@")


def shown(name: str, value: Any) -> str:
    """How a bad value is quoted in an error: never a secret, never a password inside a URL."""
    if name in SECRET_VARIABLES:
        return "(hidden)"
    return repr(_URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value)


def _explain(exc: ValidationError) -> ConfigError:
    """The first problem as one line: the variable, its value and what it must be."""
    error = exc.errors()[0]
    return _explain_one(str(error["loc"][0]), error.get("input"))


def _explain_one(name: str, value: Any) -> ConfigError:
    field = Settings.model_fields[VARIABLES[name]]
    rule = (field.json_schema_extra or {}).get("rule")  # type: ignore[union-attr]
    return ConfigError(f"{name}={shown(name, value)} must be {rule}")


def _checked(build: Callable[[], Settings]) -> Settings:
    try:
        return build()
    except ValidationError as exc:
        raise _explain(exc) from None


class _Given(Settings):
    """Settings from the values given only: the process environment is not read."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any, **_sources: Any) -> tuple[Any, ...]:
        return (init_settings,)


def _values(env: Mapping[str, str]) -> dict[str, str]:
    """The settings' variables `env` gives a value (blank counts as unset, as for the environment itself)."""
    return {name: env[name] for name in VARIABLES if env.get(name, "").strip()}


def from_env(env: Mapping[str, str]) -> Settings:
    """The settings a given mapping of variables holds. Raises ConfigError (one line)."""
    return _checked(lambda: _Given(**_values(env)))


_cache: dict[tuple[bool | str | None, ...], Settings] = {}

# What a kill switch (pause, halt, resume, flatten) needs: where the database and the config are, and how orders
# reach the exchange. A bad value of any other variable (a mistyped SMTP port) must not keep an operator from
# pulling a switch: see `for_switches`.
SWITCH_VARIABLES = frozenset({
    "OKXLAB_CONFIG", "OKXLAB_HOME", "OKXLAB_DATABASE_URL", "OKXLAB_DB_POOL_SIZE", "OKX_MODE", "LIVE_TRADING_ENABLED",
    "OKX_BROKER_TAG", "OKXLAB_SIM_URL", "OKXLAB_SIM_ADMIN_TOKEN", "OKXLAB_EXCHANGE_TIMEOUT_MS",
    "OKXLAB_ORDER_CLAIM_TTL", "OKXLAB_ORDER_RESEND_SETTLE",
})
_switch_mode = False
_warned: set[str] = set()


@contextmanager
def for_switches() -> Iterator[None]:
    """Inside, a bad value of a variable a kill switch does not need is ignored (treated as unset) with a
    one-line warning on stderr, instead of stopping the command. Used by the switch commands only; every other
    command and every worker still refuses a bad value."""
    global _switch_mode
    before, _switch_mode = _switch_mode, True
    try:
        yield
    finally:
        _switch_mode = before


def _lenient() -> Settings:
    """The settings without the bad values of variables a switch does not need (warned about once each)."""
    env = _values(os.environ)
    while True:
        try:
            return _Given(**env)
        except ValidationError as exc:
            bad = {str(e["loc"][0]) for e in exc.errors()}
            if bad & SWITCH_VARIABLES or not bad & set(env):
                raise _explain(exc) from None
            for name in sorted(bad - _warned):
                print(f"okxlab: warning: {_explain_one(name, env[name])}; ignored by this kill-switch command",
                      file=sys.stderr)
                _warned.add(name)
            env = {k: v for k, v in env.items() if k not in bad}


def current() -> Settings:
    """The settings the process environment holds now (validated once per distinct set of values)."""
    key = (_switch_mode, *(os.environ.get(name) for name in VARIABLES))
    found = _cache.get(key)
    if found is None:
        try:
            found = _checked(Settings)  # pydantic-settings reads os.environ
        except ConfigError:
            if not _switch_mode:
                raise
            found = _lenient()
        if len(_cache) > 64:  # tests change variables often; keep the cache small (a race only costs a rebuild)
            _cache.clear()
        _cache[key] = found
    return found


# ---- the README's table ---------------------------------------------------------------------------------------

def _type_name(annotation: Any) -> str:
    names = {Path: "path", SecretStr: "secret", int: "integer", float: "number", str: "string", bool: "boolean"}
    args = [annotation] if get_origin(annotation) is Literal else \
        [a for a in get_args(annotation) if a is not type(None)] or [annotation]  # X | None: X
    if get_origin(args[0]) is Literal:
        return " \\| ".join(f"`{v}`" for v in get_args(args[0]))
    return names[args[0]]


def table() -> list[tuple[str, str, str, str]]:
    """(variable, type, default, meaning) for each setting, in the order of the class."""
    return [(f"`{f.validation_alias}`", _type_name(f.annotation), f.json_schema_extra["default"],  # type: ignore[index]
             f.description or "") for f in Settings.model_fields.values()]
