"""Apply Alembic migrations programmatically (`okxlab db upgrade`), on Postgres or SQLite.

Every command that opens the database first checks its schema revision. That check reads the revision table
and the migration files directly: importing Alembic would cost each command 0.2 s. Alembic itself is loaded
only to migrate (tests/db compares both answers).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

import migrations
from okxlab.db.session import check_connection, get_engine
from okxlab.settings import current as settings

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

VERSIONS = Path(migrations.__file__).parent / "versions"
_REVISION = re.compile(r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*['"]?([\w.-]+)""", re.MULTILINE)


def alembic_config(url: str | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # '%' must be escaped for configparser; URLs may contain it (encoded passwords).
    cfg.set_main_option("sqlalchemy.url", (url or settings().database).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    from alembic import command

    url = url or settings().database
    check_connection(url)
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str | None = None) -> str | None:
    """The revision the database is at (None before the first migration), as Alembic records it."""
    with get_engine(url).connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    """The newest migration: the one revision no other migration names as its down_revision."""
    revisions, parents = set(), set()
    for path in VERSIONS.glob("*.py"):
        found = dict(_REVISION.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
            parents.add(found.get("down_revision"))
    heads = revisions - parents
    if len(heads) != 1:  # branches, or files this reading does not understand: ask Alembic
        return alembic_head()
    return heads.pop()


def alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_up_to_date(url: str | None = None) -> bool:
    return current_revision(url) == head_revision()
