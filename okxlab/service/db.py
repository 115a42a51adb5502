"""Opening the configured database and config, checked, for every face."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from okxlab.config import Config, database_url, load_config
from okxlab.db.migrate import current_revision, head_revision
from okxlab.db.session import check_connection, parse_database_url, redact, session_factory
from okxlab.errors import UserError


def _sqlite_path(url: str) -> Path | None:
    parsed = parse_database_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        return Path(parsed.database)
    return None


def open_db(*, must_exist: bool = True) -> sessionmaker[Session]:
    """The configured database, checked: reachable, and migrated to the current schema."""
    url = database_url()
    path = _sqlite_path(url)
    if must_exist and path is not None and not path.exists():
        raise UserError(f"no okxlab database at {path}; run `okxlab demo` or `okxlab db upgrade` first "
                        "(or set OKXLAB_DATABASE_URL / OKXLAB_HOME)")
    check_connection(url)
    current = current_revision(url)
    if current != head_revision():
        raise UserError(f"the database at {redact(url)} is at schema {current or 'none'}, not {head_revision()}; "
                        "run `okxlab db upgrade`")
    return session_factory(url)


def config() -> Config:
    from okxlab import log_secrets
    from okxlab.secrets import configured_secrets

    cfg = load_config()
    log_secrets.install(configured_secrets(cfg))  # logs of libraries never carry a configured secret
    return cfg
