"""The Alembic migrations build exactly the schema the models describe, on Postgres and on SQLite."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from okxlab.db.migrate import current_revision, head_revision
from okxlab.db.models import Base
from okxlab.db.session import get_engine


def test_migrated_schema_matches_the_models(db_url: str) -> None:
    assert current_revision(db_url) == head_revision()
    with get_engine(db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_the_audit_log_is_append_only_in_the_database(db_url: str) -> None:
    engine = get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO audit_events (ts, kind, actor, message, data) "
                          "VALUES (CURRENT_TIMESTAMP, 'x', 'test', 'kept', '{}')"))
    for statement in ("UPDATE audit_events SET message = 'changed'", "DELETE FROM audit_events"):
        try:
            with engine.begin() as conn:
                conn.execute(text(statement))
        except Exception as exc:  # the trigger's refusal, whatever the driver calls it
            assert "append-only" in str(exc)
        else:
            raise AssertionError(f"{statement!r} was allowed")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT message FROM audit_events")).scalar_one() == "kept"


def test_the_schema_check_agrees_with_alembic(db_url: str, tmp_path) -> None:  # noqa: ANN001
    # Commands check the revision without importing Alembic; its own answers are the reference.
    from okxlab.db.migrate import alembic_head

    assert head_revision() == alembic_head() is not None
    with get_engine(db_url).connect() as conn:
        assert current_revision(db_url) == MigrationContext.configure(conn).get_current_revision() == head_revision()
    assert current_revision(f"sqlite:///{tmp_path / 'empty.sqlite'}") is None
