"""Review reports: which days are built, one day's report as HTML, text or JSON, and building/sending one."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from okxlab.config import Config
from okxlab.db.models import Report
from okxlab.errors import NotFound, UserError
from okxlab.review.report import ReportOutcome, deliver
from okxlab.review.settings import ReviewSettings

FORMATS = {"html": "report.html", "text": "report.txt", "json": "report.json"}


def _row(r: Report) -> dict[str, Any]:
    return {"day": r.day, "built_at": r.built_at, "sent_at": r.sent_at, "recipients": list(r.recipients or []),
            "send_count": r.send_count}


def list_reports(s: Session, *, recipients: bool = True) -> list[dict[str, Any]]:
    """The reports built, newest first; `recipients=False` leaves out the email addresses (public readers)."""
    rows = [_row(r) for r in s.scalars(select(Report).order_by(Report.day.desc()))]
    if not recipients:
        for row in rows:
            row.pop("recipients")
    return rows


def read_report(s: Session, day: date, fmt: str) -> str | dict[str, Any]:
    """The built report of `day` in `fmt` (json is parsed). Paths come from the reports table, never the caller."""
    if fmt not in FORMATS:
        raise UserError(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
    row = s.get(Report, day)
    if row is None:
        raise NotFound(f"no report built for {day}; build one with `okxlab report --date {day}`")
    path = Path(row.path).with_name(FORMATS[fmt])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise NotFound(f"the report for {day} is recorded but its {fmt} file is gone; build it again") from None
    return json.loads(text) if fmt == "json" else text


def build_and_send(day: date, cfg: Config, url: str, *, send: bool, resend: bool = False,
                   progress: Any = None) -> ReportOutcome:
    ReviewSettings.from_config(cfg)  # a bad [review] table fails here, before any work
    kwargs = {"progress": progress} if progress else {}
    return deliver(day, send=send, resend=resend, url=url, config=cfg, **kwargs)
