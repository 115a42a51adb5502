"""What stages need from the process around them: config, database, exchange clients, planners, a clock.

Built once per worker process (`default_env`); tests and embedded runs build their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from okxlab import log_secrets
from okxlab.config import AgentConfig, Config, load_config
from okxlab.db.models import Replay, Run, utcnow
from okxlab.db.session import session_factory
from okxlab.domain import account_book, is_dry_book
from okxlab.errors import NotFound
from okxlab.execution.exchange import ExchangeProvider, Venue, venue_for_book
from okxlab.secrets import configured_secrets

if TYPE_CHECKING:
    import ccxt

    from okxlab.pipeline.planners import PlannerProvider


@dataclass
class StageEnv:
    config: Config
    sessions: sessionmaker[Session]
    exchanges: ExchangeProvider
    planners: PlannerProvider
    now: Callable[[], datetime] = utcnow
    _replays: dict[int, Replay] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def replay(self, run: Run) -> Replay | None:
        """The replay a run belongs to (read once; replays do not change while they run)."""
        return None if run.replay_id is None else self._replay(run.replay_id)

    def _replay(self, replay_id: int) -> Replay | None:
        with self._lock:
            cached = self._replays.get(replay_id)
        if cached is None:
            with self.sessions() as s:
                cached = s.get(Replay, replay_id)
            if cached is not None:
                with self._lock:
                    self._replays[replay_id] = cached
        return cached

    def is_rerun(self, run: Run) -> bool:
        """A re-run of a past run (`replay run`): it records what it would send and never trades."""
        replay = self.replay(run)
        return replay is not None and replay.kind == "run"

    def venue(self, book: str) -> Venue:
        """Where `book`'s account lives (execution.exchange.venue_for_book). A re-run's book reads the market
        of its original's book (it never trades), and a dry run's book the market of its trading book."""
        if is_dry_book(book):
            return self.venue(account_book(book))
        replay_url = None
        if book.startswith("replay:"):
            try:
                replay = self._replay(int(book.split(":", 1)[1]))
            except ValueError:
                raise NotFound(f"book {book!r} is not replay:<id>") from None
            if replay is not None and replay.kind == "run" and not replay.exchange_url:
                with self.sessions() as s:
                    original = s.get(Run, (replay.summary or {}).get("original", ""))
                if original is not None and original.book != book:
                    return self.venue(original.book)
            replay_url = replay.exchange_url if replay is not None else None
        return venue_for_book(self.config, book, replay_url)

    def client(self, agent: AgentConfig, book: str) -> ccxt.okx:
        """A loaded ccxt client for `agent`'s account in `book`."""
        return self.exchanges.client(agent, self.venue(book))


def build_env(config: Config | None = None, database_url: str | None = None) -> StageEnv:
    from okxlab.pipeline.planners import PlannerProvider  # planners pull in openai and TA-Lib; load on demand

    config = config or load_config()
    log_secrets.install(configured_secrets(config))  # workers and commands log nothing the config names as secret
    sessions = session_factory(database_url)
    return StageEnv(config=config, sessions=sessions, exchanges=ExchangeProvider(config),
                    planners=PlannerProvider(config, sessions))


_default: StageEnv | None = None
_default_lock = threading.Lock()


def default_env() -> StageEnv:
    global _default
    with _default_lock:
        if _default is None:
            _default = build_env()
        return _default


def reset_default_env() -> None:
    global _default
    with _default_lock:
        _default = None
