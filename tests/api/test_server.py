"""`okxlab api` as a real uvicorn process, called over HTTP; and its one-line refusals."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from okxlab.db.session import session_factory
from okxlab.service import tokens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _okxlab() -> str:
    return str(Path(sys.executable).with_name("okxlab"))


def test_okxlab_api_serves_over_http(api_env: str) -> None:
    token = tokens.create(session_factory(api_env), "server", "read", actor="test")
    port = _free_port()
    proc = subprocess.Popen([_okxlab(), "api", "--port", str(port)], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "okxlab api did not start in 30 s"
                time.sleep(0.2)
        r = httpx.get(f"{base}/agents", headers={"X-API-Token": token}, timeout=10)
        assert r.status_code == 200 and [a["name"] for a in r.json()] == ["alpha", "beta", "flat"]
        assert httpx.get(f"{base}/agents", timeout=10).status_code == 401
        assert "/plans/execute" in httpx.get(f"{base}/openapi.json", timeout=10).json()["paths"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert token not in out + err  # the token is never logged


def test_okxlab_api_without_a_database_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "OKXLAB_HOME": str(tmp_path / "empty")}
    r = subprocess.run([_okxlab(), "api", "--port", str(_free_port())], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("okxlab: error: no okxlab database at")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
