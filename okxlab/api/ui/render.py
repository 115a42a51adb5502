"""Templates and the filters they format numbers and times with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Undefined

from okxlab import __version__

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _missing(value: Any) -> bool:
    """None, or a name the template could not find (an empty list's first item)."""
    return value is None or isinstance(value, Undefined)


def _money(value: float | None) -> str:
    return "-" if _missing(value) else f"{value:,.2f}"


def _pct(value: float | None, scale: float = 100.0) -> str:
    """A fraction (scale 100) or a percentage (scale 1) as a signed percentage."""
    return "-" if _missing(value) else f"{value * scale:+.2f}%"


def _share(value: float | None) -> str:
    """A fraction as an unsigned percentage (win rate, drawdown depth)."""
    return "-" if _missing(value) else f"{value * 100:.2f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if _missing(value) else f"{value:,.{digits}f}"


def _ts(value: datetime | str | None) -> str:
    if _missing(value):
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M")


def _sign(value: float | None) -> str:
    """A CSS class for a figure's sign."""
    return "" if not value else ("up" if value > 0 else "down")


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def live(kinds: str, book: str | None = None, agent: str | None = None, delay: str = "150ms") -> str:
    """An hx-trigger that re-reads a part when a live event of one of `kinds` (space-separated) concerns its book
    and agent, or when everything must be re-read (resync). Autoescaping makes it safe in an attribute."""
    conditions = [f"detail.{key}=={json.dumps(value)}" for key, value in (("book", book), ("agent", agent)) if value]
    where = f"[detail.resync||({'&&'.join(conditions)})]" if conditions else ""
    return ", ".join(f"live-{kind}{where} from:body delay:{delay}" for kind in kinds.split())


templates.env.filters.update(money=_money, pct=_pct, share=_share, num=_num, ts=_ts, sign=_sign, pretty=_pretty)
templates.env.globals.update(version=__version__, live=live)


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)
