"""A small client for the simulator's admin API (tests, `okxlab demo` and replays use it).

Every request carries the admin token (header X-Sim-Admin-Token): the one given, else $OKXLAB_SIM_ADMIN_TOKEN,
else the sim-admin-token file `okxlab sim` keeps in the data directory ($OKXLAB_HOME).

    admin = AdminClient("http://127.0.0.1:8765")
    admin.create_world("bt1", clock="replay", start="2022-09-01T00:00:00Z",
                       accounts=[{"api_key": "k", "secret": "s", "passphrase": "p"}], agents=False)
    admin.set_clock("bt1", "2022-09-01T04:00:00Z")
"""

from __future__ import annotations

from typing import Any

import requests

from okxlab.errors import UserError
from okxlab.simulator.token import TOKEN_ENV, TOKEN_HEADER, read_token


class SimAdminError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(f"simulator admin API: {message} (HTTP {status})")
        self.status = status
        self.message = message


class SimAdminAuthError(SimAdminError, UserError):
    """The simulator refused the admin token: something the user fixes (a command prints it as one line)."""


class AdminClient:
    def __init__(self, base_url: str, timeout: float = 30.0, session: requests.Session | None = None,
                 token: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.token = token if token is not None else read_token()

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        headers = {TOKEN_HEADER: self.token} if self.token else None
        resp = self.session.request(method, f"{self.base_url}/admin/{path}", json=json, params=params,
                                    headers=headers, timeout=self.timeout)
        try:
            data = resp.json()
        except ValueError:
            raise SimAdminError(resp.status_code, resp.text[:200]) from None
        if resp.status_code == 401:
            raise SimAdminAuthError(401, f"the simulator at {self.base_url} refused the admin token "
                                         f"({'none found' if not self.token else 'not its token'}); set ${TOKEN_ENV} "
                                         "to its token, or run where $OKXLAB_HOME is the simulator's data directory")
        if resp.status_code >= 400:
            raise SimAdminError(resp.status_code, data.get("error", str(data)) if isinstance(data, dict) else str(data))
        return data

    def health(self) -> dict[str, Any]:
        """{"ok": true} from any simulator; its world names too when the token is right."""
        return self._call("GET", "health")

    def data(self) -> dict[str, Any]:
        """Instruments and the time range their data covers."""
        return self._call("GET", "data")

    def worlds(self) -> list[dict[str, Any]]:
        return self._call("GET", "worlds")

    def create_world(self, name: str, clock: str = "replay", start: str | int | None = None, speed: float = 1.0,
                     accounts: list[dict[str, Any]] | None = None, agents: bool = True,
                     faults: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "clock": clock, "speed": speed, "agents": agents}
        if start is not None:
            body["start"] = start
        if accounts:
            body["accounts"] = accounts
        if faults:
            body["faults"] = faults
        return self._call("POST", "worlds", json=body)

    def world(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"worlds/{name}")

    def delete_world(self, name: str) -> dict[str, Any]:
        return self._call("DELETE", f"worlds/{name}")

    def set_clock(self, name: str, ts: str | int) -> dict[str, Any]:
        """Move a replay world's clock forward (ms since the epoch or ISO-8601)."""
        return self._call("POST", f"worlds/{name}/clock", json={"ts": ts})

    def add_account(self, name: str, api_key: str, secret: str, passphrase: str, equity: float = 10_000.0,
                    label: str = "") -> dict[str, Any]:
        return self._call("POST", f"worlds/{name}/accounts",
                          json={"api_key": api_key, "secret": secret, "passphrase": passphrase, "equity": equity,
                                "label": label})

    def faults(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"worlds/{name}/faults")

    def set_faults(self, name: str, **settings: Any) -> dict[str, Any]:
        """latency_ms, error_5xx_rate, rate_limit_rate, lost_response_rate, seed, paths (all optional)."""
        return self._call("POST", f"worlds/{name}/faults", json=settings)

    def orders(self, name: str, api_key: str | None = None) -> dict[str, Any]:
        """Every order, algo order and rejected order request of a world, with the raw fields received. Each
        names its `account` (label or masked key); `api_key` filters but is never echoed."""
        return self._call("GET", f"worlds/{name}/orders", params={"api_key": api_key} if api_key else None)

    def fills(self, name: str, api_key: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", f"worlds/{name}/fills", params={"api_key": api_key} if api_key else None)
