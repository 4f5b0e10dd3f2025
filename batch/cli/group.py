"""The root group's behaviour: every error renders as one line.

Exit codes: 0 done; 1 an error (``error: ...`` on one line, naming what is
wrong and what to do); 2 a usage error (an unknown option, a bad value for one:
``error: ...`` on one line too, with ``--help`` for the usage); 130 interrupted.
``--debug`` anywhere on the command line shows the traceback instead, and lets
the libraries' warnings through (without it, a library's unconfigured warning
logs, such as a database driver's retry notices, stay quiet: the error line
says what happened). The command line that assembles the commands
(``flows.cli``) makes its root group of this class.
"""

from __future__ import annotations

import logging
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
        if not debug:  # no handler anywhere: Python's last resort would print them
            logging.getLogger().addHandler(logging.NullHandler())
        try:
            return super().main(argv, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            click.echo(f"error: {one_line(exc.format_message())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"error: {one_line(exc.format_message())}", err=True)
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
                click.echo(f"error: {one_line(str(exc))}", err=True)
                sys.exit(1)
            click.echo(f"error: unexpected {type(exc).__name__}: {one_line(str(exc))} "
                       "(run with --debug for the traceback)", err=True)
            sys.exit(1)


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined, blank ones dropped, control characters
    (such as raw bytes of a binary file) shown as escapes."""
    joined = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)
