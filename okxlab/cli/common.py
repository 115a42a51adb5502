"""What every command shares: opening the database, tables, JSON output, one-line errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import click

from okxlab.errors import UserError
from okxlab.service.db import config, open_db  # noqa: F401  (what every command opens)


def kill_switch(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For the kill-switch commands (pause, halt, resume, flatten): they work whatever an unrelated variable
    holds; its bad value is warned about and ignored (okxlab.settings.for_switches)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from okxlab.settings import for_switches

        with for_switches():
            return fn(*args, **kwargs)

    return wrapper


@contextmanager
def exchange_calls(what: str) -> Iterator[None]:
    """An exchange (or simulator) that does not answer is one line, not a ccxt traceback. Every step already
    taken is audited and safe to repeat (deterministic client order ids), so the advice is to run it again."""
    import ccxt

    try:
        yield
    except ccxt.NetworkError as exc:
        detail = (str(exc).strip().splitlines() or [""])[0][:160]
        raise UserError(f"{what}: the exchange did not answer ({type(exc).__name__}: {detail}); check that it is up "
                        "(`okxlab sim` for the simulator, OKXLAB_SIM_URL) and run the command again") from None


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(data: Any) -> str:
    return json.dumps(data, default=_default, indent=2, sort_keys=False)


def echo_json(data: Any) -> None:
    click.echo(dumps(data))


def one_line(message: object) -> str:
    """A message as one line, whatever it quotes (a TOML key or value may hold a newline)."""
    return str(message).replace("\r", "\\r").replace("\n", "\\n")


def fail(message: str, code: int = 2) -> None:
    click.echo(f"okxlab: error: {one_line(message)}", err=True)
    sys.exit(code)
