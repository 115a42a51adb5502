"""What a stage's steps receive and are made of (the runner, okxlab/pipeline/stages.py, drives them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from okxlab.db.models import Run
from okxlab.outcome import StageOutcome

if TYPE_CHECKING:
    from okxlab.pipeline.env import StageEnv


@dataclass
class StageContext:
    session: Session  # the stage's transaction: rows added here commit with the stage record
    run: Run
    env: StageEnv
    gathered: Any = None  # what the stage's gather step returned

    @property
    def agent(self):  # noqa: ANN201 - AgentConfig; imported lazily to keep this module light
        return self.env.config.agent(self.run.agent)


@dataclass(frozen=True)
class Stage:
    name: str
    record: Callable[[StageContext], StageOutcome]  # decides; the runner writes its rows
    gather: Callable[[StageEnv, Run], Any] | None = None  # runs outside any transaction; `run` is detached
