"""No configured secret reaches a log, whoever logs it.

okxlab's own code never logs a secret, but libraries do what they like (an HTTP client logging a URL with a
password, an SDK repeating a key in an exception, a driver's error naming a connection string). Installed in
every process that logs (workers, the CLI), this replaces every configured secret (okxlab/secrets.py) in each
log record's message and traceback at the moment the record is made, so no handler, formatter or file ever
holds one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

MASK = "[redacted]"
_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_installed = False


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _scrubbed(record: logging.LogRecord) -> logging.LogRecord:
    secrets = _secrets
    if not secrets:
        return record
    message = record.getMessage()
    clean = scrub(message, secrets)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        # Formatters use a record's exc_text when it is set: format the traceback once, here, without secrets.
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info), secrets)
    return record


def install(secrets: Iterable[str]) -> None:
    """Scrub `secrets` (longest first) from every log record made from now on in this process. Calling it
    again replaces the set (the configuration was read again)."""
    global _secrets, _installed
    with _lock:
        _secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))
        if _installed:
            return
        make = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:  # noqa: ANN002, ANN003
            return _scrubbed(make(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
