"""Risk limits: the defaults, the hard caps no configuration can exceed, and how overrides combine.

Limits come from the config file's `[risk]` table (global) and each agent's `[agents.risk]` table; the
agent's values win. Hard caps are clamped here, so nothing downstream can see a looser value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

HARD_MAX_LEVERAGE = 100.0  # no configuration can exceed it
HARD_MAX_LOSS_AT_STOP_PCT = 10.0  # loss at the stop, fees and slippage included, as % of equity


class LimitsError(ValueError):
    """A limits table that cannot be used (unknown key, wrong type, out of range)."""


@dataclass(frozen=True)
class RiskLimits:
    max_leverage: float = 20.0  # per-agent cap; above it, leverage is amended down
    risk_budget_pct: float = 1.0  # % of equity risked per opening decision
    fee_buffer_pct: float = 0.10  # round-trip taker fees, % of notional
    slippage_buffer_pct: float = 0.05  # expected slippage, % of notional
    max_loss_at_stop_pct: float = HARD_MAX_LOSS_AT_STOP_PCT
    price_band_pct: float = 5.0  # limit prices must lie within this % of the last price
    allow_adding: bool = False  # one position per symbol unless true
    max_open_positions: int = 4
    blocklist: tuple[str, ...] = ()  # instIds this agent may never open
    max_drawdown_pct: float = 40.0  # from peak equity: agent halted
    daily_loss_pct: float = 5.0  # from the UTC day's starting equity: no new entries until tomorrow
    max_consecutive_invalid_plans: int = 3  # then halted until a human resumes it
    max_consecutive_rejections: int = 3  # then halted until a human resumes it

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["blocklist"] = list(self.blocklist)
        return out


def _coerce(name: str, kind: type, value: Any) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise LimitsError(f"risk.{name} must be true or false, not {value!r}")
        return value
    if kind is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise LimitsError(f"risk.{name} must be a list of instrument ids")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LimitsError(f"risk.{name} must be a finite number, not {value!r}")
    if kind is int and value != int(value):
        raise LimitsError(f"risk.{name} must be a whole number, not {value!r}")
    if value < 0:
        raise LimitsError(f"risk.{name} must not be negative (got {value})")
    return kind(value)


_KINDS = {"max_open_positions": int, "max_consecutive_invalid_plans": int, "max_consecutive_rejections": int,
          "allow_adding": bool, "blocklist": tuple}


def build_limits(*tables: dict[str, Any] | None) -> RiskLimits:
    """Defaults, then each table in order (global first, then the agent's), then the hard caps."""
    limits = RiskLimits()
    known = {f.name for f in fields(RiskLimits)}
    for table in tables:
        for key, value in (table or {}).items():
            if key not in known:
                raise LimitsError(f"risk.{key} is not a known risk limit (known: {', '.join(sorted(known))})")
            limits = replace(limits, **{key: _coerce(key, _KINDS.get(key, float), value)})
    if limits.max_leverage < 1:
        raise LimitsError("risk.max_leverage must be at least 1")
    return replace(
        limits,
        max_leverage=min(limits.max_leverage, HARD_MAX_LEVERAGE),
        max_loss_at_stop_pct=min(limits.max_loss_at_stop_pct, HARD_MAX_LOSS_AT_STOP_PCT),
    )
