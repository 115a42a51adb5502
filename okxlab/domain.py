"""The words every part of okxlab shares: instruments, positions, accounts, market views, decisions.

These are plain frozen dataclasses with no I/O. Stages build them from database records; planners and the
risk engine consume them. OKX's own words are used where they exist (instId, ctVal, lotSz).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the words themselves need no numpy: commands that only read runs start without it
    import numpy as np

Side = Literal["long", "short"]
Action = Literal["open_long", "open_short", "close", "hold"]
OPENING_ACTIONS: frozenset[str] = frozenset({"open_long", "open_short"})


# The seven stages of a run, in order; each is a Celery task in a queue of its name.
STAGES: tuple[str, ...] = ("snapshot", "quality", "features", "plan", "validate", "risk", "order")


# Dry runs (`plans generate`): the stages up to the risk verdict, recorded in the book `dry:<book>` beside the
# agent's trading book <book>. A dry run reads the market, the account and the risk state of <book>, changes
# nothing there, and ends at its verdicts: no order, no trading turn, no equity. Boards, reports and metrics
# leave dry books out; they are not accounts.
DRY_PREFIX = "dry:"


def dry_book(book: str) -> str:
    """The dry-run book beside trading book `book`."""
    return f"{DRY_PREFIX}{book}"


def is_dry_book(book: str) -> bool:
    return book.startswith(DRY_PREFIX)


def account_book(book: str) -> str:
    """The book whose account and risk state a run in `book` is judged on: a dry book's trading book, else itself."""
    return book.removeprefix(DRY_PREFIX) if is_dry_book(book) else book


class RunStatus(StrEnum):
    """Where a run stands. The last five are final, each with a recorded reason."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    SKIPPED = "skipped"  # a stage could not do its job safely (stale data, agent busy, not ready)
    INVALID_PLAN = "invalid_plan"
    REJECTED = "rejected"  # by the risk engine, the exchange, or a kill switch at the order
    FAILED = "failed"


TERMINAL_RUN: frozenset[str] = frozenset({RunStatus.COMPLETED, RunStatus.SKIPPED, RunStatus.INVALID_PLAN,
                                          RunStatus.REJECTED, RunStatus.FAILED})


class OrderState(StrEnum):
    """An order's life: new → submitting → submitted → partially_filled → filled | cancelled | rejected |
    expired; `unknown` while a send's outcome is being resolved; new → not_sent when a kill switch (or a
    re-run) keeps it from going out."""

    NEW = "new"
    SUBMITTING = "submitting"
    UNKNOWN = "unknown"
    SUBMITTED = "submitted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    NOT_SENT = "not_sent"


TERMINAL_ORDER: frozenset[str] = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED,
                                            OrderState.EXPIRED, OrderState.NOT_SENT})
LIVE_ORDER: frozenset[str] = frozenset({OrderState.SUBMITTED, OrderState.PARTIALLY_FILLED})


class TradingState(StrEnum):
    """What an agent may do (NautilusTrader's words)."""

    ACTIVE = "ACTIVE"  # anything the risk engine accepts
    REDUCE_ONLY = "REDUCE_ONLY"  # closing and reducing only
    HALTED = "HALTED"  # closing and reducing only; a human must resume it


@dataclass(frozen=True)
class Instrument:
    """One tradable instrument, in OKX's terms. Swap sizes are in contracts of `ct_val` base units."""

    inst_id: str  # "BTC-USDT-SWAP"
    inst_type: str  # "SWAP" | "SPOT"
    base_ccy: str  # "BTC"
    quote_ccy: str  # "USDT"
    ct_val: float  # base units per contract; 1.0 for spot
    lot_sz: float  # size step (contracts for swaps, base units for spot)
    min_sz: float  # smallest order size, same unit as lot_sz
    tick_sz: float  # price step
    max_lever: float = 100.0

    def contracts_for_notional(self, notional: float, price: float) -> float:
        """Contracts worth `notional` USDT at `price`, before lot rounding."""
        return notional / (price * self.ct_val)

    def notional(self, contracts: float, price: float) -> float:
        return contracts * self.ct_val * price


@dataclass(frozen=True)
class Position:
    symbol: str  # instId
    side: Side
    contracts: float  # always positive; `side` carries the direction
    entry_price: float
    mark_price: float
    unrealized_pnl: float
    leverage: float
    ct_val: float = 1.0
    stop_loss: float | None = None
    take_profit: float | None = None
    opened_at: datetime | None = None

    @property
    def notional(self) -> float:
        return self.contracts * self.ct_val * self.mark_price


@dataclass(frozen=True)
class Account:
    """An agent's paper account as of one run."""

    equity: float  # cash + unrealised PnL, USDT
    cash: float  # USDT balance
    available: float  # margin still free for new positions
    positions: tuple[Position, ...] = ()
    start_equity: float = 10_000.0
    peak_equity: float = 10_000.0
    day_start_equity: float = 10_000.0
    invocations: int = 0  # runs so far for this agent
    minutes_since_start: float = 0.0

    def position(self, symbol: str) -> Position | None:
        return next((p for p in self.positions if p.symbol == symbol), None)

    @property
    def return_pct(self) -> float:
        return (self.equity / self.start_equity - 1.0) * 100.0 if self.start_equity else 0.0


def make_account(snapshot: dict[str, Any], *, protective: dict[str, tuple[float | None, float | None]],
                 start_equity: float, peak: float | None, peak_reset: bool, day_start: float | None,
                 invocations: int, minutes_since_start: float) -> Account:
    """The account a run's planner and risk engine see: the exchange's snapshot (equity, cash, positions as
    okxlab reads them), each position's stop and target (those okxlab attached when it opened it), and the
    book's history (the equity peak, the day's starting equity, runs so far). `peak_reset`: a human resumed
    the agent, so the peak counts only from then (and not from the starting equity)."""
    positions = tuple(Position(
        symbol=p["symbol"], side=p["side"], contracts=p["contracts"], entry_price=p["entry_price"],
        mark_price=p["mark_price"], unrealized_pnl=p["unrealized_pnl"], leverage=p["leverage"], ct_val=p["ct_val"],
        stop_loss=protective.get(p["symbol"], (None, None))[0], take_profit=protective.get(p["symbol"], (None, None))[1],
    ) for p in snapshot["positions"])
    equity = snapshot["equity"]
    return Account(
        equity=equity, cash=snapshot["cash"], available=snapshot["available"], positions=positions,
        start_equity=start_equity,
        peak_equity=max(peak or equity, equity) if peak_reset else max(peak or start_equity, start_equity, equity),
        day_start_equity=day_start if day_start is not None else start_equity,
        invocations=invocations, minutes_since_start=max(minutes_since_start, 0.0),
    )


Candle = tuple[int, float, float, float, float, float]  # (ts ms bar open, open, high, low, close, volume)


@dataclass(frozen=True)
class Ohlcv:
    """Candles as columns, oldest first: ts (int64 ms, bar open) and float64 prices and volume. The one
    candle type of okxlab: resampled history (marketdata), indicator input (strategies), replay views."""

    ts: np.ndarray  # int64 ms, bar open time
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.close)

    def tail(self, n: int) -> Ohlcv:
        """The last n bars (all of them when n >= len)."""
        start = max(0, len(self) - n)
        return Ohlcv(*(a[start:] for a in (self.ts, self.open, self.high, self.low, self.close, self.volume)))

    def head(self, n: int) -> Ohlcv:
        return Ohlcv(*(a[:n] for a in (self.ts, self.open, self.high, self.low, self.close, self.volume)))


@dataclass(frozen=True)
class SymbolMarket:
    """What one run knows about one symbol at its point in time. Candles are closed bars, oldest first."""

    symbol: str
    instrument: Instrument
    as_of: datetime
    last: float
    bid: float
    ask: float
    bar: str  # OKX bar name, e.g. "4H"
    candles: tuple[Candle, ...]
    features: dict[str, float | None] = field(default_factory=dict)
    funding_rate: float | None = None

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


@dataclass(frozen=True)
class SizeRequest:
    """How big a decision wants to be: `risk_usdt` is the USDT lost if the stop is hit;
    `notional_usdt` is the position's notional value."""

    mode: Literal["risk_usdt", "notional_usdt"]
    value: float


@dataclass(frozen=True)
class Decision:
    """One parsed decision of a plan (see okxlab/planning/plan.v1.schema.json)."""

    symbol: str
    action: Action
    confidence: float
    rationale: str
    size: SizeRequest | None = None
    leverage: float | None = None
    order_type: Literal["market", "limit"] = "market"
    limit_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    invalidation: str | None = None

    @property
    def is_opening(self) -> bool:
        return self.action in OPENING_ACTIONS

    @property
    def side(self) -> Side | None:
        return {"open_long": "long", "open_short": "short"}.get(self.action)  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": self.symbol,
            "action": self.action,
            "confidence": self.confidence,
            "rationale": self.rationale,
        }
        if self.size is not None:
            out["size"] = {"mode": self.size.mode, "value": self.size.value}
        for key in ("leverage", "limit_price", "stop_loss", "take_profit", "invalidation"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.is_opening or self.order_type != "market":
            out["order_type"] = self.order_type
        return out


@dataclass(frozen=True)
class Plan:
    schema_version: str
    decisions: tuple[Decision, ...]

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "decisions": [d.to_json() for d in self.decisions]}


@dataclass(frozen=True)
class OrderIntent:
    """What the risk engine hands to execution: an exact, exchange-ready order."""

    symbol: str
    side: Literal["buy", "sell"]
    contracts: float  # on the instrument's lot grid
    order_type: Literal["market", "limit"]
    reduce_only: bool
    leverage: float | None = None
    limit_price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None


@dataclass(frozen=True)
class Verdict:
    """The risk engine's answer for one decision."""

    index: int  # position of the decision in the plan
    symbol: str
    action: Action
    outcome: Literal["accept", "amend", "reject"]
    reasons: tuple[str, ...]  # reason codes, e.g. ("LEVERAGE_CAPPED",)
    decision: Decision  # as amended (equal to the proposal when accepted)
    order: OrderIntent | None  # None for hold, reject, or nothing to do
