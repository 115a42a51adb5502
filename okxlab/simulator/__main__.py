"""`python -m okxlab.simulator`: the same as `okxlab sim`."""

import sys

import click

from okxlab.cli.sim import sim
from okxlab.errors import UserError


def main() -> None:
    try:
        code = sim.main(standalone_mode=False)
    except UserError as exc:
        click.echo(f"okxlab sim: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
