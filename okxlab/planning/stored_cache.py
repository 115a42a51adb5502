"""The replay cache kept in the database (table llm_cache), behind planning.cache.ResponseCache.

Entries are written in their own short transactions: a recorded answer stays recorded even if the stage
that asked for it is retried, which is exactly what a replay wants.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.db.models import LlmCacheEntry, utcnow
from okxlab.db.ops import insert_ignore
from okxlab.planning.cache import CachedResponse


class DatabaseResponseCache:
    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def get(self, provider: str, model: str, prompt_sha256: str) -> CachedResponse | None:
        with self.sessions() as s:
            row = s.scalar(select(LlmCacheEntry).where(LlmCacheEntry.provider == provider, LlmCacheEntry.model == model,
                                                       LlmCacheEntry.prompt_sha256 == prompt_sha256))
            return CachedResponse(row.response, row.tokens_in, row.tokens_out) if row else None

    def put(self, provider: str, model: str, prompt_sha256: str, response: CachedResponse) -> None:
        with self.sessions.begin() as s:
            key = {"provider": provider, "model": model, "prompt_sha256": prompt_sha256}
            values = {"response": response.text, "tokens_in": response.tokens_in, "tokens_out": response.tokens_out,
                      "created_at": utcnow()}
            if not insert_ignore(s, LlmCacheEntry, [{**key, **values}], list(key)):
                row = s.scalar(select(LlmCacheEntry).filter_by(**key))
                for name, value in values.items():  # a fresh answer replaces the recorded one
                    setattr(row, name, value)
