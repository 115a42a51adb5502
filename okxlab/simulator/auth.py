"""OKX request signing, verified the way OKX does it.

sign = base64(HMAC-SHA256(secret, timestamp + METHOD + requestPath + body)), where requestPath is the
path from /api/v5 on, with the query string for GET, and body is the raw JSON text of a POST. Timestamps
are ISO-8601 with milliseconds and must be within 30 seconds of the server's wall clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime

from okxlab.simulator.accounts import Account
from okxlab.simulator.errors import OkxError

MAX_SKEW_MS = 30_000


def _bytes(text: str) -> bytes:
    # Header values arrive decoded with surrogateescape: any bytes a client sent round-trip, none raise.
    return text.encode("utf-8", "surrogateescape")


def sign(secret: str, timestamp: str, method: str, request_path: str, body: str = "") -> str:
    mac = hmac.new(_bytes(secret), _bytes(f"{timestamp}{method.upper()}{request_path}{body}"), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def parse_timestamp(value: str) -> int:
    """ms since the epoch from OKX's ISO format (2020-12-08T09:08:57.715Z); raises ValueError."""
    if not value.isascii() or not value.endswith("Z") or "T" not in value:
        raise ValueError(value)
    try:
        return int(datetime.fromisoformat(value[:-1] + "+00:00").timestamp() * 1000)
    except (OverflowError, OSError):
        raise ValueError(value) from None


def authenticate(headers: Mapping[str, str], method: str, request_path: str, body: str,
                 accounts: Mapping[str, Account], wall_ms: int | None = None) -> Account:
    """The account a private request belongs to, or the OkxError OKX answers with (HTTP 401)."""
    key = headers.get("OK-ACCESS-KEY", "")
    passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
    signature = headers.get("OK-ACCESS-SIGN", "")
    timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
    if not key:
        raise OkxError("50103")
    if not passphrase:
        raise OkxError("50104")
    if not signature:
        raise OkxError("50106")
    if not timestamp:
        raise OkxError("50107")
    try:
        ts = parse_timestamp(timestamp)
    except ValueError:
        raise OkxError("50112") from None
    now = wall_ms if wall_ms is not None else int(time.time() * 1000)
    if abs(now - ts) > MAX_SKEW_MS:
        raise OkxError("50102")
    account = accounts.get(key)
    if account is None:
        raise OkxError("50111")
    if headers.get("x-simulated-trading") != "1":
        raise OkxError("50101")  # a demo key used against the live environment
    # Bytes, not str: compare_digest refuses non-ASCII strings (a client may send any header bytes).
    if not hmac.compare_digest(_bytes(passphrase), _bytes(account.passphrase)):
        raise OkxError("50105")
    expected = sign(account.secret, timestamp, method, request_path, body)
    if not hmac.compare_digest(_bytes(signature), _bytes(expected)):
        raise OkxError("50113")
    return account
