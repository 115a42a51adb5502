"""World clocks. A replay clock moves only when told to; a realtime clock plays history onto the wall clock.

Only the market clock lives here. Authentication timestamps are always checked against the wall clock,
because clients (ccxt) sign with their wall-clock time whatever the market time is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime


def parse_time(value: str | int | float | None) -> int | None:
    """Milliseconds since the epoch from an ISO-8601 string (naive = UTC) or a number of ms."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a time must be an ISO-8601 string or milliseconds since the epoch")
    if isinstance(value, int | float):
        return _in_range(value)
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= 16:
        return _in_range(int(text))
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an ISO-8601 time (e.g. 2022-09-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _in_range(parsed.timestamp() * 1000)


MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def _in_range(ms: float) -> int:
    if not 0 <= ms <= MAX_MS:  # False for NaN too
        raise ValueError("a time must lie between 1970-01-01 and 9999-12-31")
    return int(ms)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class ReplayClock:
    """Set by whoever drives the replay; never moves on its own."""

    start_ms: int
    kind: str = field(default="replay", init=False)

    def now(self, current: int) -> int:
        return current


@dataclass
class RealtimeClock:
    """Market time = start + (wall time since the world was created) x speed."""

    start_ms: int
    speed: float = 1.0
    wall_anchor: float = field(default_factory=time.time)
    kind: str = field(default="realtime", init=False)

    def now(self, current: int) -> int:
        return max(current, self.start_ms + int((time.time() - self.wall_anchor) * 1000 * self.speed))
