"""The fixed beat entries. Agent schedules are not here: they live in the schedules table, edited at runtime
with `okxlab schedules ...`, and read by the dispatch entry every few seconds.

Every entry has `expires`, so messages beat sent while no worker was listening are dropped, not piled up.
"""

from __future__ import annotations

from pathlib import Path

from celery.beat import PersistentScheduler
from celery.schedules import crontab

from okxlab.settings import current as settings


def beat_schedule() -> dict:
    hour, minute = settings().report_hour_minute  # OKXLAB_REPORT_TIME, checked by okxlab.settings
    return {
        "dispatch-due-runs": {"task": "okxlab.dispatch", "schedule": 10.0, "options": {"expires": 9}},
        "reconcile-stuck-runs": {"task": "okxlab.reconcile_runs", "schedule": 60.0, "options": {"expires": 55}},
        "nightly-report": {"task": "okxlab.nightly_report", "schedule": crontab(minute=minute, hour=hour),
                           "options": {"expires": 3600}},
        "daily-ledger-reconcile": {"task": "okxlab.reconcile_ledgers", "schedule": crontab(minute=15, hour=0),
                                   "options": {"expires": 3600}},
    }


class HomeScheduler(PersistentScheduler):
    """Celery's persistent scheduler, keeping its state file under OKXLAB_HOME (celeryconfig names it) rather
    than in whatever directory beat was started from; the directory is made on first start."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
