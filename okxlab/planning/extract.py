"""Getting the JSON object out of a model's answer: pure functions, bounded work, nothing trusted.

Models answer with pure JSON (JSON mode), with JSON inside ```json fences, or with JSON wrapped in prose,
sometimes after a <think> block. `extract_json` tries those in that order and returns the first JSON object
that looks like a plan (has "decisions"), else the first object found. It never repairs JSON (no guessing at
trailing commas or quotes): a broken answer goes back to the model with the error instead.

Stricter than `json.loads`: NaN, Infinity and numbers that overflow to infinity are rejected (they slip
through JSON Schema range checks), and so are duplicate keys (which would let two values for "action" hide
one another).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_CHARS = 100_000  # a plan is a few KB; beyond this the answer is cut, not scanned
MAX_FENCES = 8
MAX_STARTS = 64  # unclosed "{" tried when looking for an embedded object (each costs a scan to the end)
MAX_OBJECTS = 1_000  # complete objects read before giving up

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n`]*\n(.*?)```", re.DOTALL)
_STRUCTURAL = re.compile(r'[{}"\\]')

CUT_OFF = "the answer ends inside a JSON object (cut off?)"
NOT_FOUND = "no JSON object found in the answer"


@dataclass(frozen=True)
class Extraction:
    document: Any  # the JSON object found (a dict), or None
    method: str | None  # "json" (the whole answer), "fence", "embedded"; None when nothing was found
    error: str | None = None  # why nothing usable was found
    truncated_input: bool = False  # the answer was longer than MAX_CHARS and only its start was read


class _Rejected(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Rejected(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Rejected(f"number {text[:40]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _Rejected(f"{name} is not a number JSON allows")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_float=_finite, parse_constant=_constant)


def loads_strict(text: str) -> Any:
    """`json.loads` without NaN/Infinity, overflowing numbers or duplicate keys; raises ValueError."""
    try:
        value, end = _DECODER.raw_decode(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if text[end:].strip():
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value


def _decode_at(text: str, start: int) -> tuple[Any, int] | None:
    try:
        return _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None


def _closing_braces(text: str, start: int) -> dict[int, int]:
    """For each "{" from `start` on, the index just past its matching "}" (absent when it never closes).

    One pass with a stack; quotes are tracked only inside braces (prose between objects has its own quotes).
    """
    closes: dict[int, int] = {}
    stack: list[int] = []
    in_string, skip_to = False, -1
    for match in _STRUCTURAL.finditer(text, start):
        if match.start() < skip_to:  # the character right after a backslash inside a string
            continue
        ch = match.group()
        if in_string:
            if ch == "\\":
                skip_to = match.end() + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = bool(stack)
        elif ch == "{":
            stack.append(match.start())
        elif ch == "}" and stack:
            closes[stack.pop()] = match.end()
    return closes


def _embedded(text: str) -> tuple[Any, str | None]:
    """The first top-level JSON object in `text` with "decisions", else the first object at all."""
    first = text.find("{")
    if first < 0:
        return None, NOT_FOUND
    closes = _closing_braces(text, first)
    first_object: Any = None
    rejected: str | None = None  # why a complete-looking object was refused
    pos, unclosed, objects = first, 0, 0
    while unclosed < MAX_STARTS and objects < MAX_OBJECTS:
        start = text.find("{", pos)
        if start < 0:
            break
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:
            if start in closes:  # a complete {...} that is not acceptable JSON: skip it whole, never mine it
                rejected = rejected or str(exc)
                pos = closes[start]
            else:  # a "{" that never closes: a stray brace in prose, or an answer cut off
                unclosed += 1
                pos = start + 1
            continue
        objects += 1
        if isinstance(value, dict):
            if "decisions" in value:
                return value, None
            if first_object is None:
                first_object = value
        pos = end  # never look inside an object already read: a wrapped plan is not a plan
    if first not in closes:
        # Objects found so far may be the inner parts of a plan that was cut off; do not pass them off as it.
        return None, CUT_OFF
    if first_object is not None:
        return first_object, None
    return None, f"the answer is not valid JSON: {rejected}" if rejected else NOT_FOUND


def extract_json(text: str | None, *, max_chars: int = MAX_CHARS) -> Extraction:
    """Find the plan's JSON object in a model's answer. Bounded work for any input."""
    if text is None or not text.strip():
        return Extraction(None, None, "the answer is empty")
    truncated = len(text) > max_chars
    if truncated:
        text = text[:max_chars]
    text = _THINK.sub("", text).strip().lstrip("\ufeff")
    if not text:
        return Extraction(None, None, "the answer holds only reasoning, no JSON", truncated)

    if text[0] in "{[":
        try:
            whole = loads_strict(text)
        except ValueError as exc:
            whole_error: str | None = str(exc)
        else:
            if isinstance(whole, dict):
                return Extraction(whole, "json", None, truncated)
            whole_error = f"the answer is a JSON {type(whole).__name__}, not an object"
    else:
        whole_error = None

    fences = [(m.group(1).lower(), m.group(2)) for m in itertools.islice(_FENCE.finditer(text), MAX_FENCES)]
    fences.sort(key=lambda f: f[0] not in ("json", ""))  # stable: json-tagged and untagged first
    for _lang, body in fences:
        try:
            value = loads_strict(body.strip())
        except ValueError:
            continue
        if isinstance(value, dict):
            return Extraction(value, "fence", None, truncated)

    document, error = _embedded(text)
    if document is not None:
        return Extraction(document, "embedded", None, truncated)
    if whole_error is not None and error == NOT_FOUND:
        error = f"the answer is not valid JSON: {whole_error}"
    if truncated and error:
        error += f" (only the first {max_chars} characters were read)"
    return Extraction(None, None, error, truncated)
