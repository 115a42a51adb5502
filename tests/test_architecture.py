"""The layers (docs/architecture.md): every import-linter contract in pyproject.toml holds, so a new import cycle
or an arrow pointing up fails here, not in review."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_every_import_contract_is_kept() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {c["type"] for c in contracts} >= {"layers", "forbidden", "acyclic_siblings"}  # none quietly dropped
    result = _lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"Contracts: {len(contracts)} kept, 0 broken." in result.stdout


def test_a_broken_contract_is_caught(tmp_path: Path) -> None:
    """The check is real: the same contracts over a copy where the domain imports a face fail."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "okxlab", copy / "okxlab", ignore=shutil.ignore_patterns("__pycache__", "data"))
    for name in ("workers", "schedules"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    risk = copy / "okxlab" / "risk" / "limits.py"
    risk.write_text(risk.read_text() + "\nfrom okxlab.cli import main  # noqa\n")
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run([command, "--no-cache"], cwd=copy, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(copy)})
    assert result.returncode != 0
    assert "okxlab.risk.limits -> okxlab.cli" in result.stdout and "BROKEN" in result.stdout
