"""Invalid strategy documents are refused, each problem naming its place in the document."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from okxlab.errors import ConfigError, NotFound
from okxlab.strategies import build_strategy, builtin_names, check_document, load_strategy, strategy_schema
from okxlab.strategies.indicators import INDICATORS
from okxlab.strategies.load import indicator_param_schema
from okxlab.strategies.rules import SIGNAL_RULES

BASE: dict[str, Any] = {
    "schema_version": "okxlab.strategy.v1",
    "name": "demo",
    "parameters": {"fast": {"type": "integer", "default": 12, "minimum": 1, "maximum": 100}},
    "entries": {
        "long": {"logic": "and", "conditions": [
            {"indicator": "ema", "params": {"period": "$fast"}, "signal": "cross_above",
             "other": {"indicator": "ema", "params": {"period": 26}}},
            {"indicator": "rsi", "params": {"period": 14}, "signal": "below", "level": 70},
        ]},
    },
    "stops": {"stop_loss": {"atr_multiple": 2}},
}


def doc(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out.update(changes)
    return out


DROP = object()  # cond(..., field=DROP) removes the field


def cond(i: int, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    target = out["entries"]["long"]["conditions"][i]
    target.update(changes)
    for key in [k for k, v in changes.items() if v is DROP]:
        del target[key]
    return out


def problems(document: Any, params: dict[str, Any] | None = None) -> list[str]:
    return [str(p) for p in check_document(document, params)]


def test_the_base_document_is_valid() -> None:
    assert problems(BASE) == []
    s = build_strategy(BASE)
    assert s.entries["long"].items[0].operand.params == (("period", 12),)  # type: ignore[union-attr]


def test_unknown_indicator() -> None:
    [p] = problems(cond(1, indicator="stoch_rsi"))
    assert p.startswith("entries.long.conditions[1].indicator: unknown indicator 'stoch_rsi' (known: price, sma, ema")


def test_unknown_signal() -> None:
    [p] = problems(cond(0, signal="moonshot"))
    assert p.startswith("entries.long.conditions[0].signal: unknown signal 'moonshot'")


@pytest.mark.parametrize("value,expected", [
    (1, "entries.long.conditions[1].params.period: 1 is less than the minimum of 2"),
    (5000, "entries.long.conditions[1].params.period: 5000 is greater than the maximum of 1000"),
    (14.5, "entries.long.conditions[1].params.period: 14.5 is not an integer"),
    ("fourteen", "entries.long.conditions[1].params.period: 'fourteen' is neither a number nor a parameter reference"),
    (True, "entries.long.conditions[1].params.period: true is not an integer"),
])
def test_bad_indicator_parameter(value: Any, expected: str) -> None:
    [p] = problems(cond(1, params={"period": value}))
    assert p.startswith(expected)


def test_unknown_indicator_parameter() -> None:
    [p] = problems(cond(1, params={"length": 14}))
    assert p == "entries.long.conditions[1].params: unknown parameter(s) 'length' for indicator rsi (known: period)"


def test_empty_group() -> None:
    d = doc()
    d["entries"]["long"]["conditions"] = []
    assert problems(d) == ["entries.long.conditions: empty group: give at least one condition"]
    d = doc()
    d["entries"]["long"]["conditions"][1] = {"logic": "or", "conditions": []}  # a nested group, empty
    assert problems(d) == ["entries.long.conditions[1].conditions: empty group: give at least one condition"]


def test_several_problems_are_all_reported_in_document_order() -> None:
    d = cond(1, indicator="nope")
    d["entries"]["long"]["conditions"][0]["params"]["period"] = 0
    d["leverage"] = 500
    assert [p.split(":")[0] for p in problems(d)] == [
        "entries.long.conditions[0].params.period", "entries.long.conditions[1].indicator", "leverage"]


def test_parameter_references() -> None:
    [p] = problems(cond(1, params={"period": "$slow"}))
    assert p == "entries.long.conditions[1].params.period: '$slow' refers to no parameter (parameters: fast)"
    d = doc(parameters={"fast": {"type": "integer", "default": 500, "maximum": 100}})
    assert problems(d) == ["parameters.fast.default: 500 is greater than the parameter's maximum of 100"]
    d = doc(parameters={"fast": {"type": "integer", "default": 2.5}})
    assert problems(d) == ["parameters.fast.default: 2.5 is not an integer"]


def test_overrides_from_the_agent_config() -> None:
    assert problems(BASE, {"slow": 3}) == ["params.slow: not a parameter of this strategy (parameters: fast)"]
    assert problems(BASE, {"fast": 101}) == ["params.fast: 101 is greater than the parameter's maximum of 100"]
    assert problems(BASE, {"fast": "x"}) == ['params.fast: "x" is not a number']
    # within the parameter's own bounds, but not the indicator's: named at the place it is used
    assert problems(BASE, {"fast": 1}) == [
        "entries.long.conditions[0].params.period: 1 is less than the minimum of 2 (value of parameter 'fast')"]
    s = build_strategy(BASE, {"fast": 20})
    assert s.parameters == {"fast": 20} and s.overrides == {"fast": 20}
    assert s.entries["long"].items[0].operand.params == (("period", 20),)  # type: ignore[union-attr]


@pytest.mark.parametrize("changes,expected", [
    ({"signal": "touch_upper"}, "entries.long.conditions[1].indicator: signal touch_upper does not apply to rsi"),
    ({"line": "upper"}, "entries.long.conditions[1].line: indicator rsi has no line 'upper' (lines: value)"),
    ({"level": None}, "entries.long.conditions[1].level: null is not a number"),
    ({"other": {"indicator": "sma"}}, "entries.long.conditions[1]: signal below compares with another line ('other') or a number ('level'): give not both"),
    ({"signal": "oversold", "other": {"indicator": "sma"}}, "entries.long.conditions[1].other: not used by signal oversold; remove it"),
    ({"signal": "always"}, "entries.long.conditions[1].level: not used by signal always; remove it"),
    ({"signal": "bullish_alignment"}, "entries.long.conditions[1].indicator: signal bullish_alignment does not apply to rsi"),
    ({"other": {"indicator": "candle", "params": {"pattern": "CDLHAMMER"}}, "level": DROP},
     "entries.long.conditions[1].other.indicator: a candlestick pattern is not a line to compare with"),
    ({"level": DROP}, "entries.long.conditions[1]: signal below compares with another line ('other') or a number "
                      "('level'): give one of them"),
    ({"indicator": DROP, "params": DROP}, "entries.long.conditions[1]: signal below needs an indicator"),
])
def test_signal_rules(changes: dict[str, Any], expected: str) -> None:
    found = problems(cond(1, **changes))
    assert any(p.startswith(expected) for p in found), found


def test_operand_rules() -> None:
    d = cond(1, indicator="macd", params={"fast": 30}, signal="cross_above", other={"line": "signal"}, level=DROP)
    assert problems(d) == ["entries.long.conditions[1].params.fast: fast (30) must be less than slow (26)"]
    d = cond(0, other={"indicator": "ema", "params": {"period": "$fast"}})
    assert problems(d) == ["entries.long.conditions[0].other: compares a line with itself; name another line or indicator"]
    d = cond(1, indicator="candle", params={"pattern": "CDLUNICORN"}, signal="pattern_bullish", level=DROP)
    [p] = problems(d)
    assert p.startswith("entries.long.conditions[1].params.pattern: unknown candlestick pattern 'CDLUNICORN'")
    d = cond(1, indicator="ema", signal="bullish_alignment", periods=[20, 10], params=DROP, level=DROP)
    assert problems(d) == ["entries.long.conditions[1].periods: periods must increase strictly (fastest moving average first)"]


def test_document_level_rules() -> None:
    assert problems(doc(stops={})) == [
        "stops.stop_loss: required when there are entries: every opening decision needs a stop loss"]
    assert problems(doc(stops={"stop_loss": {"percent": 2, "atr_multiple": 2}})) == [
        "stops.stop_loss: give exactly one of percent or atr_multiple"]
    assert problems(doc(stops={"stop_loss": {"percent": 100}})) == [
        "stops.stop_loss.percent: 100 is greater than the maximum of 99"]
    assert problems(doc(schema_version="okxlab.strategy.v9")) == ['schema_version: must be "okxlab.strategy.v1"']
    assert problems(doc(name="Bad Name")) == [
        "name: name must be 1-40 lowercase letters, digits, '_' or '-', starting with a letter or digit"]
    assert problems(doc(colour="blue")) == [
        "unknown field(s) 'colour' (known: schema_version, name, description, parameters, entries, exits, stops, "
        "leverage, sizing, confidence)"]
    assert problems([1, 2]) == ["[1, 2] is not of type 'object'"]


def test_strategy_error_is_one_line_naming_the_place(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(cond(1, indicator="stoch_rsi")))
    with pytest.raises(ConfigError) as info:
        load_strategy(str(path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"strategy {path} is invalid: entries.long.conditions[1].indicator: unknown indicator")


def test_files_and_builtins(tmp_path: Path) -> None:
    (tmp_path / "mine.json").write_text(json.dumps(BASE))
    assert load_strategy("mine.json", base_dir=tmp_path).source == str(tmp_path / "mine.json")
    (tmp_path / "broken.json").write_text('{"name": "x",\n  oops}')
    with pytest.raises(ConfigError, match=r"not valid JSON: .* at line 2 column 3"):
        load_strategy(str(tmp_path / "broken.json"))
    with pytest.raises(NotFound, match="does not exist"):
        load_strategy(str(tmp_path / "missing.json"))
    with pytest.raises(NotFound, match="unknown builtin strategy 'nope' \\(builtins: bollinger_breakout"):
        load_strategy("builtin:nope")


def test_every_builtin_validates() -> None:
    names = builtin_names()
    assert {"cash", "buy_and_hold", "ema_trend", "rsi_bollinger", "macd_trend", "bollinger_breakout",
            "sma_cross", "ema_cross"} <= set(names)
    for name in names:
        s = load_strategy(f"builtin:{name}")
        assert s.name == name and s.source == f"builtin:{name}"
    assert not load_strategy("builtin:cash").entries
    sma = load_strategy("builtin:sma_cross")
    assert set(sma.entries) == {"long"} and sma.parameters["fast"] == 20 and sma.parameters["slow"] == 50
    ema = load_strategy("builtin:ema_trend")
    assert ema.parameters["fast"] == 12 and ema.parameters["slow"] == 26 and ema.stop_loss.kind == "atr"  # type: ignore[union-attr]


def test_schema_and_registry_agree() -> None:
    schema = strategy_schema()
    props = schema["$defs"]["condition"]["properties"]
    assert props["indicator"]["enum"] == list(INDICATORS)
    assert props["signal"]["enum"] == list(SIGNAL_RULES)
    for name in INDICATORS:
        assert set(schema["$defs"]["params_by_indicator"]["allOf"][list(INDICATORS).index(name)]["if"]["properties"]
                   ["indicator"].values()) == {name}
        assert all("default" in spec or name == "candle" for spec in indicator_param_schema(name).values())
    for rule in SIGNAL_RULES.values():
        assert set(rule.indicators) <= set(INDICATORS)


def test_the_examples_in_the_docs_are_valid() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"
    if not docs.is_file():
        pytest.skip("docs/strategies.md is not in this checkout")
    blocks = re.findall(r"```json\n(.*?)```", docs.read_text(), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        document = json.loads(block)
        if "schema_version" not in document:  # a group on its own
            document = {**BASE, "entries": {"long": document}}
        assert problems(document) == [], block


def test_problems_of_different_passes_and_numeric_order() -> None:
    d = doc(stops={})
    good = {"indicator": "rsi", "signal": "oversold"}
    d["entries"]["long"]["conditions"] = [good] * 11
    d["entries"]["long"]["conditions"][2] = {**good, "params": {"period": 0}}
    d["entries"]["long"]["conditions"][10] = {**good, "params": {"period": 0}}
    assert [p.split(":")[0] for p in problems(d)] == [
        "entries.long.conditions[2].params.period", "entries.long.conditions[10].params.period", "stops.stop_loss"]
