"""Point in time: a replay with the future removed from the data decides exactly what it decides with it."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from okxlab.db import models as m
from tests.conftest import REDIS_URL
from tests.support.pipeline import running_pipeline

CANDLES = Path(__file__).resolve().parents[2] / "okxlab" / "data" / "candles"
START = datetime(2022, 11, 6, tzinfo=UTC)
END = START + timedelta(days=3)
CONFIG = """
[pipeline]
candles = 120

[[agents]]
name = "trend"
planner = "strategy"
strategy = "builtin:ema_trend"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]

[[agents]]
name = "meanrev"
planner = "strategy"
strategy = "builtin:rsi_bollinger"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]

[[agents]]
name = "macd"
planner = "strategy"
strategy = "builtin:macd_trend"
symbols = ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]
"""


def _truncated(tmp_path: Path, name: str, last_open: datetime) -> str:
    """A shipped candle file without any bar that opens after `last_open`."""
    lines = gzip.open(CANDLES / name, "rt").read().splitlines()
    cutoff = int(last_open.timestamp() * 1000)
    kept = [lines[0]] + [row for row in lines[1:] if int(row.split(",")[0]) <= cutoff]
    out = tmp_path / name.removesuffix(".gz")
    out.write_text("\n".join(kept) + "\n")
    return str(out)


def _decisions(p, replay_id: int) -> list[tuple]:  # noqa: ANN001
    with p.env.sessions() as s:
        runs = {r.id: (r.agent, r.scheduled_for) for r in s.scalars(select(m.Run).where(m.Run.replay_id == replay_id))}
        out = []
        for v in s.scalars(select(m.PlanValidation).where(m.PlanValidation.run_id.in_(runs))):
            out.append(("plan", *runs[v.run_id], repr(v.plan)))
        for v in s.scalars(select(m.RiskVerdictRecord).where(m.RiskVerdictRecord.run_id.in_(runs))):
            out.append(("verdict", *runs[v.run_id], v.idx, v.outcome, tuple(v.reasons), repr(v.order)))
        for f in s.scalars(select(m.Fill).where(m.Fill.book == f"replay:{replay_id}")):
            out.append(("fill", f.agent, f.ts, f.symbol, f.side, f.contracts, f.price, f.fee))
    return sorted(out, key=repr)


def test_removing_the_data_after_the_window_changes_no_decision(pg_url: str, redis_prefix: str, tmp_path: Path) -> None:
    agents = ["trend", "meanrev", "macd"]
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG) as p:
        full = p.replay(agents, START, END)
        with_future = _decisions(p, full.replay_id)
    cut = (_truncated(tmp_path, "BTC-USDT-SWAP_4H.csv.gz", END), _truncated(tmp_path, "ETH-USDT-SWAP_5m.csv.gz", END))
    with running_pipeline(pg_url, REDIS_URL, redis_prefix, tmp_path, CONFIG, data_paths=cut) as p:
        blind = p.replay(agents, START, END)
        without_future = _decisions(p, blind.replay_id)
    assert full.statuses == blind.statuses and sum(full.statuses.values()) == 3 * 19
    assert any(d[0] == "fill" for d in with_future), "nothing traded: the comparison would prove little"
    assert with_future == without_future
