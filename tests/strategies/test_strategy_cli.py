"""`okxlab strategies validate|show|list` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from okxlab.cli.strategies import strategies

GOOD = {
    "schema_version": "okxlab.strategy.v1",
    "name": "mine",
    "description": "KDJ golden cross above BBI",
    "parameters": {"n": {"type": "integer", "default": 9, "minimum": 2, "maximum": 50}},
    "entries": {"long": {"logic": "and", "conditions": [
        {"indicator": "kdj", "params": {"n": "$n"}, "line": "k", "signal": "cross_above", "other": {"line": "d"}},
        {"indicator": "price", "signal": "above", "other": {"indicator": "bbi"}},
    ]}},
    "exits": {"long": {"logic": "or", "conditions": [{"indicator": "kdj", "line": "j", "signal": "overbought"}]}},
    "stops": {"stop_loss": {"percent": 3}, "take_profit": {"atr_multiple": 4}},
    "leverage": 2,
}


def write(tmp_path: Path, document: object, name: str = "s.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


def test_validate_ok(tmp_path: Path) -> None:
    result = CliRunner().invoke(strategies, ["validate", write(tmp_path, GOOD)])
    assert result.exit_code == 0, result.output
    assert result.output == "ok: mine (v1)\n"
    result = CliRunner().invoke(strategies, ["validate", "builtin:ema_trend"])
    assert (result.exit_code, result.output) == (0, "ok: ema_trend (v1)\n")


def test_validate_lists_every_problem_with_its_place(tmp_path: Path) -> None:
    bad = json.loads(json.dumps(GOOD))
    bad["entries"]["long"]["conditions"][0]["indicator"] = "kdjx"
    bad["entries"]["long"]["conditions"][1]["other"]["params"] = {"p1": 1}
    bad["exits"]["long"]["conditions"] = []
    path = write(tmp_path, bad)
    result = CliRunner().invoke(strategies, ["validate", path])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"invalid: {path} (3 problems)"
    assert lines[1].startswith("  entries.long.conditions[0].indicator: unknown indicator 'kdjx'")
    assert lines[2] == "  entries.long.conditions[1].other.params.p1: 1 is less than the minimum of 2"
    assert lines[3] == "  exits.long.conditions: empty group: give at least one condition"


def test_validate_with_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert CliRunner().invoke(strategies, ["validate", path, "-p", "n=14"]).exit_code == 0
    result = CliRunner().invoke(strategies, ["validate", path, "--param", "n=99"])
    assert result.exit_code == 1
    assert "  params.n: 99 is greater than the parameter's maximum of 50" in result.output
    result = CliRunner().invoke(strategies, ["validate", path, "-p", "oops"])
    assert result.exit_code == 2 and "NAME=VALUE" in result.output


def test_unreadable_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(strategies, ["validate", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert result.output.startswith("error: strategy file") and "does not exist" in result.output
    result = CliRunner().invoke(strategies, ["validate", write(tmp_path, "{oops")])
    assert result.exit_code == 1
    assert "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2" in result.output
    result = CliRunner().invoke(strategies, ["show", "builtin:nope"])
    assert result.exit_code == 2 and "unknown builtin strategy 'nope'" in result.output


def test_show(tmp_path: Path) -> None:
    result = CliRunner().invoke(strategies, ["show", write(tmp_path, GOOD), "-p", "n=5"])
    assert result.exit_code == 0, result.output
    text = result.output
    for expected in ("mine (okxlab.strategy.v1)", "KDJ golden cross above BBI",
                     "n = 5 (overridden)  [integer, min 2, max 50]",
                     "long entry when all of:", "  - KDJ(5,3,3) K crosses above its D line",
                     "  - close is above BBI(3,6,12,24)", "long exit when any of:", "  - KDJ(9,3,3) J >= 100 (overbought)",
                     "stops: stop loss 3% from the close; take profit 4 x ATR(14) from the close", "leverage: 2"):
        assert expected in text, expected
    result = CliRunner().invoke(strategies, ["show", "builtin:cash"])
    assert "entries: none (never opens a position)" in result.output


def test_list() -> None:
    result = CliRunner().invoke(strategies, ["list"])
    assert result.exit_code == 0
    assert "builtin:ema_trend" in result.output and "builtin:cash" in result.output
