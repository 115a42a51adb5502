"""Is okxlab able to trade: database, broker, exchange or simulator, workers, dispatch. Each check is short and
bounded in time, and names what failed without any secret (URLs are shown redacted)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.config import Config, broker_url, database_url
from okxlab.db.models import Run, Schedule, utcnow
from okxlab.db.session import redact, scrub
from okxlab.pipeline.dispatch import is_stale, parse_schedule

TIMEOUT = 2.0  # seconds, per check; the checks run side by side


def _database(sessions: sessionmaker[Session]) -> dict[str, Any]:
    with sessions() as s:
        s.execute(select(1))
    return {"ok": True}


def _broker() -> dict[str, Any]:
    from kombu import Connection

    url = broker_url()
    with Connection(url, connect_timeout=TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, timeout=TIMEOUT)
    return {"ok": True, "url": redact(url)}


def _exchange(cfg: Config) -> dict[str, Any]:
    modes = sorted({cfg.exchange_mode(a) for a in cfg.agents})
    out: dict[str, Any] = {"ok": True, "modes": modes}
    if "sim" in modes:
        from okxlab.simulator.admin import AdminClient

        AdminClient(cfg.sim_url, timeout=TIMEOUT).health()
        out["simulator"] = cfg.sim_url
    if set(modes) - {"sim"}:
        import ccxt

        out["okx_time"] = ccxt.okx({"timeout": int(TIMEOUT * 1000)}).fetch_time()
    return out


def dispatch_status(sessions: sessionmaker[Session], now: datetime) -> dict[str, Any]:
    with sessions() as s:
        return dispatch_state(s, now)


def dispatch_state(s: Session, now: datetime) -> dict[str, Any]:
    """The last scheduled run created, and whether an enabled schedule has a tick overdue past its expiry
    (beat or the dispatch workers are not running)."""
    last = s.scalar(select(func.max(Run.created_at)).where(Run.schedule_id.is_not(None)))
    overdue = []
    for sched in s.scalars(select(Schedule).where(Schedule.enabled.is_(True))):
        parsed = parse_schedule(sched.kind, sched.expr)
        tick, _ = parsed.latest_tick(now, sched.last_dispatched_for)
        if tick is not None and is_stale(parsed, tick, now):
            overdue.append({"schedule": sched.name, "tick": tick, "late_s": (now - tick).total_seconds()})
    return {"ok": not overdue, "last_dispatch": last,
            "age_s": (now - last).total_seconds() if last else None, "overdue": overdue}


def check(sessions: sessionmaker[Session], cfg: Config, ping_workers: Callable[[float], dict[str, Any]]) -> dict[str, Any]:
    """Every part's state; `ok` only when all are. `ping_workers(timeout)` returns worker name → reply."""
    now = utcnow()

    def workers() -> dict[str, Any]:
        replies = ping_workers(TIMEOUT) or {}
        return {"ok": bool(replies), "workers": sorted(replies)}

    checks: dict[str, Callable[[], dict[str, Any]]] = {
        "database": lambda: _database(sessions), "broker": _broker, "exchange": lambda: _exchange(cfg),
        "workers": workers, "dispatch": lambda: dispatch_status(sessions, now)}
    with ThreadPoolExecutor(len(checks)) as pool:
        futures = {name: pool.submit(fn) for name, fn in checks.items()}
        parts = {name: _outcome(f) for name, f in futures.items()}
    failing = [name for name, part in parts.items() if not part["ok"]]
    return {"ok": not failing, "failing": failing, "checked_at": now, "parts": parts}


def _outcome(future: Any) -> dict[str, Any]:
    try:
        return future.result(timeout=TIMEOUT * 3)
    except Exception as exc:  # any failure of a part is its state, reported in one line
        detail = (str(exc).strip().splitlines() or [""])[0][:200]
        for url in (database_url(), broker_url()):  # a driver's message may quote a URL with its password
            detail = scrub(detail, url)
        return {"ok": False, "error": f"{type(exc).__name__}: {detail}"}
