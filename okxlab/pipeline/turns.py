"""Trading turns: at most one run per (agent, book) between its risk verdict and the end of its order stage.

Two runs of one agent in one book (two schedules on the same tick, a slow run overtaken by the next) would
otherwise each size against the same account and double the exposure. So:

- the snapshot stage notes the book's trading epoch *before* it reads the account from the exchange, or
  None if another run holds the turn at that moment (its orders may be missing from the account read);
- the risk stage takes the turn, in its own transaction, with the agent's state row locked: only if no
  other unfinished run holds it and the epoch is still the one the snapshot saw. Taking it moves the epoch
  on, so every snapshot read before it is stale from then on;
- the order stage gives the turn back in the transaction that ends the run. A run that ends any other way
  (failed, or killed and abandoned) frees it as well: a holder whose run has ended holds nothing.

A run that cannot take the turn ends `skipped` with the reason (`agent_busy` or `stale account`): it never
sizes against an account another run has changed, and the next tick decides again on a fresh snapshot.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.db.models import RiskStateRecord, Run
from okxlab.db.ops import audit
from okxlab.domain import TERMINAL_RUN as TERMINAL
from okxlab.risk.switches import state_row

AGENT_BUSY = "agent_busy"
STALE_ACCOUNT = "stale_account"


def _holder(session: Session, row: RiskStateRecord | None, run_id: str) -> str | None:
    """The other, unfinished run holding the turn, if any."""
    if row is None or row.trading_run_id in (None, run_id):
        return None
    status = session.scalar(select(Run.status).where(Run.id == row.trading_run_id))
    return None if status is None or status in TERMINAL else row.trading_run_id


def snapshot_epoch(session: Session, agent: str, book: str, run_id: str) -> int | None:
    """The epoch a snapshot taken now belongs to, or None while another run is trading in the book."""
    row = session.get(RiskStateRecord, (agent, book))
    if _holder(session, row, run_id) is not None:
        return None
    return row.trading_epoch if row is not None else 0


def take_turn(session: Session, run: Run, epoch: int | None) -> tuple[str, str] | None:
    """Take the book's turn for `run`, whose account was read in `epoch`. Returns None when taken, or the
    (code, reason) it was refused for. Locks the agent's state row until the caller's transaction ends."""
    row = state_row(session, run.agent, run.book, lock="update")
    if row.trading_run_id == run.id:
        return None  # already ours
    holder = _holder(session, row, run.id)
    where = f"{run.agent} [{run.book}]"
    if holder is not None:
        refused = (AGENT_BUSY, f"run {holder} is between its risk verdict and its orders for {where}")
    elif epoch is None:
        refused = (AGENT_BUSY, f"the account was read while another run was trading for {where}")
    elif epoch != row.trading_epoch:
        refused = (STALE_ACCOUNT, f"another run traded for {where} after this run read the account")
    else:
        row.trading_run_id = run.id
        row.trading_epoch += 1
        return None
    audit(session, "run.turn_refused", f"{refused[0]}: {refused[1]}", agent=run.agent, run_id=run.id,
          data={"book": run.book, "code": refused[0], "holder": holder, "epoch": row.trading_epoch,
                "snapshot_epoch": epoch})
    return refused


def end_turn(session: Session, agent: str, book: str, run_id: str) -> None:
    """Give the turn back (in the transaction that ends the run's order stage)."""
    row = session.get(RiskStateRecord, (agent, book))
    if row is not None and row.trading_run_id == run_id:
        row.trading_run_id = None
