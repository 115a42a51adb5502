"""The `[review]` table of the config file: how leaderboards judge noise, what the benchmark is, chart size.

Mail settings are not here: they come from the environment (mailer.py), so the password never sits in a file
next to the rest. The time of the nightly report is OKXLAB_REPORT_TIME (read by the beat schedule).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from okxlab.config import Config
from okxlab.errors import ConfigError

_KINDS = {int: "a whole number", float: "a number", str: "a string"}


@dataclass(frozen=True)
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
        known = {f.name: f for f in fields(cls)}
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
    def from_config(cls, config: Config) -> ReviewSettings:
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
