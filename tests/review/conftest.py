"""Fixtures for the review tests: fresh SQLite and Postgres databases, a clean mail environment, and a real
SMTP server (aiosmtpd) on loopback that keeps what it receives."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from okxlab.db.migrate import upgrade
from okxlab.db.session import dispose_engines

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
MAIL_ENV = ("OKXLAB_SMTP_HOST", "OKXLAB_SMTP_PORT", "OKXLAB_SMTP_USER", "OKXLAB_SMTP_PASSWORD", "OKXLAB_SMTP_SECURITY",
            "OKXLAB_SMTP_FROM", "OKXLAB_SMTP_CA_FILE", "OKXLAB_SMTP_TIMEOUT", "OKXLAB_REPORT_TO", "OKXLAB_CONFIG",
            "OKXLAB_DATABASE_URL", "OKXLAB_REPORTS_DIR", "OKXLAB_HOME")


@pytest.fixture(autouse=True)
def review_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No mail settings or config from the developer's shell; reports go to a temporary directory."""
    for name in MAIL_ENV:
        monkeypatch.delenv(name, raising=False)
    reports = tmp_path / "reports"
    monkeypatch.setenv("OKXLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OKXLAB_REPORTS_DIR", str(reports))
    return reports


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'review.sqlite'}"
    upgrade(url)
    yield url
    dispose_engines()


def _admin() -> Any:
    conn = psycopg2.connect(f"{PG_SERVER}/postgres")
    conn.autocommit = True
    return conn


@pytest.fixture
def pg_db() -> Iterator[str]:
    """A uniquely named, migrated Postgres database, dropped afterwards."""
    name = f"okxlab_review_{uuid.uuid4().hex[:10]}"
    with closing(_admin()) as conn, conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        dispose_engines()
        with closing(_admin()) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


# ---- SMTP ------------------------------------------------------------------------------------------------------

@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None


@dataclass
class Inbox:
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        login = session.login_data.decode() if isinstance(session.login_data, bytes) else session.login_data
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content, login))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: Inbox
    ca_file: str | None = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on loopback (a trusted relay: no TLS, no login)."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, made here so the test trusts exactly it (via OKXLAB_SMTP_CA_FILE)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


SMTP_USER, SMTP_PASSWORD = "reporter@example.test", "s3cret-smtp-pass-9f1c"


@pytest.fixture
def starttls_server(tmp_path: Path) -> Iterator[SmtpServer]:
    """An SMTP server that offers STARTTLS with its own certificate and requires a login over TLS."""
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER \
            and auth_data.password.decode() == SMTP_PASSWORD
        inbox.logins.append((mechanism, auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"))
        # handled=False on failure: aiosmtpd then answers 535 itself
        return AuthResult(success=ok, handled=ok, auth_data=auth_data if ok else None)

    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            auth_required=True, authenticator=authenticator)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox, str(cert))
    finally:
        controller.stop()
