"""The dashboard's pages. Each page is made of parts; a part is also served alone (`/ui/part/<name>`) so a live
event re-reads only what it changed. Every figure comes from the same service functions the JSON API answers
with: the arena's rows are GET /leaderboard's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from okxlab import settings as okx_settings
from okxlab.api.context import ApiContext, ctx
from okxlab.api.routes.review import BOARDS
from okxlab.api.ui.render import page, templates
from okxlab.api.ui.session import Viewer, viewer
from okxlab.errors import NotFound, UserError
from okxlab.review.leaderboard import books, default_book
from okxlab.review.settings import ReviewSettings
from okxlab.risk.switches import global_pause
from okxlab.service import agents, dashboard, replays, reports, runs
from okxlab.service.leaderboard import book_window, on_the_hour

router = APIRouter(include_in_schema=False)
WINDOWS = (("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days"), ("", "all"))
BOOK = Query(None, max_length=24)
SINCE = Query(None, max_length=40)


class SignIn(Exception):
    """No token and no public arena: the page sends the browser to the sign-in form."""


def reader(who: Viewer | None = Depends(viewer)) -> Viewer:
    if who is None:
        raise SignIn
    return who


# ---- parts: name → (template, data) -----------------------------------------------------------------------

def _board(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    book = q.get("book") or default_book(s)
    # The arena shows no activity figures (run counts, verdicts, latencies, LLM costs): leaving them out makes a
    # board three to four times cheaper; every figure it does show is GET /leaderboard's.
    board = BOARDS.board(s, ReviewSettings.from_config(c.config), book, on_the_hour(s, book, q.get("since")), None,
                         activity=False)
    book = board["book"]
    known = {a.name for a in c.config.agents}
    state = {row["name"]: row for row in agents.list_agents(s, c.config, book)} if book else {}
    for row in board["agents"]:
        row["configured"] = row["agent"] in known
        row["uses"] = state.get(row["agent"], {}).get("uses", "-")
        row["state"] = state.get(row["agent"], {}).get("effective_state", "-")
    return {"board": board}


def _pause(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    return {"pause": global_pause(s)}


def _agent_head(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    detail = agents.detail(s, c.config, q["agent"])
    book = q.get("book") or _default_book(detail)
    return {"agent": detail, "book": book, "here": next((b for b in detail["books"] if b["book"] == book), None),
            "pause": global_pause(s)}


def _default_book(detail: dict[str, Any]) -> str:
    """The agent's book with the newest equity (else its exchange mode)."""
    dated = [b for b in detail["books"] if b["equity_at"] is not None]
    return max(dated, key=lambda b: b["equity_at"])["book"] if dated else detail["mode"]


def _positions(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    detail = agents.detail(s, c.config, q["agent"])
    book = q.get("book") or _default_book(detail)
    return {"book": book, "positions": [p for p in detail["positions"] if p["book"] == book],
            "orders": [o for o in detail["open_orders"] if o["book"] == book]}


def _trades(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    c.config.agent(q["agent"])
    return {"trades": dashboard.trade_log(s, q["agent"], q["book"]),
            "fills": dashboard.recent_fills(s, q["agent"], q["book"])}


def _feed(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    c.config.agent(q["agent"])
    return {"feed": dashboard.decision_feed(s, q["agent"], q["book"], cursor=q.get("cursor")),
            "agent_name": q["agent"], "book": q["book"]}


def _pipeline(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    from okxlab.service.health import TIMEOUT, dispatch_state

    # The broker first: a session begins its transaction at its first query, and on SQLite every transaction
    # holds the write lock, so nothing is held while the workers take their time to answer.
    workers, queues = sorted(c.ping_workers(TIMEOUT / 2) or {}), c.queue_depths()
    return {"pipeline": dashboard.pipeline(s), "dispatch": dispatch_state(s, dashboard.utcnow()),
            "workers": workers, "queues": queues}


def _replays(s: Session, c: ApiContext, q: dict[str, Any]) -> dict[str, Any]:
    return {"replays": dashboard.replays(s)}


PARTS: dict[str, tuple[str, Callable[[Session, ApiContext, dict[str, Any]], dict[str, Any]]]] = {
    "board": ("part_board.html", _board), "pause": ("part_pause.html", _pause),
    "agent-head": ("part_agent_head.html", _agent_head), "positions": ("part_positions.html", _positions),
    "trades": ("part_trades.html", _trades), "feed": ("part_feed.html", _feed),
    "pipeline": ("part_pipeline.html", _pipeline), "replays": ("part_replays.html", _replays),
}


NEEDS = {"agent-head": ("agent",), "positions": ("agent",), "trades": ("agent", "book"), "feed": ("agent", "book")}


@router.get("/ui/part/{name}", response_class=HTMLResponse)
def part(name: str, request: Request, who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> Response:
    if name not in PARTS:
        raise NotFound(f"no part {name!r}")
    template, data = PARTS[name]
    q = {k: v for k, v in request.query_params.items() if v and len(v) <= 400}
    missing = [key for key in NEEDS.get(name, ()) if key not in q]
    if missing:
        raise UserError(f"part {name} needs {' and '.join(missing)}: ?agent=NAME&book=sim (or demo, live, replay:<id>)")
    with c.sessions() as s:
        return templates.TemplateResponse(request, template, {"who": who, "q": q, **data(s, c, q)})


def _render(request: Request, who: Viewer, c: ApiContext, template: str, q: dict[str, Any], names: list[str],
            **extra: Any) -> HTMLResponse:
    context: dict[str, Any] = {"who": who, "q": q, **extra}
    with c.sessions() as s:
        for name in names:
            context.update(PARTS[name][1](s, c, q))
    return page(request, template, **context)


# ---- pages --------------------------------------------------------------------------------------------------

def _arena_curves(s: Session, c: ApiContext, book: str | None, since: str | None,
                  known: list[str] | None = None) -> dict[str, Any]:
    """`known`: the books with runs, when the caller has read them already."""
    benchmark = ReviewSettings.from_config(c.config).benchmark
    known = books(s) if known is None else known
    chosen = book or (known[0] if known else None)
    if chosen is None:
        return {"book": None, "agents": [], "cash": [], "buy_and_hold": {"symbol": benchmark, "points": []}}
    if chosen not in known:
        raise NotFound(f"no runs in book {chosen!r}; books with runs: {', '.join(known)}")
    window = book_window(s, chosen, on_the_hour(s, chosen, since), None, ("since", "until"))
    return dashboard.arena_curves(s, chosen, window, benchmark)


def _agent_curves(s: Session, c: ApiContext, name: str, book: str, since: str | None) -> dict[str, Any]:
    c.config.agent(name)
    return dashboard.agent_curves(s, name, book, book_window(s, book, since, None, ("since", "until")))


@router.get("/", response_class=HTMLResponse)
def arena(request: Request, book: str | None = BOOK, since: str | None = SINCE, who: Viewer = Depends(reader),
          c: ApiContext = Depends(ctx)) -> HTMLResponse:
    with c.sessions() as s:
        known = books(s)
        # The chart's first data goes out with the page (no second round trip before it draws); live
        # updates re-read it from /ui/data/arena.
        curves = _arena_curves(s, c, book, since, known)
    # The book shown, chosen once: the board need not look for the most recent book again.
    q = {k: v for k, v in {"book": curves["book"], "since": since}.items() if v}
    return _render(request, who, c, "arena.html", q, ["pause", "board"], books=known, windows=WINDOWS,
                   curves=curves, title="Arena")


@router.get("/ui/agents/{name}", response_class=HTMLResponse)
def agent_page(name: str, request: Request, book: str | None = BOOK, since: str | None = SINCE,
               who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    q: dict[str, Any] = {"agent": name, **({"book": book} if book else {}), **({"since": since} if since else {})}
    with c.sessions() as s:
        head = _agent_head(s, c, q)
        curves = _agent_curves(s, c, name, head["book"], since)
    q["book"] = head["book"]
    return _render(request, who, c, "agent.html", q, ["positions", "trades", "feed"], **head, windows=WINDOWS,
                   curves=curves, title=f"Agent {name}")


@router.get("/ui/runs/{run_id}", response_class=HTMLResponse)
def run_page(run_id: str, request: Request, who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    with c.sessions() as s:
        trail = runs.show(s, run_id)
        pause = global_pause(s)
    return page(request, "run.html", who=who, q={}, trail=trail, pause=pause, title=f"Run {run_id}")


@router.get("/ui/market", response_class=HTMLResponse)
def market_page(request: Request, book: str | None = BOOK, symbol: str | None = Query(None, max_length=32),
                who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    with c.sessions() as s:
        known = books(s)
        chosen = book or (known[0] if known else None)
        symbols = dashboard.market_symbols(s, chosen) if chosen else []
        pause = global_pause(s)
    if book is not None and book not in known:
        raise NotFound(f"no runs in book {book!r}; books with runs: {', '.join(known) or 'none yet'}")
    chosen_symbol = symbol or (symbols[0] if symbols else None)
    if symbol is not None and symbol not in symbols:
        raise NotFound(f"book {chosen} has no snapshots of {symbol!r}; it has {', '.join(symbols) or 'none'}")
    return page(request, "market.html", who=who, q={"book": chosen, "symbol": chosen_symbol}, books=known,
                symbols=symbols, pause=pause, title="Market")


@router.get("/ui/pipeline", response_class=HTMLResponse)
def pipeline_page(request: Request, who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    return _render(request, who, c, "pipeline.html", {}, ["pipeline", "pause"], title="Pipeline",
                   flower=okx_settings.current().flower_url)


@router.get("/ui/replays", response_class=HTMLResponse)
def replays_page(request: Request, who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    names = [a.name for a in c.config.agents]
    return _render(request, who, c, "replays.html", {}, ["pause", "replays"], agent_names=names, title="Replays")


@router.get("/ui/replays/{replay_id}", response_class=HTMLResponse)
def replay_page(replay_id: int, request: Request, who: Viewer = Depends(reader),
                c: ApiContext = Depends(ctx)) -> HTMLResponse:
    with c.sessions() as s:
        shown = replays.show(s, replay_id)
        pause = global_pause(s)
    return page(request, "replay.html", who=who, q={}, replay=shown, pause=pause, title=f"Replay {replay_id}")


@router.get("/ui/part/replay/{replay_id}", response_class=HTMLResponse)
def replay_part(replay_id: int, request: Request, who: Viewer = Depends(reader),
                c: ApiContext = Depends(ctx)) -> HTMLResponse:
    with c.sessions() as s:
        shown = replays.show(s, replay_id)
    return templates.TemplateResponse(request, "part_replay.html", {"who": who, "replay": shown})


@router.get("/ui/reports", response_class=HTMLResponse)
def reports_page(request: Request, who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    with c.sessions() as s:
        rows = reports.list_reports(s, recipients=who.token is not None)
        pause = global_pause(s)
    return page(request, "reports.html", who=who, q={}, reports=rows, pause=pause, title="Reports")


@router.get("/ui/reports/{day}", response_class=HTMLResponse)
def report_page(day: date, request: Request, who: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> HTMLResponse:
    with c.sessions() as s:
        content = reports.read_report(s, day, "html")
    return HTMLResponse(content)


# ---- chart data (JSON) --------------------------------------------------------------------------------------

@router.get("/ui/data/arena")
def arena_data(book: str | None = BOOK, since: str | None = SINCE, _: Viewer = Depends(reader),
               c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    with c.sessions() as s:
        return _arena_curves(s, c, book, since)


@router.get("/ui/data/agents/{name}")
def agent_data(name: str, book: str = Query(..., max_length=24), since: str | None = SINCE,
               _: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    with c.sessions() as s:
        return _agent_curves(s, c, name, book, since)


@router.get("/ui/data/market")
def market_data(book: str = Query(..., max_length=24), symbol: str = Query(..., max_length=32),
                _: Viewer = Depends(reader), c: ApiContext = Depends(ctx)) -> dict[str, Any]:
    with c.sessions() as s:
        return dashboard.market(s, book, symbol)


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    from urllib.parse import quote

    return RedirectResponse(f"/ui/signin?next={quote(target, safe='')}", status_code=303)
