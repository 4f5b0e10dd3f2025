"""The root group's behaviour: expected errors render as one line.

Errors print one line (``error: ...``) and exit 1; ``--debug`` anywhere on the
command line shows the traceback instead. The command line that assembles the
commands (``flows.cli``) makes its root group of this class.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from batch.errors import BatchPredError


class BatchpredGroup(click.Group):
    """Renders expected errors as one line; ``--debug`` re-raises them."""

    def main(self, args: Sequence[str] | None = None, **kwargs: Any) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        argv = [a for a in argv if a != "--debug"]
        try:
            return super().main(argv, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; nothing was published", err=True)
            sys.exit(130)
        except Exception as exc:
            if debug:
                raise
            from connectors import ConnectorError

            if isinstance(exc, BatchPredError | ConnectorError):
                click.echo(f"error: {exc}", err=True)
                sys.exit(1)
            click.echo(f"error: unexpected {type(exc).__name__}: {exc} "
                       "(run with --debug for the traceback)", err=True)
            sys.exit(1)
