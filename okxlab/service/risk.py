"""The global pause and exposure across agents."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.db.models import MarketSnapshot, PositionRecord
from okxlab.errors import UserError
from okxlab.risk.switches import global_pause, set_pause


class Conflict(UserError):
    """The operation asks for a state that already holds (already paused, already halted...)."""


def pause(sessions: sessionmaker[Session], reason: str, *, actor: str) -> None:
    with sessions.begin() as s:
        if global_pause(s):
            raise Conflict("trading is already paused; `okxlab risk resume` lifts the pause")
        set_pause(s, True, by=actor, reason=reason)


def resume(sessions: sessionmaker[Session], *, actor: str) -> None:
    with sessions.begin() as s:
        if not global_pause(s):
            raise Conflict("trading is not paused")
        set_pause(s, False, by=actor)


def exposure_rows(s: Session) -> list[dict]:
    """Per book and symbol: long and short notional by agent, and the net, at the latest snapshot price."""
    latest = select(func.max(MarketSnapshot.id)).group_by(MarketSnapshot.symbol)
    marks = dict(s.execute(select(MarketSnapshot.symbol, MarketSnapshot.last).where(MarketSnapshot.id.in_(latest))).all())
    grouped: dict[tuple[str, str], dict] = defaultdict(lambda: {"long": 0.0, "short": 0.0, "by_agent": {}})
    for p in s.scalars(select(PositionRecord).where(PositionRecord.status == "open")):
        notional = p.contracts * p.ct_val * marks.get(p.symbol, p.entry_price)
        entry = grouped[(p.book, p.symbol)]
        entry[p.side] += notional
        entry["by_agent"][p.agent] = entry["by_agent"].get(p.agent, 0.0) + (notional if p.side == "long" else -notional)
    return [{"book": book, "symbol": symbol, "long": e["long"], "short": e["short"], "net": e["long"] - e["short"],
             "by_agent": e["by_agent"]} for (book, symbol), e in sorted(grouped.items())]


def exposure(s: Session) -> dict[str, Any]:
    """The pause (None when trading is not paused) and the exposure rows."""
    return {"paused": global_pause(s), "exposure": exposure_rows(s)}
