"""A strategy once loaded: parameters substituted, defaults filled in, every place in the document known.

These objects are built only by `okxlab.strategies.load` from a document that passed validation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

SIDES: tuple[Literal["long", "short"], ...] = ("long", "short")
STRATEGY_SCHEMA_VERSION = "okxlab.strategy.v1"

Params = tuple[tuple[str, Any], ...]  # sorted (name, value) pairs: hashable, so indicators can be cached


@dataclass(frozen=True)
class Operand:
    """One line of one indicator, e.g. the signal line of MACD(12, 26, 9)."""

    indicator: str
    params: Params
    line: str

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class Condition:
    path: str  # where it sits in the document, e.g. "entries.long.conditions[0]"
    signal: str
    operand: Operand | None  # None only for "always"
    other: Operand | None = None
    level: float | None = None
    periods: tuple[int, ...] = ()  # moving-average alignment
    lookback: int | None = None  # divergence
    within: int = 1
    label: str | None = None


@dataclass(frozen=True)
class Group:
    path: str
    logic: Literal["and", "or"]
    items: tuple[Condition | Group, ...]

    def leaves(self) -> Iterator[Condition]:
        for item in self.items:
            if isinstance(item, Group):
                yield from item.leaves()
            else:
                yield item


@dataclass(frozen=True)
class Stop:
    """A stop or take-profit distance from the decision bar's close."""

    kind: Literal["percent", "atr"]
    value: float  # percent of the close, or a multiple of ATR
    atr_period: int = 14


@dataclass(frozen=True)
class Sizing:
    mode: Literal["risk_usdt", "notional_usdt"]
    equity_pct: float


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    source: str  # "builtin:NAME" or the file it came from
    entries: dict[str, Group]  # only the sides the document defines
    exits: dict[str, Group]
    stop_loss: Stop | None
    take_profit: Stop | None
    leverage: float
    confidence: float
    sizing: Sizing | None  # None: the risk engine's budget (risk_budget_pct of equity at risk)
    parameters: dict[str, int | float]  # values in force (defaults, then overrides)
    parameter_specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    overrides: dict[str, int | float] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)  # as written, references unresolved
    schema_version: str = STRATEGY_SCHEMA_VERSION

    @property
    def version_tag(self) -> str:
        return "v" + self.schema_version.rsplit(".v", 1)[-1]

    def groups(self) -> Iterator[tuple[str, str, Group]]:
        """(kind, side, group) for every group present, kind being "entry" or "exit"."""
        for side in SIDES:
            if side in self.entries:
                yield "entry", side, self.entries[side]
            if side in self.exits:
                yield "exit", side, self.exits[side]

    def conditions(self) -> Iterator[Condition]:
        for _, _, group in self.groups():
            yield from group.leaves()
