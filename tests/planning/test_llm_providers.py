"""Provider defaults, per-agent LLM settings, API keys and the price table."""

from __future__ import annotations

import pytest

from okxlab.config import load_config
from okxlab.errors import ConfigError
from okxlab.planning.providers import (
    NO_KEY,
    PROVIDERS,
    Price,
    estimate_cost,
    parse_llm_settings,
    parse_prices,
    require_api_key,
)


def test_deepseek_defaults_follow_its_docs() -> None:
    s = parse_llm_settings("deepseek", {"provider": "deepseek", "model": "deepseek-chat"})
    assert s.base_url == "https://api.deepseek.com"
    assert s.api_key_env == "DEEPSEEK_API_KEY"
    assert s.json_mode is True
    assert s.label == "deepseek/deepseek-chat"


def test_qwen_defaults_and_regions() -> None:
    s = parse_llm_settings("qwen", {"provider": "qwen", "model": "qwen-plus"})
    assert s.base_url == "https://dashscope.aliyuncs.com/compatible-mode/v1"
    assert s.api_key_env == "DASHSCOPE_API_KEY"
    assert s.json_mode is True
    intl = parse_llm_settings("qwen", {"provider": "qwen", "model": "qwen-plus", "region": "intl"})
    assert intl.base_url == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"


def test_openai_compatible_needs_a_base_url_and_defaults_to_no_json_mode() -> None:
    with pytest.raises(ConfigError, match="agent local: .*base_url is required"):
        parse_llm_settings("local", {"provider": "openai_compatible", "model": "llama3.1"})
    s = parse_llm_settings("local", {"provider": "openai_compatible", "model": "llama3.1",
                                     "base_url": "http://127.0.0.1:11434/v1/"})
    assert s.base_url == "http://127.0.0.1:11434/v1"
    assert s.json_mode is False
    assert s.api_key_env is None
    assert require_api_key(s) == NO_KEY  # a local server that needs no key


def test_every_setting_is_read() -> None:
    s = parse_llm_settings("a", {"provider": "deepseek", "model": "deepseek-reasoner", "api_key_env": "MY_KEY",
                                 "temperature": 0, "max_tokens": 2000, "timeout": 30, "max_retries": 0,
                                 "json_mode": False, "base_url": "https://proxy.example/v1"})
    assert (s.api_key_env, s.temperature, s.max_tokens, s.timeout, s.max_retries, s.json_mode, s.base_url) == (
        "MY_KEY", 0.0, 2000, 30.0, 0, False, "https://proxy.example/v1")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"provider": "openai", "model": "x"}, "provider must be one of deepseek, qwen, openai_compatible"),
        ({"provider": "deepseek"}, "model must be"),
        ({"provider": "deepseek", "model": "deepseek-chat", "temprature": 0.1}, "unknown key(s) temprature"),
        ({"provider": "deepseek", "model": "deepseek-chat", "temperature": 3}, "temperature must be between 0 and 2"),
        ({"provider": "deepseek", "model": "deepseek-chat", "max_tokens": 10.5}, "max_tokens must be a whole number"),
        ({"provider": "deepseek", "model": "deepseek-chat", "timeout": "60"}, "timeout must be a number"),
        ({"provider": "deepseek", "model": "deepseek-chat", "json_mode": "yes"}, "json_mode must be true or false"),
        ({"provider": "deepseek", "model": "deepseek-chat", "region": "intl"}, "region applies only to provider qwen"),
        ({"provider": "qwen", "model": "qwen-plus", "region": "mars"}, "region must be one of cn, intl, us"),
        ({"provider": "deepseek", "model": "deepseek-chat", "base_url": "ftp://x"}, "base_url must be an http(s) URL"),
        ({"provider": "openai_compatible", "model": "m", "base_url": "https://user:pw@host/v1"},
         "must not contain credentials"),
    ],
)
def test_bad_settings_are_one_clear_line(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_llm_settings("agent7", table)
    text = str(info.value)
    assert text.startswith("agent agent7: [agents.llm]")
    assert message in text
    assert "\n" not in text


def test_a_key_pasted_into_api_key_env_is_refused_without_echoing_it() -> None:
    pasted = "sk-3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6"
    with pytest.raises(ConfigError) as info:
        parse_llm_settings("deepseek", {"provider": "deepseek", "model": "deepseek-chat", "api_key_env": pasted})
    assert "NAME of an environment variable" in str(info.value)
    assert pasted not in str(info.value)


def test_missing_key_names_the_agent_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    s = parse_llm_settings("deepseek", {"provider": "deepseek", "model": "deepseek-chat"})
    with pytest.raises(ConfigError) as info:
        require_api_key(s)
    assert str(info.value) == "agent deepseek: DEEPSEEK_API_KEY is not set; export it where the workers run (a replay can use the agent's offline_fallback with --offline-planners)"
    monkeypatch.setenv("DEEPSEEK_API_KEY", "  ")
    with pytest.raises(ConfigError):
        require_api_key(s)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-real")
    assert require_api_key(s) == "sk-real"


def test_settings_hold_the_variable_name_not_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-should-not-be-here-123456")
    s = parse_llm_settings("deepseek", {"provider": "deepseek", "model": "deepseek-chat"})
    assert "sk-should-not-be-here" not in repr(s)


def test_packaged_config_agents_parse(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("OKXLAB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./okxlab.toml: the packaged default is read
    config = load_config()
    llm_agents = [a for a in config.agents if a.planner == "llm"]
    assert llm_agents
    prices = parse_prices(config.llm.get("prices"))
    for agent in llm_agents:
        settings = parse_llm_settings(agent.name, agent.llm)
        assert settings.provider in PROVIDERS
        assert settings.label in prices  # every packaged LLM agent's calls get a cost estimate
    assert prices["deepseek/deepseek-flash"] == Price(0.30, 1.20)


def test_prices_and_cost() -> None:
    prices = parse_prices({"deepseek/deepseek-chat": {"input": 0.27, "output": 1.10}})
    assert estimate_cost(prices, "deepseek/deepseek-chat", 1_000_000, 500_000) == pytest.approx(0.82)
    assert estimate_cost(prices, "deepseek/deepseek-chat", 1200, 300) == pytest.approx(0.000654)
    assert estimate_cost(prices, "qwen/qwen-plus", 1200, 300) is None  # not in the table
    assert estimate_cost(prices, "deepseek/deepseek-chat", None, 300) is None  # usage unknown
    for bad in ({"x": {"input": 1, "output": 1}}, {"a/b": {"input": 1}}, {"a/b": {"input": -1, "output": 1}},
                {"a/b": {"input": True, "output": 1}}):
        with pytest.raises(ConfigError, match=r"\[llm.prices\]"):
            parse_prices(bad)
