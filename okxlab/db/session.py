"""Engines and sessions. One engine per URL per process; SQLite tuned for a few concurrent writers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from okxlab.errors import ConfigError
from okxlab.settings import current as settings

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


_SECRET_PARAM = ("password", "secret", "token")  # query keys whose values are never shown
URL_HELP = "give postgresql://USER:PASSWORD@HOST[:PORT]/DB or sqlite:///PATH"


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in _SECRET_PARAM)


def redact(url: str) -> str:
    """The URL with its password hidden, in the userinfo and in query parameters (`?password=...`)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "<unparseable database URL>"
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    pairs = [(k, v) for k, values in parsed.query.items() for v in ((values,) if isinstance(values, str) else values)]
    if pairs:
        shown += "?" + "&".join(f"{quote(k)}={'***' if _secret_key(k) else quote(v)}" for k, v in pairs)
    return shown


def url_secrets(url: str) -> list[str]:
    """The URL's password and secret query values, to scrub from a driver's error text."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return [url]  # an unparseable URL is never shown at all
    found = [str(parsed.password)] if parsed.password else []
    for key, values in parsed.query.items():
        if _secret_key(key):
            found += [values] if isinstance(values, str) else list(values)
    return [f for f in found if f]


def scrub(text: str, url: str) -> str:
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


def parse_database_url(url: str) -> URL:
    """The URL as SQLAlchemy reads it, or one ConfigError line (never showing the password) if okxlab cannot use
    it: not a URL, not PostgreSQL or SQLite, or no driver installed for it."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(f"OKXLAB_DATABASE_URL is not a database URL; {URL_HELP}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")  # the driver okxlab installs (SQLAlchemy's default differs)
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise ConfigError(f"OKXLAB_DATABASE_URL {redact(url)} is not a PostgreSQL or SQLite database; {URL_HELP}")
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise ConfigError(f"OKXLAB_DATABASE_URL {redact(url)}: no driver {parsed.drivername!r} is installed; "
                          f"{URL_HELP}") from None
    if getattr(dialect, "is_async", False):
        raise ConfigError(f"OKXLAB_DATABASE_URL {redact(url)}: {parsed.drivername} is an asyncio driver; {URL_HELP}")
    return parsed


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below be the only transaction control
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        # Take the write lock up front: a deferred transaction that reads and then writes can fail
        # with "database is locked" instead of waiting, when several worker threads write at once.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine(url: str | None = None) -> Engine:
    url = url or settings().database
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        parsed = parse_database_url(url)
        if parsed.drivername.startswith("sqlite"):
            if parsed.database and parsed.database != ":memory:":
                folder = Path(parsed.database).parent
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise ConfigError(f"cannot create {folder} for the SQLite database: {exc.strerror or exc}; "
                                      "set OKXLAB_HOME or OKXLAB_DATABASE_URL") from None
            engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 60})
            _sqlite_pragmas(engine)
        else:
            engine = create_engine(
                parsed,
                pool_pre_ping=True,
                pool_size=settings().db_pool_size,
                connect_args={"connect_timeout": 5, "application_name": "okxlab"},
            )
        _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (after fork, or at the end of tests)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def check_connection(url: str | None = None) -> None:
    """Raise a one-line ConfigError if the database cannot be reached."""
    url = url or settings().database
    try:
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:  # the driver refused the URL or could not connect: either way, the URL's problem
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig and str(exc.orig).strip() else "connection failed"
        raise ConfigError(f"cannot reach the database at {redact(url)}: {scrub(reason, url)}; "
                          "check OKXLAB_DATABASE_URL") from None
