"""The admin API's token: where it comes from, where it is kept, how it is checked.

Admin requests carry `X-Sim-Admin-Token`. The token is `$OKXLAB_SIM_ADMIN_TOKEN` when set; otherwise `okxlab sim`
keeps one in `$OKXLAB_HOME/sim-admin-token` (mode 0600, generated on first start), so workers and commands on the
same machine and data directory find it without configuration. An in-process SimServer makes its own and hands
it to its AdminClient. The OKX endpoints (/api/v5) never look at it: they have OKX's own signing.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from okxlab import settings

TOKEN_ENV = "OKXLAB_SIM_ADMIN_TOKEN"
TOKEN_HEADER = "X-Sim-Admin-Token"
TOKEN_FILE = "sim-admin-token"


def token_file(home: Path | None = None) -> Path:
    return (home or settings.current().home_dir) / TOKEN_FILE


def env_token() -> str | None:
    """$OKXLAB_SIM_ADMIN_TOKEN (stripped), or None when unset or blank."""
    token = settings.current().sim_admin_token
    return token.get_secret_value() if token else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def read_token(home: Path | None = None) -> str | None:
    """What a client on this machine should send: the environment's token, else the data directory's file."""
    env = env_token()
    if env:
        return env
    try:
        text = token_file(home).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


def server_token(home: Path | None = None) -> tuple[str, str]:
    """(token, where it is) for `okxlab sim`: the environment's, else the file's (made if missing).

    A file others could read is replaced by a new one: the old token may have been seen. Raises OSError
    when the data directory cannot be written.
    """
    env = env_token()
    if env:
        return env, f"from ${TOKEN_ENV}"
    path = token_file(home)
    try:
        st = path.stat()
        text = path.read_text().strip() if not st.st_mode & 0o077 else ""
    except FileNotFoundError:
        text = ""
    except UnicodeDecodeError:
        text = ""
    if text:
        return text, f"in {path}"
    token = new_token()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token, f"in {path}"


def token_matches(given: str | None, token: str) -> bool:
    """Constant-time comparison; any header value (non-ASCII included) is just a wrong token."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape"))
