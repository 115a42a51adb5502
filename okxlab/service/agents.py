"""Agents: listing, one agent's whole state, trading-state changes and flatten."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.agents import sync_agents
from okxlab.config import AgentConfig, Config
from okxlab.db.models import (
    EquitySnapshot,
    Order,
    PositionRecord,
    RiskStateRecord,
    Run,
    utcnow,
)
from okxlab.domain import DRY_PREFIX, TERMINAL_ORDER, TradingState
from okxlab.errors import UserError
from okxlab.risk.switches import change_trading_state, global_pause, state_row
from okxlab.service.risk import Conflict, latest_marks
from okxlab.settings import EXCHANGE_MODES


def _latest_book(s: Session, agent: str) -> str | None:
    """The book of the agent's most recent run (what `agents list` shows by default)."""
    return s.scalars(select(Run.book).where(Run.agent == agent, Run.book.not_like(f"{DRY_PREFIX}%"))
                     .order_by(Run.created_at.desc()).limit(1)).first()


def _latest_equity(s: Session, agent: str, book: str) -> EquitySnapshot | None:
    return s.scalars(select(EquitySnapshot).where(EquitySnapshot.agent == agent, EquitySnapshot.book == book)
                     .order_by(EquitySnapshot.ts.desc(), EquitySnapshot.id.desc()).limit(1)).first()


def _planner(a: AgentConfig) -> str:
    return a.strategy if a.planner == "strategy" else f"{a.llm.get('provider')}/{a.llm.get('model')}"


def summary(s: Session, cfg: Config, a: AgentConfig, book: str | None) -> dict[str, Any]:
    shown = book or _latest_book(s, a.name) or cfg.exchange_mode(a)
    state = s.get(RiskStateRecord, (a.name, shown))
    eq = _latest_equity(s, a.name, shown)
    n_runs = s.scalar(select(func.count()).select_from(Run).where(Run.agent == a.name, Run.book == shown))
    return {"name": a.name, "planner": a.planner, "uses": _planner(a), "symbols": list(a.symbols),
            "book": shown, "trading_state": state.trading_state if state else "ACTIVE",
            "state_reason": state.state_reason if state else None,
            "state_changed_at": state.state_changed_at if state else None,
            "equity": eq.equity if eq else a.initial_equity, "equity_book": shown,
            "equity_at": eq.ts if eq else None,
            "return_pct": ((eq.equity / a.initial_equity - 1) * 100) if eq else 0.0, "runs": n_runs}


def list_agents(s: Session, cfg: Config, book: str | None = None) -> list[dict[str, Any]]:
    """Every configured agent with its trading state and equity in one book (default: its latest). While the
    global pause is on, each agent's `effective_state` is PAUSED whatever its own state."""
    pause = global_pause(s)
    rows = [summary(s, cfg, a, book) for a in cfg.agents]
    for row in rows:
        row["effective_state"] = "PAUSED" if pause else row["trading_state"]
        row["global_pause"] = pause
    return rows


def detail(s: Session, cfg: Config, name: str) -> dict[str, Any]:
    """One agent: its state and equity in every book it has, open positions with unrealised PnL at the latest
    snapshot price, open orders with their stops and targets, and its limits."""
    a = cfg.agent(name)  # unknown agents are refused with the list of known ones
    states = {r.book: r for r in s.scalars(select(RiskStateRecord).where(RiskStateRecord.agent == name))}
    run_books = set(s.scalars(select(Run.book).where(Run.agent == name, Run.book.not_like(f"{DRY_PREFIX}%"))
                              .distinct()))  # dry runs' books are no accounts
    books = sorted(run_books | set(states) | {cfg.exchange_mode(a)})
    positions = list(s.scalars(select(PositionRecord).where(PositionRecord.agent == name, PositionRecord.status == "open")
                               .order_by(PositionRecord.book, PositionRecord.symbol)))
    marks = latest_marks(s, {(p.book, p.symbol) for p in positions})
    # A position's stop and target are those its opening order carried (OKX attaches them to the entry).
    protection = {(o.run_id, o.symbol): (o.stop_loss, o.take_profit) for o in s.scalars(
        select(Order).where(Order.agent == name, Order.purpose == "open",
                            Order.run_id.in_([p.open_run_id for p in positions if p.open_run_id])))}
    orders = s.scalars(select(Order).where(Order.agent == name, Order.state.not_in([st.value for st in TERMINAL_ORDER]))
                       .order_by(Order.created_at))
    per_book = []
    for book in books:
        st, eq = states.get(book), _latest_equity(s, name, book)
        per_book.append({"book": book, "trading_state": st.trading_state if st else "ACTIVE",
                         "state_reason": st.state_reason if st else None,
                         "state_changed_at": st.state_changed_at if st else None,
                         "equity": eq.equity if eq else a.initial_equity, "equity_at": eq.ts if eq else None,
                         "return_pct": ((eq.equity / a.initial_equity - 1) * 100) if eq else 0.0})
    return {
        "name": a.name, "planner": a.planner, "uses": _planner(a), "symbols": list(a.symbols), "bar": a.bar,
        "mode": cfg.exchange_mode(a), "initial_equity": a.initial_equity, "limits": a.limits.to_json(),
        "books": per_book,
        "positions": [_position(p, marks.get((p.book, p.symbol)), protection.get((p.open_run_id, p.symbol)))
                      for p in positions],
        "open_orders": [{"cl_ord_id": o.cl_ord_id, "book": o.book, "run_id": o.run_id, "symbol": o.symbol,
                         "side": o.side, "purpose": o.purpose, "order_type": o.order_type, "contracts": o.contracts,
                         "price": o.price, "stop_loss": o.stop_loss, "take_profit": o.take_profit, "state": o.state,
                         "filled": o.filled, "created_at": o.created_at} for o in orders],
    }


def _position(p: PositionRecord, mark: float | None, protection: tuple[float | None, float | None] | None) -> dict[str, Any]:
    sign = 1 if p.side == "long" else -1
    unrealised = None if mark is None else sign * (mark - p.entry_price) * p.contracts * p.ct_val
    stop, target = protection or (None, None)
    return {"book": p.book, "symbol": p.symbol, "side": p.side, "contracts": p.contracts, "ct_val": p.ct_val,
            "entry_price": p.entry_price, "mark": mark, "unrealized_pnl": unrealised, "stop_loss": stop,
            "take_profit": target, "opened_at": p.opened_at, "open_run_id": p.open_run_id}


def require_book(s: Session, agent: str, book: str) -> None:
    """A halt in a book that does not exist ("Demo" for demo) would succeed and leave the real book trading."""
    if book in EXCHANGE_MODES:
        return
    if not book.startswith(DRY_PREFIX) and (s.scalar(select(Run.id).where(Run.book == book).limit(1)) is not None
                                            or s.get(RiskStateRecord, (agent, book)) is not None):
        return
    raise UserError(f"no book {book!r}: give {', '.join(EXCHANGE_MODES)} or a replay:<id> that has runs")


def change_state(sessions: sessionmaker[Session], cfg: Config, name: str, book: str | None, target: TradingState,
                 reason: str | None, *, actor: str) -> str:
    """Set an agent's trading state in a book (default: its exchange mode); returns the book."""
    agent_cfg = cfg.agent(name)
    book = book or cfg.exchange_mode(agent_cfg)
    with sessions.begin() as s:
        require_book(s, name, book)
        sync_agents(s, cfg)
        current = state_row(s, name, book).trading_state
        if current == target.value:
            raise Conflict(f"agent {name} is already {target.value} in book {book}")
        change_trading_state(s, name, book, target, by=actor, now=utcnow(), reason=reason)
    return book


def flatten(cfg: Config, name: str, book: str | None, *, actor: str) -> tuple[str, Any]:
    """Cancel every order and close every position of the agent in `book` (audited). Returns (book, result)."""
    from okxlab.execution.manual import flatten as run_flatten
    from okxlab.pipeline.env import build_env

    agent = cfg.agent(name)
    book = book or cfg.exchange_mode(agent)
    return book, run_flatten(build_env(cfg), agent, book, request_id=utcnow().isoformat(), actor=actor)
