"""Email the review report over SMTP (STARTTLS, implicit TLS, or plain on a trusted relay), once per day.

Settings come from the environment only (typed in okxlab/settings.py, documented in docs/review.md):

    OKXLAB_SMTP_HOST       the server; unset means "no email" (the report is still written)
    OKXLAB_SMTP_PORT       default 587 (starttls), 465 (ssl), 25 (none)
    OKXLAB_SMTP_SECURITY   starttls (default) | ssl | none
    OKXLAB_SMTP_USER       login name, if the server wants one
    OKXLAB_SMTP_PASSWORD   read at the moment of sending; never stored, logged or shown
    OKXLAB_SMTP_FROM       the sender address (default: the user, when it is an address)
    OKXLAB_SMTP_CA_FILE    extra CA bundle to trust (a private relay); the system's store otherwise
    OKXLAB_SMTP_TIMEOUT    seconds, default 30
    OKXLAB_REPORT_TO       recipients, comma-separated

Once per day: before anything is sent, a conditional UPDATE on the day's row in the reports table claims the
send (sent_at set, send_count bumped); only one process can win it. If the SMTP conversation fails, the claim
is released so a later try can send. `resend` claims again whatever was sent before.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from okxlab import settings
from okxlab.db.models import Report, utcnow
from okxlab.db.ops import audit
from okxlab.errors import ConfigError, UserError

if TYPE_CHECKING:
    from okxlab.review.report import BuiltReport

PASSWORD_ENV = "OKXLAB_SMTP_PASSWORD"


class MailError(UserError):
    """The SMTP server could not be reached or refused the message (the claim has been released)."""

    exit_code = 4


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    user: str | None
    sender: str
    recipients: tuple[str, ...]
    timeout: float = 30.0
    ca_file: str | None = None

    def password(self) -> str | None:
        # Read at the moment of sending, never kept on this object (which may be shown or logged).
        secret = settings.current().smtp_password
        return secret.get_secret_value() if secret else None


def smtp_settings(env: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP settings from the environment (or `env`), or None when OKXLAB_SMTP_HOST is not set.

    Each variable's type is checked by okxlab.settings; this checks how they fit together."""
    s = settings.current() if env is None else settings.from_env(env)
    if not s.smtp_host:
        return None
    port = s.smtp_port or settings.SMTP_PORTS[s.smtp_security]
    user = s.smtp_user
    if user and not s.smtp_password:
        raise ConfigError(f"OKXLAB_SMTP_USER is set but {PASSWORD_ENV} is not; set both, or neither for no login")
    sender = s.smtp_from or (user if user and "@" in user else "")
    if not sender:
        raise ConfigError("set OKXLAB_SMTP_FROM to the sender address of the report emails")
    recipients = tuple(r.strip() for r in (s.report_to or "").split(",") if r.strip())
    if not recipients:
        raise ConfigError("OKXLAB_SMTP_HOST is set but OKXLAB_REPORT_TO is empty; give the recipients, comma-separated")
    if s.smtp_security == "none" and user:
        raise ConfigError("OKXLAB_SMTP_SECURITY=none would send the password in clear; use starttls or ssl with a login")
    ca_file = str(s.smtp_ca_file) if s.smtp_ca_file else None
    if ca_file and not os.path.isfile(ca_file):
        raise ConfigError(f"OKXLAB_SMTP_CA_FILE={ca_file} is not a file")
    return SmtpSettings(s.smtp_host, port, s.smtp_security, user, sender, recipients, s.smtp_timeout, ca_file)


def build_message(built: BuiltReport, smtp: SmtpSettings) -> EmailMessage:
    """multipart/alternative: the text, and the HTML inside multipart/related with each chart inline by cid."""
    from okxlab.review.report import content_id

    msg = EmailMessage()
    msg["Subject"] = built.subject
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(smtp.recipients)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = make_msgid("okxlab-review")
    msg["X-Okxlab-Report-Day"] = built.day.isoformat()
    msg.set_content(built.text)
    msg.add_alternative(built.email_html, subtype="html")
    html_part = msg.get_payload()[1]
    for name, png in built.images.items():
        html_part.add_related(png, maintype="image", subtype="png", cid=f"<{content_id(name)}>", filename=name,
                              disposition="inline")
    return msg


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def send_message(msg: EmailMessage, smtp: SmtpSettings) -> None:
    """One SMTP conversation. Failures become a one-line MailError that never contains the password."""
    password = smtp.password() if smtp.user else None
    context = ssl.create_default_context(cafile=smtp.ca_file)
    try:
        if smtp.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
        with client:
            client.ehlo()
            if smtp.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if smtp.user:
                client.login(smtp.user, password or "")
            client.send_message(msg, from_addr=smtp.sender, to_addrs=list(smtp.recipients))
    except (smtplib.SMTPException, OSError) as exc:
        reason = _scrub(" ".join(str(exc).split()) or type(exc).__name__, password)
        raise MailError(f"could not email the report via {smtp.host}:{smtp.port} ({smtp.security}): "
                        f"{type(exc).__name__}: {reason}; check the OKXLAB_SMTP_* settings") from None


# ---- once per day ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendResult:
    sent: bool
    message: str


@dataclass(frozen=True)
class Claim:
    day: date
    count: int  # send_count after the claim
    previous_sent_at: datetime | None


def claim(sessions: sessionmaker[Session], day: date, *, resend: bool = False) -> Claim | None:
    """Win the right to send the day's email, or None if it was sent (or is being sent) already."""
    with sessions.begin() as s:
        row = s.get(Report, day)
        if row is None:
            raise UserError(f"no report built for {day}; build it first with `okxlab report --date {day}`")
        seen, previous = row.send_count, row.sent_at
        conditions = [Report.day == day, Report.send_count == seen]
        if not resend:
            conditions.append(Report.sent_at.is_(None))
        won = s.execute(update(Report).where(*conditions).values(send_count=seen + 1, sent_at=utcnow())
                        .execution_options(synchronize_session=False)).rowcount
    return Claim(day, seen + 1, previous) if won == 1 else None


def release(sessions: sessionmaker[Session], c: Claim) -> None:
    """Undo a claim whose email did not leave, so the next try can send."""
    with sessions.begin() as s:
        s.execute(update(Report).where(Report.day == c.day, Report.send_count == c.count)
                  .values(send_count=c.count - 1, sent_at=c.previous_sent_at)
                  .execution_options(synchronize_session=False))


def send_once(sessions: sessionmaker[Session], built: BuiltReport, smtp: SmtpSettings, *,
              resend: bool = False) -> SendResult:
    c = claim(sessions, built.day, resend=resend)
    if c is None:
        with sessions() as s:
            row = s.get(Report, built.day)
            when = f" at {row.sent_at:%Y-%m-%d %H:%M} UTC" if row and row.sent_at else ""
        return SendResult(False, f"already emailed{when}; not sent again (use --resend to send it again)")
    try:
        send_message(build_message(built, smtp), smtp)
    except BaseException:
        release(sessions, c)
        raise
    with sessions.begin() as s:
        row = s.get(Report, built.day)
        row.recipients = list(smtp.recipients)
        audit(s, "report.sent", f"review report for {built.day} emailed to {len(smtp.recipients)} recipient(s)"
              + (" (resend)" if c.count > 1 else ""), data={"day": built.day.isoformat(), "send_count": c.count,
                                                           "recipients": list(smtp.recipients)})
    return SendResult(True, f"emailed to {', '.join(smtp.recipients)}" + (" (resend)" if c.count > 1 else ""))
