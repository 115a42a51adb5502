"""Manual control through the same order path, and OKX's environment-mismatch error in plain words."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import ccxt
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from okxlab.cli.main import main
from okxlab.config import load_config
from okxlab.db import models as m
from okxlab.errors import ConfigError
from okxlab.execution.exchange import Venue, explain_auth_error
from okxlab.execution.reconcile import reconcile
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CONFIG = """
[[agents]]
name = "buyhold"
planner = "strategy"
strategy = "builtin:buy_and_hold"
symbols = ["BTC-USDT-SWAP"]
"""


def test_flatten_closes_everything_through_okxlab_orders(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        result = p.replay(["buyhold"], datetime(2022, 11, 1, tzinfo=UTC), datetime(2022, 11, 1, 4, tzinfo=UTC))
        book = f"replay:{result.replay_id}"
        out = CliRunner().invoke(main, ["agents", "flatten", "buyhold", "--book", book, "--yes"],
                                 env={"OKXLAB_DATABASE_URL": p.db_url}, catch_exceptions=False)
        assert out.exit_code == 0, out.output + out.stderr
        assert "1 position(s) closed" in out.output
        with p.env.sessions() as s:
            trip = s.scalars(select(m.PositionRecord).where(m.PositionRecord.book == book)).one()
            flatten = s.scalars(select(m.Order).where(m.Order.purpose == "flatten")).one()
            events = [e.kind for e in s.scalars(select(m.AuditEvent).where(m.AuditEvent.agent == "buyhold"))]
        assert trip.status == "closed" and trip.exit_reason == "manual"
        assert flatten.reduce_only and flatten.state == "filled" and flatten.tag == "c314b0aecb5bBCDE"
        assert "agent.flatten" in events
        check = reconcile(p.env, p.config.agent("buyhold"), book)
        assert check.ok and check.exchange["positions"] == [], check.differences
        # the equity `agents list` shows is the account's after the close, not the one before it
        listed = CliRunner().invoke(main, ["agents", "list", "--book", book, "--json"],
                                    env={"OKXLAB_DATABASE_URL": p.db_url}, catch_exceptions=False)
        row = next(r for r in json.loads(listed.stdout) if r["name"] == "buyhold")
        assert row["equity"] == pytest.approx(check.exchange["equity"], abs=0.01)
        with p.env.sessions() as s:
            last = s.scalars(select(m.EquitySnapshot).where(m.EquitySnapshot.book == book)
                             .order_by(m.EquitySnapshot.ts.desc(), m.EquitySnapshot.id.desc())).first()
        assert last.run_id is None and last.positions == []


def test_a_demo_key_against_live_is_explained(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        creds = p.config.agent("buyhold").credentials("sim")
        live_style = ccxt.okx({"apiKey": creds.api_key, "secret": creds.secret, "password": creds.passphrase})
        live_style.urls["api"] = {"rest": p.sim.url}  # no sandbox mode: no x-simulated-trading header
        with pytest.raises(ccxt.AuthenticationError) as raised:
            live_style.fetch_balance()
        assert "50101" in str(raised.value)
    message = str(explain_auth_error(raised.value, load_config().agent("trend"), Venue("live", None)))
    assert "demo-trading key must be used with OKX_MODE=demo" in message
    assert isinstance(explain_auth_error(raised.value, load_config().agent("trend"), Venue("live", None)), ConfigError)
