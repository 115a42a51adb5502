"""What a stage decided, apart from how it is written.

Every stage's logic is a pure *decide* step: plain inputs in, a `StageOutcome` out — the rows to write, a short
output for `runs show`, and whether the run ends here. Two executors write decisions: the Celery pipeline
adds the rows to the stage's transaction (`SessionSink`, okxlab/pipeline), and the in-process replays hand
them to the bulk writer (okxlab/replay). An outcome is written once and identically by both, so what a replay
tests is what the pipeline trades.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from okxlab.db.models import AuditEvent, Base, utcnow

Row = tuple[type[Base], dict[str, Any]]


@dataclass
class StageOutcome:
    rows: list[Row] = field(default_factory=list)
    output: dict[str, Any] = field(default_factory=dict)  # a short summary for `runs show`
    end: tuple[str, str] | None = None  # (run status, reason) when the run ends here

    def add(self, model: type[Base], row: dict[str, Any]) -> dict[str, Any]:
        self.rows.append((model, row))
        return row

    def audit(self, kind: str, message: str, *, agent: str | None, run_id: str | None, data: dict[str, Any],
              actor: str = "system", ts: datetime | None = None) -> None:
        self.rows.append((AuditEvent, audit_row(kind, message, agent=agent, run_id=run_id, data=data, actor=actor,
                                                ts=ts)))

    def extend(self, other: StageOutcome) -> StageOutcome:
        self.rows += other.rows
        return self


def audit_row(kind: str, message: str, *, agent: str | None, run_id: str | None, data: dict[str, Any],
              actor: str = "system", ts: datetime | None = None) -> dict[str, Any]:
    return {"ts": ts or utcnow(), "kind": kind, "agent": agent, "run_id": run_id, "actor": actor, "message": message,
            "data": data}


class Sink(Protocol):
    """Where a decision's rows go."""

    def write(self, outcome: StageOutcome) -> None: ...
