"""Two operators adding the same schedule at once: one gets it, the other a conflict, never an internal error."""

from __future__ import annotations

import threading

from okxlab.bootstrap import prepare
from okxlab.config import load_config
from okxlab.db.session import session_factory
from okxlab.service import schedules
from okxlab.service.risk import Conflict


def test_concurrent_adds_of_one_name_make_one_schedule(pg_url: str) -> None:
    cfg = load_config()
    prepare(cfg, pg_url, seed=False)
    sessions = session_factory(pg_url)
    parsed = schedules.parse("1h", None)
    for round_ in range(5):
        gate, outcomes = threading.Barrier(6), []

        def add(name: str = f"race-{round_}", gate: threading.Barrier = gate, outcomes: list = outcomes) -> None:
            gate.wait()
            try:
                schedules.add(sessions, cfg, name, parsed, None, actor="test")
                outcomes.append("added")
            except Conflict:
                outcomes.append("conflict")
            except Exception as exc:  # an IntegrityError escaping is the bug
                outcomes.append(type(exc).__name__)

        threads = [threading.Thread(target=add) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["added"] + ["conflict"] * 5, outcomes
