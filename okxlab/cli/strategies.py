"""`okxlab strategies validate FILE` and `okxlab strategies show FILE`.

FILE is a strategy document (JSON) or builtin:NAME. Exit codes: 0 valid, 1 the document has problems (each
printed with its place in the document), 2 the file cannot be read.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from okxlab.errors import UserError
from okxlab.strategies.describe import strategy_text
from okxlab.strategies.load import StrategyError, build_strategy, builtin_names, read_document
from okxlab.strategies.model import Strategy

INVALID_EXIT = 1


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--param")
        try:
            out[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[name.strip()] = text
    return out


def _load(file: str, params: tuple[str, ...]) -> Strategy:
    """The strategy, or exit: 1 with every problem listed, 2 when the file cannot be read."""
    overrides = _parse_params(params)
    try:
        document, source = read_document(file)
        return build_strategy(document, overrides, source)
    except StrategyError as exc:
        noun = "problem" if len(exc.problems) == 1 else "problems"
        click.echo(f"invalid: {exc.source} ({len(exc.problems)} {noun})", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(INVALID_EXIT)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


_PARAM = click.option("--param", "-p", "params", multiple=True, metavar="NAME=VALUE",
                      help="Override a strategy parameter, as [agents.params] would (repeatable).")


@click.group(name="strategies")
def strategies() -> None:
    """Rule strategies: check and read strategy documents (JSON files or builtin:NAME)."""


@strategies.command("validate")
@click.argument("file")
@_PARAM
def validate(file: str, params: tuple[str, ...]) -> None:
    """Check a strategy document; list every problem with its place in the document."""
    strategy = _load(file, params)
    click.echo(f"ok: {strategy.name} ({strategy.version_tag})")


@strategies.command("show")
@click.argument("file")
@_PARAM
def show(file: str, params: tuple[str, ...]) -> None:
    """Print a strategy readably: parameters, entry and exit groups, stops, leverage, sizing."""
    click.echo(strategy_text(_load(file, params)))


@strategies.command("list")
def list_builtins() -> None:
    """The builtin strategies (use them as strategy = "builtin:NAME")."""
    for name in builtin_names():
        document, _ = read_document(f"builtin:{name}")
        click.echo(f"builtin:{name:<20} {document.get('description', '')}")
