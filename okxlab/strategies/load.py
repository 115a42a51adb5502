"""Loading and validating strategy documents.

A document is checked in four passes, each reporting every problem with its place in the document
(e.g. `entries.long.conditions[1].params.period`):

1. the JSON Schema (strategy.v1.schema.json), with "$name" parameter references allowed for numbers;
2. the parameters block, the references to it, and the overrides from `[agents.params]`;
3. the JSON Schema again on the document with every reference replaced by its value, so an override can
   never slip past an indicator's own bounds (such problems say which parameter the value came from);
4. the rules no schema can say: which signal applies to which indicator, lines, required operands.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from okxlab.errors import ConfigError, NotFound
from okxlab.planning.schema import Problem
from okxlab.strategies.indicators import INDICATORS
from okxlab.strategies.model import (
    SIDES,
    STRATEGY_SCHEMA_VERSION,
    Condition,
    Group,
    Operand,
    Params,
    Sizing,
    Stop,
    Strategy,
)
from okxlab.strategies.rules import COMMON_FIELDS, DEFAULT_DIVERGENCE_LOOKBACK, SIGNAL_RULES

BUILTIN_PREFIX = "builtin:"
SCHEMA_FILE = "strategy.v1.schema.json"
_REF = re.compile(r"^\$([a-z][a-z0-9_]{0,39})$")
NEEDS_STOP = "required when there are entries: every opening decision needs a stop loss"
_TEXT_KEYS = frozenset({"label", "description", "name"})  # free text: never a parameter reference


class StrategyError(ConfigError):
    """A strategy document that cannot be used; `problems` holds every problem found, in document order."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        more = f" (and {len(problems) - 1} more; see `okxlab strategies validate {source}`)" if len(problems) > 1 else ""
        super().__init__(f"strategy {source} is invalid: {problems[0]}{more}")


@cache
def strategy_schema() -> dict[str, Any]:
    return json.loads(resources.files("okxlab.strategies").joinpath(SCHEMA_FILE).read_text())


@cache
def _validator() -> Draft202012Validator:
    schema = strategy_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def indicator_param_schema(indicator: str) -> dict[str, dict[str, Any]]:
    """The `properties` of an indicator's params in the schema: bounds and defaults."""
    return strategy_schema()["$defs"][f"params_{indicator}"]["properties"]


# ---- paths ----------------------------------------------------------------------------------------------

def _join(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out = _join(out, part)
    return out


def _at(document: Any, parts: list[Any]) -> Any:
    node = document
    for part in parts:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


# ---- pass 1 and 3: the JSON Schema ----------------------------------------------------------------------

def _quote(names: Any) -> str:
    return ", ".join(str(n) for n in names)


def _schema_message(error: ValidationError, document: Any) -> str:
    parts = list(error.absolute_path)
    field = parts[-1] if parts else None
    v = error.validator
    if v == "enum" and field == "indicator":
        return f"unknown indicator {error.instance!r} (known: {_quote(INDICATORS)})"
    if v == "enum" and field == "signal":
        return f"unknown signal {error.instance!r} (known: {_quote(SIGNAL_RULES)})"
    if v == "enum" and field == "pattern":
        return f"unknown candlestick pattern {error.instance!r} (a TA-Lib CDL* name such as CDLENGULFING or CDLHAMMER)"
    if v == "enum":
        return f"{json.dumps(error.instance)} is not one of {_quote(json.dumps(x) for x in error.validator_value)}"
    if v == "minItems" and field == "conditions":
        return "empty group: give at least one condition"
    if v == "const":
        return f"must be {json.dumps(error.validator_value)}"
    if v == "required":
        missing = [k for k in error.validator_value if isinstance(error.instance, dict) and k not in error.instance]
        return f"missing required field(s) {_quote(repr(k) for k in missing)}"
    if v == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        known = _quote(error.schema.get("properties", {})) or "none"
        if field == "params":
            indicator = (_at(document, parts[:-1]) or {}).get("indicator", "?")
            return f"unknown parameter(s) {_quote(repr(x) for x in extra)} for indicator {indicator} (known: {known})"
        return f"unknown field(s) {_quote(repr(x) for x in extra)} (known: {known})"
    if v == "pattern" and isinstance(error.validator_value, str) and error.validator_value.startswith("^\\$"):
        return f"{error.instance!r} is neither a number nor a parameter reference like \"$fast\""
    if v == "pattern" and field == "name":
        return "name must be 1-40 lowercase letters, digits, '_' or '-', starting with a letter or digit"
    if v == "propertyNames":
        return f"parameter name {error.instance!r} must be lowercase letters, digits and '_', starting with a letter"
    if v == "type" and isinstance(error.validator_value, list) and "string" in error.validator_value:
        kind = "an integer" if "integer" in error.validator_value else "a number"
        return f"{json.dumps(error.instance)} is not {kind} (or a parameter reference like \"$fast\")"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def _order(parts: Any) -> list[tuple[int, int | str]]:
    """Sort key of a path: list indexes numerically (conditions[2] before conditions[10])."""
    return [(0, p) if isinstance(p, int) else (1, str(p)) for p in parts]


def _schema_problems(document: Any, sites: Mapping[str, str] | None = None) -> list[Problem]:
    found = []
    for e in _validator().iter_errors(document):
        parts, message = list(e.absolute_path), _schema_message(e, document)
        if e.validator == "required" and parts in ([], ["stops"]) and set(e.validator_value) & {"stops", "stop_loss"}:
            parts, message = ["stops", "stop_loss"], NEEDS_STOP
        path = _path(parts)
        if sites and path in sites:
            message += f" (value of parameter {sites[path]!r})"
        found.append((_order(parts), Problem(path, message)))
    return [problem for _, problem in sorted(found, key=lambda item: item[0])]


# ---- walking the groups ---------------------------------------------------------------------------------

def _groups(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for section in ("entries", "exits"):
        for side in SIDES:
            group = (document.get(section) or {}).get(side)
            if isinstance(group, dict):
                yield f"{section}.{side}", group


def _conditions(group: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, item in enumerate(group.get("conditions") or []):
        here = f"{path}.conditions[{i}]"
        if isinstance(item, dict) and "logic" in item:
            yield from _conditions(item, here)
        elif isinstance(item, dict):
            yield here, item


def _all_conditions(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, group in _groups(document):
        yield from _conditions(group, path)


def _normalise(document: Any) -> tuple[Any, set[str]]:
    """A copy where an `other` operand without an indicator takes its condition's indicator (and its
    params, unless it gives its own), and the paths of what it inherited (reported at the condition)."""
    document = copy.deepcopy(document)
    inherited: set[str] = set()
    if isinstance(document, dict):
        for path, cond in _all_conditions(document):
            other = cond.get("other")
            if isinstance(other, dict) and "indicator" not in other and isinstance(cond.get("indicator"), str):
                other["indicator"] = cond["indicator"]
                inherited.add(f"{path}.other.indicator")
                if "params" not in other and "params" in cond:
                    other["params"] = copy.deepcopy(cond["params"])
                    inherited.add(f"{path}.other.params")
    return document, inherited


# ---- pass 2: parameters, references, overrides ----------------------------------------------------------

def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fits(spec: Mapping[str, Any], value: Any) -> str | None:
    """Why `value` does not fit the parameter `spec`, or None."""
    if not _is_number(value):
        return f"{json.dumps(value)} is not a number"
    if spec["type"] == "integer" and not float(value).is_integer():
        return f"{value} is not an integer"
    if "minimum" in spec and value < spec["minimum"]:
        return f"{value} is less than the parameter's minimum of {spec['minimum']}"
    if "maximum" in spec and value > spec["maximum"]:
        return f"{value} is greater than the parameter's maximum of {spec['maximum']}"
    return None


def _references(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, parameter name) for every "$name" string in the document, outside free text."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _TEXT_KEYS or (not path and key == "parameters"):
                continue
            yield from _references(value, _join(path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, _join(path, i))
    elif isinstance(node, str) and (m := _REF.match(node)):
        yield path, m.group(1)


def _parameter_problems(document: dict[str, Any], overrides: Mapping[str, Any]) -> list[Problem]:
    specs: dict[str, Any] = document.get("parameters", {})
    problems = []
    for name, spec in specs.items():
        where = f"parameters.{name}"
        if spec.get("minimum", float("-inf")) > spec.get("maximum", float("inf")):
            problems.append(Problem(where, "minimum is greater than maximum"))
        elif why := _fits(spec, spec["default"]):
            problems.append(Problem(f"{where}.default", why))
    for path, name in _references(document):
        if name not in specs:
            known = _quote(specs) or "none are defined"
            problems.append(Problem(path, f"'${name}' refers to no parameter (parameters: {known})"))
    for name, value in overrides.items():
        if name not in specs:
            known = _quote(specs) or "it has none"
            problems.append(Problem(f"params.{name}", f"not a parameter of this strategy (parameters: {known})"))
        elif why := _fits(specs[name], value):
            problems.append(Problem(f"params.{name}", why))
    return problems


def _parameter_values(document: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, int | float]:
    values: dict[str, int | float] = {}
    for name, spec in document.get("parameters", {}).items():
        value = overrides.get(name, spec["default"])
        values[name] = int(value) if spec["type"] == "integer" else float(value)
    return values


def _resolve(node: Any, values: Mapping[str, Any], path: str, sites: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: v if k in _TEXT_KEYS or (not path and k == "parameters") else _resolve(v, values, _join(path, k), sites)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_resolve(v, values, _join(path, i), sites) for i, v in enumerate(node)]
    if isinstance(node, str) and (m := _REF.match(node)):
        sites[path] = m.group(1)
        return values[m.group(1)]
    return node


# ---- pass 4: rules beyond the schema --------------------------------------------------------------------

def _operand_problems(op: dict[str, Any], path: str, line_used: bool) -> list[Problem]:
    indicator = op["indicator"]
    problems = []
    line = op.get("line")
    if line is not None and not line_used:
        problems.append(Problem(f"{path}.line", "not used by this signal; remove it"))
    elif line is not None and line not in INDICATORS[indicator].lines:
        problems.append(Problem(f"{path}.line", f"indicator {indicator} has no line {line!r} (lines: {_quote(INDICATORS[indicator].lines)})"))
    if indicator == "macd":
        p = _filled(indicator, op.get("params", {}))
        if p["fast"] >= p["slow"]:
            where = f"{path}.params.fast" if "fast" in op.get("params", {}) else f"{path}.params.slow"
            problems.append(Problem(where, f"fast ({p['fast']}) must be less than slow ({p['slow']})"))
    return problems


def _condition_problems(cond: dict[str, Any], path: str) -> list[Problem]:
    signal = cond["signal"]
    rule = SIGNAL_RULES[signal]
    indicator = cond.get("indicator")
    problems = []
    unused = sorted(set(cond) - COMMON_FIELDS - rule.fields)
    for key in unused:
        problems.append(Problem(f"{path}.{key}", f"not used by signal {signal}; remove it"))
    if not rule.indicators:
        if indicator is not None or "params" in cond:
            problems.append(Problem(path, f"signal {signal} takes no indicator; remove indicator and params"))
        return problems
    if indicator is None:
        return [*problems, Problem(path, f"signal {signal} needs an indicator ({_quote(rule.indicators)})")]
    if indicator not in rule.indicators:
        return [*problems, Problem(f"{path}.indicator", f"signal {signal} does not apply to {indicator} (it applies to: {_quote(rule.indicators)})")]
    if "periods" in rule.fields:
        periods = cond.get("periods")
        if periods is None:
            problems.append(Problem(path, f"signal {signal} needs periods, e.g. [5, 10, 20] (fastest first)"))
        elif any(b <= a for a, b in zip(periods, periods[1:], strict=False)):
            problems.append(Problem(f"{path}.periods", "periods must increase strictly (fastest moving average first)"))
        if cond.get("params"):
            problems.append(Problem(f"{path}.params", f"signal {signal} reads its moving averages from periods; remove params"))
        return problems
    problems += _operand_problems(cond, path, rule.uses_line)
    if rule.target:
        has_other, has_level = "other" in cond, "level" in cond
        if has_other == has_level:
            what = "not both" if has_other else "one of them"
            problems.append(Problem(path, f"signal {signal} compares with another line ('other') or a number ('level'): give {what}"))
        elif has_other:
            other = cond["other"]
            if other["indicator"] == "candle":
                problems.append(Problem(f"{path}.other.indicator", "a candlestick pattern is not a line to compare with"))
            else:
                problems += _operand_problems(other, f"{path}.other", True)
                if _operand(cond) == _operand(other):
                    problems.append(Problem(f"{path}.other", "compares a line with itself; name another line or indicator"))
    return problems


def _rule_problems(document: dict[str, Any]) -> list[Problem]:
    problems = []
    for path, cond in _all_conditions(document):
        problems += _condition_problems(cond, path)
    stops = document.get("stops", {})
    for key in ("stop_loss", "take_profit"):
        spec = stops.get(key)
        if spec is None:
            continue
        kinds = [k for k in ("percent", "atr_multiple") if k in spec]
        if len(kinds) != 1:
            problems.append(Problem(f"stops.{key}", "give exactly one of percent or atr_multiple"))
        elif "atr_period" in spec and kinds == ["percent"]:
            problems.append(Problem(f"stops.{key}.atr_period", "only used with atr_multiple; remove it"))
    return problems


# ---- building the Strategy ------------------------------------------------------------------------------

def _filled(indicator: str, params: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, spec in indicator_param_schema(indicator).items():
        value = params.get(name, spec.get("default"))
        out[name] = int(value) if "integer" in spec.get("type", ()) else value
    return out


def _operand(node: Mapping[str, Any]) -> Operand:
    name = node["indicator"]
    params: Params = tuple(_filled(name, node.get("params", {})).items())
    return Operand(name, params, node.get("line") or INDICATORS[name].lines[0])


def _condition(cond: dict[str, Any], path: str) -> Condition:
    signal = cond["signal"]
    operand = _operand(cond) if cond.get("indicator") else None
    other = _operand(cond["other"]) if "other" in cond else None
    level = cond.get("level")
    if signal in ("overbought", "oversold") and level is None and operand is not None:
        levels = INDICATORS[operand.indicator].levels or {}
        level = levels[operand.line][0 if signal == "oversold" else 1]
    lookback = cond.get("lookback", DEFAULT_DIVERGENCE_LOOKBACK) if signal.endswith("_divergence") else None
    return Condition(
        path=path,
        signal=signal,
        operand=operand,
        other=other,
        level=float(level) if level is not None else None,
        periods=tuple(int(p) for p in cond.get("periods", ())),
        lookback=int(lookback) if lookback is not None else None,
        within=int(cond.get("within", 1)),
        label=cond.get("label"),
    )


def _group(node: dict[str, Any], path: str) -> Group:
    items: list[Condition | Group] = []
    for i, item in enumerate(node["conditions"]):
        here = f"{path}.conditions[{i}]"
        items.append(_group(item, here) if "logic" in item else _condition(item, here))
    return Group(path=path, logic=node["logic"], items=tuple(items))


def _stop(spec: dict[str, Any] | None) -> Stop | None:
    if spec is None:
        return None
    if "percent" in spec:
        return Stop("percent", float(spec["percent"]))
    return Stop("atr", float(spec["atr_multiple"]), int(spec.get("atr_period", 14)))


# ---- public API -----------------------------------------------------------------------------------------

def check_document(document: Any, params: Mapping[str, Any] | None = None) -> list[Problem]:
    """Every problem with a strategy document (and the overrides `params`), in document order."""
    overrides = dict(params or {})
    document, inherited = _normalise(document)

    def own(problems: list[Problem]) -> list[Problem]:  # a problem in inherited params is reported once
        return [p for p in problems if not any(p.path.startswith(i) for i in inherited)]

    problems = own(_schema_problems(document))
    if problems:
        return problems
    problems = _parameter_problems(document, overrides)
    if problems:
        return problems
    sites: dict[str, str] = {}
    resolved = _resolve(document, _parameter_values(document, overrides), "", sites)
    problems = own(_schema_problems(resolved, sites))
    if problems:
        return problems
    return own(_rule_problems(resolved))


def build_strategy(document: Any, params: Mapping[str, Any] | None = None, source: str = "<document>") -> Strategy:
    """A Strategy from a parsed document; raises StrategyError listing every problem."""
    problems = check_document(document, params)
    if problems:
        raise StrategyError(source, problems)
    overrides = dict(params or {})
    normalised, _ = _normalise(document)
    values = _parameter_values(normalised, overrides)
    resolved = _resolve(normalised, values, "", {})
    stops = resolved.get("stops", {})
    sizing = resolved.get("sizing")
    return Strategy(
        name=resolved["name"],
        description=resolved.get("description", ""),
        source=source,
        entries={side: _group(g, f"entries.{side}") for side, g in (resolved.get("entries") or {}).items()},
        exits={side: _group(g, f"exits.{side}") for side, g in (resolved.get("exits") or {}).items()},
        stop_loss=_stop(stops.get("stop_loss")),
        take_profit=_stop(stops.get("take_profit")),
        leverage=float(resolved.get("leverage", 1)),
        confidence=float(resolved.get("confidence", 0.5)),
        sizing=Sizing(sizing["mode"], float(sizing["equity_pct"])) if sizing else None,
        parameters=values,
        parameter_specs=dict(document.get("parameters", {})),
        overrides={k: values[k] for k in overrides},
        document=document,
        schema_version=resolved.get("schema_version", STRATEGY_SCHEMA_VERSION),
    )


def builtin_names() -> list[str]:
    library = resources.files("okxlab.strategies").joinpath("library")
    return sorted(p.name.removesuffix(".json") for p in library.iterdir() if p.name.endswith(".json"))


def read_document(ref: str, base_dir: str | Path | None = None) -> tuple[Any, str]:
    """The parsed JSON of "builtin:NAME" or a file path (relative paths from `base_dir`, else the cwd)."""
    if ref.startswith(BUILTIN_PREFIX):
        name = ref[len(BUILTIN_PREFIX):]
        if name not in builtin_names():
            raise NotFound(f"unknown builtin strategy {name!r} (builtins: {_quote(builtin_names())})")
        text = resources.files("okxlab.strategies").joinpath("library", f"{name}.json").read_text()
        source = ref
    else:
        path = Path(ref).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        source = str(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise NotFound(f"strategy file {source} does not exist (give a path to a JSON document or builtin:NAME)") from None
        except OSError as exc:
            raise ConfigError(f"cannot read strategy file {source}: {exc.strerror}") from None
    try:
        return json.loads(text), source
    except json.JSONDecodeError as exc:
        raise StrategyError(source, [Problem("", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]) from None


def load_strategy(ref: str, params: Mapping[str, Any] | None = None, base_dir: str | Path | None = None) -> Strategy:
    """The strategy "builtin:NAME" or at a file path, with `params` (from `[agents.params]`) overriding
    its parameters. Raises NotFound, or StrategyError (a ConfigError) naming each problem's place."""
    document, source = read_document(ref, base_dir)
    return build_strategy(document, params, source)
