"""The `okxlab` command. User mistakes print one line (`okxlab: error: ...`) and exit non-zero."""

from __future__ import annotations

import importlib
import logging
import sys

import click

from okxlab import __version__
from okxlab.errors import UserError

# Each command's module is imported when the command runs, not when `okxlab` starts: the modules pull in
# SQLAlchemy, pandas, matplotlib and ccxt (two seconds), which `okxlab --help` and `okxlab runs list` must not
# pay for. The one-line help beside each name is what `okxlab --help` lists (tests/cli checks it is each
# command's own first line).
COMMANDS: dict[str, tuple[str, str]] = {
    "api": ("okxlab.cli.api:api", "Serve the HTTP control API (OpenAPI at /docs)."),
    "agents": ("okxlab.cli.agents:agents", "Agents: their planners, trading states and equity."),
    "db": ("okxlab.cli.db:db", "The database: schema migrations."),
    "demo": ("okxlab.cli.demo:demo", "Run every agent through the real pipeline over recent history."),
    "leaderboard": ("okxlab.cli.review:leaderboard", "Every agent ranked by return, beside cash and buy-and-hold."),
    "metrics": ("okxlab.cli.metrics:metrics", "Serve /metrics for Prometheus until interrupted."),
    "plans": ("okxlab.cli.plans:plans", "Plans on demand: a dry run up to the risk verdict, nothing sent."),
    "reconcile": ("okxlab.cli.ledger:reconcile", "Compare each agent's ledger with the exchange's account."),
    "report": ("okxlab.cli.review:report", "Build the review report of one UTC day, and optionally email it."),
    "risk": ("okxlab.cli.risk:risk", "Kill switches and exposure across agents."),
    "runs": ("okxlab.cli.runs:runs", "Pipeline runs and their whole audit trail."),
    "schedules": ("okxlab.cli.schedules:schedules", "When agents run: intervals or crontabs (UTC)."),
    "sim": ("okxlab.cli.sim:sim", "Run the local OKX v5 REST simulator that ccxt trades against."),
    "strategies": ("okxlab.cli.strategies:strategies", "Rule strategies: check and read strategy documents."),
    "tokens": ("okxlab.cli.api:tokens", "API tokens: create (shown once), list, revoke."),
}


def load_command(name: str) -> click.Command:
    module, attr = COMMANDS[name][0].split(":")
    return getattr(importlib.import_module(module), attr)


class OkxlabGroup(click.Group):
    """Loads each command when it is used, and turns known failures into one clear line instead of a
    traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.add_command(load_command(cmd_name), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1] if name in COMMANDS else self.commands[name].get_short_help_str())
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except UserError as exc:
            from okxlab.cli.common import one_line

            click.echo(f"okxlab: error: {one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # a bad option or argument: one line too, with where to read more
            where = exc.ctx.command_path if exc.ctx else "okxlab"
            click.echo(f"okxlab: error: {exc.format_message()} (see `{where} --help`)", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            from sqlalchemy.exc import OperationalError

            if not isinstance(exc, OperationalError):
                raise
            from okxlab.config import database_url
            from okxlab.db.session import redact, scrub

            url = database_url()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig and str(exc.orig).strip() else "database error"
            click.echo(f"okxlab: error: database {redact(url)} failed: {scrub(reason, url)}", err=True)
            sys.exit(3)
        except KeyboardInterrupt:
            click.echo("okxlab: interrupted", err=True)
            sys.exit(130)


@click.group(cls=OkxlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="okxlab")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (to stderr).")
def main(verbose: bool) -> None:
    """okxlab: LLM and rule-based trading agents on OKX demo trading, under a hard risk engine, every step
    audited. Start with `okxlab demo`."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # each retried read would log a warning; a command's outcome is its own one line
        logging.getLogger("urllib3").setLevel(logging.ERROR)


if __name__ == "__main__":
    main()
