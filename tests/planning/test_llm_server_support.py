"""The scripted server other tests build on: its documented behaviour, through the real SDK."""

from __future__ import annotations

import openai
import pytest

from tests.support.llm_server import LlmServer, Reply, Request, answer, error


def client(server: LlmServer, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-support-test", base_url=server.base_url, **{"max_retries": 0, **kwargs})


def ask(c: openai.OpenAI, text: str = "hi, answer in json") -> str | None:
    completion = c.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content


def test_script_is_consumed_in_order_and_requests_recorded() -> None:
    with LlmServer() as server:
        server.script("one", answer("two", usage=(7, 3)))
        c = client(server)
        assert ask(c, "a") == "one"
        completion = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "b"}])
        assert completion.choices[0].message.content == "two"
        assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)
        assert server.pending == 0
        assert [r.last_user_message for r in server.chat_requests] == ["a", "b"]
        assert all(r.model == "m" and r.authorization == "Bearer sk-support-test" for r in server.chat_requests)


def test_an_empty_script_fails_loudly_without_sdk_retries() -> None:
    with LlmServer() as server:
        with pytest.raises(openai.BadRequestError, match="no scripted reply left"):
            ask(client(server, max_retries=3))
        assert len(server.chat_requests) == 1


def test_responder_answers_when_the_script_is_empty() -> None:
    def echo(request: Request) -> Reply:
        return answer(request.last_user_message.upper())

    with LlmServer(responder=echo) as server:
        server.script("scripted first")
        c = client(server)
        assert ask(c, "x") == "scripted first"
        assert ask(c, "shout") == "SHOUT"


def test_errors_carry_an_openai_style_body_and_fast_retry_hint() -> None:
    with LlmServer() as server:
        server.script(error(429, "slow down"), "ok")
        assert ask(client(server, max_retries=1)) == "ok"
        server.script(error(503, "down"))
        with pytest.raises(openai.InternalServerError) as info:
            ask(client(server))
        assert info.value.body == {"message": "down", "type": "server_error", "param": None, "code": 503}


def test_models_endpoint_and_reset() -> None:
    with LlmServer() as server:
        assert [m.id for m in client(server).models.list()] == ["scripted"]
        server.script("unused")
        server.reset()
        assert server.pending == 0 and server.requests == []


def test_a_stopped_server_answers_nothing() -> None:
    server = LlmServer().start()
    server.script("first")
    c = client(server)
    assert ask(c) == "first"
    server.stop()
    with pytest.raises(openai.APIConnectionError):
        ask(c)  # not even on the kept-alive connection
