"""The review report of one UTC day: gathered from the database, drawn, written to disk, and (mailer.py) sent.

Which books a day covers: every book with runs scheduled that day, over that day on the book's own clock
(review/clock.py: the simulator's market time may stand years back); and every replay book whose runs were
created that day (wall-clock) but replay other days, over the whole replay (each replay trades a fresh
account, so all of it is the replay's result).

Files, under reports_dir()/YYYY-MM-DD/: report.html (charts referenced as the PNG files beside it),
report.txt, report.json (the figures), and the PNGs. The emailed HTML is the same page with the charts as
inline parts referenced by `cid:`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from okxlab.config import Config, load_config, reports_dir
from okxlab.db.models import AuditEvent, LlmCallRecord, PlanValidation, Report, Run, StageRecord, utcnow
from okxlab.db.ops import insert_ignore
from okxlab.db.session import session_factory
from okxlab.domain import DRY_PREFIX, STAGES
from okxlab.errors import UserError
from okxlab.review import charts
from okxlab.review.clock import market_window
from okxlab.review.leaderboard import Leaderboard, build_leaderboard
from okxlab.review.metrics import Latency, Trade, Window, stage_latency
from okxlab.review.settings import ReviewSettings

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
ENDINGS = ("skipped", "invalid_plan", "rejected", "failed")  # how a run can end short of "completed"


def _quiet(_: str) -> None:
    pass


@dataclass
class StageHealth:
    stage: str
    done: int
    failed: int
    running: int
    retried: int  # records that needed more than one attempt
    ended_here: dict[str, int]  # runs that ended at this stage, by status
    latency: Latency


@dataclass
class BookSection:
    book: str
    window: Window  # market time: the figures cover it
    scheduled: Window  # wall clock: the runs scheduled in it (the same window unless the book keeps its own clock)
    leaderboard: Leaderboard
    trades: list[tuple[str, Trade]]  # (agent, round trip)
    risk_events: list[dict[str, Any]]
    invalid_plans: list[dict[str, Any]]
    llm_by_model: list[dict[str, Any]]
    runs_by_status: dict[str, int]
    stages: list[StageHealth]
    run_problems: list[dict[str, Any]]  # the reasons runs ended short, counted
    charts: dict[str, bytes] = field(default_factory=dict)  # file name → PNG

    @property
    def slug(self) -> str:
        return self.book.replace(":", "-").replace("/", "-")


@dataclass
class ReportData:
    day: date
    generated_at: datetime
    sections: list[BookSection]
    global_events: list[dict[str, Any]]  # risk events not tied to a run (an operator's pause, halts by hand)
    settings: ReviewSettings

    @property
    def images(self) -> dict[str, bytes]:
        return {name: png for section in self.sections for name, png in section.charts.items()}


def day_window(day: date) -> Window:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return Window(start, start + timedelta(days=1))


def parse_day(text: str, today: date | None = None) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--date {text!r} is not a date; give it as YYYY-MM-DD (UTC), e.g. 2025-01-31") from None
    today = today or datetime.now(UTC).date()
    if day > today:  # nothing to report yet (and a window past 9999-12-31 cannot be formed)
        raise UserError(f"--date {text} is in the future; give a UTC day up to today ({today.isoformat()})")
    return day


def previous_day(now: datetime) -> date:
    """The UTC day before `now` (an aware time; naive ones are taken as UTC)."""
    aware = now if now.tzinfo else now.replace(tzinfo=UTC)
    return aware.astimezone(UTC).date() - timedelta(days=1)


# ---- gathering -----------------------------------------------------------------------------------------------

def books_for_day(s: Session, day: date) -> list[tuple[str, Window, Window]]:
    """(book, market window, scheduled window) for each book the day's report covers."""
    w = day_window(day)
    scheduled = set(s.scalars(select(Run.book).where(Run.scheduled_for >= w.start, Run.scheduled_for < w.end,
                                                     Run.book.not_like(f"{DRY_PREFIX}%"))
                              .distinct()))
    replays = set(s.scalars(select(Run.book).where(Run.created_at >= w.start, Run.created_at < w.end,
                                                   Run.book.like("replay:%")).distinct())) - scheduled
    ordered = sorted(scheduled, key=lambda b: (b.startswith("replay:"), b))
    return ([(b, market_window(s, b, w), w) for b in ordered]
            + [(b, Window(), Window()) for b in sorted(replays)])


def _runs(book: str, window: Window) -> Any:
    q = select(Run.id).where(Run.book == book)
    if window.start is not None:
        q = q.where(Run.scheduled_for >= window.start)
    if window.end is not None:
        q = q.where(Run.scheduled_for < window.end)
    return q


def _event(e: AuditEvent) -> dict[str, Any]:
    return {"ts": e.ts, "kind": e.kind, "agent": e.agent, "run_id": e.run_id, "actor": e.actor, "message": e.message}


def _stage_health(s: Session, runs: Any) -> list[StageHealth]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    retried: Counter[str] = Counter()
    for stage, status, attempts in s.execute(select(StageRecord.stage, StageRecord.status, StageRecord.attempts)
                                             .where(StageRecord.run_id.in_(runs))):
        counts[stage][status] += 1
        if (attempts or 0) > 1:
            retried[stage] += 1
    ended: dict[str, Counter[str]] = defaultdict(Counter)
    for stage, status, n in s.execute(select(Run.stage, Run.status, func.count()).where(Run.id.in_(runs),
                                                                                     Run.status.in_(ENDINGS))
                                      .group_by(Run.stage, Run.status)):
        ended[stage or "snapshot"][status] += n
    latency = stage_latency(s, runs)
    return [StageHealth(name, counts[name]["done"], counts[name]["failed"], counts[name]["running"], retried[name],
                        dict(sorted(ended[name].items())), latency[name]) for name in STAGES]


def gather_section(s: Session, book: str, window: Window, settings: ReviewSettings,
                   scheduled: Window | None = None) -> BookSection:
    """Figures over `window` (market time) for the runs scheduled in `scheduled` (wall clock; default the same)."""
    scheduled = window if scheduled is None else scheduled
    lb = build_leaderboard(s, book, window, settings)
    runs = _runs(book, scheduled)
    trades = sorted(((e.metrics.agent, t) for e in lb.entries for t in e.metrics.trades),
                    key=lambda at: (at[0], at[1].opened_at))
    events = [_event(e) for e in s.scalars(select(AuditEvent).where(AuditEvent.kind.like("risk.%"),
                                                                   AuditEvent.run_id.in_(runs))
                                            .order_by(AuditEvent.ts, AuditEvent.id))]
    invalid = [{"run_id": run.id, "agent": run.agent, "scheduled_for": run.scheduled_for, "problems": v.problems[:5]}
               for v, run in s.execute(select(PlanValidation, Run).join(Run, Run.id == PlanValidation.run_id)
                                       .where(Run.id.in_(runs), PlanValidation.valid.is_(False))
                                       .order_by(Run.scheduled_for, Run.agent))]
    llm = [{"provider": r.provider, "model": r.model, "calls": r.calls, "cached": int(r.cached or 0),
            "tokens_in": int(r.tin or 0), "tokens_out": int(r.tout or 0), "cost_usd": float(r.cost or 0.0)}
           for r in s.execute(select(LlmCallRecord.provider, LlmCallRecord.model, func.count().label("calls"),
                                     func.sum(case((LlmCallRecord.cached.is_(True), 1), else_=0)).label("cached"),
                                     func.sum(LlmCallRecord.tokens_in).label("tin"),
                                     func.sum(LlmCallRecord.tokens_out).label("tout"),
                                     func.sum(LlmCallRecord.cost_usd).label("cost"))
                              .where(LlmCallRecord.run_id.in_(runs))
                              .group_by(LlmCallRecord.provider, LlmCallRecord.model)
                              .order_by(LlmCallRecord.provider, LlmCallRecord.model))]
    statuses = dict(s.execute(select(Run.status, func.count()).where(Run.id.in_(runs)).group_by(Run.status)).all())
    problems = [{"status": status, "reason": reason or "-", "runs": n}
                for status, reason, n in s.execute(select(Run.status, Run.reason, func.count())
                                                   .where(Run.id.in_(runs), Run.status.in_(ENDINGS))
                                                   .group_by(Run.status, Run.reason)
                                                   .order_by(func.count().desc(), Run.status, Run.reason))]
    return BookSection(book=book, window=window, scheduled=scheduled, leaderboard=lb, trades=trades, risk_events=events,
                       invalid_plans=invalid, llm_by_model=llm, runs_by_status=dict(sorted(statuses.items())),
                       stages=_stage_health(s, runs), run_problems=problems[:20])


def gather(s: Session, day: date, settings: ReviewSettings, progress: Progress = _quiet) -> ReportData:
    sections = []
    found = books_for_day(s, day)
    progress(f"{day}: {len(found)} book(s) with runs" + (f": {', '.join(b for b, _, _ in found)}" if found else ""))
    for book, window, scheduled in found:
        progress(f"book {book}: metrics and leaderboard")
        section = gather_section(s, book, window, settings, scheduled)
        progress(f"book {book}: charts")
        section.charts = {f"equity-{section.slug}.png": charts.equity_chart(section.leaderboard),
                          f"drawdown-{section.slug}.png": charts.drawdown_chart(section.leaderboard)}
        sections.append(section)
    w = day_window(day)
    unattached = [_event(e) for e in s.scalars(select(AuditEvent).where(AuditEvent.kind.like("risk.%"),
                                                                       AuditEvent.run_id.is_(None),
                                                                       AuditEvent.ts >= w.start, AuditEvent.ts < w.end)
                                                .order_by(AuditEvent.ts, AuditEvent.id))]
    return ReportData(day, utcnow(), sections, unattached, settings)


# ---- files -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuiltReport:
    day: date
    directory: Path
    html_path: Path
    text_path: Path
    subject: str
    text: str
    email_html: str  # charts as cid: references
    images: dict[str, bytes]  # file name → PNG (the cid is derived from the name)


def _write(path: Path, content: str | bytes) -> None:
    """Write beside the target and rename, so a reader never sees half a report (permissions follow umask)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def writable_dir(directory: Path) -> Path:
    """Create `directory` and prove it takes a file, so an unwritable reports directory is one line before any
    work, not a traceback after the charts are drawn."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".okxlab-write-check-{uuid.uuid4().hex[:8]}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write the report to {directory}: {exc.strerror or exc}; set OKXLAB_REPORTS_DIR "
                        "(or OKXLAB_HOME) to a writable directory") from None
    return directory


def write_report(data: ReportData, directory: Path) -> BuiltReport:
    from okxlab.review import render

    directory.mkdir(parents=True, exist_ok=True)
    for name, png in data.images.items():
        _write(directory / name, png)
    text = render.render_text(data)
    html_path, text_path = directory / "report.html", directory / "report.txt"
    _write(html_path, render.render_html(data, lambda name: name))
    _write(text_path, text)
    _write(directory / "report.json", render.json_text(render.report_json(data)))
    return BuiltReport(day=data.day, directory=directory, html_path=html_path, text_path=text_path,
                       subject=render.subject(data), text=text,
                       email_html=render.render_html(data, lambda name: f"cid:{content_id(name)}"),
                       images=data.images)


def content_id(name: str) -> str:
    """The Content-ID (without brackets) of a chart in the email: stable, so the HTML can name it."""
    return f"{name.removesuffix('.png')}@okxlab"


def build_report(day: date, *, sessions: sessionmaker[Session] | None = None, config: Config | None = None,
                 directory: Path | None = None, progress: Progress = _quiet) -> BuiltReport:
    """Gather, draw and write the report for `day`; record it in the reports table (built_at, path)."""
    sessions = sessions or session_factory()
    settings = ReviewSettings.from_config(config or load_config())
    directory = writable_dir(directory or reports_dir() / day.isoformat())
    with sessions() as s:
        data = gather(s, day, settings, progress)
    progress(f"writing {directory}")
    built = write_report(data, directory)
    with sessions.begin() as s:
        insert_ignore(s, Report, [{"day": day, "path": str(built.html_path), "built_at": utcnow(), "recipients": [],
                                   "send_count": 0}], ["day"])
        row = s.get(Report, day)
        row.path, row.built_at = str(built.html_path), utcnow()
    return built


# ---- the nightly entry point -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReportOutcome:
    day: date
    path: Path | None  # the HTML file, when one was written by this call
    sent: bool  # an email left by this call
    message: str  # one line for logs and the CLI


def deliver(day: date, *, send: bool, resend: bool = False, url: str | None = None, config: Config | None = None,
            progress: Progress = _quiet) -> ReportOutcome:
    """Build the report for `day` and, if asked, email it once (a claim in the reports table; `resend` forces)."""
    from okxlab.review import mailer

    sessions = session_factory(url)
    smtp = mailer.smtp_settings() if send or resend else None  # bad settings fail before any work
    built = build_report(day, sessions=sessions, config=config, progress=progress)
    where = f"report for {day} written to {built.html_path}"
    if not (send or resend):
        return ReportOutcome(day, built.html_path, False, where)
    if smtp is None:
        return ReportOutcome(day, built.html_path, False,
                             f"{where}; not emailed: SMTP is not configured (set OKXLAB_SMTP_HOST and OKXLAB_REPORT_TO)")
    progress(f"sending to {', '.join(smtp.recipients)} via {smtp.host}:{smtp.port}")
    result = mailer.send_once(sessions, built, smtp, resend=resend)
    return ReportOutcome(day, built.html_path, result.sent, f"{where}; {result.message}")


def nightly_report(now: datetime, *, url: str | None = None, config: Config | None = None) -> ReportOutcome:
    """What the beat task runs: the report for the UTC day before `now`, emailed if SMTP is configured.

    Safe to run twice: once the day's email is sent (or claimed by another worker), nothing is rebuilt or sent."""
    from okxlab.review import mailer

    day = previous_day(now)
    with session_factory(url)() as s:
        row = s.get(Report, day)
        if row is not None and row.sent_at is not None:
            return ReportOutcome(day, None, False, f"report for {day} already sent at {row.sent_at:%Y-%m-%d %H:%M} UTC")
    outcome = deliver(day, send=mailer.smtp_settings() is not None, url=url, config=config)
    log.info("nightly report: %s", outcome.message)
    return outcome
