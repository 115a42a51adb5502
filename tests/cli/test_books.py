"""Books are kept apart: a switch names a book that exists, and positions are valued at their own book's price."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from okxlab.bootstrap import prepare
from okxlab.cli.main import main
from okxlab.config import load_config
from okxlab.db.models import RiskStateRecord
from okxlab.db.session import session_scope
from okxlab.service.agents import detail
from okxlab.service.risk import exposure_rows
from tests.review.builders import Ledger, at


@pytest.fixture
def two_books(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """trend holds 1 BTC contract in demo (last price 100,000) while a replay of 2022 saw 20,000 later on."""
    prepare(load_config(), sqlite_url)
    monkeypatch.setenv("OKXLAB_DATABASE_URL", sqlite_url)
    with session_scope(sqlite_url) as s:
        demo, replay = Ledger(s, "demo"), Ledger(s, "replay:1")
        demo.run("trend", at(0), equity=10_000.0, btc=100_000.0)
        demo.position("trend", at(0), None, pnl=0.0, fees=0.0, reason=None, entry=99_000.0)
        replay.run("trend", at(4), equity=10_000.0, btc=20_000.0)  # the newest snapshot of BTC, in another book
    return sqlite_url


def test_positions_are_valued_at_their_own_book_s_price(two_books: str) -> None:
    with session_scope(two_books) as s:
        (row,) = exposure_rows(s)
        position = detail(s, load_config(), "trend")["positions"][0]
    assert row["book"] == "demo" and row["long"] == pytest.approx(1.0 * 0.01 * 100_000.0)
    assert position["mark"] == 100_000.0 and position["unrealized_pnl"] == pytest.approx(0.01 * 1_000.0)


def test_a_halt_in_a_book_that_does_not_exist_is_refused(two_books: str) -> None:
    result = CliRunner().invoke(main, ["agents", "halt", "trend", "--reason", "x", "--book", "Demo"])
    assert result.exit_code == 2 and result.stderr.startswith("okxlab: error: no book 'Demo'")
    with session_scope(two_books) as s:
        assert s.scalar(select(func.count()).select_from(RiskStateRecord)) == 0  # nothing written
    ok = CliRunner().invoke(main, ["agents", "halt", "trend", "--reason", "x", "--book", "replay:1"])
    assert ok.exit_code == 0, ok.output
    listed = json.loads(CliRunner().invoke(main, ["agents", "list", "--book", "replay:1", "--json"]).stdout)
    assert next(r for r in listed if r["name"] == "trend")["trading_state"] == "HALTED"
