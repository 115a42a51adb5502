"""The config file is checked by type when it is read: every mistake is one line naming the file, the key and
what is wrong, and a file that loads is one every run can use. The settings read from the environment next to
it (the simulator's URL, the broker tag, the live switch) are checked where they are read."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

from okxlab.config import live_trading_enabled, load_config, parse_config
from okxlab.config_schema import AGENT_NAME
from okxlab.errors import ConfigError

AGENT = '[[agents]]\nname = "a"\nplanner = "strategy"\nstrategy = "builtin:buy_and_hold"\nsymbols = ["BTC-USDT-SWAP"]\n'
README = Path(__file__).resolve().parents[2] / "README.md"


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as failure:
        parse_config(text, "okxlab.toml")
    message = str(failure.value)
    assert "\n" not in message and message.startswith("okxlab.toml")
    return message


def test_the_message_names_file_key_and_problem() -> None:
    assert refused('[pipeline]\ncandles = "lots"\n' + AGENT) == \
        "okxlab.toml: pipeline.candles must be a whole number between 20 and 300, not 'lots'"


@pytest.mark.parametrize(("text", "needle"), [
    # The six that used to load, pass the worker's start check, and then fail every run:
    ('[pipeline]\ncandles = "lots"\n' + AGENT, "pipeline.candles must be a whole number between 20 and 300, not 'lots'"),
    ("[exchange]\nbroker_tag = 123\n" + AGENT, "exchange.broker_tag must be 1-16 ASCII letters and digits"),
    (AGENT + "initial_equity = inf\n", "agents[0] (a): initial_equity must be a positive number of USDT (at most 1e12), not inf"),
    ("[pipeline]\nquality = 5\n" + AGENT, "pipeline.quality must be a table of data-quality thresholds, not 5"),
    (AGENT.replace('"a"', '"трейдер"'), "agents[0] (трейдер): name must be 1-40 ASCII letters, digits, '-' or '_', "
                                        "starting with a letter, not 'трейдер'"),
    (AGENT.replace('"a"', '"zoë"'), "name must be 1-40 ASCII letters"),
    # ... and the ones that printed a traceback:
    (AGENT + 'params = "x"\n', "agents[0] (a): params must be a table of the strategy's parameters"),
    (AGENT + "llm = 5\n", "agents[0] (a): llm must be a table ([agents.llm]: provider, model, api_key_env), not 5"),
    # Every other kind of key, typed:
    ("[pipeline]\ncandles = 301\n" + AGENT, "pipeline.candles must be a whole number between 20 and 300, not 301"),
    ("[pipeline]\ncandles = 100.0\n" + AGENT, "pipeline.candles must be a whole number"),
    ("[pipeline]\ncandles = 30\n" + AGENT, "pipeline.candles (30) is fewer than pipeline.quality.min_candles (50)"),
    ("[pipeline.quality]\nmin_candles = \"5\"\n" + AGENT, "pipeline.quality.min_candles must be a whole number"),
    ("[pipeline.quality]\njump_pct = -1\n" + AGENT, "pipeline.quality.jump_pct must be a number, 0 or more, not -1"),
    ("[pipeline.quality]\nmin_candle = 5\n" + AGENT, "pipeline.quality has unknown key(s) min_candle (known: min_candles"),
    ("[exchange]\nsim_url = \"file:///tmp/x\"\n" + AGENT, "exchange.sim_url must be an http(s)://host[:port] URL"),
    ("[exchange]\nmode = true\n" + AGENT, "exchange.mode must be one of sim, demo, live, not true"),
    ("exchange = 3\n" + AGENT, "exchange must be a table ([exchange]), not 3"),
    ("[llm]\ncolour = 1\n" + AGENT, "llm has unknown key(s) colour (known: prices)"),
    (AGENT.replace('["BTC-USDT-SWAP"]', "[]"), "symbols must be a non-empty list"),
    (AGENT.replace('["BTC-USDT-SWAP"]', '["BTC-USDT-SWAP", 5]'), "symbols must be a non-empty list of OKX instrument ids"),
    (AGENT.replace('["BTC-USDT-SWAP"]', '["BTC-USDT"]'), "symbols: 'BTC-USDT' is not a USDT-margined perpetual swap"),
    (AGENT.replace('["BTC-USDT-SWAP"]', '["BTC-USDT-SWAP\\n"]'), "symbols: 'BTC-USDT-SWAP\\n' is not a USDT-margined"),
    (AGENT + 'bar = "4h"\n', "bar must be an OKX bar (1m, 3m, 5m, 15m, 30m, 1H, 2H, 4H, 6H, 12H, 1D), not '4h'"),
    (AGENT + "description = 5\n", "description must be a string, not 5"),
    (AGENT.replace('"builtin:buy_and_hold"', "5"), "strategy must be \"builtin:NAME\" or the path of a strategy file, not 5"),
    (AGENT + "offline_fallback = false\n", "offline_fallback must be"),
    (AGENT + 'mode = "paper"\n', "agents[0] (a): mode must be one of sim, demo, live, not 'paper'"),
    (AGENT + "initial_equity = 0\n", "initial_equity must be a positive number of USDT (at most 1e12), not 0"),
    (AGENT + 'initial_equity = "10000"\n', "initial_equity must be a positive number of USDT (at most 1e12), not '10000'"),
    (AGENT + "initial_equity = true\n", "initial_equity must be a positive number of USDT (at most 1e12), not true"),
    (AGENT + "initial_equity = 1e13\n", "initial_equity must be a positive number of USDT (at most 1e12), not 10000000000000.0"),
    (AGENT + "[agents.params]\nsince = 2024-01-01\n", "params: a TOML date or time is not a value okxlab reads"),
    (AGENT + "[agents.okx]\nkey_env = \"K\"\n", "agents[0] (a): okx has unknown key(s) key_env"),
    (AGENT + "[agents.risk]\nmax_leverage = \"x\"\n", "agents[0] (a): risk.max_leverage must be a finite number"),
    (AGENT.replace('planner = "strategy"\n', ""), "agents[0] (a): planner is missing; it must be one of llm, strategy"),
    (AGENT.replace('strategy = "builtin:buy_and_hold"\n', ""), "a strategy agent needs strategy = "),
    ("[exchange]\nmode = 'sim'\n", "okxlab.toml: declare at least one [[agents]] entry"),
    ("[agents]\nname = 'a'\n", "agents must be a list of [[agents]] tables, at least one, not a table"),
    ("[exchnage]\nmode = 'sim'\n" + AGENT, "unknown section(s) exchnage (known: exchange, pipeline, risk, llm, review, "
                                          "agents)"),
    (AGENT + AGENT, "agent name(s) declared twice: a"),
    ("[review]\nseed = 1.5\n" + AGENT, "[review] seed must be a whole number"),
    ('[llm.prices]\n"deepseek/x" = 3\n' + AGENT, "[llm.prices] 'deepseek/x' must be"),
])
def test_each_mistake_is_one_line(text: str, needle: str) -> None:
    assert needle in refused(text)


def test_a_quoted_key_with_a_newline_stays_on_one_line() -> None:
    assert "unknown key(s) 'lev\\nrage'" in refused(AGENT + '"lev\\nrage" = 1\n')


def test_a_key_holding_a_secret_is_never_echoed() -> None:
    # A common mistake is pasting the key itself where its variable's name belongs.
    message = refused(AGENT + "[agents.okx]\napi_key_env = \"sk-live 0123456789abcdef\"\n")
    assert "okx.api_key_env must be the NAME of an environment variable" in message
    assert "0123456789abcdef" not in message


def test_several_mistakes_share_the_line() -> None:
    message = refused(AGENT + 'bar = "4h"\ndescription = 5\ninitial_equity = "x"\nmode = "x"\nlevrage = 1\n')
    assert message.count("agents[0] (a): ") == 3 and message.endswith("(and 2 more)")


@pytest.mark.parametrize("name", ["a", "Trend_2", "mean-rev", "x" * 40, "DeepSeek"])
def test_agent_names_okx_accepts(name: str) -> None:
    assert parse_config(AGENT.replace('"a"', f'"{name}"'), "t.toml").agents[0].name == name


@pytest.mark.parametrize("name", ["трейдер", "zoë", "1abc", "_x", "-x", "a b", "a.b", "x" * 41, "", "a\n"])
def test_agent_names_okx_refuses(name: str) -> None:
    assert AGENT_NAME.fullmatch(name) is None
    escaped = name.replace("\n", "\\n")
    assert "name must be 1-40 ASCII letters" in refused(AGENT.replace('"a"', f'"{escaped}"'))


def test_a_valid_config_keeps_its_values() -> None:
    config = parse_config(
        '[exchange]\nmode = "demo"\nsim_url = "http://sim.local:9000/"\nbroker_tag = "abc123"\n'
        '[pipeline]\ncandles = 60\n[pipeline.quality]\nmin_candles = 40\nmax_lateness_s = 30\njump_pct = 15.5\n'
        '[risk]\nmax_leverage = 5\n[llm.prices]\n"deepseek/deepseek-flash" = { input = 0.3, output = 1.2 }\n'
        '[review]\nbootstrap_samples = 500\n'
        + AGENT + 'description = "d"\nbar = "1H"\nmode = "sim"\ninitial_equity = 5000\n'
        '[agents.params]\nfast = 9\nlabel = "x"\n[agents.okx]\napi_key_env = "OKX_A_KEY"\n'
        '[agents.risk]\nmax_leverage = 2\n', "t.toml")
    (agent,) = config.agents
    assert (agent.bar, agent.mode, agent.description, agent.initial_equity) == ("1H", "sim", "d", 5000.0)
    assert agent.params == {"fast": 9, "label": "x"} and agent.okx == {"api_key_env": "OKX_A_KEY"}
    assert agent.limits.max_leverage == 2
    assert config.candles_per_symbol == 60 and config.pipeline["quality"]["jump_pct"] == 15.5
    assert config.exchange_mode() == "demo" and config.broker_tag == "abc123"


def test_the_packaged_default_and_the_readme_example_load() -> None:
    assert load_config().agent_names == ("deepseek", "qwen", "trend", "meanrev", "buyhold", "cash")
    parse_config(resources.files("okxlab.data").joinpath("okxlab.default.toml").read_text(), "default")
    (example,) = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert parse_config(example, "README.md").agent_names == ("deepseek", "trend")


def test_a_binary_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "okxlab.toml"
    path.write_bytes(b"\xff\xfe[[agents]]\n")
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xff at offset 0\)"):
        load_config(str(path))


# ---- settings from the environment ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "https://sim.example:443/", "http://[::1]:8765"])
def test_simulator_urls_okxlab_accepts(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_SIM_URL", url)
    assert load_config().sim_url == url.rstrip("/")


@pytest.mark.parametrize("url", ["garbage", "file:///etc/passwd", "ftp://h", "http://", "http://h:99999",
                                 "http://h:port", "http://h/w/3", "http://h?x=1", " http://h"])
def test_simulator_urls_okxlab_refuses(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_SIM_URL", url)
    with pytest.raises(ConfigError, match=re.escape(f"OKXLAB_SIM_URL={url!r} must be the simulator's "
                                                    "http(s)://host[:port] URL")):
        load_config().sim_url  # noqa: B018


def test_a_simulator_url_with_credentials_is_refused_without_echoing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKXLAB_SIM_URL", "http://user:hunter2@127.0.0.1:8765")
    with pytest.raises(ConfigError) as failure:
        load_config().sim_url  # noqa: B018
    assert "hunter2" not in str(failure.value) and "'http://user:***@127.0.0.1:8765'" in str(failure.value)


def test_broker_tag_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OKX_BROKER_TAG", "Abc123")
    assert load_config().broker_tag == "Abc123"
    monkeypatch.setenv("OKX_BROKER_TAG", "zoë")  # str.isalnum() says yes; OKX says no
    with pytest.raises(ConfigError, match="OKX_BROKER_TAG='zoë' must be 1-16 ASCII letters and digits"):
        load_config().broker_tag  # noqa: B018


@pytest.mark.parametrize(("value", "enabled"), [(None, False), ("", False), ("false", False), ("true", True)])
def test_the_live_switch_reads_exactly_true_or_false(value: str | None, enabled: bool,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if value is not None:
        monkeypatch.setenv("LIVE_TRADING_ENABLED", value)
    assert live_trading_enabled() is enabled


@pytest.mark.parametrize("value", ["TRUE", "True", " true ", "true\n", "1", "yes", "on", "False", "no"])
def test_any_other_live_switch_value_is_refused_never_taken_as_on(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVE_TRADING_ENABLED", value)
    with pytest.raises(ConfigError, match=re.escape(f"LIVE_TRADING_ENABLED={value!r} must be exactly 'true' or 'false'")):
        live_trading_enabled()
