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

from okxlab.config import Config, load_config
from okxlab.db.models import Replay, Run, utcnow
from okxlab.db.session import session_factory
from okxlab.execution.exchange import ExchangeProvider

if TYPE_CHECKING:
    from okxlab.planning.factory import PlannerProvider


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
        if run.replay_id is None:
            return None
        with self._lock:
            cached = self._replays.get(run.replay_id)
        if cached is None:
            with self.sessions() as s:
                cached = s.get(Replay, run.replay_id)
            with self._lock:
                self._replays[run.replay_id] = cached
        return cached

    def exchange_url(self, run: Run) -> str | None:
        """A replay's simulator world; None means the configured exchange."""
        replay = self.replay(run)
        return replay.exchange_url if replay else None


def build_env(config: Config | None = None, database_url: str | None = None) -> StageEnv:
    from okxlab.planning.factory import PlannerProvider  # planners pull in openai and TA-Lib; load on demand

    config = config or load_config()
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
