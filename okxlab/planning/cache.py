"""The replay cache: a model's recorded answers, keyed by (provider, model, prompt sha256).

Prompts are deterministic (see prompt.py), so replaying a run rebuilds the same prompt and gets the recorded
answer back with no HTTP call: replays are free, fast and reproducible. `PlanContext.fresh_llm` skips the
lookup (the new answer then replaces the recorded one).

Only answers the model actually gave are recorded, including ones that fail validation (a replay must see the
same bad answer and the same repair). Transport failures are never recorded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CachedResponse:
    text: str  # the model's answer, verbatim
    tokens_in: int | None = None  # usage reported when it was recorded
    tokens_out: int | None = None
    finish_reason: str | None = None


class ResponseCache(Protocol):
    """Where recorded answers live. Implementations must be safe to share between threads."""

    def get(self, provider: str, model: str, prompt_sha256: str) -> CachedResponse | None: ...

    def put(self, provider: str, model: str, prompt_sha256: str, response: CachedResponse) -> None:
        """Record (or replace) the answer for this key."""
        ...


class MemoryResponseCache:
    """A dict behind a lock: for tests and one-process replays."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], CachedResponse] = {}
        self._lock = threading.Lock()

    def get(self, provider: str, model: str, prompt_sha256: str) -> CachedResponse | None:
        with self._lock:
            return self._entries.get((provider, model, prompt_sha256))

    def put(self, provider: str, model: str, prompt_sha256: str, response: CachedResponse) -> None:
        with self._lock:
            self._entries[(provider, model, prompt_sha256)] = response

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def keys(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._entries)
