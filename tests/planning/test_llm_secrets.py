"""The API key goes to the model's server in the Authorization header, and nowhere else."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from okxlab.planning.cache import MemoryResponseCache
from okxlab.planning.llm import LlmPlanner
from tests.planning.plan_data import FAKE_KEY, PRICES, VALID_JSON, make_ctx, settings_for
from tests.support.llm_server import LlmServer, answer, error, stall

BAD = json.dumps({"decisions": [{"symbol": "BTC-USDT-SWAP", "action": "open_long", "confidence": 2, "rationale": "x"}]})


def pieces(secret: str, size: int = 10) -> list[str]:
    return [secret[i:i + size] for i in range(len(secret) - size + 1)]


def assert_no_key(text: str, where: str) -> None:
    assert FAKE_KEY not in text, f"the API key appears in {where}"
    leaked = [p for p in pieces(FAKE_KEY) if p in text]
    assert not leaked, f"part of the API key appears in {where}: {leaked[:3]}"


def test_the_key_appears_nowhere_but_the_authorization_header(
    llm_server: LlmServer, api_key: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # everything: ours, the SDK's, the HTTP client's
    cache = MemoryResponseCache()
    settings = settings_for(llm_server, timeout=0.25, max_retries=1)
    planner = LlmPlanner("tester", settings, prices=PRICES, cache=cache)
    # Servers that echo the key back in their errors, in full or in part.
    partial = f"{FAKE_KEY[:7]}*****{FAKE_KEY[-14:]}"
    llm_server.script(
        answer(VALID_JSON),                                                  # run 1: fine
        answer(BAD), answer(VALID_JSON),                                     # run 2: repaired
        error(401, f"Incorrect API key provided: {FAKE_KEY}"),               # run 3: echoed key (not retried)
        error(429, f"Rate limit for key {partial}"), error(429, f"Rate limit for key {partial}"),  # run 4
        stall(5), stall(5),                                                  # run 5: timeouts
        error(403, f"key ****{FAKE_KEY[-4:]} may not use this model"),       # run 6: masked echo
    )
    results = [planner.plan(make_ctx(run, fresh_llm=True)) for run in ("r1", "r2", "r3", "r4", "r5", "r6")]

    assert results[0].error is None and results[1].error is None
    assert results[2].error is not None and results[2].error.startswith("llm_error: HTTP 401: Incorrect API key provided: ")
    assert all(r.error and r.error.startswith("llm_error: ") for r in results[2:])

    for i, result in enumerate(results):
        assert_no_key(repr(result), f"repr of result {i}")
        assert_no_key(json.dumps(dataclasses.asdict(result), default=str), f"result {i} as stored")
    for key in cache.keys():
        assert_no_key(repr(cache.get(*key)), "the response cache")
    assert_no_key(caplog.text, "the logs")
    for record in caplog.records:
        assert_no_key(record.getMessage(), f"log record from {record.name}")
    captured = capsys.readouterr()
    assert_no_key(captured.out + captured.err, "stdout/stderr")
    assert_no_key(repr(planner) + repr(settings) + repr(vars(planner)), "the planner")
    assert "****" not in "".join(r.error or "" for r in results)  # masked forms are scrubbed too

    # On the wire: in the Authorization header of every request, and in nothing else sent.
    assert len(llm_server.chat_requests) == 9
    for request in llm_server.chat_requests:
        assert request.authorization == f"Bearer {FAKE_KEY}"
        assert_no_key(request.text, "the request (apart from its Authorization header)")


def test_configured_secrets_a_model_repeats_in_a_normal_answer_are_never_kept(
    llm_server: LlmServer, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 200 answer that is a fine plan, or a broken one to be repaired, may still quote a secret: the LLM key,
    or any other the config names (here an agent's OKX secret). Neither is stored, cached, or quoted back."""
    from okxlab.config import parse_config
    from okxlab.secrets import configured_secrets

    okx_secret = "OKXsecretVALUE-9f3e1d7c5b"
    monkeypatch.setenv("ECHO_OKX_SECRET", okx_secret)
    config = parse_config('[[agents]]\nname = "a"\nplanner = "strategy"\nstrategy = "builtin:buy_and_hold"\n'
                          'symbols = ["BTC-USDT-SWAP"]\n[agents.okx]\napi_key_env = "X_KEY"\n'
                          'secret_env = "ECHO_OKX_SECRET"\npassphrase_env = "X_PASS"\n', "<test>")
    secrets = configured_secrets(config)
    assert okx_secret in secrets
    echoing = json.loads(VALID_JSON)
    echoing["decisions"][0]["rationale"] = f"my key is {FAKE_KEY} and the exchange secret {okx_secret}"
    broken = json.dumps({"decisions": [{"symbol": "BTC-USDT-SWAP", "action": "open_long", "confidence": 2,
                                        "rationale": f"keys {FAKE_KEY} {okx_secret}"}]})
    cache = MemoryResponseCache()
    planner = LlmPlanner("tester", settings_for(llm_server), prices=PRICES, cache=cache, secrets=secrets)
    llm_server.script(answer(json.dumps(echoing)), answer(broken), answer(VALID_JSON))
    plain = planner.plan(make_ctx("r1", fresh_llm=True))
    repaired = planner.plan(make_ctx("r2", fresh_llm=True))

    assert plain.error is None and plain.document["decisions"][0]["rationale"].count("[redacted]") == 2
    assert repaired.error is None and len(repaired.llm_calls) == 2
    for result in (plain, repaired):
        stored = json.dumps(dataclasses.asdict(result), default=str)
        assert_no_key(stored, "the stored result")
        assert okx_secret not in stored and not [p for p in pieces(okx_secret) if p in stored]
    for key in cache.keys():
        assert okx_secret not in repr(cache.get(*key))
        assert_no_key(repr(cache.get(*key)), "the response cache")
    repair_request = llm_server.chat_requests[-1].text  # the broken answer, quoted back to the model
    assert "[redacted]" in repair_request and okx_secret not in repair_request
    assert_no_key(repair_request, "the repair request")
