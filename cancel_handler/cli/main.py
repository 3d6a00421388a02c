"""Entry point of `cancel-handler`: the command group, exit codes and shared wiring.

Exit codes: 0 success; 1 the operation failed (Service Bus or sign-in error, a message not
found, some messages not sent/resubmitted/purged); 2 usage or bad input (unknown option or
reason, missing namespace or queue, invalid request, purge without --yes); 3 `send --wait`: not
every request was answered in time.
"""

from __future__ import annotations

import errno

import click

from cancel_handler.cli.context import EXIT_FAILED, CliContext
from cancel_handler.cli.dlq import dlq
from cancel_handler.cli.send import send
from cancel_handler.core.redaction import first_line

EPILOG = (
    "Exit codes: 0 ok; 1 operation failed; 2 usage or bad input; 3 send --wait timed out. "
    "Sign-in uses DefaultAzureCredential (az login, environment, managed identity)."
)


class UnexpectedError(click.ClickException):
    """A defect (an exception no command expects), shown as one line with exit code 1."""

    exit_code = EXIT_FAILED

    def __init__(self, error: Exception) -> None:
        detail = first_line(error)
        shown = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        super().__init__(
            f"unexpected error ({shown}); this is a defect: please report it with the command "
            "you ran"
        )


class GuardedGroup(click.Group):
    """A command group that never lets a traceback reach the user: click's own exceptions and
    exits pass through, anything else becomes :class:`UnexpectedError`."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # click ends quietly when the reader of stdout went away
            raise UnexpectedError(exc) from exc
        except Exception as exc:
            raise UnexpectedError(exc) from exc


@click.group(
    cls=GuardedGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="cancel-handler")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Send meeting cancel requests and inspect, resubmit or purge dead-lettered ones."""
    ctx.ensure_object(CliContext)


cli.add_command(send)
cli.add_command(dlq)


def main() -> None:
    """Console script `cancel-handler`."""
    cli(obj=CliContext())
