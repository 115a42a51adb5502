"""Orders, exactly once.

- The client order id (OKX `clOrdId`) is derived from (run id, decision index), so every delivery, retry
  or replay of the order stage names the same order.
- Before anything is sent, the order row is **claimed**: locked, found claimable and marked `submitting` in
  one transaction, which only one worker can win. A claim left behind by a dead worker expires after the
  claim TTL (60 s; `OKXLAB_ORDER_CLAIM_TTL`), measured on the database's clock, never the worker's: a
  worker whose clock runs ahead must not take over a claim that is still being used.
- The kill switches bind at the moment of the send: the claim re-reads the global pause and the agent's
  trading state under share locks in its own transaction (risk/switches.py), and so does the permission
  to send again after an unknown outcome. An opening order blocked by them ends `not_sent` with the reason
  (`paused`, `halted`, `reduce_only`); closing and flattening orders always go. While another attempt holds the claim, the order's outcome is
  not known: `send_order` raises `OrderBusy` (retry when the claim expires) rather than answer with an
  order still `submitting`.
- When a send's outcome is unknown (timeout, connection reset, 5xx), the order is marked `unknown` and the
  next attempt **looks it up by clOrdId before sending anything again**. OKX's duplicate-clOrdId answer
  means "already placed": it is fetched, never re-sent.
- Every state change is an audit event: new → submitting → submitted → partially_filled → filled |
  cancelled | rejected | expired (`unknown` while an outcome is being resolved), or new → not_sent.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import ccxt
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.db.models import AuditEvent, Order
from okxlab.db.ops import audit, db_now
from okxlab.domain import TERMINAL_ORDER, OrderState
from okxlab.errors import TransientError
from okxlab.outcome import audit_row
from okxlab.risk.switches import switches_block
from okxlab.settings import current as settings

log = logging.getLogger(__name__)

CLAIM_TTL = timedelta(seconds=60)  # longer than any single send (ccxt timeout 10 s) plus its lookup
DUPLICATE_CLORDID = "51016"  # OKX: "Duplicated clOrdId"
ORDER_NOT_FOUND = ("51603",)  # OKX: "Order does not exist"
OKX_STATES = {"live": "submitted", "partially_filled": "partially_filled", "filled": "filled",
              "canceled": "cancelled", "mmp_canceled": "cancelled"}
REPLY_FIELDS = ("ordId", "clOrdId", "tag", "state", "accFillSz", "avgPx", "fee", "feeCcy", "sz", "ordType", "side",
                "reduceOnly", "cTime", "uTime")


class OutcomeUnknown(TransientError):
    """An order was (perhaps) sent and the answer was lost; it will be looked up before any re-send."""


class OrderBusy(TransientError):
    """Another attempt holds the order's claim (it is sending, or died sending): nothing is known yet.

    `retry_after`: seconds until that claim expires, when a new attempt may take over and look the order up.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def claim_ttl() -> timedelta:
    """How long a claim protects an attempt that may still be sending: CLAIM_TTL, or OKXLAB_ORDER_CLAIM_TTL
    seconds. It must outlast any request in flight (ccxt's timeout is 10 s per call)."""
    return settings().claim_ttl or CLAIM_TTL


# A request that got no answer at all may still be on its way to the exchange; one the exchange answered
# (5xx, 429) is not. ccxt's class names, as recorded in Order.last_error.
NO_ANSWER = ("RequestTimeout", "NetworkError")


def resend_settle() -> timedelta:
    """How long after an unanswered request a lookup's "not found" is trusted enough to send again: twice the
    exchange request timeout, or OKXLAB_ORDER_RESEND_SETTLE seconds."""
    configured = settings()
    if configured.resend_settle is not None:  # 0 is a setting (believe a lookup at once), not "unset"
        return configured.resend_settle
    return timedelta(milliseconds=2 * configured.exchange_timeout_ms)


def _may_still_arrive(order: Order, now: datetime) -> float:
    """Seconds to wait before a "not found" may be believed (0: believe it now)."""
    if order.state != "unknown" or (order.last_error or "").split(":", 1)[0] not in NO_ANSWER:
        return 0.0
    return max((order.updated_at + resend_settle() - now).total_seconds(), 0.0)


def cl_ord_id_for(run_id: str, index: int) -> str:
    """OKX clOrdId: ≤ 32 letters and digits, starting with a letter; the same for the same decision."""
    return "ox" + hashlib.sha256(f"{run_id}:{index}".encode()).hexdigest()[:30]


def cl_ord_id_for_manual(agent: str, request: str) -> str:
    return "om" + hashlib.sha256(f"{agent}:{request}".encode()).hexdigest()[:30]


def order_rows(run_id: str, agent: str, book: str, intents: Iterable[tuple[int, dict[str, Any] | None]],
               mids: dict[str, float], *, tag: str, exchange_url: str | None, now: datetime) -> list[dict[str, Any]]:
    """One new order per accepted decision of a run: (decision index, the verdict's order) → the order row, with
    its deterministic clOrdId. `mids`: the run's snapshot mid per symbol (the reference for slippage)."""
    rows = []
    for idx, o in intents:
        if not o:
            continue
        rows.append({
            "cl_ord_id": cl_ord_id_for(run_id, idx), "run_id": run_id, "idx": idx, "agent": agent, "book": book,
            "purpose": "close" if o["reduce_only"] else "open", "symbol": o["symbol"], "side": o["side"],
            "order_type": o["order_type"], "contracts": o["contracts"], "price": o["limit_price"],
            "reduce_only": o["reduce_only"], "leverage": o["leverage"], "stop_loss": o["stop_loss"],
            "take_profit": o["take_profit"], "tag": tag, "exchange_url": exchange_url, "state": OrderState.NEW,
            "claim_token": None, "claimed_at": None, "send_attempts": 0, "ord_id": None, "filled": 0.0,
            "avg_price": None, "fee": 0.0, "reference_price": mids.get(o["symbol"]), "last_error": None, "reply": None,
            "created_at": now, "updated_at": now, "closed_at": None,
        })
    return rows


@dataclass
class SendResult:
    order_id: int
    state: str
    ord_id: str | None
    error: str | None = None


def transition(order: Any, state: str, now: datetime, *, note: str = "", **fields: Any) -> dict[str, Any] | None:
    """Move an order (an Order row, or an in-process replay's order object) to `state`, setting `fields`.
    Returns the audit event of the change, None when the state stays. The one order state machine both
    executors use."""
    before = order.state
    for key, value in fields.items():
        setattr(order, key, value)
    order.updated_at = now
    if state == before:
        return None
    order.state = state
    if state in TERMINAL_ORDER:
        order.closed_at = order.closed_at or now
    return audit_row("order." + state, f"{order.cl_ord_id} {order.symbol} {order.side} {order.contracts:g}: "
                     f"{before} → {state}" + (f" ({note})" if note else ""), agent=order.agent, run_id=order.run_id,
                     data={"cl_ord_id": order.cl_ord_id, "from": before, "to": state, "ord_id": order.ord_id})


def okx_order_fields(order: Any, info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The state and fields an order takes from OKX's view of it (a trade/order row)."""
    fee = info.get("fee")
    return OKX_STATES.get(info.get("state", ""), order.state), {
        "ord_id": str(info.get("ordId") or order.ord_id),
        "filled": _float(info.get("accFillSz")),
        "avg_price": _float(info.get("avgPx")) or order.avg_price,
        "fee": abs(_float(fee)) if fee not in (None, "") else order.fee,
        "reply": {k: info.get(k) for k in REPLY_FIELDS},
    }


def _float(value: Any) -> float:
    try:
        return float(value) if value not in (None, "") else 0.0
    except (TypeError, ValueError):
        return 0.0


def _transition(s: Session, order: Order, state: str, now: datetime, *, note: str = "", **fields: Any) -> None:
    row = transition(order, state, now, note=note, **fields)
    if row is not None:
        s.add(AuditEvent(**row))


@dataclass(frozen=True)
class Claim:
    """The right to send (or resolve) one order, won in one transaction. `token` is None when the order was
    not claimable (someone else holds it, or it needs no sending); `blocked` names the kill switch that ended
    a new order `not_sent` instead."""

    token: str | None
    blocked: str | None = None

    def __bool__(self) -> bool:
        return self.token is not None


def _block(s: Session, order: Order, now: datetime) -> str | None:
    """The kill switches, read under share locks in the caller's transaction: if they block this order, it
    ends `not_sent` with the reason and the switch's name is returned."""
    reason = switches_block(s, order.agent, order.book, purpose=order.purpose, reduce_only=order.reduce_only)
    if reason is not None:
        order.claim_token = None
        _transition(s, order, "not_sent", now, note=reason, last_error=reason)
    return reason


def claim(sessions: sessionmaker[Session], order_id: int) -> Claim:
    """Win the right to send (or resolve) this order.

    One transaction finds the order claimable, locks its row and marks it `submitting` under the new token, so
    a second attempt waits for the first and then finds it taken: of two attempts only one can win, however
    close together they come. `send_attempts` counts the claims won. A new order is first checked against the
    kill switches in the same transaction; an order that may already be at the exchange is checked after its
    lookup (`_permit_resend`), since a placed order cannot be taken back by not sending it.
    """
    token = secrets.token_hex(16)
    with sessions.begin() as s:
        now = db_now(s)
        order = s.scalar(
            select(Order)
            .where(Order.id == order_id,
                   or_(Order.state.in_(("new", "unknown")),
                       (Order.state == "submitting") & (Order.claimed_at < now - claim_ttl())))
            .with_for_update()
        )
        if order is None:
            return Claim(None)
        if order.state == "new":
            blocked = _block(s, order, now)
            if blocked is not None:
                return Claim(None, blocked)
        order.claim_token, order.claimed_at, order.send_attempts = token, now, order.send_attempts + 1
        _transition(s, order, "submitting", now)
    return Claim(token)


def _permit_resend(sessions: sessionmaker[Session], order_id: int, token: str) -> str | None:
    """Before sending again an order the exchange says it never received: still ours, and the switches as
    they stand now (locked, as at the claim). Returns the switch that blocked it (it is then `not_sent`)."""
    with sessions.begin() as s:
        now = db_now(s)
        order = s.scalar(select(Order).where(Order.id == order_id).with_for_update())
        if order.claim_token != token or order.state != "submitting":
            raise OrderBusy(f"{order.cl_ord_id}: its claim was taken over while it was looked up", retry_after=1.0)
        return _block(s, order, now)


def _params(order: Order) -> dict[str, Any]:
    params: dict[str, Any] = {"clientOrderId": order.cl_ord_id, "tag": order.tag}
    if order.reduce_only:
        params["reduceOnly"] = True
    if order.stop_loss:
        params["stopLoss"] = {"triggerPrice": order.stop_loss}  # attachAlgoOrds, market exit
    if order.take_profit:
        params["takeProfit"] = {"triggerPrice": order.take_profit}
    return params


def lookup(client: ccxt.okx, symbol: str, cl_ord_id: str) -> dict[str, Any] | None:
    """The order as the exchange knows it, by clOrdId; None if the exchange has never seen it."""
    try:
        return client.fetch_order(None, symbol, {"clOrdId": cl_ord_id})
    except ccxt.OrderNotFound:
        return None
    except ccxt.ExchangeError as exc:
        if any(code in str(exc) for code in ORDER_NOT_FOUND):
            return None
        raise


def apply_exchange_order(s: Session, order: Order, data: dict[str, Any], now: datetime) -> None:
    """Bring our row in line with the exchange's view of the order (a ccxt order; OKX's row in `info`)."""
    state, fields = okx_order_fields(order, data.get("info") or {})
    _transition(s, order, state, now, **fields)


def _unknown(sessions: sessionmaker[Session], order_id: int, exc: Exception) -> OutcomeUnknown:
    """Record that the order's fate at the exchange is not known, giving up this attempt's claim so that the
    next attempt may claim it at once and look it up (rather than wait for the claim to expire). The time is
    the database's: the settle time before a resend counts from it."""
    with sessions.begin() as s:
        order = s.get(Order, order_id)
        _transition(s, order, "unknown", db_now(s), note=type(exc).__name__, last_error=f"{type(exc).__name__}: {exc}"[:500])
    return OutcomeUnknown(f"{order.cl_ord_id}: {type(exc).__name__}")


def _still_unknown(sessions: sessionmaker[Session], order_id: int, since: datetime, wait: float) -> None:
    """Give the claim back without sending: the order stays `unknown` since its unanswered request (the
    settle time keeps counting from there), and the next attempt looks again."""
    with sessions.begin() as s:
        order = s.get(Order, order_id)
        order.state, order.updated_at, order.claim_token = "unknown", since, None
        audit(s, "order.awaiting", f"{order.cl_ord_id} not at the exchange yet; its unanswered request may still "
              f"land, so it is looked up again in {wait:.0f} s before anything is sent", agent=order.agent,
              run_id=order.run_id)


def send_order(sessions: sessionmaker[Session], client: ccxt.okx, order_id: int, market_symbol: str) -> SendResult:
    """Send one claimed order, or resolve it if a previous attempt's outcome is unknown.

    Returns only orders whose outcome is known (`not_sent` included, when a kill switch blocked it); raises
    OutcomeUnknown or OrderBusy (both transient) otherwise. Every time here is the database's clock.
    """
    with sessions() as s:
        order = s.get(Order, order_id)
        now = db_now(s)
        blocked = switches_block(s, order.agent, order.book, purpose=order.purpose, reduce_only=order.reduce_only,
                                 lock=False)
    settle_wait = _may_still_arrive(order, now)  # read before the claim turns the order `submitting`
    unknown_since = order.updated_at
    if order.state in ("new", "unknown") and order.leverage and not order.reduce_only and blocked is None:
        # Account set-up before the claim: if the exchange fails it, nothing was sent and no claim is held,
        # and the order's send attempts count only attempts that sent (or looked for) the order. Not for an
        # order the switches block: a halted agent's leverage (and its open position's margin) stays as it is.
        client.set_leverage(order.leverage, market_symbol, {"marginMode": "cross"})
    won = claim(sessions, order_id)
    if not won:
        if won.blocked is not None:
            return SendResult(order_id, "not_sent", None, won.blocked)
        with sessions() as s:
            order = s.get(Order, order_id)
            now = db_now(s)
        if order.state == "submitting":  # another attempt is sending it, or died doing so: wait for its claim
            wait = (order.claimed_at + claim_ttl() - now).total_seconds() if order.claimed_at else 0.0
            raise OrderBusy(f"{order.cl_ord_id}: another attempt holds its claim (expires in {max(wait, 0):.0f} s)",
                            retry_after=max(wait, 1.0))
        return SendResult(order_id, order.state, order.ord_id, order.last_error if order.state == "not_sent" else None)
    with sessions() as s:
        order = s.get(Order, order_id)
    try:
        if order.send_attempts > 1:
            # An earlier attempt claimed it and may have reached the exchange: look before sending anything again.
            found = lookup(client, market_symbol, order.cl_ord_id)
            if found is not None:
                with sessions.begin() as s:
                    order = s.get(Order, order_id)
                    apply_exchange_order(s, order, found, now)
                    audit(s, "order.resolved", f"{order.cl_ord_id} found at the exchange by clOrdId after an unknown "
                          "outcome", agent=order.agent, run_id=order.run_id)
                    return SendResult(order_id, order.state, order.ord_id)
            if settle_wait > 0:  # its last request may still land: sending now could place it twice
                _still_unknown(sessions, order_id, unknown_since, settle_wait)
                raise OrderBusy(f"{order.cl_ord_id}: not at the exchange yet, but its last request went unanswered; "
                                f"looking again in {settle_wait:.0f} s before sending it again", retry_after=settle_wait)
            blocked = _permit_resend(sessions, order_id, won.token)
            if blocked is not None:  # never placed, and a switch was pulled since: it stays unsent
                return SendResult(order_id, "not_sent", None, blocked)
            with sessions.begin() as s:
                audit(s, "order.not_found", f"{order.cl_ord_id} looked up by clOrdId after an unknown outcome: not at "
                      "the exchange, so it is sent", agent=order.agent, run_id=order.run_id)
    except ccxt.NetworkError as exc:  # the lookup went unanswered: still unknown, and the claim is given up
        raise _unknown(sessions, order_id, exc) from exc
    try:
        reply = client.create_order(market_symbol, order.order_type, order.side, order.contracts, order.price,
                                    _params(order))
    except ccxt.NetworkError as exc:  # timeouts, resets, 5xx, rate limits: we cannot know if it landed
        raise _unknown(sessions, order_id, exc) from exc
    except ccxt.ExchangeError as exc:
        if DUPLICATE_CLORDID in str(exc):  # already placed by an earlier attempt: fetch it, never re-send
            try:
                found = lookup(client, market_symbol, order.cl_ord_id)
            except ccxt.NetworkError as err:
                raise _unknown(sessions, order_id, err) from err
            if found is not None:
                with sessions.begin() as s:
                    order = s.get(Order, order_id)
                    apply_exchange_order(s, order, found, now)
                    return SendResult(order_id, order.state, order.ord_id)
        with sessions.begin() as s:
            order = s.get(Order, order_id)
            _transition(s, order, "rejected", now, note=str(exc)[:200], last_error=f"{type(exc).__name__}: {exc}"[:500])
            return SendResult(order_id, "rejected", None, str(exc))
    # Accepted: read back its fill state (a market order is usually filled by now).
    ord_id = str(reply.get("id"))
    try:
        found = client.fetch_order(ord_id, market_symbol)
    except ccxt.NetworkError:
        found = None  # the order exists; its fills are synced on the next cycle
    with sessions.begin() as s:
        order = s.get(Order, order_id)
        if found is not None:
            apply_exchange_order(s, order, found, now)
        else:
            _transition(s, order, "submitted", now, ord_id=ord_id)
        return SendResult(order_id, order.state, order.ord_id)


def refresh_open_orders(sessions: sessionmaker[Session], client: ccxt.okx, agent: str, book: str, now: datetime,
                        symbol_of: dict[str, str]) -> int:
    """Follow this agent's live orders (resting limits, partial fills) to their end. Returns how many changed."""
    with sessions() as s:
        live = s.scalars(select(Order).where(Order.agent == agent, Order.book == book,
                                             Order.state.in_(("submitted", "partially_filled")))).all()
    changed = 0
    for order in live:
        if order.symbol not in symbol_of or not order.ord_id:
            continue
        found = client.fetch_order(order.ord_id, symbol_of[order.symbol])
        with sessions.begin() as s:
            row = s.get(Order, order.id)
            before = (row.state, row.filled)
            apply_exchange_order(s, row, found, now)
            changed += (row.state, row.filled) != before
    return changed


def protection_entry(algos: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A position's live stop loss, take profit and algo ids, from its pending algo orders as (algoId, the OKX
    row)."""
    entry: dict[str, Any] = {"stop_loss": None, "take_profit": None, "algo_ids": []}
    for algo_id, info in algos:
        entry["algo_ids"].append(algo_id)
        if info.get("slTriggerPx"):
            entry["stop_loss"] = float(info["slTriggerPx"])
        if info.get("tpTriggerPx"):
            entry["take_profit"] = float(info["tpTriggerPx"])
    return entry
