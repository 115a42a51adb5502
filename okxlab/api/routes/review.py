"""The leaderboard and the daily review reports."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel

from okxlab.api.auth import OPERATE, PUBLIC, READ, Caller
from okxlab.api.context import ApiContext, ctx
from okxlab.api.responses import READ_ERRORS, WRITE_ERRORS, errors
from okxlab.db.ops import audit
from okxlab.review.report import parse_day
from okxlab.review.settings import ReviewSettings
from okxlab.service import leaderboard, reports

router = APIRouter()
BOARDS = leaderboard.BoardCache()


@router.get("/leaderboard", tags=["review"], responses={**READ_ERRORS, **errors(400)})
def board(book: str | None = Query(None, max_length=24),
          since: str | None = Query(None, max_length=40, description="YYYY-MM-DD, an ISO time or a span (12h, 7d)"),
          until: str | None = Query(None, max_length=40), _: Caller = Depends(READ),
          c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    """Every agent of a book ranked by return, beside cash and buy-and-hold, with the bootstrap noise check."""
    settings = ReviewSettings.from_config(c.config)
    with c.sessions() as s:
        return BOARDS.board(s, settings, book, since, until)


@router.get("/reports", tags=["review"], responses=READ_ERRORS)
def list_reports(caller: Caller = Depends(READ), c: ApiContext = Depends(ctx)) -> list[dict[str, Any]]:
    """The days with a built report, newest first, and whether each was emailed (to whom: token holders only)."""
    with c.sessions() as s:
        return reports.list_reports(s, recipients=caller is not PUBLIC)


@router.get("/reports/{day}", tags=["review"], responses={
    **READ_ERRORS, 200: {"content": {"application/json": {}, "text/html": {}, "text/plain": {}}}})
def report(day: date, format: Literal["json", "html", "text"] = "json", _: Caller = Depends(READ),  # noqa: A002
           c: ApiContext = Depends(ctx)) -> Any:
    """One day's built report, as JSON (default), HTML or text."""
    with c.sessions() as s:
        content = reports.read_report(s, day, format)
    if format == "html":
        return HTMLResponse(content)
    if format == "text":
        return PlainTextResponse(content)
    return content


class SendBody(BaseModel):
    resend: bool = False


class Sent(BaseModel):
    day: date
    sent: bool
    message: str


@router.post("/reports/{day}/send", tags=["review"], responses=WRITE_ERRORS)
def send(day: date, body: SendBody | None = None, caller: Caller = Depends(OPERATE),
         c: ApiContext = Depends(ctx)) -> Sent:
    """Build the day's report and email it (once per day unless `resend`)."""
    parse_day(day.isoformat())  # a day after today is refused, as `okxlab report --date` does
    outcome = reports.build_and_send(day, c.config, c.database_url, send=True, resend=bool(body and body.resend))
    with c.sessions.begin() as s:
        audit(s, "report.send_requested", f"report for {day}: {outcome.message}", actor=caller.actor,
              data={"day": day.isoformat(), "sent": outcome.sent})
    return Sent(day=day, sent=outcome.sent, message=outcome.message)
