"""Beat keeps its state file in the data directory (OKXLAB_HOME), not in whatever directory it was started from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def test_beat_state_file_lives_under_okxlab_home(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home" / "not-made-yet", tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "OKXLAB_HOME": str(home), "OKXLAB_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    env.pop("OKXLAB_BROKER_URL", None)  # the in-process broker: beat only sends
    beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "workers", "beat", "--loglevel", "INFO"], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(home.glob("celerybeat-schedule*")) and beat.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        made = sorted(p.name for p in home.glob("celerybeat-schedule*"))
    finally:
        beat.send_signal(signal.SIGTERM)
        output = beat.communicate(timeout=60)[0]
    assert made, output
    assert list(cwd.iterdir()) == [], output
