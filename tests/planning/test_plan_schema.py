"""The plan schema's two validators: the compiled fast check (fastjsonschema) may only say "valid" when the
jsonschema validator finds no problem (when it says "invalid", jsonschema decides and words the problems). On
valid plans and the hostile corpus they agree exactly; on randomly broken plans the fast check never accepts
what jsonschema refuses. (They may differ the other way on corner cases, e.g. a pattern's `$` before a trailing
newline, which jsonschema accepts: validate_plan then follows jsonschema.)"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from okxlab.planning.extract import extract_json
from okxlab.planning.prompt import EXAMPLE_PLAN
from okxlab.planning.schema import Problem, _message, _path, _validator, fast_accepts, validate_plan
from tests.reliability.hostile_corpus import CORPUS
from tests.support.llm_server import Reply


def jsonschema_accepts(document: Any) -> bool:
    return not list(_validator().iter_errors(document))


def _schema_problems(document: Any) -> list[Problem]:
    """validate_plan's schema problems as jsonschema alone finds them."""
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    return [Problem(_path(e), _message(e)) for e in errors]


def test_valid_plans_pass_both() -> None:
    hold = {"schema_version": "okxlab.plan.v1",
            "decisions": [{"symbol": "ETH-USDT-SWAP", "action": "hold", "confidence": 0.5, "rationale": "flat"}]}
    for doc in (EXAMPLE_PLAN, hold, {"schema_version": "okxlab.plan.v1", "decisions": []}):
        assert fast_accepts(doc) and jsonschema_accepts(doc)
        assert validate_plan(doc) == []


def test_hostile_corpus_documents_get_the_same_answer() -> None:
    documents = []
    for entry in CORPUS:
        reply = entry.make(60_000.0)
        text = reply if isinstance(reply, str) else (reply.content if isinstance(reply, Reply) else None)
        doc = extract_json(text).document if text else None
        if doc is not None:
            documents.append((entry.label, doc))
    assert len(documents) >= 40  # most hostile answers are JSON the schema must judge
    refused = 0
    for label, doc in documents:
        assert fast_accepts(doc) == jsonschema_accepts(doc), label
        refused += not fast_accepts(doc)
    assert refused >= 25


def test_problems_still_name_the_field() -> None:
    doc = copy.deepcopy(EXAMPLE_PLAN)
    doc["decisions"][0]["leverage"] = 1000
    doc["decisions"][1]["confidence"] = "high"
    problems = [str(p) for p in validate_plan(doc)]
    assert problems == ["decisions[0].leverage: 1000 is greater than the maximum of 125",
                        "decisions[1].confidence: 'high' is not of type 'number'"]


# Values of every JSON type, with the edge cases where validators tend to differ (bools as numbers, 1.0 as an
# integer, empty and huge strings, negative zero, nested containers).
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.sampled_from([0.0, -0.0, 1.0, 3.0, 1e-9, 1e18]),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                    st.sampled_from(["open_long", "open_short", "close", "hold", "market", "limit", "risk_usdt",
                                     "notional_usdt", "BTC-USDT-SWAP", "okxlab.plan.v1", "x" * 600]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def broken_plans(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(EXAMPLE_PLAN)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        if how == "delete":
            del parent[path[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "leverage", "limit_price", "size", "order_type"]))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return doc


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_plans())
def test_randomly_broken_plans_are_never_accepted_by_the_fast_check_alone(doc: Any) -> None:
    if fast_accepts(doc):
        assert jsonschema_accepts(doc)
    elif not jsonschema_accepts(doc):  # validate_plan reports exactly jsonschema's problems
        assert [str(p) for p in validate_plan(doc)] == [str(p) for p in _schema_problems(doc)]


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["leverage", "stop_loss", "confidence",
                                                                          "take_profit", "limit_price"]))
def test_numbers_at_every_bound_get_the_same_answer(x: float, key: str) -> None:
    doc = copy.deepcopy(EXAMPLE_PLAN)
    doc["decisions"][0][key] = x
    assert fast_accepts(doc) == jsonschema_accepts(doc)


def test_where_the_checks_differ_jsonschema_decides() -> None:
    doc = copy.deepcopy(EXAMPLE_PLAN)
    doc["decisions"][0]["symbol"] = "BTC-USDT-SWAP\n"  # re.search's `$` matches before a final newline
    assert not fast_accepts(doc) and jsonschema_accepts(doc)
    assert [str(p) for p in validate_plan(doc, ["BTC-USDT-SWAP", "ETH-USDT-SWAP"])] == [
        "decisions[0].symbol: BTC-USDT-SWAP\n is not one of this agent's symbols (BTC-USDT-SWAP, ETH-USDT-SWAP)"]
