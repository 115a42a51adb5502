"""The LLM planner end to end: the real `openai` SDK over real HTTP to a local scripted server."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from okxlab.errors import ConfigError
from okxlab.pipeline.planners import llm_planner
from okxlab.planning.base import Planner
from okxlab.planning.cache import CachedResponse, MemoryResponseCache
from okxlab.planning.llm import LlmPlanner, redact
from okxlab.planning.prompt import build_prompt, render_messages, sha256_text
from okxlab.planning.providers import estimate_cost
from tests.planning.plan_data import (
    FAKE_KEY,
    KEY_ENV,
    PRICES,
    VALID_JSON,
    VALID_PLAN,
    make_account,
    make_ctx,
    settings_for,
)
from tests.support.llm_server import LlmServer, answer, drop, error, raw, stall

MakePlanner = Callable[..., LlmPlanner]

BAD_LEVERAGE = json.dumps({"decisions": [{**VALID_PLAN["decisions"][0], "leverage": 1000}]})
LEVERAGE_PROBLEM = "decisions[0].leverage: 1000 is greater than the maximum of 125"


def test_valid_plan_in_one_call(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(answer(VALID_JSON, usage=(1500, 300)))
    planner: Planner = make_planner()
    ctx = make_ctx()
    result = planner.plan(ctx)

    assert result.error is None
    assert result.document == VALID_PLAN
    assert result.raw == VALID_JSON
    assert result.planner == "llm:openai_compatible/test-model"
    prompt = build_prompt(ctx)
    assert (result.prompt, result.prompt_sha256) == (prompt.text, prompt.sha256)

    [call] = result.llm_calls
    assert (call.provider, call.model, call.purpose, call.cached, call.error) == (
        "openai_compatible", "test-model", "plan", False, None)
    assert call.prompt == prompt.text and call.prompt_sha256 == sha256_text(call.prompt)
    assert call.response == VALID_JSON
    assert (call.tokens_in, call.tokens_out) == (1500, 300)
    assert call.cost_usd == pytest.approx((1500 * 0.5 + 300 * 2.0) / 1e6)
    assert call.latency_ms is not None and call.latency_ms > 0

    [request] = llm_server.chat_requests
    assert request.path == "/v1/chat/completions"
    assert request.authorization == f"Bearer {FAKE_KEY}"
    assert request.body["model"] == "test-model"
    assert request.body["messages"] == prompt.messages  # exactly the hashed text was sent
    assert request.body["response_format"] == {"type": "json_object"}
    assert request.body["temperature"] == 0.2 and request.body["max_tokens"] == 1200


def test_no_json_mode_when_off(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(VALID_JSON)
    assert make_planner(json_mode=False).plan(make_ctx()).error is None
    assert "response_format" not in llm_server.chat_requests[0].body


@pytest.mark.parametrize(
    "content",
    [
        f"Here is my plan.\n\n```json\n{json.dumps(VALID_PLAN, indent=2)}\n```\n\nLet me know!",
        f"After weighing the indicators I propose: {VALID_JSON} -- that is final.",
        f"<think>EMA crossed {{up}}... RSI ok</think>\n```\n{VALID_JSON}\n```",
    ],
    ids=["fenced", "prose", "think-then-fence"],
)
def test_json_wrapped_in_prose_or_fences(llm_server: LlmServer, make_planner: MakePlanner, content: str) -> None:
    llm_server.script(content)
    result = make_planner().plan(make_ctx())
    assert result.error is None
    assert result.document == VALID_PLAN
    assert result.raw == content  # the raw answer is kept verbatim
    assert len(llm_server.chat_requests) == 1


def test_schema_breaking_plan_is_repaired_once(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(answer(BAD_LEVERAGE, usage=(1000, 100)), answer(VALID_JSON, usage=(1200, 120)))
    ctx = make_ctx()
    result = make_planner().plan(ctx)

    assert result.error is None
    assert result.document == VALID_PLAN
    assert result.raw == VALID_JSON
    assert [c.purpose for c in result.llm_calls] == ["plan", "repair"]
    first, repair = llm_server.chat_requests
    assert LEVERAGE_PROBLEM in repair.last_user_message
    # The repair continues the conversation: same prompt, the bad answer, then the problems.
    assert repair.messages[:2] == first.messages
    assert repair.messages[2] == {"role": "assistant", "content": BAD_LEVERAGE}
    assert repair.body["response_format"] == {"type": "json_object"}
    call = result.llm_calls[1]
    assert call.prompt == render_messages(repair.messages)
    assert call.prompt_sha256 == sha256_text(call.prompt)
    assert (call.tokens_in, call.tokens_out) == (1200, 120)
    assert result.prompt_sha256 == build_prompt(ctx).sha256  # the run's prompt is the first one


def test_garbage_twice_is_invalid_plan(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script("I think BTC will go up, buy buy buy!", "Sorry, here: {decisions: [BTC long]}")
    result = make_planner().plan(make_ctx())

    assert result.error is not None and result.error.startswith("invalid_plan: ")
    assert result.document is None  # nothing to trade
    assert result.raw == "Sorry, here: {decisions: [BTC long]}"
    assert len(llm_server.chat_requests) == 2  # one repair, no more
    assert [c.purpose for c in result.llm_calls] == ["plan", "repair"]
    assert all(c.error is None for c in result.llm_calls)  # the calls worked; the answers did not
    assert "no JSON object found" in llm_server.chat_requests[1].last_user_message


def test_still_invalid_after_repair_keeps_the_document_for_the_audit(llm_server: LlmServer,
                                                                      make_planner: MakePlanner) -> None:
    llm_server.script(BAD_LEVERAGE, BAD_LEVERAGE)
    result = make_planner().plan(make_ctx())
    assert result.error == f"invalid_plan: {LEVERAGE_PROBLEM}"
    assert result.document == json.loads(BAD_LEVERAGE)  # what the validate stage will refuse again


def test_symbol_outside_the_agent_is_a_problem(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    doge = json.dumps({"decisions": [{"symbol": "DOGE-USDT-SWAP", "action": "hold", "confidence": 1, "rationale": "x"}]})
    llm_server.script(doge, VALID_JSON)
    result = make_planner().plan(make_ctx())
    assert result.error is None
    assert "DOGE-USDT-SWAP is not one of this agent's symbols" in llm_server.chat_requests[1].last_user_message


def test_cut_off_answer_says_so_in_the_repair(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(answer(VALID_JSON[:60], finish_reason="length"), VALID_JSON)
    assert make_planner().plan(make_ctx()).error is None
    repair = llm_server.chat_requests[1].last_user_message
    assert "cut off" in repair and "max_tokens (1200)" in repair


def test_timeout_is_retried_by_the_sdk_then_recorded(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(stall(10), stall(10))
    result = make_planner(timeout=0.25, max_retries=1).plan(make_ctx())

    assert result.error == "llm_error: timeout: no answer within 0.25s (after 1 retry)"
    assert result.document is None
    assert len(llm_server.chat_requests) == 2
    [call] = result.llm_calls
    assert call.error == "timeout: no answer within 0.25s (after 1 retry)"
    assert call.response is None and call.tokens_in is None and call.cost_usd is None


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limit_and_server_errors_are_retried_then_recorded(llm_server: LlmServer, make_planner: MakePlanner,
                                                                 status: int) -> None:
    llm_server.script(*[error(status, "slow down" if status == 429 else "upstream broke")] * 3)
    result = make_planner(max_retries=2).plan(make_ctx())

    assert len(llm_server.chat_requests) == 3  # the first try and the SDK's two retries
    assert llm_server.pending == 0
    assert result.error is not None and result.error.startswith(f"llm_error: HTTP {status}: ")
    assert result.error.endswith("(after 2 retries)")
    [call] = result.llm_calls
    assert call.error == result.error.removeprefix("llm_error: ")
    assert result.document is None


def test_sdk_backoff_recovers_from_a_429(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    # No retry-after header: the SDK's own exponential backoff (about half a second) is used.
    llm_server.script(error(429, retry_after_ms=None), VALID_JSON)
    result = make_planner(max_retries=2).plan(make_ctx())
    assert result.error is None and result.document == VALID_PLAN
    first, second = llm_server.chat_requests
    assert second.received_at - first.received_at >= 0.3
    assert len(result.llm_calls) == 1  # retries are the SDK's business; the audit has one call


def test_client_errors_are_not_retried(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(error(400, "model not found"))
    result = make_planner(max_retries=2).plan(make_ctx())
    assert result.error == "llm_error: HTTP 400: model not found"
    assert len(llm_server.chat_requests) == 1


def test_connection_drops_and_unreachable_servers(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(drop(), drop())
    result = make_planner(max_retries=1).plan(make_ctx())
    assert result.error == f"llm_error: connection error: cannot reach 127.0.0.1:{llm_server.port} (after 1 retry)"


@pytest.mark.parametrize(
    "reply",
    [raw("<html>502 Bad Gateway</html>", content_type="text/html"), raw('{"choices": null}'), raw('{"choices": []}'),
     raw("{not json"), raw("")],
    ids=["html", "null-choices", "no-choices", "broken-json", "empty-body"],
)
def test_answers_that_are_not_completions(llm_server: LlmServer, make_planner: MakePlanner, reply) -> None:
    cache = MemoryResponseCache()
    llm_server.script(reply)
    result = make_planner(max_retries=0, cache=cache).plan(make_ctx())
    assert result.error is not None
    assert result.error.startswith("llm_error: unexpected answer from the server: not a chat completion")
    assert len(cache) == 0  # never replayed as if the model had said it


def test_empty_content_goes_to_repair(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(answer(None), VALID_JSON)  # DeepSeek's JSON mode documents occasional empty content
    result = make_planner().plan(make_ctx())
    assert result.error is None
    assert "the answer is empty" in llm_server.chat_requests[1].last_user_message
    assert llm_server.chat_requests[1].messages[2] == {"role": "assistant", "content": "(empty answer)"}


def test_two_agents_at_the_same_tick_send_byte_identical_market_sections(llm_server: LlmServer,
                                                                        make_planner: MakePlanner) -> None:
    llm_server.script(VALID_JSON, VALID_JSON)
    one = make_planner("alpha").plan(make_ctx("alpha", account=make_account(10_000.0)))
    two = make_planner("beta").plan(make_ctx("beta", account=make_account(7_531.25)))
    assert one.prompt_sha256 != two.prompt_sha256

    def market_of(user_message: str) -> bytes:
        return user_message[user_message.index("## Market"):user_message.index("## Task")].encode()

    sent = [market_of(r.messages[1]["content"]) for r in llm_server.chat_requests]
    assert sent[0] == sent[1]
    assert sent[0].decode().strip() == build_prompt(make_ctx()).market


def test_cache_hit_makes_no_http_request(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    cache = MemoryResponseCache()
    llm_server.script(answer(VALID_JSON, usage=(900, 90)))
    ctx = make_ctx()
    first = make_planner(cache=cache).plan(ctx)
    assert first.error is None and not first.llm_calls[0].cached
    assert cache.keys() == [("openai_compatible", "test-model", first.prompt_sha256)]

    llm_server.reset()
    replay = make_planner(cache=cache).plan(ctx)
    assert llm_server.requests == []  # no HTTP at all
    assert replay.document == first.document and replay.raw == first.raw
    [call] = replay.llm_calls
    assert call.cached and call.response == VALID_JSON
    assert (call.tokens_in, call.tokens_out, call.cost_usd) == (900, 90, 0.0)


def test_cache_replays_the_repair_too(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    cache = MemoryResponseCache()
    llm_server.script(BAD_LEVERAGE, VALID_JSON)
    first = make_planner(cache=cache).plan(make_ctx())
    llm_server.reset()
    replay = make_planner(cache=cache).plan(make_ctx())
    assert llm_server.requests == []
    assert [c.cached for c in replay.llm_calls] == [True, True]
    assert replay.document == first.document == VALID_PLAN


def test_fresh_llm_skips_the_cache_and_records_the_new_answer(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    cache = MemoryResponseCache()
    ctx = make_ctx()
    sha = build_prompt(ctx).sha256
    cache.put("openai_compatible", "test-model", sha, CachedResponse(BAD_LEVERAGE, 1, 1))
    llm_server.script(VALID_JSON)
    result = make_planner(cache=cache).plan(make_ctx(fresh_llm=True))
    assert len(llm_server.chat_requests) == 1
    assert not result.llm_calls[0].cached and result.document == VALID_PLAN
    assert cache.get("openai_compatible", "test-model", sha).text == VALID_JSON


def test_the_cache_is_keyed_by_provider_and_model(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    cache = MemoryResponseCache()
    llm_server.script(VALID_JSON, VALID_JSON)
    make_planner(cache=cache).plan(make_ctx())
    make_planner(cache=cache, model="other-model").plan(make_ctx())
    assert len(llm_server.chat_requests) == 2


def test_failures_are_not_cached(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    cache = MemoryResponseCache()
    llm_server.script(error(500), VALID_JSON)
    assert make_planner(cache=cache, max_retries=0).plan(make_ctx()).error is not None
    assert len(cache) == 0
    assert make_planner(cache=cache, max_retries=0).plan(make_ctx()).error is None


def test_missing_key_is_a_start_up_error(llm_server: LlmServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError) as info:
        LlmPlanner("alpha", settings_for(llm_server, "alpha"))
    assert str(info.value) == f"agent alpha: {KEY_ENV} is not set; export it where the workers run (a replay can use the agent's offline_fallback with --offline-planners)"
    assert llm_server.requests == []


def test_key_removed_mid_run_is_an_llm_error_not_a_crash(llm_server: LlmServer, make_planner: MakePlanner,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    planner = make_planner()
    monkeypatch.delenv(KEY_ENV)
    result = planner.plan(make_ctx())
    assert result.error == f"llm_error: agent tester: {KEY_ENV} is not set; export it where the workers run (a replay can use the agent's offline_fallback with --offline-planners)"
    assert llm_server.requests == []


def test_keyless_local_server(llm_server: LlmServer, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(llm_server)
    from dataclasses import replace

    planner = LlmPlanner("local", replace(settings, api_key_env=None))
    llm_server.script(VALID_JSON)
    assert planner.plan(make_ctx()).error is None
    assert llm_server.chat_requests[0].authorization == "Bearer no-key"


def test_planner_from_config(llm_server: LlmServer, api_key: str) -> None:
    from okxlab.config import parse_config

    text = f"""
[llm.prices]
"openai_compatible/test-model" = {{ input = 1.0, output = 4.0 }}

[[agents]]
name = "local"
planner = "llm"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
[agents.llm]
provider = "openai_compatible"
base_url = "{llm_server.base_url}"
model = "test-model"
api_key_env = "{KEY_ENV}"
max_retries = 0
"""
    config = parse_config(text, "test.toml")
    planner = llm_planner(config.agents[0], config)
    llm_server.script(answer(VALID_JSON, usage=(1000, 100)))
    result = planner.plan(make_ctx("local"))
    assert result.llm_calls[0].cost_usd == pytest.approx(0.0014)


def test_cost_is_none_for_models_missing_from_the_price_table(llm_server: LlmServer, make_planner: MakePlanner) -> None:
    llm_server.script(VALID_JSON)
    result = make_planner(model="unpriced").plan(make_ctx())
    assert result.llm_calls[0].cost_usd is None
    assert estimate_cost(PRICES, "openai_compatible/unpriced", 1, 1) is None


def test_redact() -> None:
    key = "sk-abcdef0123456789ABCDEF"
    assert key not in redact(f"Incorrect API key provided: {key}", [key])
    assert "0123456789" not in redact("Incorrect API key provided: sk-abcd*****0123456789ABCDEF", [key])
    assert "ABCD" not in redact("Your api key: ****ABCD is invalid", [])
    assert redact("Authorization: Bearer abc.def", []) == "Authorization: Bearer [redacted]"
    assert redact("nothing secret here", [key]) == "nothing secret here"


def test_redact_keeps_pace_with_a_hostile_answer() -> None:
    # A model's answer may be one 200,000-character token: a backtracking pattern around the stars took
    # quadratic time on it and stalled the planning worker (this test then runs into the suite's timeout).
    key = "sk-abcdef0123456789ABCDEF"
    token = "{" * 200_000
    assert redact(token, [key]) == token
    assert redact("x" * 200_000 + "***" + "y" * 200_000 + " kept", [key]) == "[redacted] kept"
    assert redact("a " * 100_000 + key[:9] + "!", [key]) == "a " * 100_000 + "[redacted]!"
    assert redact("one ab***cd two ***, three", []) == "one [redacted] two [redacted], three"
