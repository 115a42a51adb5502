"""`okxlab sim` as a real process for the fault suite: started, SIGKILLed and started again on the same port.

Its data directory (state file, admin token) is the one given; everything it prints is kept (`output`), read by
a thread so the pipe never fills, for searching tracebacks afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import ccxt

from okxlab.simulator import AdminClient, ccxt_okx
from okxlab.simulator.token import TOKEN_FILE


class SimProcess:
    def __init__(self, home: Path, port: int, *args: str) -> None:
        self.home, self.port, self.args = home, port, args
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.home / TOKEN_FILE).read_text().strip()

    def admin(self) -> AdminClient:
        """As a worker on the same machine finds it: the token file in the simulator's data directory."""
        return AdminClient(self.url, token=self.token)

    def client(self, key: str, secret: str, passphrase: str) -> ccxt.okx:
        return ccxt_okx(self.url, key, secret, passphrase, enableRateLimit=False)

    def start(self, *extra: str, timeout: float = 60.0) -> SimProcess:
        env = {**os.environ, "OKXLAB_HOME": str(self.home)}
        env.pop("OKXLAB_SIM_ADMIN_TOKEN", None)  # the token is the one it keeps in its data directory
        cmd = [sys.executable, "-m", "okxlab.simulator", "--port", str(self.port), *self.args, *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        ready = threading.Event()

        def read(proc: subprocess.Popen) -> None:
            for line in proc.stdout:
                self.output.append(line)
                if line.startswith("Press Ctrl-C"):
                    ready.set()
            ready.set()  # exited

        self._reader = threading.Thread(target=read, args=(self.proc,), daemon=True)
        self._reader.start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            raise AssertionError("okxlab sim did not start:\n" + "".join(self.output[-30:]))
        return self

    def _wait(self) -> None:
        self.proc.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=10)  # everything it printed is in `output`

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        self.proc.send_signal(signal.SIGKILL)
        self._wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self._wait()
            except subprocess.TimeoutExpired:
                self.kill()

    def since_start(self) -> str:
        """What the current process printed (from its last start line on)."""
        text = "".join(self.output)
        return text[text.rfind("okxlab sim: OKX v5 simulator on"):]
