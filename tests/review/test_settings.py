"""The [review] table: defaults, overrides, and one clear line for each mistake."""

from __future__ import annotations

import pytest

from okxlab.config import load_config, parse_config
from okxlab.db.session import session_scope
from okxlab.errors import ConfigError
from okxlab.review.leaderboard import build_leaderboard
from okxlab.review.report import day_window
from okxlab.review.settings import ReviewSettings
from tests.review.builders import DAY, build_day

AGENT = '[[agents]]\nname = "a"\nplanner = "strategy"\nstrategy = "builtin:cash"\nsymbols = ["BTC-USDT-SWAP"]\n'


def test_defaults_from_the_packaged_config() -> None:
    assert ReviewSettings.from_config(load_config()) == ReviewSettings()


def test_overrides() -> None:
    config = parse_config('[review]\nbenchmark = "ETH-USDT-SWAP"\nbootstrap_samples = 500\nchart_width = 12\n'
                          'min_periods = 5\n' + AGENT, "t.toml")
    s = ReviewSettings.from_config(config)
    assert (s.benchmark, s.bootstrap_samples, s.chart_width, s.min_periods) == ("ETH-USDT-SWAP", 500, 12.0, 5)


@pytest.mark.parametrize(("table", "needle"), [
    ("colour = 'red'", "unknown key(s) colour"),
    ("bootstrap_samples = 2000.5", "bootstrap_samples must be a whole number"),
    ("confidence = 'high'", "confidence must be a number, not 'high'"),
    ("confidence = 1.5", "confidence must be between"),
    ("seed = true", "seed must be a whole number, not True"),
    ("benchmark = 3", "benchmark must be a string"),
    ("chart_dpi = 5000", "chart_dpi"),
    ("min_periods = 1", "min_periods"),
])
def test_mistakes_are_named(table: str, needle: str) -> None:
    # Refused when the file is read, not first when a report is built.
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")) as failure:
        parse_config(f"[review]\n{table}\n" + AGENT, "t.toml")
    assert str(failure.value).startswith("t.toml: [review]")


def test_benchmark_setting_drives_the_baseline(sqlite_db: str) -> None:
    with session_scope(sqlite_db) as s:
        build_day(s)
    with session_scope(sqlite_db) as s:
        board = build_leaderboard(s, "sim", day_window(DAY), ReviewSettings(benchmark="ETH-USDT-SWAP"))
    assert board.buy_and_hold.total_return is None and "ETH-USDT-SWAP" in (board.buy_and_hold.note or "")
