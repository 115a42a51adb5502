"""The `okxlab` command. User mistakes print one line (`okxlab: error: ...`) and exit non-zero."""

from __future__ import annotations

import logging
import sys

import click
from sqlalchemy.exc import OperationalError

from okxlab import __version__
from okxlab.config import database_url
from okxlab.db.session import redact, scrub
from okxlab.errors import UserError


class OkxlabGroup(click.Group):
    """Turns known failures into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except UserError as exc:
            from okxlab.cli.common import one_line

            click.echo(f"okxlab: error: {one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except OperationalError as exc:
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


def _register() -> None:
    from okxlab.cli import agents, db, demo, risk, runs, schedules
    from okxlab.cli.api import api, tokens
    from okxlab.cli.ledger import reconcile
    from okxlab.cli.metrics import metrics
    from okxlab.cli.review import leaderboard, report
    from okxlab.cli.sim import sim
    from okxlab.cli.strategies import strategies

    for command in (db.db, agents.agents, schedules.schedules, runs.runs, risk.risk, demo.demo, leaderboard, report,
                    reconcile, metrics, sim, strategies, api, tokens):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
