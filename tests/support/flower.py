"""A real Flower for tests: `celery -A workers flower` as a process, and what can be seen of it from outside.

- `FlowerProcess`: started with okxlab's environment (and an optional flowerconfig.py directory), up when it
  answers /healthcheck; stopped with SIGTERM.
- `refused`: runs Flower with settings okxlab must refuse and returns the exit code and stderr's lines.
- `listening`: the addresses a port listens on, read from /proc/net/tcp and /proc/net/tcp6.
- `non_loopback_addresses`: this machine's other addresses (`hostname -I`).
- `routes`: every path Flower serves, from Flower's own URL table, with its groups filled in.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import REDIS_URL

CELERY = str(Path(sys.executable).with_name("celery"))
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flower_env(prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OKXLAB_", "FLOWER_"))}
    env.update({"OKXLAB_BROKER_URL": REDIS_URL, "OKXLAB_BROKER_PREFIX": prefix, **extra})
    return env


class FlowerProcess:
    """`celery -A workers flower [args]` on `port` (FLOWER_PORT, so the command line stays the README's)."""

    def __init__(self, prefix: str, *args: str, cwd: Path = REPO, **env: str) -> None:
        self.port = free_port()
        self.argv = [CELERY, "-A", "workers", "flower", *args]
        self.env = flower_env(prefix, FLOWER_PORT=str(self.port), **env)
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def __enter__(self) -> FlowerProcess:
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        return self

    def wait_up(self, host: str = "127.0.0.1", timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.url(host)}/healthcheck", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            assert self.proc is not None and self.proc.poll() is None, self.proc.stderr.read() if self.proc else ""
            assert time.monotonic() < deadline, "Flower did not start"
            time.sleep(0.2)

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def refused(prefix: str, args: list[str], env: dict[str, str], cwd: Path = REPO) -> tuple[int | None, list[str]]:
    """Exit code and stderr lines of a Flower that should not start (None: it was still running after 60 s)."""
    try:
        proc = subprocess.run([CELERY, "-A", "workers", "flower", *args],
                              env=flower_env(prefix, FLOWER_PORT=str(free_port()), **env), cwd=cwd,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None, ["still running after 60 s"]
    return proc.returncode, error_lines(proc.stderr)


def _addr(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # /proc/net/tcp* print each 32-bit word of the address in host (little-endian) order
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def listening(port: int) -> set[str]:
    """The local addresses with a socket listening on `port` (state 0A is LISTEN)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":
                out.add(_addr(addr))
    return out


def non_loopback_addresses() -> list[str]:
    try:
        words = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=10).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        words = []
    out = []
    for word in words:
        try:
            ip = ipaddress.ip_address(word)
        except ValueError:
            continue
        if not ip.is_loopback and not ip.is_link_local:
            out.append(str(ip))
    return out


def connects(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        try:
            s.connect((host, port))
        except OSError:
            return False
        return True


def routes() -> list[str]:
    """Every path in Flower's URL table (flower.urls.handlers), each regex group filled with 'x'."""
    from flower.urls import handlers

    out = []
    for handler in handlers:
        pattern = handler.regex.pattern if hasattr(handler, "regex") else handler[0]
        pattern = pattern.rstrip("$")
        if pattern == ".*":
            continue  # the catch-all 404
        out.append(re.sub(r"\([^)]*\)", "x", pattern).replace("/?", ""))
    return out
