"""Tables for people at a terminal (rich): long cells wrap instead of being cut, states have colours.

Piped or captured output (a file, `grep`, the tests) gets the same table without colours, laid out on a wide
line so nothing wraps mid-word for a script to stitch back together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import click

from okxlab.cli.common import fmt

# Run statuses and trading states, coloured by what they mean for the operator.
STYLES = {
    "completed": "green", "ACTIVE": "green", "done": "green",
    "running": "cyan", "pending": "cyan",
    "skipped": "yellow", "REDUCE_ONLY": "yellow", "PAUSED": "yellow",
    "rejected": "red", "failed": "bold red", "HALTED": "bold red",
    "invalid_plan": "magenta",
}
PIPED_WIDTH = 400


def _console():  # noqa: ANN202
    from rich.console import Console

    console = Console(soft_wrap=False, highlight=False)
    if not console.is_terminal:
        console = Console(width=PIPED_WIDTH, soft_wrap=False, highlight=False, no_color=True)
    return console


def cell(value: Any, coloured: bool = False) -> Any:
    """A cell as plain text: never read as rich markup (a model's answer quoted in a reason may hold "[/INST]",
    a secret is shown as "[redacted]"). Coloured cells take the colour of their first word."""
    from rich.text import Text

    text = fmt(value)
    return Text(text, style=STYLES.get(text.split(" ", 1)[0], "") if coloured else "")


def show_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, wrap: Sequence[str] = (),
               coloured: Sequence[str] = ()) -> None:
    """Print a table. Columns named in `wrap` take the remaining width and wrap; `coloured` ones get the
    colour of their first word (a status or a state)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for h in headers:
        table.add_column(h, overflow="fold", no_wrap=h not in wrap, ratio=1 if h in wrap else None)
    for row in rows:
        table.add_row(*(cell(c, h in coloured) for h, c in zip(headers, row, strict=True)))
    _console().print(table)


def echo_block(title: str, body: str) -> None:
    """A titled block of free text (a plan, a model's answer), wrapped at the terminal's width."""
    click.echo(title)
    console = _console()
    for line in body.splitlines() or [""]:
        console.print("  " + line, soft_wrap=False, overflow="fold", markup=False)


class TickProgress:
    """A long replay's progress on stderr: a live bar at a terminal, a line per update when piped (logs keep
    every update). Use as a context manager so the bar is closed even when the replay fails."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> TickProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, done: int, total: int, statuses: dict[str, int]) -> None:
        counts = " ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        if not self.console.is_terminal:
            click.echo(f"  tick {done}/{total}  {counts}", err=True)
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("ticks"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.description}"), console=self.console, transient=False)
            self.bar.start()
            self.task = self.bar.add_task(counts, total=total)
        self.bar.update(self.task, completed=done, description=counts)
