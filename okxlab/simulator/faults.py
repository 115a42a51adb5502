"""Faults on demand, per world, from a seeded RNG so a run with faults is reproducible.

Each faulted request draws exactly three numbers (5xx, rate limit, lost response) in that order, so the
same sequence of requests meets the same faults. `paths` limits faults to endpoints whose path contains
one of the given strings (e.g. ["trade/batch-orders"]); empty means every /api/v5 endpoint.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

# Endpoints that place orders: a "lost response" there means the order IS placed, then the connection drops.
MAX_LATENCY_MS = 600_000.0  # ten minutes: longer than any client waits
PLACEMENT_ENDPOINTS = frozenset({"trade/order", "trade/batch-orders", "trade/order-algo", "trade/close-position"})


@dataclass
class Faults:
    latency_ms: float = 0.0
    error_5xx_rate: float = 0.0
    rate_limit_rate: float = 0.0
    lost_response_rate: float = 0.0
    seed: int = 0
    paths: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Faults:
        known = {"latency_ms", "error_5xx_rate", "rate_limit_rate", "lost_response_rate", "seed", "paths"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        out = cls(**data)
        out.validate()
        return out

    def validate(self) -> None:
        for name in ("error_5xx_rate", "rate_limit_rate", "lost_response_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number between 0 and 1")
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int | float) or \
                not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms must be a number from 0 to {MAX_LATENCY_MS:.0f}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed must be an integer")
        if not isinstance(self.paths, list) or not all(isinstance(p, str) for p in self.paths):
            raise ValueError("paths must be a list of strings")

    @property
    def active(self) -> bool:
        return bool(self.latency_ms or self.error_5xx_rate or self.rate_limit_rate or self.lost_response_rate)

    def applies(self, endpoint: str) -> bool:
        return not self.paths or any(p in endpoint for p in self.paths)

    def draw(self, endpoint: str) -> str | None:
        """"5xx", "rate_limit", "lost" or None for this request."""
        r5, rl, lost = self._rng.random(), self._rng.random(), self._rng.random()
        if r5 < self.error_5xx_rate:
            return "5xx"
        if rl < self.rate_limit_rate:
            return "rate_limit"
        if lost < self.lost_response_rate and endpoint in PLACEMENT_ENDPOINTS:
            return "lost"
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
