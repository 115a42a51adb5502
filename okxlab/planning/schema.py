"""The plan schema: one strict, versioned JSON Schema every planner's output must pass.

`validate_plan` returns problems that name the field and what is wrong with it, e.g.
`decisions[0].leverage: 1000 is greater than the maximum of 125`. `parse_plan` turns a valid document into
domain objects. The validate stage uses both; the LLM repair request quotes the problems verbatim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from okxlab.domain import Decision, Plan, SizeRequest

PLAN_SCHEMA_VERSION = "okxlab.plan.v1"
PLAN_SCHEMA_FILE = "plan.v1.schema.json"


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. "decisions[1].stop_loss", "" for the document itself
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@cache
def plan_schema() -> dict[str, Any]:
    return json.loads(resources.files("okxlab.planning").joinpath(PLAN_SCHEMA_FILE).read_text())


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with each local `{"$ref": "#/$defs/NAME"}` replaced by that definition (the plan schema has no
    recursive definitions). Validation is the same; resolving a reference through `referencing` on every
    instance was most of the validator's time (about 4x)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            return _inline_refs(defs[ref[8:]], defs)
        return {k: (v if k == "$defs" else _inline_refs(v, defs)) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


@cache
def _validator() -> Draft202012Validator:
    schema = plan_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(_inline_refs(schema, schema.get("$defs", {})))


@cache
def _fast_check() -> Any:
    """The same schema compiled to Python code by fastjsonschema: about 20x faster at saying "valid", which is
    what nearly every plan is. It only answers yes or no; when it says no, the jsonschema validator above is
    asked for the problems, so messages and the final say stay with it. The plan schema uses only keywords that
    draft 7 has and defines the same way (with its references inlined); tests/planning/test_plan_schema.py checks
    that it never accepts what jsonschema refuses (it is stricter on a pattern's `$` before a final newline)."""
    schema = _inline_refs(plan_schema(), plan_schema().get("$defs", {}))
    schema = {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema)


def fast_accepts(document: Any) -> bool:
    try:
        _fast_check()(document)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


def _path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: ValidationError) -> str:
    # oneOf/anyOf messages repeat the whole instance; say what was expected instead.
    if error.validator in ("oneOf", "anyOf"):
        return f"{json.dumps(error.instance)[:80]} is not a positive number or null"
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field(s)")
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def validate_plan(document: Any, symbols: list[str] | None = None) -> list[Problem]:
    """Every problem with `document`, in document order. `symbols`: the agent's tradable symbols."""
    problems = [] if fast_accepts(document) else [
        Problem(_path(e), _message(e))
        for e in sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems or not isinstance(document, dict):
        return problems
    seen: set[str] = set()
    for i, decision in enumerate(document.get("decisions", [])):
        symbol = decision["symbol"]
        if symbol in seen:
            problems.append(Problem(f"decisions[{i}].symbol", f"{symbol} appears twice; give one decision per symbol"))
        seen.add(symbol)
        if symbols is not None and symbol not in symbols:
            problems.append(
                Problem(f"decisions[{i}].symbol", f"{symbol} is not one of this agent's symbols ({', '.join(symbols)})")
            )
    return problems


def parse_plan(document: dict[str, Any]) -> Plan:
    """Domain objects from a document that `validate_plan` accepted."""
    decisions = []
    for d in document["decisions"]:
        size = d.get("size")
        decisions.append(
            Decision(
                symbol=d["symbol"],
                action=d["action"],
                confidence=float(d["confidence"]),
                rationale=d["rationale"],
                size=SizeRequest(size["mode"], float(size["value"])) if size else None,
                leverage=float(d["leverage"]) if d.get("leverage") is not None else None,
                order_type=d.get("order_type", "market"),
                limit_price=d.get("limit_price"),
                stop_loss=d.get("stop_loss"),
                take_profit=d.get("take_profit"),
                invalidation=d.get("invalidation"),
            )
        )
    return Plan(schema_version=document.get("schema_version", PLAN_SCHEMA_VERSION), decisions=tuple(decisions))
