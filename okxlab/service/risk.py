"""The global pause and exposure across agents."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.db.models import MarketSnapshot, PositionRecord, Run
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


def latest_marks(s: Session, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], float]:
    """The last price each (book, symbol) saw: the newest snapshot of a run in that book. Books keep their own
    clocks, so a demo position is never valued at a 2022 replay's price."""
    if not pairs:
        return {}
    in_book = (select(MarketSnapshot).join(Run, Run.id == MarketSnapshot.run_id)
               .where(Run.book.in_({b for b, _ in pairs}), MarketSnapshot.symbol.in_({sym for _, sym in pairs})))
    latest = in_book.with_only_columns(func.max(MarketSnapshot.id)).group_by(Run.book, MarketSnapshot.symbol)
    rows = s.execute(select(Run.book, MarketSnapshot.symbol, MarketSnapshot.last)
                     .join(Run, Run.id == MarketSnapshot.run_id).where(MarketSnapshot.id.in_(latest)))
    return {(book, symbol): last for book, symbol, last in rows}


def exposure_rows(s: Session) -> list[dict]:
    """Per book and symbol: long and short notional by agent, and the net, at the book's latest snapshot price."""
    positions = list(s.scalars(select(PositionRecord).where(PositionRecord.status == "open")))
    marks = latest_marks(s, {(p.book, p.symbol) for p in positions})
    grouped: dict[tuple[str, str], dict] = defaultdict(lambda: {"long": 0.0, "short": 0.0, "by_agent": {}})
    for p in positions:
        notional = p.contracts * p.ct_val * marks.get((p.book, p.symbol), p.entry_price)
        entry = grouped[(p.book, p.symbol)]
        entry[p.side] += notional
        entry["by_agent"][p.agent] = entry["by_agent"].get(p.agent, 0.0) + (notional if p.side == "long" else -notional)
    return [{"book": book, "symbol": symbol, "long": e["long"], "short": e["short"], "net": e["long"] - e["short"],
             "by_agent": e["by_agent"]} for (book, symbol), e in sorted(grouped.items())]


def exposure(s: Session) -> dict[str, Any]:
    """The pause (None when trading is not paused) and the exposure rows."""
    return {"paused": global_pause(s), "exposure": exposure_rows(s)}
