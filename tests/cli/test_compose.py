"""docker-compose.yml runs commands that exist, on queues that exist (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from okxlab.cli.main import main
from okxlab.pipeline.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]


def test_every_queue_is_consumed_and_every_command_exists() -> None:
    import celeryconfig

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    consumed: set[str] = set()
    for name, svc in services.items():
        command = svc.get("command") or []
        if command[:4] == ["celery", "-A", "workers", "worker"]:
            queues = command[command.index("-Q") + 1].split(",")
            assert set(queues) <= {q.name for q in celeryconfig.task_queues}, name
            consumed |= set(queues)
        elif command[:1] == ["okxlab"]:
            args = [a for a in command[1:] if not a.startswith("-")][:2]
            result = CliRunner().invoke(main, [*args[:1 if args[0] in ("sim", "metrics", "api") else 2], "--help"])
            assert result.exit_code == 0, f"{name}: okxlab {' '.join(args)} is not a command"
    assert set(STAGES) | {"dispatch", "review", "replay"} == consumed
    assert {"beat", "flower", "migrate", "sim", "postgres", "redis"} <= set(services)
