"""Getting the JSON object out of model answers: the shapes models produce, and hostile ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from okxlab.planning.extract import CUT_OFF, MAX_CHARS, extract_json, loads_strict

PLAN = {"decisions": [{"symbol": "BTC-USDT-SWAP", "action": "hold", "confidence": 0.5, "rationale": "wait {x}"}]}
PLAN_JSON = json.dumps(PLAN)


@pytest.mark.parametrize(
    ("text", "method"),
    [
        (PLAN_JSON, "json"),
        ("  \n" + json.dumps(PLAN, indent=2) + "\n", "json"),
        ("\ufeff" + PLAN_JSON, "json"),
        (f"```json\n{PLAN_JSON}\n```", "fence"),
        (f"```JSON\n{PLAN_JSON}\n```", "fence"),
        (f"```\n{PLAN_JSON}\n```", "fence"),
        (f"Here is my plan:\n```json\n{PLAN_JSON}\n```\nGood luck!", "fence"),
        (f"Sure! Based on the data, {PLAN_JSON} That is all.", "embedded"),
        (f"The format is {{\"a\": 1}} and my plan is {PLAN_JSON}", "embedded"),  # the plan, not the first object
        (f"<think>maybe {{\"decisions\": []}} or not</think>\n{PLAN_JSON}", "json"),
        (f"I {{ think }} this: {PLAN_JSON}", "embedded"),  # a stray brace before the JSON
        (f"json\n{PLAN_JSON}", "embedded"),
        (f"```python\nx = {{1: 2}}\n```\n```json\n{PLAN_JSON}\n```", "fence"),
    ],
)
def test_finds_the_plan(text: str, method: str) -> None:
    result = extract_json(text)
    assert result.error is None
    assert result.document == PLAN
    assert result.method == method


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (None, "the answer is empty"),
        ("", "the answer is empty"),
        ("   \n ", "the answer is empty"),
        ("I cannot help with that.", "no JSON object found"),
        ("<think>hmm {\"decisions\": []}", "only reasoning"),  # unclosed think block: all reasoning
        ('{"decisions": [{"symbol": "BTC-USDT-SWAP", "action": "hold", "confid', CUT_OFF),
        ("[1, 2, 3]", "not valid JSON: the answer is a JSON list, not an object"),
        ("{'decisions': []}", "not valid JSON"),  # Python, not JSON
        ('{"decisions": [],}', "not valid JSON"),  # trailing comma: not guessed at
    ],
)
def test_reports_why_nothing_usable_was_found(text: str | None, error: str) -> None:
    result = extract_json(text)
    assert result.document is None
    assert result.error is not None and error in result.error


def test_cut_off_plan_is_not_replaced_by_one_of_its_inner_objects() -> None:
    cut = PLAN_JSON[:-3]  # ends inside "decisions"; the inner decision object is complete
    assert extract_json(cut).document is None
    assert extract_json(cut).error == CUT_OFF


def test_a_wrapped_plan_is_returned_as_written_not_unwrapped() -> None:
    wrapped = json.dumps({"plan": PLAN})
    assert extract_json(wrapped).document == {"plan": PLAN}  # validation will then refuse it
    assert extract_json(f"Answer: {wrapped}").document == {"plan": PLAN}


@pytest.mark.parametrize(
    "text",
    [
        '{"decisions": [], "x": NaN}',
        '{"decisions": [], "x": Infinity}',
        '{"decisions": [], "x": -Infinity}',
        '{"decisions": [], "x": 1e999}',
        '{"decisions": [], "decisions": [{"symbol": "BTC-USDT-SWAP"}]}',
    ],
)
def test_non_finite_numbers_and_duplicate_keys_are_refused(text: str) -> None:
    assert extract_json(text).document is None
    with pytest.raises(ValueError):
        loads_strict(text)


def test_deep_nesting_is_refused_not_crashed() -> None:
    text = "[" * 100_000 + "]" * 100_000
    assert extract_json(text).document is None
    nested = '{"a":' * 5000 + "1" + "}" * 5000
    result = extract_json(nested)
    assert result.document is None or isinstance(result.document, dict)


def test_huge_answers_are_cut_and_still_bounded() -> None:
    huge = "blah { " * 2_000_000 + PLAN_JSON  # 14 MB, the plan beyond the reading limit
    result = extract_json(huge)
    assert result.truncated_input
    assert result.document is None
    assert f"first {MAX_CHARS} characters" in (result.error or "")


@pytest.mark.parametrize(
    "text",
    [
        "{" * MAX_CHARS,  # every brace unclosed
        '{"a":' * (MAX_CHARS // 5),
        "```json\n{" * 20_000,
        '{"' + 'a\\"' * 30_000,  # escapes all the way down
        '{"a":' + "[" * 90_000,
        '{"a": ' + "1" * 90_000,  # an integer too long to parse
        "<think>" * 20_000,
    ],
    ids=["braces", "keys", "fences", "escapes", "arrays", "digits", "think"],
)
def test_hostile_shapes_end_in_an_error_not_a_hang(text: str) -> None:
    result = extract_json(text)
    assert result.document is None
    assert result.error


def test_many_fake_objects_before_the_plan() -> None:
    noise = " ".join(json.dumps({"n": i}) for i in range(200))
    assert extract_json(noise + " " + PLAN_JSON).document == PLAN


def test_escaped_quotes_and_braces_inside_strings() -> None:
    doc = {"decisions": [], "note": 'a "quoted" {brace} \\ backslash'}
    assert extract_json("prefix " + json.dumps(doc)).document == doc
    assert extract_json(json.dumps(doc)[:-2]).error == CUT_OFF


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('{}[]":,\\ abn01.-e`\nj<>/think')), max_size=400))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    result = extract_json(text)
    assert (result.document is None) == (result.error is not None)
    assert result.document is None or isinstance(result.document, dict)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=20), st.booleans(),
                                                       st.none(), st.floats(allow_nan=False, allow_infinity=False)),
                       max_size=6),
       st.text(alphabet=st.characters(blacklist_characters="{}`"), max_size=50),
       st.text(alphabet=st.characters(blacklist_characters="{}`"), max_size=50))
def test_any_object_in_prose_is_found(doc: dict, before: str, after: str) -> None:
    result = extract_json(f"{before}{json.dumps(doc)}{after}")
    assert result.document == doc
