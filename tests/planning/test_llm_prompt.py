"""The prompt: deterministic, versioned, with byte-identical market sections for agents at the same tick."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from okxlab.domain import Position
from okxlab.planning.prompt import (
    EXAMPLE_PLAN,
    PROMPT_VERSION,
    SERIES_BARS,
    build_prompt,
    fmt,
    fmt_time,
    market_section,
    render_messages,
)
from okxlab.planning.schema import validate_plan
from okxlab.risk.limits import RiskLimits
from tests.planning.plan_data import AS_OF, MARKETS, SYMBOLS, make_account, make_ctx, make_market


def test_same_context_same_bytes_and_hash() -> None:
    a, b = build_prompt(make_ctx()), build_prompt(make_ctx())
    assert a.text == b.text
    assert a.sha256 == b.sha256 == hashlib.sha256(a.text.encode()).hexdigest()
    assert a.version == PROMPT_VERSION and PROMPT_VERSION in a.system


def test_hash_covers_exactly_the_messages_sent() -> None:
    p = build_prompt(make_ctx())
    assert p.messages == [{"role": "system", "content": p.system}, {"role": "user", "content": p.user}]
    assert p.text == render_messages(p.messages)
    other = build_prompt(make_ctx(account=make_account(9_999.0)))
    assert other.sha256 != p.sha256


def test_two_agents_at_the_same_tick_get_byte_identical_market_sections() -> None:
    position = Position("BTC-USDT-SWAP", "short", 2.0, 61_000.0, 59_600.0, 28.0, 5.0, 0.01, 62_000.0, 57_000.0)
    one = build_prompt(make_ctx("deepseek", account=make_account(10_000.0)))
    two = build_prompt(make_ctx("qwen", account=make_account(8_765.4321, (position,)),
                                limits=RiskLimits(max_leverage=3, blocklist=("ETH-USDT-SWAP",)),
                                symbols=tuple(reversed(SYMBOLS))))
    assert one.market.encode() == two.market.encode()
    assert one.market in one.user and two.market in two.user
    assert one.user != two.user  # the accounts and limits do differ
    # Markets rebuilt from the same data (new objects, same values) give the same bytes.
    rebuilt = {s: make_market(s) for s in SYMBOLS}
    assert market_section(rebuilt, SYMBOLS) == one.market


def test_market_section_depends_on_market_data_only() -> None:
    section = market_section(MARKETS, SYMBOLS)
    for agent_specific in ("equity", "position", "max_leverage", "deepseek", "tester"):
        assert agent_specific not in section
    moved = {**MARKETS, "BTC-USDT-SWAP": replace(MARKETS["BTC-USDT-SWAP"], last=1.0)}
    assert market_section(moved, SYMBOLS) != section


def test_sections_in_order() -> None:
    user = build_prompt(make_ctx()).user
    heads = ["## Run", "## Account", "## Risk limits", "## Market", "### BTC-USDT-SWAP", "### ETH-USDT-SWAP", "## Task"]
    positions = [user.index(h) for h in heads]
    assert positions == sorted(positions)


def test_account_section_lists_what_the_agent_holds() -> None:
    position = Position("ETH-USDT-SWAP", "long", 3.0, 2900.0, 2985.0, 25.5, 4.0, 0.1, 2850.0, 3200.0)
    user = build_prompt(make_ctx(account=make_account(10_250.0, (position,)))).user
    assert "equity_usdt: 10250" in user
    assert "return_pct: 2.5" in user
    assert "invocation: 12" in user and "minutes_since_start: 2880" in user
    assert ("- ETH-USDT-SWAP long: contracts=3 ct_val=0.1 entry=2900 mark=2985 notional_usdt=895.5 "
            "unrealized_pnl_usdt=25.5 leverage=4 stop_loss=2850 take_profit=3200") in user
    assert "positions: none" in build_prompt(make_ctx()).user


def test_risk_limits_are_all_in_the_prompt() -> None:
    limits = RiskLimits(max_leverage=5, blocklist=("DOGE-USDT-SWAP",))
    user = build_prompt(make_ctx(limits=limits)).user
    for key in limits.to_json():
        assert f"\n{key}: " in user
    assert "max_leverage: 5 " in user
    assert "blocklist: DOGE-USDT-SWAP " in user
    assert "risk_budget_usdt: 100 " in user


def test_series_is_oldest_first_and_bounded() -> None:
    market = MARKETS["BTC-USDT-SWAP"]
    shuffled = {**MARKETS, "BTC-USDT-SWAP": replace(market, candles=tuple(reversed(market.candles)))}
    section = market_section(shuffled, ["BTC-USDT-SWAP"])
    rows = [line for line in section.splitlines() if line[:4].isdigit()]
    assert len(rows) == SERIES_BARS
    times = [row.split(",")[0] for row in rows]
    assert times == sorted(times)
    assert times[-1] == fmt_time(market.candles[-1][0])
    assert rows[-1].split(",")[4] == fmt(market.candles[-1][4])
    assert f"recent {SERIES_BARS} closed 4H bars, oldest first" in section


def test_missing_market_data_is_said_not_skipped() -> None:
    section = market_section({"BTC-USDT-SWAP": MARKETS["BTC-USDT-SWAP"]}, SYMBOLS)
    assert "### ETH-USDT-SWAP\nno market data this run" in section


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"), (-0.0, "0"), (1.0, "1"), (60123.4, "60123.4"), (0.1 + 0.2, "0.3"), (1e-05, "0.00001"),
        (0.000012345678912, "0.000012345679"), (123456789.123, "123456790"), (-2.5, "-2.5"), (2, "2"),
        (None, "n/a"), (float("nan"), "n/a"), (float("inf"), "n/a"), (True, "n/a"), (56.123456789, "56.123457"),
    ],
)
def test_canonical_numbers(value: float | None, text: str) -> None:
    assert fmt(value) == text


def test_times_are_utc() -> None:
    assert fmt_time(AS_OF) == "2024-05-01T08:00Z"
    assert fmt_time(datetime(2024, 5, 1, 8, 0, 30)) == "2024-05-01T08:00:30Z"  # naive = UTC
    assert fmt_time(int(AS_OF.timestamp() * 1000)) == "2024-05-01T08:00Z"
    assert fmt_time(datetime(2024, 5, 1, 10, 0, tzinfo=UTC).astimezone()) == "2024-05-01T10:00Z"


def test_output_format_example_is_a_valid_plan_and_says_json() -> None:
    prompt = build_prompt(make_ctx())
    assert validate_plan(EXAMPLE_PLAN, list(SYMBOLS)) == []
    assert json.dumps(EXAMPLE_PLAN, separators=(", ", ": ")) in prompt.system
    # DeepSeek's and DashScope's JSON modes refuse prompts that do not mention JSON.
    assert "json" in prompt.system.lower()
    assert "symbols: BTC-USDT-SWAP, ETH-USDT-SWAP" in prompt.user
